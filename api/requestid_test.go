package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sockman/sockman/internal/contract"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Every answer carries X-Request-Id: a well-formed id the client sent, or
// one made up; a problem carries the same id in request_id.
func TestRequestIDOnEveryAnswer(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	long := strings.Repeat("a", maxRequestIDLen+1)
	for _, c := range []struct {
		name, sent string
		kept       bool
	}{
		{"none sent", "", false},
		{"well formed", "trace-01:span.7_x", true},
		{"longest", strings.Repeat("b", maxRequestIDLen), true},
		{"too long", long, false},
		{"space", "a b", false},
		{"quote", `a"b`, false},
		{"non-ASCII", "abcé", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			if c.sent != "" {
				header = []string{HeaderRequestID, c.sent}
			}
			ok := a.call(http.MethodGet, "/healthz", nil, header...).want(t, http.StatusOK)
			bad := a.call(http.MethodGet, "/sockets/sock-99", nil, header...).want(t, http.StatusNotFound)
			for _, res := range []response{ok, bad} {
				got := res.Header.Get(HeaderRequestID)
				switch {
				case c.kept && got != c.sent:
					t.Errorf("%s: X-Request-Id %q, want the one sent, %q", res.Request.URL.Path, got, c.sent)
				case !c.kept && (got == c.sent || !requestIDOK(got)):
					t.Errorf("%s: X-Request-Id %q, want a new well-formed id in place of %q", res.Request.URL.Path, got, c.sent)
				}
			}
			if p := bad.problem(t); p.RequestID != bad.Header.Get(HeaderRequestID) {
				t.Errorf("problem request_id %q, want the header's %q", p.RequestID, bad.Header.Get(HeaderRequestID))
			}
		})
	}
	a1 := a.call(http.MethodGet, "/healthz", nil).Header.Get(HeaderRequestID)
	a2 := a.call(http.MethodGet, "/healthz", nil).Header.Get(HeaderRequestID)
	if a1 == a2 {
		t.Errorf("two requests got the same id %q", a1)
	}
}

// Each request is one log line with its method, route template, status,
// duration and id; never the token, the raw path or a body.
func TestRequestLogLine(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	const token = "tok-3c1d9a7e55b2"
	a := newTestAPI(t, withOptions(func(o *Options) { o.Logger = log; o.Token = token }))
	a.call(http.MethodGet, "/sockets/sock-31337", nil, "Authorization", "Bearer "+token, HeaderRequestID, "req-one").want(t, http.StatusNotFound)
	a.call(http.MethodPost, "/clients", `{"host":"127.0.0.1","port":0,"secret_payload_7f":1}`, "Authorization", "Bearer "+token, contract.SkipRequestHeader, "a bad body on purpose").want(t, http.StatusBadRequest)
	a.call(http.MethodGet, "/servers", nil, "Authorization", "Bearer wrong-"+token).want(t, http.StatusUnauthorized)

	var found bool
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "request" && rec["request_id"] == "req-one" {
			found = true
			if rec["method"] != "GET" || rec["route"] != "/sockets/:id" || rec["status"] != float64(404) || rec["duration"] == nil {
				t.Errorf("request line %s: want method GET, route /sockets/:id, status 404 and a duration", line)
			}
		}
	}
	if !found {
		t.Errorf("no request line with request_id req-one in:\n%s", out.String())
	}
	for _, secret := range []string{token, "sock-31337", "secret_payload_7f"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the log shows %q:\n%s", secret, out.String())
		}
	}
}

// /readyz is 200 while the service takes work and 503 shutting-down once
// it does not; /healthz stays 200.
func TestReadyzDistinctFromHealthz(t *testing.T) {
	t.Parallel()
	var ready sync.Mutex
	up := true
	a := newTestAPI(t, withOptions(func(o *Options) {
		o.Ready = func() bool { ready.Lock(); defer ready.Unlock(); return up }
	}))
	a.call(http.MethodGet, "/readyz", nil).want(t, http.StatusOK)
	ready.Lock()
	up = false
	ready.Unlock()
	p := a.call(http.MethodGet, "/readyz", nil).want(t, http.StatusServiceUnavailable).problem(t)
	if p.Type != problemPrefix+"shutting-down" {
		t.Errorf("/readyz while shutting down: type %q, want shutting-down", p.Type)
	}
	a.call(http.MethodGet, "/healthz", nil).want(t, http.StatusOK)
}
