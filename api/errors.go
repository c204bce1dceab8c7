package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/sockets"
)

// Problem is an RFC 9457 problem document, the body of every error response.
type Problem struct {
	// A URI naming the kind of problem.
	Type string `json:"type" example:"urn:sockman:problem:not-found"`
	// Short summary of the kind of problem.
	Title string `json:"title" example:"Not Found"`
	// The HTTP status code.
	Status int `json:"status" example:"404"`
	// What went wrong in this case, and what to do about it.
	Detail string `json:"detail" example:"no socket has id \"sock-9\"; list them with GET /sockets"`
} // @name Problem

// Errors of the HTTP layer itself; domain errors come from package sockets.
var (
	errBadRequest       = errors.New("bad request")
	errUnsupportedMedia = errors.New("unsupported media type")
	errTooLarge         = errors.New("request body too large")
	errUnauthorized     = errors.New("unauthorized")
	errForbidden        = errors.New("forbidden")
	errNotFound         = errors.New("not found")
)

// problemKinds is the one table from error to status. Order matters only
// where one error could match two rows; it cannot here.
var problemKinds = []struct {
	err    error
	status int
	slug   string
}{
	{errBadRequest, http.StatusBadRequest, "bad-request"},
	{sockets.ErrInvalid, http.StatusBadRequest, "invalid-argument"},
	{errUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{errForbidden, http.StatusForbidden, "forbidden"},
	{sockets.ErrForbidden, http.StatusForbidden, "forbidden-by-policy"},
	{errNotFound, http.StatusNotFound, "not-found"},
	{sockets.ErrServerNotFound, http.StatusNotFound, "server-not-found"},
	{sockets.ErrSocketNotFound, http.StatusNotFound, "socket-not-found"},
	{sockets.ErrAddrInUse, http.StatusConflict, "address-in-use"},
	{sockets.ErrSocketClosed, http.StatusConflict, "socket-closed"},
	{errTooLarge, http.StatusRequestEntityTooLarge, "body-too-large"},
	{errUnsupportedMedia, http.StatusUnsupportedMediaType, "unsupported-media-type"},
	{sockets.ErrConnectFailed, http.StatusBadGateway, "connect-failed"},
	{sockets.ErrLimit, http.StatusServiceUnavailable, "limit-reached"},
	{sockets.ErrClosed, http.StatusServiceUnavailable, "shutting-down"},
	// A request's context ends when the service shuts down (the client
	// then gets this) or when the client has gone (and gets nothing).
	{context.Canceled, http.StatusServiceUnavailable, "cancelled"},
	{sockets.ErrConnectTimeout, http.StatusGatewayTimeout, "connect-timeout"},
	{sockets.ErrWriteTimeout, http.StatusGatewayTimeout, "write-timeout"},
}

// problemFor maps any error to the problem to send. Unknown errors are 500
// with a generic detail; the cause goes to the log only.
func problemFor(err error) Problem {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = fmt.Errorf("%w: the body is over the %d byte limit (--max-body)", errTooLarge, mbe.Limit)
	}
	for _, k := range problemKinds {
		if errors.Is(err, k.err) {
			return Problem{Type: "urn:sockman:problem:" + k.slug, Title: http.StatusText(k.status), Status: k.status, Detail: capDetail(err.Error())}
		}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code >= 400 && he.Code < 500 {
		detail := fmt.Sprint(he.Message)
		switch he.Code {
		case http.StatusNotFound:
			detail = "no such route; the API is described at /openapi.yaml and /swagger/index.html"
		case http.StatusMethodNotAllowed:
			detail = "this route does not take that method; see /openapi.yaml for the methods it takes"
		}
		return Problem{Type: "about:blank", Title: http.StatusText(he.Code), Status: he.Code, Detail: detail}
	}
	return Problem{Type: "about:blank", Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError,
		Detail: "internal error; the cause is in the service log"}
}

// maxDetail bounds a problem's detail. Input in a detail is quoted with
// quote.String, so a detail is a few hundred bytes; the cap only keeps a
// message that forgot to do so from echoing megabytes.
const maxDetail = 1024

func capDetail(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	n := maxDetail - len("...")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// errorHandler renders every error as problem+json. It is echo's
// HTTPErrorHandler: handlers just return errors.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			log.Debug("error after the response started", "path", c.Path(), "err", err)
			return
		}
		p := problemFor(err)
		if p.Status >= 500 {
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", p.Status, "err", err)
		}
		if p.Status == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="sockman"`)
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(p.Status)
		if c.Request().Method == http.MethodHead {
			return
		}
		if err := jsonEncode(c.Response(), p); err != nil {
			log.Debug("writing a problem", "err", err)
		}
	}
}

// badRequest returns a 400 error with a detail for the user.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}
