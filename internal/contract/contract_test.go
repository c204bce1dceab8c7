package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"
)

const spec = `
openapi: 3.0.3
info:
  title: contract test
  version: "1"
servers:
  - url: http://localhost:8080/
security:
  - BearerAuth: []
components:
  securitySchemes:
    BearerAuth:
      type: http
      scheme: bearer
  schemas:
    Problem:
      type: object
      required: [title, status]
      properties:
        type: {type: string}
        title: {type: string}
        status: {type: integer}
        detail: {type: string}
    CreateSocket:
      type: object
      required: [address]
      properties:
        address: {type: string}
    Socket:
      type: object
      required: [id]
      properties:
        id: {type: string}
        remote: {type: string}
    Messages:
      type: object
      properties:
        messages:
          type: array
          items:
            type: object
            properties:
              seq: {type: integer}
              data: {type: string, format: byte}
        next: {type: integer}
    SendResult:
      type: object
      properties:
        bytes: {type: integer}
paths:
  /sockets:
    post:
      operationId: createSocket
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/CreateSocket'}
      responses:
        "201":
          description: Created
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Socket'}
        "400":
          description: Bad Request
          content:
            application/problem+json:
              schema: {$ref: '#/components/schemas/Problem'}
  /sockets/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    delete:
      operationId: deleteSocket
      responses:
        "204":
          description: Deleted
  /sockets/{id}/messages:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    get:
      operationId: getMessages
      parameters:
        - {name: wait, in: query, schema: {type: integer}}
      responses:
        "200":
          description: OK
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Messages'}
            application/octet-stream:
              schema: {type: string, format: binary}
        "404":
          description: Not Found
          content:
            application/problem+json:
              schema: {$ref: '#/components/schemas/Problem'}
    post:
      operationId: sendMessage
      requestBody:
        required: true
        content:
          application/octet-stream:
            schema: {type: string, format: binary}
      responses:
        "202":
          description: Accepted
          content:
            application/json:
              schema: {$ref: '#/components/schemas/SendResult'}
`

func newValidator(t *testing.T) *Validator {
	t.Helper()
	v, err := New([]byte(spec))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v.Ignore("/swagger/", "/openapi.yaml")
}

// collector gathers what the middleware reports.
type collector struct {
	mu   sync.Mutex
	errs []error
}

func (c *collector) report(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

func (c *collector) take() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := c.errs
	c.errs = nil
	return errs
}

// serve runs h behind the validator's middleware.
func serve(t *testing.T, v *Validator, h http.HandlerFunc) (*httptest.Server, *collector) {
	t.Helper()
	c := &collector{}
	srv := httptest.NewServer(v.Middleware(c.report)(h))
	t.Cleanup(srv.Close)
	return srv, c
}

func do(t *testing.T, srv *httptest.Server, method, path, contentType, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := *srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

func writeJSON(w http.ResponseWriter, ct string, status int, body string) {
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// wantNone fails on any violation.
func wantNone(t *testing.T, c *collector) {
	t.Helper()
	for _, err := range c.take() {
		t.Errorf("unexpected violation: %v", err)
	}
}

// wantOne expects exactly one violation, of kind k, whose message holds each
// of subs.
func wantOne(t *testing.T, errs []error, k Kind, subs ...string) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("got %d violations, want 1 of kind %v: %v", len(errs), k, errs)
	}
	var v *Violation
	if !errors.As(errs[0], &v) {
		t.Fatalf("violation is a %T, not a *Violation: %v", errs[0], errs[0])
	}
	t.Logf("reported: %v", v)
	if v.Kind != k {
		t.Errorf("kind %v, want %v: %v", v.Kind, k, v)
	}
	for _, s := range subs {
		if !strings.Contains(v.Error(), s) {
			t.Errorf("violation does not mention %q: %v", s, v)
		}
	}
}

func TestGoodExchangesPass(t *testing.T) {
	v := newValidator(t)
	var gotBody []byte
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/sockets":
			gotBody, _ = io.ReadAll(r.Body)
			writeJSON(w, "application/json", http.StatusCreated, `{"id":"s1","remote":"127.0.0.1:7"}`)
		case r.Method == http.MethodGet && r.URL.Path == "/sockets/s1/messages":
			writeJSON(w, "application/json; charset=utf-8", http.StatusOK, `{"messages":[{"seq":1,"data":"aGk="}],"next":2}`)
		case r.Method == http.MethodDelete && r.URL.Path == "/sockets/s1":
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/openapi.yaml":
			w.Header().Set("Content-Type", "application/yaml")
			io.WriteString(w, spec)
		default:
			http.NotFound(w, r)
		}
	})

	resp, body := do(t, srv, "POST", "/sockets", "application/json", `{"address":"127.0.0.1:7"}`, "Authorization", "Bearer x")
	if resp.StatusCode != http.StatusCreated || string(body) != `{"id":"s1","remote":"127.0.0.1:7"}` {
		t.Errorf("response altered: %d %s", resp.StatusCode, body)
	}
	if string(gotBody) != `{"address":"127.0.0.1:7"}` {
		t.Errorf("handler got body %q", gotBody)
	}
	// No credentials at all: security is not this package's business.
	do(t, srv, "GET", "/sockets/s1/messages?wait=1", "", "")
	do(t, srv, "DELETE", "/sockets/s1", "", "")
	do(t, srv, "GET", "/openapi.yaml", "", "") // ignored
	wantNone(t, c)
}

func TestUndocumentedRoute(t *testing.T) {
	v := newValidator(t)
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })

	do(t, srv, "GET", "/nope", "", "")
	wantOne(t, c.take(), KindRoute, "/nope", "path not in the OpenAPI document")

	do(t, srv, "PUT", "/sockets", "", "")
	wantOne(t, c.take(), KindRoute, "method not in the OpenAPI document")

	do(t, srv, "GET", "/swagger/index.html", "", "")
	wantNone(t, c)
}

func TestUndocumentedStatusFails(t *testing.T) {
	v := newValidator(t)
	status := http.StatusConflict
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		if status >= 300 && status < 400 {
			http.Redirect(w, r, "/elsewhere", status)
			return
		}
		writeJSON(w, "application/problem+json", status, `{"title":"Conflict","status":409}`)
	})

	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	wantOne(t, c.take(), KindResponse, "409", "not documented")

	// openapi3filter never checks 301, 304, 307 and 308; this package does.
	status = http.StatusTemporaryRedirect
	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	wantOne(t, c.take(), KindResponse, "307", "not documented")
}

// TestKinOpenAPIDefaults pins down what openapi3filter does on its own, which
// is why Validator sets IncludeResponseStatus, checks 3xx itself and makes
// response schemas strict.
func TestKinOpenAPIDefaults(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/sockets", nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	validate := func(opts *openapi3filter.Options, status int, body string) error {
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
			Status:                 status,
			Header:                 http.Header{"Content-Type": {"application/json"}},
			Options:                opts,
		}
		in.SetBodyBytes([]byte(body))
		return openapi3filter.ValidateResponse(context.Background(), in)
	}
	if err := validate(&openapi3filter.Options{}, http.StatusConflict, `{}`); err != nil {
		t.Errorf("kin-openapi now rejects undocumented statuses by default (%v): the extra check may go", err)
	}
	if err := validate(&openapi3filter.Options{IncludeResponseStatus: true}, http.StatusConflict, `{}`); err == nil {
		t.Errorf("IncludeResponseStatus no longer rejects an undocumented status")
	}
	if err := validate(&openapi3filter.Options{IncludeResponseStatus: true}, http.StatusTemporaryRedirect, `{}`); err != nil {
		t.Errorf("kin-openapi now checks 307 (%v)", err)
	}
	if err := validate(&openapi3filter.Options{}, http.StatusCreated, `{"id":"s1","extra":true}`); err != nil {
		t.Errorf("kin-openapi now rejects undeclared properties by default (%v)", err)
	}
}

func TestUndocumentedFieldFails(t *testing.T) {
	v := newValidator(t)
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, "application/json", http.StatusCreated, `{"id":"s1","secret":"leak"}`)
	})
	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	wantOne(t, c.take(), KindResponse, "201", "secret")

	// Requests are checked against the document as written: an extra field
	// in a request is not a violation.
	srv2, c2 := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, "application/json", http.StatusCreated, `{"id":"s1"}`)
	})
	do(t, srv2, "POST", "/sockets", "application/json", `{"address":"a","extra":1}`)
	wantNone(t, c2)

	// Nested objects are strict too.
	srv3, c3 := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, "application/json", http.StatusOK, `{"messages":[{"seq":1,"data":"aGk=","when":"now"}]}`)
	})
	do(t, srv3, "GET", "/sockets/s1/messages", "", "")
	wantOne(t, c3.take(), KindResponse, "when")
}

func TestWrongTypeFails(t *testing.T) {
	v := newValidator(t)
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, "application/json", http.StatusCreated, `{"id":5}`)
	})
	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	wantOne(t, c.take(), KindResponse, "201", "must be a string")
}

func TestProblemJSONValidated(t *testing.T) {
	v := newValidator(t)
	var ct, body string
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ct, http.StatusBadRequest, body)
	})

	ct, body = "application/problem+json", `{"type":"about:blank","title":"Bad Request","status":400,"detail":"address: required"}`
	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	wantNone(t, c)

	// Schema checked: status must be an integer, title is required.
	ct, body = "application/problem+json", `{"status":"400"}`
	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	errs := c.take()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "status") || !strings.Contains(errs[0].Error(), "title") {
		t.Errorf("want one violation naming status and title, got %v", errs)
	}

	// An error sent as plain application/json is not what is documented.
	ct, body = "application/json", `{"title":"Bad Request","status":400}`
	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	wantOne(t, c.take(), KindResponse, "400", "application/json")

	// So is an undocumented problem field.
	ct, body = "application/problem+json", `{"title":"Bad Request","status":400,"trace":"..."}`
	do(t, srv, "POST", "/sockets", "application/json", `{"address":"a"}`)
	wantOne(t, c.take(), KindResponse, "trace")
}

func TestOctetStreamAndLongPoll(t *testing.T) {
	v := newValidator(t)
	release := make(chan struct{})
	var received []byte
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			received, _ = io.ReadAll(r.Body)
			writeJSON(w, "application/json", http.StatusAccepted, `{"bytes":4}`)
		case http.MethodGet:
			// A long poll that streams raw bytes: the first chunk must reach
			// the client before the handler returns.
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte{0, 1, 2})
			http.NewResponseController(w).Flush()
			<-release
			w.Write([]byte{0xff, '\n'})
		}
	})

	raw := string([]byte{0, 0xfe, '\r', '\n'})
	do(t, srv, "POST", "/sockets/s1/messages", "application/octet-stream", raw)
	if string(received) != raw {
		t.Errorf("handler got %q, want %q", received, raw)
	}
	wantNone(t, c)

	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/sockets/s1/messages?wait=30", nil)
	req.Header.Set("Accept", "application/octet-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 3)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("flushed bytes did not reach the client while the handler ran")
	}
	close(release)
	rest, err := io.ReadAll(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); !bytes.Equal(got, []byte{0, 1, 2, 0xff, '\n'}) {
		t.Errorf("client got %v", got)
	}
	srv.Close() // waits for the handler, hence for the report
	wantNone(t, c)
}

func TestBodyOnContentlessResponseFails(t *testing.T) {
	v := newValidator(t)
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, "application/json", http.StatusNoContent, ``)
	})
	do(t, srv, "DELETE", "/sockets/s1", "", "")
	wantNone(t, c)

	srv2, c2 := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"deleted":true}`) // implicit 200, not documented either
	})
	do(t, srv2, "DELETE", "/sockets/s1", "", "")
	wantOne(t, c2.take(), KindResponse, "200", "not documented")
}

func TestRequestViolations(t *testing.T) {
	v := newValidator(t)
	srv, c := serve(t, v, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, "application/problem+json", http.StatusBadRequest, `{"title":"Bad Request","status":400}`)
	})

	do(t, srv, "POST", "/sockets", "application/json", `{"addr":"a"}`)
	wantOne(t, c.take(), KindRequest, "address")

	do(t, srv, "GET", "/sockets/s1/messages?wait=soon", "", "")
	errs := c.take()
	// The bad query and the undocumented 400 response.
	if len(errs) != 2 {
		t.Fatalf("want 2 violations, got %v", errs)
	}

	// Off-contract on purpose: the request is not reported, the response is
	// still checked.
	do(t, srv, "POST", "/sockets", "application/json", `not json`, SkipRequestHeader, "1")
	wantNone(t, c)
	do(t, srv, "POST", "/nowhere", "application/json", `not json`, SkipRequestHeader, "1")
	wantNone(t, c)
}

func TestCheck(t *testing.T) {
	v := newValidator(t)
	handler := func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in["address"] == nil {
			writeJSON(w, "application/problem+json", http.StatusBadRequest, `{"title":"Bad Request","status":400}`)
			return
		}
		writeJSON(w, "application/json", http.StatusCreated, `{"id":"s1","extra":1}`)
	}

	reqBody := []byte(`{"address":"a"}`)
	req := httptest.NewRequest("POST", "/sockets", bytes.NewReader(reqBody))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	handler(rec, req)
	err := v.Check(req, reqBody, rec.Code, rec.Header(), rec.Body.Bytes())
	wantOne(t, []error{err}, KindResponse, "extra")

	reqBody = []byte(`{}`)
	req = httptest.NewRequest("POST", "/sockets", bytes.NewReader(reqBody))
	req.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	handler(rec, req)
	err = v.Check(req, reqBody, rec.Code, rec.Header(), rec.Body.Bytes())
	// The request lacks address; the 400 itself is fine.
	wantOne(t, []error{err}, KindRequest, "address")

	req = httptest.NewRequest("GET", "/openapi.yaml", nil)
	if err := v.Check(req, nil, http.StatusOK, http.Header{"Content-Type": {"application/yaml"}}, []byte(spec)); err != nil {
		t.Errorf("ignored path checked: %v", err)
	}
}

func TestNewRejectsInvalidDocument(t *testing.T) {
	if _, err := New([]byte("openapi: 3.0.3\ninfo: {title: x}\npaths: {}\n")); err == nil {
		t.Error("New accepted a document without info.version")
	}
	if _, err := New([]byte("{not yaml")); err == nil {
		t.Error("New accepted garbage")
	}
}

// TestEcho shows the intended use with echo: wrap the whole *echo.Echo, so
// that responses written by echo's error handler are seen too.
func TestEcho(t *testing.T) {
	v := newValidator(t)
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		code := http.StatusInternalServerError
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(code)
		json.NewEncoder(c.Response()).Encode(map[string]any{"title": http.StatusText(code), "status": code})
	}
	e.POST("/sockets", func(c echo.Context) error {
		var in struct {
			Address string `json:"address"`
		}
		if err := c.Bind(&in); err != nil || in.Address == "" {
			return echo.NewHTTPError(http.StatusBadRequest)
		}
		return c.JSON(http.StatusCreated, map[string]string{"id": "s1", "remote": in.Address})
	})
	e.GET("/sockets/:id/messages", func(c echo.Context) error {
		if c.Param("id") != "s1" {
			return echo.NewHTTPError(http.StatusNotFound)
		}
		c.Response().Header().Set(echo.HeaderContentType, echo.MIMEOctetStream)
		c.Response().WriteHeader(http.StatusOK)
		c.Response().Write([]byte("abc"))
		c.Response().Flush()
		return nil
	})

	c := &collector{}
	srv := httptest.NewServer(v.Middleware(c.report)(e))
	t.Cleanup(srv.Close)

	do(t, srv, "POST", "/sockets", "application/json", `{"address":"127.0.0.1:7"}`)
	do(t, srv, "POST", "/sockets", "application/json", `{"address":""}`) // 400 from the error handler
	do(t, srv, "GET", "/sockets/s1/messages", "", "")
	do(t, srv, "GET", "/sockets/s2/messages", "", "") // 404 problem
	wantNone(t, c)

	// echo's own 404 for an unknown route: the route is reported.
	do(t, srv, "GET", "/sockets", "", "")
	wantOne(t, c.take(), KindRoute, "GET /sockets")
}
