package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/sockman/sockman/internal/quote"
)

// The browser-facing defenses. sockman is a pivot into the network of the
// machine it runs on, and "it only listens on 127.0.0.1" does not stop a web
// page in the user's browser:
//
//   - DNS rebinding: a page on evil.example rebinds its own name to
//     127.0.0.1 and then calls the API as same-origin. The browser still
//     sends Host: evil.example, so hostCheck refuses every Host that is not
//     a loopback name or an allowed one.
//   - Cross-site requests: a page posts a form or fires a fetch at
//     http://127.0.0.1:8080. http.CrossOriginProtection refuses
//     state-changing methods from another origin; crossOrigin also refuses
//     cross-site GETs to the API, since a read with ?after= frees data.
//   - No CORS headers are sent unless origins are configured, so no other
//     origin can read an answer.
//   - With a token, every route but the public ones needs it.

// CheckSecurity reports the first security option that cannot work, with a
// message that names the flag and says what to write instead. Call it before
// New: New does not check.
func (o Options) CheckSecurity() error {
	if o.Token != "" {
		for _, c := range o.Token {
			if c <= ' ' || c > '~' {
				return errors.New("the token must be printable ASCII without spaces (it is sent in an HTTP header); use for instance the output of: openssl rand -hex 32")
			}
		}
	}
	for _, h := range o.AllowedHosts {
		switch {
		case strings.TrimSpace(h) == "":
			return errors.New("--allowed-hosts: empty name")
		case h == "*" && o.Token == "":
			return errors.New("--allowed-hosts '*' turns off the Host check that stops DNS rebinding; it needs a token (--token-file)")
		case strings.ContainsAny(h, "/ @"):
			return fmt.Errorf("--allowed-hosts %q: give a host name or IP, such as sockman.example.com or 192.0.2.7", h)
		}
	}
	for _, origin := range o.CORSOrigins {
		if err := checkOrigin(origin); err != nil {
			return fmt.Errorf("--cors-origin %q: %v", origin, err)
		}
	}
	return nil
}

// checkOrigin accepts exactly a browser origin: scheme://host[:port].
func checkOrigin(origin string) error {
	const want = "write an origin as a browser sends it: scheme://host[:port], such as https://app.example.com or http://localhost:3000"
	if strings.ContainsAny(origin, "*?") || origin == "null" {
		return fmt.Errorf("wildcards and null are not accepted; list each origin; %s", want)
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return errors.New(want)
	}
	if origin != strings.ToLower(origin) {
		return fmt.Errorf("origins are lower case; %s", want)
	}
	return nil
}

// security returns the checks every request passes before routing, in
// order: Host allow-list (DNS rebinding), cross-origin protection (CSRF),
// CORS when origins are configured, then the bearer token.
func security(o Options) []echo.MiddlewareFunc {
	mws := []echo.MiddlewareFunc{hostCheck(o.AllowedHosts), crossOrigin(o.CORSOrigins)}
	if len(o.CORSOrigins) > 0 {
		mws = append(mws, middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  o.CORSOrigins,
			AllowMethods:  apiMethods,
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderAccept},
			ExposeHeaders: []string{echo.HeaderLocation, "Sockman-Cursor", "Sockman-State", "WWW-Authenticate"},
		}))
	}
	if o.Token != "" {
		mws = append(mws, bearerAuth(o.Token))
	}
	return mws
}

// isPublic reports whether r is for a route that needs no token and may be
// opened from another site: liveness and readiness, and the documentation (Swagger UI and
// the OpenAPI document it loads) that a browser must reach before the user
// can give the token to Swagger UI's Authorize. They show no state. The path
// is the one echo routes on, and every path under /swagger/ goes to the
// Swagger UI handler (which serves its own files or 404), so no API route
// can hide behind these.
func isPublic(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch p := echo.GetPath(r); {
	case p == "/healthz", p == "/readyz", p == "/openapi.yaml", p == "/", p == "/swagger":
		return true
	default:
		return strings.HasPrefix(p, "/swagger/")
	}
}

// hostCheck answers 403 to a request whose Host is not a loopback name or
// one of allowed: a page that rebinds its own name to 127.0.0.1 still sends
// its own name as Host. "*" in allowed turns the check off.
func hostCheck(allowed []string) echo.MiddlewareFunc {
	set := map[string]bool{"localhost": true}
	for _, h := range allowed {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		set[normalHost(h)] = true
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			raw := c.Request().Host
			host := raw
			if h, _, err := net.SplitHostPort(raw); err == nil {
				host = h
			}
			host = normalHost(host)
			if set["*"] || set[host] || isLoopbackIP(host) {
				return next(c)
			}
			if host == "" {
				return fmt.Errorf("%w: the request has no Host header; send the name you reach the API by (curl does)", errForbidden)
			}
			if len(host) > quote.Max {
				host = "NAME"
			}
			return fmt.Errorf("%w: Host %s is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts %s", errForbidden, quote.String(raw), host)
		}
	}
}

// normalHost lower-cases a host name and drops IPv6 brackets and a final dot.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(strings.TrimSpace(h), "[]")), ".")
}

func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// crossOrigin refuses state-changing cross-origin browser requests, using
// the browser's Sec-Fetch-Site and Origin headers (http.CrossOriginProtection),
// and cross-site reads of the API: GET /sockets/{id}/messages?after=N frees
// data, and a page from another site has no business reading the API
// without CORS. Trusted origins (--cors-origin) pass; so do public routes,
// so that a link to Swagger UI works from anywhere.
func crossOrigin(trusted []string) echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	trustedSet := map[string]bool{}
	for _, o := range trusted {
		if cop.AddTrustedOrigin(o) == nil { // CheckSecurity refuses the others
			trustedSet[o] = true
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if err := cop.Check(r); err != nil {
				return fmt.Errorf("%w: cross-origin request refused (%v); call the API from its own origin, or list yours with --cors-origin", errForbidden, err)
			}
			if isWebSocketUpgrade(r) {
				// A WebSocket upgrade is a GET that the same-origin policy
				// does not guard: a page of any site may open one, with the
				// user's credentials (cross-site WebSocket hijacking). It is
				// checked as a state-changing request is.
				u := *r
				u.Method = http.MethodPost
				if err := cop.Check(&u); err != nil {
					return fmt.Errorf("%w: cross-origin WebSocket upgrade refused (Origin %s, Host %s); open the stream from the API's own origin, or list yours with --cors-origin", errForbidden, quote.String(r.Header.Get(echo.HeaderOrigin)), quote.String(r.Host))
				}
			}
			switch r.Header.Get("Sec-Fetch-Site") {
			case "cross-site", "same-site":
				if !isPublic(r) && !trustedSet[r.Header.Get(echo.HeaderOrigin)] {
					return fmt.Errorf("%w: a page from another site may not call the API (Sec-Fetch-Site: %s); call it from its own origin, or list the page's origin with --cors-origin", errForbidden, r.Header.Get("Sec-Fetch-Site"))
				}
			}
			return next(c)
		}
	}
}

// bearerAuth requires "Authorization: Bearer <token>" on every route but the
// public ones. The scheme is case-insensitive (RFC 9110). The comparison
// takes the same time whatever the guess: both sides are hashed first, so
// not even the token's length leaks.
func bearerAuth(token string) echo.MiddlewareFunc {
	want := sha256.Sum256([]byte(token))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if isPublic(r) {
				return next(c)
			}
			scheme, got, _ := strings.Cut(strings.TrimSpace(r.Header.Get(echo.HeaderAuthorization)), " ")
			if r.Header.Get(echo.HeaderAuthorization) == "" {
				// A browser cannot put a header on a WebSocket: the
				// token may come as a subprotocol. Never in the URL,
				// which logs and histories keep.
				if tok, ok := bearerFromSubprotocol(r); ok {
					scheme, got = "Bearer", tok
				}
			}
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !strings.EqualFold(scheme, "Bearer") {
				if q := r.URL.Query(); q.Has("token") || q.Has("access_token") {
					return fmt.Errorf("%w: the token is never taken from the URL (logs and histories keep URLs); send the header Authorization: Bearer <token>, or, for a WebSocket, the subprotocol %s<token as base64url without padding>", errUnauthorized, bearerProtocol)
				}
				if isWebSocketUpgrade(r) {
					return fmt.Errorf("%w: send the header Authorization: Bearer <token>, or the subprotocol %s<token as base64url without padding>, with the token sockman was started with", errUnauthorized, bearerProtocol)
				}
				return fmt.Errorf("%w: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)", errUnauthorized)
			}
			return next(c)
		}
	}
}
