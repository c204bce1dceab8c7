package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockman/sockman/internal/testnet"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// serve a test starts must have shut down, and every HTTP connection closed.
// It clears the SOCKMAN_* variables of the environment first, so that a token
// or address set on the machine cannot change what a test starts (a test
// that expects a refusal to expose the API must not find a token). The
// SOCKMAN_REQUIRE_* variables stay: they tell a test not to skip.
func TestMain(m *testing.M) {
	if os.Getenv(cliChildEnv) == "1" {
		// The test binary run as sockman by the CLI tests (cli_test.go).
		os.Exit(mainCode(os.Args[1:]))
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SOCKMAN_") && !strings.HasPrefix(name, "SOCKMAN_REQUIRE_") {
			os.Unsetenv(name)
		}
	}
	goleak.VerifyTestMain(m)
}

// guard bounds every wait in these tests. It is a failure guard only: no
// test asserts that anything is faster than it.
const guard = 20 * time.Second

// waitFor polls cond until it holds, failing the test after timeout.
var waitFor = testnet.WaitFor

// syncBuffer is the service's stderr: written by its goroutines, read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// service is one `sockman serve` running in the test's process: the real
// flags, the real serve and its real http.Server, on 127.0.0.1 and an
// ephemeral port.
type service struct {
	t      testing.TB
	addr   string // host:port the API is bound to
	url    string
	token  string // sent by do unless a test sets Authorization itself
	stderr *syncBuffer
	client *http.Client
	tr     *http.Transport
	stop   func() // shuts serve down and waits for it; idempotent
}

// startService parses args as `sockman serve` would (env twins from the
// process environment, so t.Setenv works), lets edit change the config (the
// hidden fields), and runs serve until the test ends.
func startService(t testing.TB, args []string, edit ...func(*serveConfig)) *service {
	t.Helper()
	cfg, err := parseServeFlags(append([]string{"--addr", "127.0.0.1:0"}, args...), os.LookupEnv, io.Discard)
	if err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	for _, e := range edit {
		e(&cfg)
	}
	s := &service{t: t, token: cfg.Token, stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, s.stderr, ready) }()
	select {
	case s.addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve %q: got %v before it was ready, want it serving", args, err)
	case <-time.After(guard):
		cancel()
		t.Fatalf("serve %q: not ready within %v", args, guard)
	}
	s.url = "http://" + s.addr
	// A transport of its own, with no proxy: nothing goes anywhere but the
	// service, and its connections are closed with the test.
	s.tr = &http.Transport{Proxy: nil}
	s.client = &http.Client{
		Transport:     s.tr,
		Timeout:       guard,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			s.tr.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve returned %v, want nil after the shutdown", err)
			}
			s.tr.CloseIdleConnections()
			// Over every service a test starts: its whole log never shows the token.
			if cfg.Token != "" && strings.Contains(s.stderr.String(), cfg.Token) {
				t.Errorf("the log shows the token:\n%s", s.stderr.String())
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// response is a finished exchange with its whole body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// request builds a request to the service. body is nil, a string (sent as
// JSON), or an io.Reader (sent as is, chunked); header holds name, value pairs.
func (s *service) request(method, path string, body any, header ...string) *http.Request {
	s.t.Helper()
	var r io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case string:
		r, isJSON = strings.NewReader(b), true
	case io.Reader:
		r = b
	default:
		s.t.Fatalf("unsupported body %T", body)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// do sends a request (see request) and reads the whole answer.
func (s *service) do(method, path string, body any, header ...string) response {
	s.t.Helper()
	return s.send(s.request(method, path, body, header...))
}

func (s *service) send(req *http.Request) response {
	s.t.Helper()
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.Path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// want fails the test unless the answer has status code.
func (r response) want(t testing.TB, code int) response {
	t.Helper()
	if r.status != code {
		t.Fatalf("got status %d, want %d; body: %.500s", r.status, code, r.body)
	}
	return r
}

// decode decodes a JSON answer into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %T: %v; body: %.500s", v, err, r.body)
	}
}

// problem checks that the answer is RFC 9457 problem+json agreeing with the
// status line, with wantInDetail in its detail, and returns the detail.
func (r response) problem(t testing.TB, wantInDetail ...string) string {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "application/problem+json" {
		t.Fatalf("got Content-Type %q, want application/problem+json; body: %.500s", r.header.Get("Content-Type"), r.body)
	}
	var p struct {
		Type, Title, Detail string
		Status              int
	}
	r.decode(t, &p)
	if p.Status != r.status || p.Title != http.StatusText(r.status) || p.Type == "" || p.Detail == "" {
		t.Fatalf("got problem %+v for status %d, want status and title to match and type and detail set", p, r.status)
	}
	for _, w := range wantInDetail {
		if !strings.Contains(p.Detail, w) {
			t.Errorf("got detail %q, want it to contain %q", p.Detail, w)
		}
	}
	return p.Detail
}

// rawConn opens a plain TCP connection to the service, closed with the test.
func (s *service) rawConn(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, guard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// listenLoopback is a plain loopback listener, closed with the test.
func listenLoopback(t testing.TB, addr string) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// acceptOne accepts one connection on ln, closed with the test.
func acceptOne(t testing.TB, ln *net.TCPListener) net.Conn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(guard))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept on %s: %v", ln.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads c until the other end closes it (EOF or reset), failing
// the test if it is still open after guard. It returns what was read.
func waitClosed(t testing.TB, c net.Conn) []byte {
	t.Helper()
	return testnet.WaitClosed(t, c, guard)
}
