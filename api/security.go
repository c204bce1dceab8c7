package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// security returns the checks every request passes before routing, in
// order: Host allow-list (DNS rebinding), cross-origin protection (CSRF),
// CORS when origins are configured, then the bearer token.
func security(o Options) []echo.MiddlewareFunc {
	mws := []echo.MiddlewareFunc{hostCheck(o.AllowedHosts), crossOrigin(o.CORSOrigins)}
	if len(o.CORSOrigins) > 0 {
		mws = append(mws, middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  o.CORSOrigins,
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderAccept},
			ExposeHeaders: []string{echo.HeaderLocation, "Sockman-Cursor"},
		}))
	}
	if o.Token != "" {
		mws = append(mws, bearerAuth(o.Token))
	}
	return mws
}

// hostCheck answers 403 to a request whose Host is not a loopback name or
// one of allowed: a page that rebinds its own name to 127.0.0.1 still sends
// its own name as Host. "*" in allowed turns the check off.
func hostCheck(allowed []string) echo.MiddlewareFunc {
	set := map[string]bool{"localhost": true}
	for _, h := range allowed {
		set[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			host := c.Request().Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			host = strings.ToLower(strings.Trim(host, "[]"))
			ip := net.ParseIP(host)
			if set["*"] || set[host] || (ip != nil && ip.IsLoopback()) {
				return next(c)
			}
			return fmt.Errorf("%w: Host %q is not an allowed name for this API (this blocks DNS rebinding); start sockman with --allowed-hosts %s to allow it", errForbidden, c.Request().Host, host)
		}
	}
}

// crossOrigin refuses state-changing cross-origin browser requests, using
// the browser's Sec-Fetch-Site and Origin headers (http.CrossOriginProtection).
func crossOrigin(trusted []string) echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	for _, o := range trusted {
		_ = cop.AddTrustedOrigin(o) // a malformed origin simply never matches
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := cop.Check(c.Request()); err != nil {
				return fmt.Errorf("%w: cross-origin request refused (%v); call the API from its own origin, or list yours with --cors-origin", errForbidden, err)
			}
			return next(c)
		}
	}
}

// bearerAuth requires "Authorization: Bearer <token>" on every route but
// /healthz. The comparison takes the same time whatever the guess.
func bearerAuth(token string) echo.MiddlewareFunc {
	want := sha256.Sum256([]byte(token))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.URL.Path == "/healthz" || r.Method == http.MethodOptions {
				return next(c)
			}
			got, ok := strings.CutPrefix(r.Header.Get(echo.HeaderAuthorization), "Bearer ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				return fmt.Errorf("%w: send the header Authorization: Bearer <token>, with the token sockman was started with", errUnauthorized)
			}
			return next(c)
		}
	}
}
