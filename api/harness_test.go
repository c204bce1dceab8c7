package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/internal/testnet"
	"github.com/sockman/sockman/sockets"
)

// The harness: every API test runs the real router (New) over a real
// registry, served by httptest on loopback behind the contract validator, so
// every request and response is checked against openapi.yaml.

// Defaults of the harness: small where a test wants to reach a bound, short
// where a test would otherwise wait, generous where a slow -race run on two
// cores must not fail.
const (
	testMaxBody     = 64 << 10
	testMaxWait     = 30 * time.Second
	testBufferBytes = 1 << 20
	testTimeout     = 30 * time.Second // failure guard for anything a test waits on
)

// testAPI is one sockman API under test.
type testAPI struct {
	t      testing.TB
	reg    *sockets.Registry
	srv    *httptest.Server
	client *http.Client
	// active counts requests inside the API (router and validator): a test
	// can wait until a long poll is in the handler, or until it has returned.
	active atomic.Int64
	// streamsOnce registers, with the first WebSocket stream, the wait for
	// every handler to return at the end of the test (openStream).
	streamsOnce sync.Once
}

// harness is what newTestAPI builds from; options change it.
type harness struct {
	cfg  sockets.Config
	opts Options
	base context.Context // requests' base context; nil: background
}

type harnessOption func(*harness)

// withConfig changes the registry's configuration.
func withConfig(f func(*sockets.Config)) harnessOption {
	return func(h *harness) { f(&h.cfg) }
}

// withBaseContext makes ctx the base of every request's context, as
// sockman's serve does: cancelling it is what a shutdown does to the
// requests in flight.
func withBaseContext(ctx context.Context) harnessOption {
	return func(h *harness) { h.base = ctx }
}

// withOptions changes the API's options.
func withOptions(f func(*Options)) harnessOption {
	return func(h *harness) { f(&h.opts) }
}

// newTestAPI starts an API over a fresh registry. Every response is validated
// against the embedded openapi.yaml; a violation fails t. Cleanup closes the
// HTTP server (waiting for requests in flight), then the registry (waiting for
// every goroutine it started).
func newTestAPI(t testing.TB, opts ...harnessOption) *testAPI {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := harness{
		cfg: sockets.Config{
			BufferBytes:  testBufferBytes,
			WriteTimeout: 10 * time.Second,
			DialTimeout:  10 * time.Second,
			Logger:       logger,
		},
		opts: Options{
			MaxBody: testMaxBody,
			MaxWait: testMaxWait,
			OpenAPI: sockman.OpenAPI,
			Logger:  logger,
		},
	}
	for _, o := range opts {
		o(&h)
	}

	v, err := contract.New(sockman.OpenAPI)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	v.Ignore("/swagger/", "/openapi.yaml")
	report := func(err error) { t.Errorf("%v", err) }

	a := &testAPI{t: t, reg: sockets.New(h.cfg)}
	e := New(a.reg, h.opts)
	validated := v.Middleware(report)(e)
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.active.Add(1)
		defer a.active.Add(-1)
		if r.Header.Get(leanCheckHeader) == "" {
			validated.ServeHTTP(w, r)
			return
		}
		rec := &strippingRecorder{ResponseWriter: w}
		e.ServeHTTP(rec, r)
		if err := v.Check(r, nil, rec.status, rec.header, rec.kept); err != nil {
			report(err)
		}
	}))
	if h.base != nil {
		a.srv.Config.BaseContext = func(net.Listener) context.Context { return h.base }
	}
	// As sockman serve's: it gives each request its write deadline anew,
	// after an answer's own (--answer-stall-timeout).
	a.srv.Config.WriteTimeout = 2 * testTimeout
	a.srv.Start()
	a.client = a.srv.Client()
	a.client.Timeout = 2 * testTimeout
	a.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Cleanup(func() {
		a.srv.Close()
		a.reg.Close()
	})
	return a
}

// testLogWriter sends the service's log lines to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("sockman: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// response is a finished exchange with its whole body read.
type response struct {
	*http.Response
	body []byte
}

// newRequest builds a request to the API. body is nil, a string, []byte, an
// io.Reader (sent chunked), or any other value (sent as JSON). header holds
// name, value pairs; a JSON body gets Content-Type application/json unless
// header names one.
func (a *testAPI) newRequest(method, path string, body any, header ...string) *http.Request {
	a.t.Helper()
	var (
		r      io.Reader
		isJSON bool
		length int64 = -1
	)
	switch b := body.(type) {
	case nil:
		length = 0
	case string:
		r, length, isJSON = strings.NewReader(b), int64(len(b)), true
	case []byte:
		r, length = bytes.NewReader(b), int64(len(b))
	case io.Reader:
		r = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			a.t.Fatalf("encoding the request body: %v", err)
		}
		r, length, isJSON = bytes.NewReader(js), int64(len(js)), true
	}
	req, err := http.NewRequest(method, a.srv.URL+path, r)
	if err != nil {
		a.t.Fatalf("building %s %s: %v", method, path, err)
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = nil
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// tryDo sends req and reads the whole answer. It does not touch the test, so
// it may run in any goroutine.
func (a *testAPI) tryDo(req *http.Request) (response, error) {
	res, err := a.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	r := response{Response: res, body: body}
	recordProblem(r)
	return r, nil
}

// do sends req and reads the whole answer; a transport error fails the test.
func (a *testAPI) do(req *http.Request) response {
	a.t.Helper()
	res, err := a.tryDo(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL.RequestURI(), err)
	}
	return res
}

// call builds and sends a request (see newRequest for body and header).
func (a *testAPI) call(method, path string, body any, header ...string) response {
	a.t.Helper()
	return a.do(a.newRequest(method, path, body, header...))
}

// want fails the test unless the answer has status code; it returns res.
func (res response) want(t testing.TB, code int) response {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("%s %s: got status %d, want %d; body: %.500s", res.Request.Method, res.Request.URL.RequestURI(), res.StatusCode, code, res.body)
	}
	return res
}

// decode checks that the answer is JSON and decodes it into v.
func (res response) decode(t testing.TB, v any) {
	t.Helper()
	if mt := mediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		t.Fatalf("%s %s: got Content-Type %q, want application/json", res.Request.Method, res.Request.URL.RequestURI(), mt)
	}
	if err := json.Unmarshal(res.body, v); err != nil {
		t.Fatalf("%s %s: decoding %T: %v; body: %.500s", res.Request.Method, res.Request.URL.RequestURI(), v, err, res.body)
	}
}

// problem checks that the answer is a problem+json document that agrees with
// the status line, and returns it.
func (res response) problem(t testing.TB) Problem {
	t.Helper()
	if mt := mediaType(res.Header.Get("Content-Type")); mt != "application/problem+json" {
		t.Fatalf("%s %s: got Content-Type %q, want application/problem+json; body: %.500s", res.Request.Method, res.Request.URL.RequestURI(), mt, res.body)
	}
	var p Problem
	if err := json.Unmarshal(res.body, &p); err != nil {
		t.Fatalf("decoding the problem: %v; body: %.500s", err, res.body)
	}
	if p.Status != res.StatusCode || p.Title != http.StatusText(res.StatusCode) || p.Type == "" || p.Detail == "" {
		t.Fatalf("got problem %+v for status %d, want status and title to match it and type and detail set", p, res.StatusCode)
	}
	return p
}

func mediaType(v string) string {
	mt, _, _ := mime.ParseMediaType(v)
	return mt
}

// waitFor polls cond until it holds, and fails the test if it still does not
// after timeout. It is the only way these tests wait for state they cannot
// be told about.
var waitFor = testnet.WaitFor

func ptr[T any](v T) *T { return &v }
