// Package contract checks live HTTP traffic against the OpenAPI 3 document
// (openapi.yaml), for tests.
//
// It wraps kin-openapi's openapi3filter and gorillamux router, and is stricter
// than they are by default:
//
//   - a request whose method and path the document does not describe is a
//     violation (unless its path is ignored, see Ignore);
//   - a response status the operation does not document (and no default
//     response covers) is a violation, 3xx included;
//   - a response body on a response documented without content is a violation;
//   - in responses, an object schema that lists properties and says nothing
//     of additionalProperties is taken as additionalProperties: false, so an
//     undocumented field is a violation. Requests are checked against the
//     document as written.
//
// Security requirements are not checked (any credentials pass): that is tested
// elsewhere.
package contract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// SkipRequestHeader, set on a request to any value, tells the Validator that
// the request is off-contract on purpose (a test of how the server handles a
// malformed or unknown request): the request itself is not checked, nor is its
// route being undocumented reported, but the response is still checked when
// the route is documented. The header is not removed from the request.
const SkipRequestHeader = "X-Contract-Skip-Request"

// Kind says which part of an exchange a Violation is about.
type Kind int

const (
	// KindRoute: the method and path are not in the document.
	KindRoute Kind = iota + 1
	// KindRequest: the request does not match its operation.
	KindRequest
	// KindResponse: the response does not match its operation.
	KindResponse
)

func (k Kind) String() string {
	switch k {
	case KindRoute:
		return "route"
	case KindRequest:
		return "request"
	case KindResponse:
		return "response"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Violation is one way in which an exchange departs from the document. The
// errors that Middleware reports and Check returns are (or, joined, hold)
// *Violation values; use errors.As to get at them.
type Violation struct {
	Kind   Kind
	Method string
	Path   string // the request's URL path
	Status int    // the response status, for KindResponse
	Err    error  // what kin-openapi (or this package) found
}

func (v *Violation) Error() string {
	if v.Kind == KindResponse {
		return fmt.Sprintf("contract: %s %s: response %d: %v", v.Method, v.Path, v.Status, v.Err)
	}
	return fmt.Sprintf("contract: %s %s: %s: %v", v.Method, v.Path, v.Kind, v.Err)
}

func (v *Violation) Unwrap() error { return v.Err }

// Validator checks requests and responses against an OpenAPI 3 document.
// It is safe for concurrent use.
type Validator struct {
	// requests routes against the document as written, responses against a
	// copy of it whose object schemas reject undocumented properties.
	requests  routers.Router
	responses routers.Router

	mu     sync.RWMutex
	ignore []string
}

var registerDecoders sync.Once

// ensureBodyDecoders makes sure that the media types sockman uses have a body
// decoder. kin-openapi v0.153.0 registers all of them itself; this only fills
// in what an older or newer version might lack, and never replaces a decoder
// someone else registered, but one: kin-openapi parses an application/yaml
// body into a YAML value, and sockman's one YAML body, its own description,
// is documented as what it is on the wire, text (type: string), as a client
// receives it.
func ensureBodyDecoders() {
	registerDecoders.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
		for ct, dec := range map[string]openapi3filter.BodyDecoder{
			"application/json":         openapi3filter.JSONBodyDecoder,
			"application/problem+json": openapi3filter.JSONBodyDecoder,
			"application/octet-stream": openapi3filter.FileBodyDecoder,
			"text/plain":               openapi3filter.PlainBodyDecoder,
			"text/event-stream":        eventStreamDecoder,
			"application/x-ndjson":     ndjsonDecoder,
		} {
			if openapi3filter.RegisteredBodyDecoder(ct) == nil {
				openapi3filter.RegisterBodyDecoder(ct, dec)
			}
		}
	})
}

// New loads and validates the document (YAML or JSON bytes).
func New(spec []byte) (*Validator, error) {
	ensureBodyDecoders()

	reqDoc, err := load(spec)
	if err != nil {
		return nil, err
	}
	// A second, independent copy: the strict schemas must not leak into
	// request validation.
	respDoc, err := load(spec)
	if err != nil {
		return nil, err
	}
	if err := disallowUndeclaredProperties(respDoc); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}

	v := &Validator{}
	if v.requests, err = gorillamux.NewRouter(reqDoc); err != nil {
		return nil, fmt.Errorf("contract: building router: %w", err)
	}
	if v.responses, err = gorillamux.NewRouter(respDoc); err != nil {
		return nil, fmt.Errorf("contract: building router: %w", err)
	}
	return v, nil
}

func load(spec []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("contract: loading OpenAPI document: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("contract: invalid OpenAPI document: %w", err)
	}
	doc.Servers = pathOnlyServers(doc.Servers)
	return doc, nil
}

// pathOnlyServers keeps only the path of each server URL, so that routing
// does not depend on the host or scheme a test server happens to have
// (httptest.NewServer's 127.0.0.1:port, httptest.NewRequest's example.com).
func pathOnlyServers(servers openapi3.Servers) openapi3.Servers {
	seen := map[string]bool{}
	var out openapi3.Servers
	for _, s := range servers {
		if s == nil {
			continue
		}
		p := s.URL
		if i := strings.Index(p, "://"); i >= 0 {
			rest := p[i+3:]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				p = rest[j:]
			} else {
				p = "/"
			}
		}
		if p == "" {
			p = "/"
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		c := *s
		c.URL = p
		out = append(out, &c)
	}
	if len(out) == 0 {
		out = openapi3.Servers{{URL: "/"}}
	}
	return out
}

// disallowUndeclaredProperties sets additionalProperties: false on every
// object schema that lists properties and leaves additionalProperties unset.
// Members of allOf/anyOf/oneOf, and the schemas composing them, are left
// alone: under allOf each member would reject the others' properties.
func disallowUndeclaredProperties(doc *openapi3.T) error {
	composed := map[*openapi3.Schema]bool{}
	err := doc.WalkSchemas(func(_ string, ref *openapi3.SchemaRef) error {
		s := ref.Value
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			if len(group) == 0 {
				continue
			}
			composed[s] = true
			for _, m := range group {
				if m != nil && m.Value != nil {
					composed[m.Value] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return doc.WalkSchemas(func(_ string, ref *openapi3.SchemaRef) error {
		s := ref.Value
		if composed[s] || len(s.Properties) == 0 {
			return nil
		}
		if s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			s.AdditionalProperties.Has = openapi3.Ptr(false)
		}
		return nil
	})
}

// Ignore makes the Validator pass over requests whose URL path starts with
// one of prefixes (for instance "/swagger/" and "/openapi.yaml", which serve
// the documentation and are not in it). It returns v.
func (v *Validator) Ignore(prefixes ...string) *Validator {
	v.mu.Lock()
	v.ignore = append(v.ignore, prefixes...)
	v.mu.Unlock()
	return v
}

func (v *Validator) ignored(path string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, p := range v.ignore {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func options() *openapi3filter.Options {
	return &openapi3filter.Options{
		// Security is tested elsewhere: any credentials pass.
		AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus:             true,
		RejectWhenRequestBodyNotSpecified: true,
		MultiError:                        true,
	}
}

// Middleware returns an http.Handler middleware that, for every request,
// validates the request (its body is buffered and restored for the handler)
// and the response (recorded while it is passed through unchanged, flushes
// included, so long polls and streamed octet-stream bodies work), and reports
// each violation through report, typically a closure over t.Errorf.
// Violations are *Violation values.
//
// Wrap the whole server with it (httptest.NewServer(mw(e)) for an echo.Echo
// e), not a single echo route through echo.WrapMiddleware: echo writes the
// response of a handler that returns an error after its middleware has
// returned, so the middleware would not see it.
func (v *Validator) Middleware(report func(error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if v.ignored(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			var body []byte
			if r.Body != nil && r.Body != http.NoBody {
				var err error
				body, err = io.ReadAll(r.Body)
				r.Body.Close()
				if err != nil {
					report(&Violation{Kind: KindRequest, Method: r.Method, Path: r.URL.Path,
						Err: fmt.Errorf("reading request body: %w", err)})
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			// Validate the request before the handler runs, on a copy: the
			// handler sees the request as it came.
			ex := v.prepare(r, body)

			rec := &recorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)

			for _, err := range ex.requestViolations {
				report(err)
			}
			status, header := rec.result()
			for _, err := range v.checkResponse(ex, status, header, rec.body.Bytes()) {
				report(err)
			}
		})
	}
}

// Check validates one exchange after the fact (for tests that use
// httptest.NewRecorder directly): req with reqBody as its body (req.Body is
// not read), and the response's status, header and body. It returns nil, or
// the violations joined with errors.Join.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) error {
	if v.ignored(req.URL.Path) {
		return nil
	}
	ex := v.prepare(req, reqBody)
	errs := ex.requestViolations
	errs = append(errs, v.checkResponse(ex, status, header, respBody)...)
	return errors.Join(errs...)
}

// exchange is what request validation leaves for response validation.
type exchange struct {
	method, path      string
	req               *http.Request // a copy, for the response's validation input
	route             *routers.Route
	pathParams        map[string]string
	requestViolations []error
}

func (v *Validator) prepare(r *http.Request, body []byte) *exchange {
	ex := &exchange{method: r.Method, path: r.URL.Path}
	skip := r.Header.Get(SkipRequestHeader) != ""

	reqCopy := cloneWithBody(r, body)
	route, params, err := v.requests.FindRoute(reqCopy)
	if err != nil {
		if !skip {
			ex.requestViolations = append(ex.requestViolations, &Violation{Kind: KindRoute,
				Method: r.Method, Path: r.URL.Path, Err: routeError(err)})
		}
		return ex
	}
	if !skip {
		input := &openapi3filter.RequestValidationInput{
			Request:    reqCopy,
			PathParams: params,
			Route:      route,
			Options:    options(),
		}
		if err := openapi3filter.ValidateRequest(r.Context(), input); err != nil {
			for _, e := range flatten(err) {
				ex.requestViolations = append(ex.requestViolations, &Violation{Kind: KindRequest,
					Method: r.Method, Path: r.URL.Path, Err: e})
			}
		}
	}

	// The same route in the strict copy of the document.
	ex.req = cloneWithBody(r, body)
	ex.route, ex.pathParams, err = v.responses.FindRoute(ex.req)
	if err != nil { // cannot happen: both routers are built from the same bytes
		ex.route = nil
		ex.requestViolations = append(ex.requestViolations, &Violation{Kind: KindRoute,
			Method: r.Method, Path: r.URL.Path, Err: fmt.Errorf("strict router: %w", err)})
	}
	return ex
}

func routeError(err error) error {
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return fmt.Errorf("path not in the OpenAPI document (%w)", err)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return fmt.Errorf("method not in the OpenAPI document for this path (%w)", err)
	}
	return err
}

func (v *Validator) checkResponse(ex *exchange, status int, header http.Header, body []byte) []error {
	if ex.route == nil {
		return nil
	}
	if ex.method == http.MethodHead {
		// A handler may write the body of the GET it shares; the server
		// drops it, and the client receives none.
		body = nil
	}
	violation := func(err error) error {
		return &Violation{Kind: KindResponse, Method: ex.method, Path: ex.path, Status: status, Err: err}
	}
	op := ex.route.Operation
	// openapi3filter lets 301, 304, 307 and 308 through unchecked, and every
	// status when the operation lists no response: check the status here.
	var resp *openapi3.ResponseRef
	if op.Responses != nil {
		if resp = op.Responses.Status(status); resp == nil {
			resp = op.Responses.Default()
		}
	}
	if resp == nil {
		return []error{violation(fmt.Errorf("status %d is not documented for %s %s", status, op.OperationID, ex.route.Path))}
	}
	if resp.Value != nil && len(resp.Value.Content) == 0 && len(body) > 0 {
		return []error{violation(fmt.Errorf("response has a body (%d bytes, Content-Type %q) but status %d is documented without content",
			len(body), header.Get("Content-Type"), status))}
	}

	if header == nil {
		header = http.Header{}
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    ex.req,
			PathParams: ex.pathParams,
			Route:      ex.route,
			Options:    options(),
		},
		Status:  status,
		Header:  header,
		Options: options(),
	}
	input.SetBodyBytes(body)
	err := openapi3filter.ValidateResponse(ex.req.Context(), input)
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range flatten(err) {
		out = append(out, violation(e))
	}
	return out
}

// flatten splits the MultiError that openapi3filter returns for a request
// into its errors (one violation each). Errors nested deeper, such as the
// schema errors of one body, stay together.
func flatten(err error) []error {
	if me, ok := err.(openapi3.MultiError); ok && len(me) > 0 {
		var out []error
		for _, e := range me {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// cloneWithBody copies r for validation, with body as its body, leaving r
// alone.
func cloneWithBody(r *http.Request, body []byte) *http.Request {
	c := r.Clone(context.WithoutCancel(r.Context()))
	if body == nil {
		c.Body = http.NoBody
	} else {
		c.Body = io.NopCloser(bytes.NewReader(body))
	}
	c.GetBody = nil
	c.ContentLength = int64(len(body))
	return c
}

// recorder passes a response through to the client while keeping a copy of
// its status, header (as sent) and body.
type recorder struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	// 1xx are informational: the real status comes later; but 101
	// Switching Protocols is the last answer the connection carries.
	if r.header == nil && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
		r.header = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.header == nil {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(p)
	r.body.Write(p[:n])
	return n, err
}

// Flush makes streamed responses (long polls, raw byte streams) reach the
// client while the handler runs.
func (r *recorder) Flush() {
	if r.header == nil {
		r.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer (deadlines,
// hijacking).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// result is the status and header the client got.
func (r *recorder) result() (int, http.Header) {
	status, header := r.status, r.header
	if header == nil { // the handler wrote nothing: net/http sends 200
		status, header = http.StatusOK, r.ResponseWriter.Header().Clone()
	}
	// net/http sniffs the Content-Type of a body sent without one.
	if _, ok := header["Content-Type"]; !ok && r.body.Len() > 0 && header.Get("Transfer-Encoding") == "" {
		header.Set("Content-Type", http.DetectContentType(r.body.Bytes()))
	}
	return status, header
}
