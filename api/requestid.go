package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// HeaderRequestID carries a request's id: taken from the request when it is
// well formed (requestIDOK), made up otherwise, and sent back on every
// answer. Problems carry it too (Problem.RequestID), and so does the
// request's log line.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an incoming id; a longer one is replaced.
const maxRequestIDLen = 64

// requestIDOK reports whether an incoming id may be kept: 1 to 64 of
// A-Z a-z 0-9 and - _ . : (what tracing systems send), nothing a log line
// or a terminal could misread.
func requestIDOK(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// requestIDs makes ids: a random prefix per process and a counter, so that
// ids are unique without a system call per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 10)
}

// requestID returns the id of the request c answers ("" before observe ran).
func requestID(c echo.Context) string {
	return c.Response().Header().Get(HeaderRequestID)
}

// observe is the outermost middleware: it gives the request its id, renders
// an error the request ended with (so that the status is known here), and
// then counts the request in m and writes its one log line: method, route
// template, status, duration, id. Never the token, a query or a body.
// known holds the route templates; any other path (c.Path() of a request
// that matched nothing) counts as routeUnmatched.
func observe(log *slog.Logger, m *Metrics, known map[string]bool) echo.MiddlewareFunc {
	ids := newRequestIDs()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			id := c.Request().Header.Get(HeaderRequestID)
			if !requestIDOK(id) {
				id = ids.next()
			}
			c.Response().Header().Set(HeaderRequestID, id)
			if err := next(c); err != nil {
				c.Error(err)
			}
			route := c.Path()
			if !known[route] {
				route = routeUnmatched
			}
			status := c.Response().Status
			d := time.Since(start)
			method := methodLabel(c.Request().Method)
			m.observe(method, route, status, d.Seconds())
			log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("method", method), slog.String("route", route), slog.Int("status", status),
				slog.Duration("duration", d), slog.String("request_id", id))
			return nil
		}
	}
}
