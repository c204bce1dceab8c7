package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/sockets"
)

//go:generate go run ../internal/problemsgen -out ../PROBLEMS.md

// Problem is an RFC 9457 problem document, the body of every error response.
type Problem struct {
	// A URI naming the kind of problem: one of the types in PROBLEMS.md, which says what to do about each.
	Type string `json:"type" example:"urn:sockman:problem:socket-not-found" enums:"urn:sockman:problem:bad-request,urn:sockman:problem:invalid-argument,urn:sockman:problem:unauthorized,urn:sockman:problem:forbidden,urn:sockman:problem:forbidden-by-policy,urn:sockman:problem:not-found,urn:sockman:problem:server-not-found,urn:sockman:problem:socket-not-found,urn:sockman:problem:rule-not-found,urn:sockman:problem:schedule-not-found,urn:sockman:problem:method-not-allowed,urn:sockman:problem:address-in-use,urn:sockman:problem:socket-closed,urn:sockman:problem:socket-closed-for-writing,urn:sockman:problem:socket-busy,urn:sockman:problem:body-too-large,urn:sockman:problem:unsupported-media-type,urn:sockman:problem:upgrade-required,urn:sockman:problem:internal-error,urn:sockman:problem:connect-failed,urn:sockman:problem:limit-reached,urn:sockman:problem:shutting-down,urn:sockman:problem:cancelled,urn:sockman:problem:connect-timeout,urn:sockman:problem:write-timeout"`
	// Short summary of the kind of problem.
	Title string `json:"title" example:"Not Found"`
	// The HTTP status code.
	Status int `json:"status" example:"404"`
	// What went wrong in this case, and what to do about it.
	Detail string `json:"detail" example:"socket not found: no socket has id \"sock-9\"; list them with GET /sockets"`
	// The request's id, as in its X-Request-Id header and the service's log line for it.
	RequestID string `json:"request_id,omitempty" example:"5f2a9c01d3e4-17"`
} // @name Problem

// Errors of the HTTP layer itself; domain errors come from package sockets.
var (
	errBadRequest       = errors.New("bad request")
	errUnsupportedMedia = errors.New("unsupported media type")
	errTooLarge         = errors.New("request body too large")
	errUnauthorized     = errors.New("unauthorized")
	errForbidden        = errors.New("forbidden")
)

// ProblemType is one kind of problem the API answers with.
type ProblemType struct {
	// Type is the type URI of its problem documents.
	Type string
	// Status is their HTTP status code.
	Status int
	// Title is their title: the status's text.
	Title string
	// Action says, in one sentence, what a user should do about it.
	Action string

	err error // the error it answers (errors.Is); nil: problemFor picks it itself
}

// problemPrefix starts every problem type of sockman.
const problemPrefix = "urn:sockman:problem:"

// The problem types that problemFor picks without an error to match.
const (
	typeNotFound         = problemPrefix + "not-found"
	typeMethodNotAllowed = problemPrefix + "method-not-allowed"
	typeInternal         = problemPrefix + "internal-error"
)

func problemType(slug string, status int, err error, action string) ProblemType {
	return ProblemType{Type: problemPrefix + slug, Status: status, Title: http.StatusText(status), Action: action, err: err}
}

// ProblemTypes is the one table from error to problem: every type the API
// sends, in the order of their statuses. problemFor answers an error with
// the first row whose error it matches (errors.Is); no error matches two.
// PROBLEMS.md is generated from it (go generate), and the enum of
// Problem.type in openapi.yaml lists its types (a test holds them equal).
var ProblemTypes = []ProblemType{
	problemType("bad-request", http.StatusBadRequest, errBadRequest,
		"Fix the request as the detail says (malformed JSON, an unknown or repeated member or query parameter, a wrong type); /openapi.yaml describes what each endpoint takes."),
	problemType("invalid-argument", http.StatusBadRequest, sockets.ErrInvalid,
		"Change the value the detail names (a host, port, buffer size, overflow, timeout or cursor) to one it says is accepted."),
	problemType("unauthorized", http.StatusUnauthorized, errUnauthorized,
		"Send the header Authorization: Bearer TOKEN with the token sockman was started with (in Swagger UI: Authorize)."),
	problemType("forbidden", http.StatusForbidden, errForbidden,
		"Call the API by a name it answers to (--allowed-hosts) and from its own origin or one listed with --cors-origin."),
	problemType("forbidden-by-policy", http.StatusForbidden, sockets.ErrForbidden,
		"Use an address the policy allows (the detail lists its rules), or ask the operator to widen --allow-connect or --allow-listen."),
	problemType("not-found", http.StatusNotFound, nil,
		"Check the path against /openapi.yaml or /swagger/index.html: no route of the API has it."),
	problemType("server-not-found", http.StatusNotFound, sockets.ErrServerNotFound,
		"Use an id that GET /servers lists: the server was deleted, or never existed."),
	problemType("socket-not-found", http.StatusNotFound, sockets.ErrSocketNotFound,
		"Use an id that GET /sockets lists: a closed socket is forgotten --closed-retention after it closes, and at once when deleted."),
	problemType("rule-not-found", http.StatusNotFound, sockets.ErrRuleNotFound,
		"Use a rule id that GET /servers/{id}/rules or GET /sockets/{id}/rules lists for that server or socket: the rule was deleted, or belongs to another."),
	problemType("schedule-not-found", http.StatusNotFound, sockets.ErrScheduleNotFound,
		"Use a schedule id that GET /servers/{id}/schedules or GET /sockets/{id}/schedules lists for that server or socket: the schedule was deleted, or belongs to another."),
	problemType("method-not-allowed", http.StatusMethodNotAllowed, nil,
		"Use one of the methods that the answer's Allow header lists for this path."),
	problemType("address-in-use", http.StatusConflict, sockets.ErrAddrInUse,
		"Choose another port, or port 0 for an ephemeral one (the answer gives the port bound)."),
	problemType("socket-closed", http.StatusConflict, sockets.ErrSocketClosed,
		"Read what the socket received and delete it; to send again, open a new connection."),
	problemType("socket-closed-for-writing", http.StatusConflict, sockets.ErrWriteClosed,
		"The socket sent its FIN (POST /sockets/{id}/shutdown): read what the peer still sends, and open a new connection to send again."),
	problemType("socket-busy", http.StatusConflict, sockets.ErrSocketBusy,
		"Close the stream attached to the socket (GET /sockets/{id}/stream) first, or read without after to peek at what it holds."),
	problemType("body-too-large", http.StatusRequestEntityTooLarge, errTooLarge,
		"Send the data in smaller bodies, or ask the operator to raise --max-body."),
	problemType("unsupported-media-type", http.StatusUnsupportedMediaType, errUnsupportedMedia,
		"Send the Content-Type the detail names (application/json, or raw bytes as application/octet-stream or text/plain where a send takes them), without Content-Encoding."),
	problemType("upgrade-required", http.StatusUpgradeRequired, errUpgradeRequired,
		"Open the path with a WebSocket client (websocat ws://HOST:PORT/sockets/ID/stream, or new WebSocket() in a browser): a plain GET cannot carry the stream."),
	problemType("internal-error", http.StatusInternalServerError, nil,
		"A fault of sockman itself: its log holds the cause; report it with that log line."),
	problemType("connect-failed", http.StatusBadGateway, sockets.ErrConnectFailed,
		"Check that something listens at the host and port and that the name resolves, then try again."),
	problemType("limit-reached", http.StatusServiceUnavailable, sockets.ErrLimit,
		"Free what the detail names (delete sockets or servers, read and acknowledge buffered data), or ask the operator to raise that limit."),
	problemType("shutting-down", http.StatusServiceUnavailable, sockets.ErrClosed,
		"The service is stopping: try again once it is back."),
	// A request's context ends when the service shuts down (the client
	// then gets this) or when the client has gone (and gets nothing).
	problemType("cancelled", http.StatusServiceUnavailable, context.Canceled,
		"The service stopped while the request ran: try again once it is back."),
	problemType("connect-timeout", http.StatusGatewayTimeout, sockets.ErrConnectTimeout,
		"Check the host and port (a firewall may drop the connect), or ask for a longer timeout_ms, up to --max-connect-timeout."),
	problemType("write-timeout", http.StatusGatewayTimeout, sockets.ErrWriteTimeout,
		"The peer does not read what it is sent: make it read, then send again what the detail says was not sent."),
}

// The rows problemFor picks without an error to match, found when the
// package starts (a type missing from the table stops every test at once).
var (
	notFoundProblem         = problemOf(typeNotFound)
	methodNotAllowedProblem = problemOf(typeMethodNotAllowed)
	internalProblem         = problemOf(typeInternal)
)

func problemOf(typ string) ProblemType {
	for _, k := range ProblemTypes {
		if k.Type == typ {
			return k
		}
	}
	panic("api: ProblemTypes has no row " + typ)
}

// problemFor maps any error to the problem to send. Unknown errors are 500
// with a generic detail; the cause goes to the log only.
func problemFor(err error) Problem {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		err = fmt.Errorf("%w: the body is over the %d byte limit (--max-body)", errTooLarge, mbe.Limit)
	}
	for _, k := range ProblemTypes {
		if k.err != nil && errors.Is(err, k.err) {
			return k.problem(detail(err))
		}
	}
	if he, ok := errors.AsType[*echo.HTTPError](err); ok {
		// The router's own answers, and echo's errors of a status the table has.
		switch he.Code {
		case http.StatusNotFound:
			return notFoundProblem.problem("no such route; the API is described at /openapi.yaml and /swagger/index.html")
		case http.StatusMethodNotAllowed:
			return methodNotAllowedProblem.problem("this route does not take that method; see /openapi.yaml for the methods it takes")
		}
		for _, k := range ProblemTypes {
			if k.Status == he.Code && he.Code < 500 {
				return k.problem(fmt.Sprint(he.Message))
			}
		}
	}
	return internalProblem.problem("internal error; the cause is in the service log")
}

func (k ProblemType) problem(detail string) Problem {
	return Problem{Type: k.Type, Title: k.Title, Status: k.Status, Detail: capDetail(detail)}
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
		p.RequestID = requestID(c)
		switch {
		case p.Type == typeInternal:
			// The service's own fault: the cause is only here.
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", p.Status, "request_id", p.RequestID, "err", err)
		case p.Status >= 500:
			// An outcome the user meets and is told of (a peer refused,
			// a connect timed out, a limit): not a fault of the service.
			log.Info("answered "+strings.TrimPrefix(p.Type, problemPrefix), "method", c.Request().Method, "path", c.Path(), "status", p.Status, "request_id", p.RequestID, "detail", p.Detail)
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
