package api

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/contract"
)

// Every answer, errors and Swagger UI included, forbids framing and content
// sniffing; API answers carry a policy that allows nothing, and Swagger UI's
// page one that allows its own inline script by the hash of the script as
// served (the browser test in internal/swaggerui runs the page under it).
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	foreign := a.newRequest(http.MethodGet, "/servers", nil)
	foreign.Host = "evil.test"
	for _, tt := range []struct {
		name   string
		res    response
		status int
	}{
		{"GET /healthz", a.call(http.MethodGet, "/healthz", nil), 200},
		{"GET /servers", a.call(http.MethodGet, "/servers", nil), 200},
		{"GET /openapi.yaml", a.call(http.MethodGet, "/openapi.yaml", nil), 200},
		{"GET / (redirect)", a.call(http.MethodGet, "/", nil, contract.SkipRequestHeader, "redirect"), 302},
		{"GET /swagger/swagger-ui.css", a.call(http.MethodGet, "/swagger/swagger-ui.css", nil), 200},
		{"GET /swagger/index.html", a.call(http.MethodGet, "/swagger/index.html", nil), 200},
		{"a 404 problem", a.call(http.MethodGet, "/sockets/sock-404", nil), 404},
		{"a 400 problem", a.call(http.MethodPost, "/servers", `{"port":"x"}`, contract.SkipRequestHeader, "a bad request on purpose"), 400},
		{"a 403 from the Host check", a.do(foreign), 403},
	} {
		if tt.res.StatusCode != tt.status {
			t.Errorf("%s: got status %d, want %d", tt.name, tt.res.StatusCode, tt.status)
		}
		h := tt.res.Header
		if got := h.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: got X-Frame-Options %q, want DENY", tt.name, got)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: got X-Content-Type-Options %q, want nosniff", tt.name, got)
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.HasPrefix(csp, "default-src 'none'") {
			t.Errorf("%s: got Content-Security-Policy %q, want default-src 'none' and frame-ancestors 'none'", tt.name, csp)
		}
		if tt.name != "GET /swagger/index.html" && csp != apiPolicy {
			t.Errorf("%s: got Content-Security-Policy %q, want %q", tt.name, csp, apiPolicy)
		}
	}

	page := a.call(http.MethodGet, "/swagger/index.html", nil)
	csp := page.Header.Get("Content-Security-Policy")
	scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllSubmatch(page.body, -1)
	if len(scripts) != 1 {
		t.Fatalf("the page has %d inline scripts, want the one that starts Swagger UI", len(scripts))
	}
	sum := sha256.Sum256(scripts[0][1])
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if !strings.Contains(csp, "script-src 'self' "+hash) {
		t.Errorf("the page's policy %q does not allow its inline script by its hash %s", csp, hash)
	}
	if strings.Contains(strings.Split(strings.SplitAfter(csp, "script-src")[1], ";")[0], "unsafe") {
		t.Errorf("the page's policy %q allows unsafe scripts", csp)
	}
}

// Swagger UI's files are served whole whatever Range or condition the
// request holds: net/http's plain-text 416 (and 412) never come out of
// sockman's routes.
func TestSwaggerFilesIgnoreRanges(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	whole := a.call(http.MethodGet, "/swagger/swagger-ui.css", nil).want(t, http.StatusOK)
	for _, h := range [][2]string{
		{"Range", "bytes=999999999-"},
		{"Range", "bytes=5-1"},
		{"Range", "garbage"},
		{"Range", "bytes=0-9"},
		{"If-Match", `"nope"`},
		{"If-Unmodified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"},
		{"If-None-Match", "*"},
	} {
		for _, path := range []string{"/swagger/swagger-ui.css", "/swagger/index.html"} {
			res := a.call(http.MethodGet, path, nil, h[0], h[1], contract.SkipRequestHeader, "a header openapi.yaml does not name")
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET %s with %s: %s: got %d %q, want 200 and the whole file", path, h[0], h[1], res.StatusCode, res.Header.Get("Content-Type"))
				continue
			}
			if path == "/swagger/swagger-ui.css" && len(res.body) != len(whole.body) {
				t.Errorf("GET %s with %s: %s: got %d bytes, want the whole %d", path, h[0], h[1], len(res.body), len(whole.body))
			}
			if got := res.Header.Get("Accept-Ranges"); got != "" {
				t.Errorf("GET %s: got Accept-Ranges %q, want none (ranges are not served)", path, got)
			}
		}
	}
}

// A request with both Content-Length and Transfer-Encoding: chunked is
// answered, and then its connection is closed (RFC 9112 section 6.1): a
// request pipelined after it on the same connection is not read, so it
// cannot be smuggled in. A request with Content-Length alone keeps the
// connection.
func TestChunkedWithContentLengthClosesTheConnection(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	host := strings.TrimPrefix(a.srv.URL, "http://")
	exchange := func(first string) (statuses []int, closed bool) {
		t.Helper()
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		second := fmt.Sprintf("GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		if _, err := io.WriteString(c, first+second); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for range 2 {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				return statuses, true
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses = append(statuses, res.StatusCode)
		}
		return statuses, false
	}

	body := `{"port":0}`
	both := fmt.Sprintf("POST /servers HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", host, len(body), body)
	statuses, closed := exchange(both)
	if len(statuses) != 1 || statuses[0] != http.StatusCreated || !closed {
		t.Errorf("Content-Length and chunked, then a pipelined GET: got answers %v, closed %v; want one 201, then the connection closed", statuses, closed)
	}
	single := fmt.Sprintf("POST /servers HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body)
	if statuses, closed := exchange(single); len(statuses) != 2 || statuses[0] != http.StatusCreated || statuses[1] != http.StatusOK || closed {
		t.Errorf("Content-Length alone, then a pipelined GET: got answers %v, closed %v; want 201 and 200 on one connection", statuses, closed)
	}
}
