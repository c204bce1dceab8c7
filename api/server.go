// Package api is sockman's HTTP layer: echo handlers that decode a request,
// make one call into package sockets and encode the answer. Every error is
// rendered as RFC 9457 problem+json by one error handler.
//
//	@title						sockman
//	@version					1.0
//	@description				Open TCP listening servers and client connections on demand, read what every connection received (cursor, acknowledgement, long poll), send to any connection, and close them.
//	@description				Errors are RFC 9457 problem+json.
//	@description				Every GET operation but read (GET /sockets/{id}/messages, which can acknowledge data) answers HEAD too.
//	@license.name				MIT
//	@license.url				https://opensource.org/licenses/MIT
//	@tag.name					service
//	@tag.description			Liveness, readiness, metrics, this description and the Swagger UI page; all but the metrics answer without a token.
//	@tag.name					servers
//	@tag.description			Listening TCP servers (QTcpServer): listen, list, stop, send to every socket a server accepted.
//	@tag.name					clients
//	@tag.description			Connections sockman opens to a host and port (QTcpSocket::connectToHost).
//	@tag.name					sockets
//	@tag.description			Every connection, accepted or client: read what it received, send to it, close it.
//	@tag.name					events
//	@tag.description			What happens, as it happens: every server and socket event as Server-Sent Events or NDJSON.
//	@tag.name					rules
//	@tag.description			Reply rules: a server or socket answers the messages they match by itself (a mock device).
//	@tag.name					schedules
//	@tag.description			Sends at an interval to a socket, or to every socket of a server (heartbeats, periodic reports).
//	@BasePath					/
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				Needed when sockman runs with a token (--token, --token-file or SOCKMAN_TOKEN). Type the token itself; it is sent as the header Authorization: Bearer TOKEN.
package api

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"
	echoSwagger "github.com/swaggo/echo-swagger"
	swaggerFiles "github.com/swaggo/files/v2"

	"github.com/sockman/sockman/sockets"
)

// Options configure the HTTP layer. Zero fields take the defaults below.
type Options struct {
	// MaxBody caps every request body in bytes (DefaultMaxBody).
	MaxBody int64
	// MaxWait caps the wait of a long poll (DefaultMaxWait).
	MaxWait time.Duration
	// OpenAPI is the document served at /openapi.yaml and shown by Swagger UI.
	OpenAPI []byte
	// Logger receives the cause of a 500 at level Error, and 502, 503 and
	// 504 answers (a peer refused, a limit was reached) at level Info;
	// nil: slog.Default().
	Logger *slog.Logger
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every route but /healthz, /readyz and the documentation.
	Token string
	// AllowedHosts are Host header names answered besides loopback names.
	AllowedHosts []string
	// CORSOrigins may call the API from a browser; none by default.
	CORSOrigins []string
	// AnswerStallTimeout closes the connection of a read whose client takes
	// none of its answer for this long, so that the memory the answer holds
	// goes back (DefaultAnswerStallTimeout; negative: no such deadline). It
	// needs an http.Server with a WriteTimeout (see stallWriter).
	AnswerStallTimeout time.Duration
	// EventHeartbeat is how often an idle event stream gets a ": ping"
	// (DefaultEventHeartbeat).
	EventHeartbeat time.Duration
	// StreamWriteTimeout cuts an event stream or a WebSocket stream whose
	// client takes no data for this long (sockets.DefaultWriteTimeout).
	StreamWriteTimeout time.Duration
	// MaxStreams bounds the WebSocket streams open at once
	// (DefaultMaxStreams); past it, an upgrade is 503.
	MaxStreams int
	// Metrics receives the API's request figures and is served at
	// /metrics; nil: New makes one over the registry. A Metrics serves
	// one router: pass it to one New only.
	Metrics *Metrics
	// Ready reports whether the service takes work, for /readyz: false
	// while it shuts down. Nil: ready whenever the API answers.
	Ready func() bool
	// Holder owns the long-lived streams (event streams, WebSocket
	// streams): it ends them at shutdown and waits for them. Nil: nobody
	// does, and a stream ends with its request.
	Holder Holder
}

// Defaults for Options.
const (
	DefaultMaxBody = 16 << 20
	DefaultMaxWait = 60 * time.Second
	// DefaultAnswerStallTimeout is the default of --answer-stall-timeout.
	DefaultAnswerStallTimeout = 15 * time.Second
)

// handlers holds what every handler needs.
type handlers struct {
	reg     *sockets.Registry
	opts    Options
	streams atomic.Int64 // WebSocket streams open, against MaxStreams
}

// New returns the API router over reg.
func New(reg *sockets.Registry, o Options) *echo.Echo {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.AnswerStallTimeout == 0:
		o.AnswerStallTimeout = DefaultAnswerStallTimeout
	case o.AnswerStallTimeout < 0:
		o.AnswerStallTimeout = 0
	}
	if o.EventHeartbeat <= 0 {
		o.EventHeartbeat = DefaultEventHeartbeat
	}
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = sockets.DefaultWriteTimeout
	}
	if o.Holder == nil {
		o.Holder = noHolder{}
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(reg)
	}
	h := &handlers{reg: reg, opts: o}
	o.Metrics.streams.Store(&h.streams)
	routes := make(map[string]bool) // filled once the routes are added, before any request

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(o.Logger)
	e.Pre(observe(o.Logger, o.Metrics, routes))
	e.Pre(responseHeaders())
	e.Pre(security(o)...)
	e.Use(bodyLimit(o.MaxBody))

	// GET routes answer HEAD too (net/http drops the body of a HEAD
	// answer), but the read: a read with ?after= acknowledges data, and a
	// HEAD is not expected to change anything.
	get := func(path string, h echo.HandlerFunc) { e.Match([]string{http.MethodGet, http.MethodHead}, path, h) }
	toSwaggerUI := func(c echo.Context) error { return c.Redirect(http.StatusFound, "/swagger/index.html") }

	get("/healthz", h.health)
	get("/readyz", h.ready)
	get("/metrics", metricsRoute(o.Metrics))
	get("/openapi.yaml", h.openapi)
	get("/", toSwaggerUI)
	get("/swagger", toSwaggerUI)
	get("/swagger/*", swaggerUI())

	e.POST("/servers", h.createServer)
	get("/servers", h.listServers)
	get("/servers/:id", h.getServer)
	e.DELETE("/servers/:id", h.deleteServer)
	e.POST("/servers/:id/messages", h.broadcast)

	e.POST("/clients", h.createClient)
	get("/clients", h.listClients)

	get("/sockets", h.listSockets)
	get("/sockets/:id", h.getSocket)
	e.DELETE("/sockets/:id", h.deleteSocket)
	e.POST("/sockets/:id/messages", h.send)
	e.GET("/sockets/:id/messages", h.read)
	e.POST("/sockets/:id/shutdown", h.shutdownSocket)
	e.POST("/sockets/:id/close", h.closeSocket)
	e.GET("/sockets/:id/stream", h.stream) // no HEAD: an upgrade

	e.POST("/servers/:id/rules", h.createServerRule)
	get("/servers/:id/rules", h.listServerRules)
	e.DELETE("/servers/:id/rules/:rule_id", h.deleteServerRule)
	e.POST("/sockets/:id/rules", h.createSocketRule)
	get("/sockets/:id/rules", h.listSocketRules)
	e.DELETE("/sockets/:id/rules/:rule_id", h.deleteSocketRule)
	e.POST("/servers/:id/schedules", h.createServerSchedule)
	get("/servers/:id/schedules", h.listServerSchedules)
	e.DELETE("/servers/:id/schedules/:schedule_id", h.deleteServerSchedule)
	e.POST("/sockets/:id/schedules", h.createSocketSchedule)
	get("/sockets/:id/schedules", h.listSocketSchedules)
	e.DELETE("/sockets/:id/schedules/:schedule_id", h.deleteSocketSchedule)

	e.GET("/events", h.events) // no HEAD: the answer does not end
	for _, r := range e.Routes() {
		routes[r.Path] = true
	}
	return e
}

// apiMethods are the methods the routes above take, for CORS preflights.
var apiMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete}

// health answers liveness probes.
//
//	@Summary		Liveness
//	@Description	Answers 200 once the API is serving. Never needs a token.
//	@Tags			service
//	@ID				health
//	@Produce		json
//	@Success		200	{object}	Health
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard)"
//	@Router			/healthz [get]
func (h *handlers) health(c echo.Context) error {
	return c.JSON(http.StatusOK, Health{Status: "ok"})
}

// swaggerURL points Swagger UI at url and nothing else. echoSwagger.URL
// appends to its default list (doc.json, doc.yaml, served from a swag
// registry this binary does not have), and Swagger UI loads the first entry:
// the page would show a failed doc.json instead of openapi.yaml.
func swaggerURL(url string) func(*echoSwagger.Config) {
	return func(c *echoSwagger.Config) { c.URLs = []string{url} }
}

// swaggerUI serves Swagger UI under /swagger/: its page, index.html
// (echo-swagger's template, pointed at /openapi.yaml), and the files of
// github.com/swaggo/files/v2 that the page loads. Any other path is 404.
// echo-swagger chooses what to serve by a regular expression over the whole
// request URI, query included: left to it, /swagger/x/doc.json or
// /swagger/index.html?/doc.json would read swag's registry, which this
// binary does not fill (a 500), and an unknown file would be net/http's
// text/plain 404. So the wrapper decides on the routed path alone, and
// hands echo-swagger a request URI that holds only the file's name: a query
// (a cache buster, a stray ?) is ignored, as a static file server does.
//
// The files are served whole: Range and the conditional headers are
// dropped, since http.ServeContent under echo-swagger would answer a range
// it cannot satisfy, or a failed If-Match, with a plain-text 416 or 412
// (the files are small, and a browser loads each at once). The page gets a
// Content-Security-Policy of its own (pagePolicy), computed from the page
// as it is served.
//
//	@Summary		Swagger UI
//	@Description	The page that shows this description and tries its operations out (/ and /swagger lead here). It loads only files under /swagger/. Never needs a token.
//	@Tags			service
//	@ID				swaggerUI
//	@Produce		html
//	@Success		200	{string}	string	"The Swagger UI page"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard)"
//	@Router			/swagger/index.html [get]
func swaggerUI() echo.HandlerFunc {
	ui := echoSwagger.EchoWrapHandler(swaggerURL("/openapi.yaml"), echoSwagger.PersistAuthorization(true))
	files := swaggerUIFiles()
	policy := pagePolicy(renderPage(ui))
	return func(c echo.Context) error {
		name := c.Param("*")
		if name == "" {
			return c.Redirect(http.StatusFound, "/swagger/index.html")
		}
		if !files[name] {
			return echo.ErrNotFound
		}
		r := c.Request()
		r.RequestURI = "/swagger/" + name
		r.URL.RawQuery = ""
		for _, h := range []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
			r.Header.Del(h)
		}
		res := c.Response()
		res.Before(func() { res.Header().Del("Accept-Ranges") })
		if name == "index.html" {
			res.Header().Set("Content-Security-Policy", policy)
		}
		if r.Method == http.MethodHead {
			// echo-swagger serves GET only. Hand it a GET: the server
			// still drops the body, as it answers the HEAD it received.
			g := *r
			g.Method = http.MethodGet
			c.SetRequest(&g)
		}
		return ui(c)
	}
}

// swaggerUIFiles returns the names of the files under /swagger/: the page, and
// every file that github.com/swaggo/files/v2 embeds (the CSS, scripts and
// icons the page loads, and their source maps).
func swaggerUIFiles() map[string]bool {
	files := map[string]bool{"index.html": true}
	entries, _ := fs.ReadDir(swaggerFiles.FS, ".") // an embedded directory: cannot fail
	for _, e := range entries {
		if e.Type().IsRegular() {
			files[e.Name()] = true
		}
	}
	return files
}

// openapi serves the API description.
//
//	@Summary		The OpenAPI document
//	@Description	This API's description, OpenAPI 3.0 in YAML: what Swagger UI at /swagger/index.html shows, and what a client generator takes. Never needs a token.
//	@Tags			service
//	@ID				getOpenAPI
//	@Produce		application/yaml
//	@Success		200	{string}	string	"The OpenAPI 3 document, as YAML text"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard)"
//	@Router			/openapi.yaml [get]
func (h *handlers) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", h.opts.OpenAPI)
}

// bodyLimit refuses a declared body over max at once and caps the reader,
// so that a body without a length (chunked) is cut at max too.
func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > max {
				return errTooLargeBody(max)
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, max)
			return next(c)
		}
	}
}

func errTooLargeBody(max int64) error {
	return &http.MaxBytesError{Limit: max}
}

// decodeJSON decodes exactly one JSON object into v, strictly, with the
// semantics of encoding/json v2: a member name matches a field's name
// exactly (v1 matched it ignoring case, so "Data" or "hoſt" filled data and
// host without a word); an unknown member, a member named twice, invalid
// UTF-8, a wrong type and data after the object are 400 with a detail that
// names them.
func decodeJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !isMediaType(ct, echo.MIMEApplicationJSON) {
		return errUnsupported(ct, echo.MIMEApplicationJSON)
	}
	if err := uncompressed(c); err != nil {
		return err
	}
	// The whole body first: it is bounded by --max-body, and over it is
	// 413, also when the excess comes after a whole object.
	body, err := io.ReadAll(requestBody{c.Request().Body})
	if err != nil {
		return err
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if err := jsonv2.UnmarshalDecode(dec, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return jsonError(err, body, v)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return badRequest("the body must hold one JSON object and nothing after it")
	}
	return nil
}

func jsonEncode(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
