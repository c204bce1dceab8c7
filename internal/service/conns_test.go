package service

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testHandler answers GET /healthz with 200, and POST /servers, once it has
// read the whole body, with 201.
func testHandler(*Service) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /servers", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	})
	return mux
}

// exchange writes one request on c and reads its answer.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, host, path string) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(guard))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: reading the answer to GET %s: %v", c.LocalAddr(), path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// At the cap's edge: below --max-api-conns nothing is closed; once the
// last slot is taken, the oldest connection that has sent nothing is
// closed, and the newcomer is served; a connection idle at the cap is
// closed; a request in progress is never cut.
func TestMaxAPIConnsEdge(t *testing.T) {
	capped := func(n int) Config { return Config{MaxAPIConns: n, ReadHeaderTimeout: time.Minute} }
	t.Run("below the cap nothing is closed", func(t *testing.T) {
		s := start(t, capped(3), testHandler)
		a := s.rawConn(t)
		b := s.rawConn(t)
		bb := bufio.NewReader(b)
		if got := exchange(t, b, bb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("got %d, want 200", got)
		}
		if got := exchange(t, a, bufio.NewReader(a), s.addr, "/healthz"); got != 200 {
			t.Fatalf("the first connection, after another was served below the cap: got %d, want 200", got)
		}
		if got := exchange(t, b, bb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("the kept-alive connection below the cap: got %d, want 200", got)
		}
	})
	t.Run("the last slot closes the oldest waiting connection", func(t *testing.T) {
		s := start(t, capped(3), testHandler)
		a := s.rawConn(t) // sends nothing
		b := s.rawConn(t) // sends nothing
		c := s.rawConn(t) // takes the last slot: a is closed
		cb := bufio.NewReader(c)
		if got := exchange(t, c, cb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("the connection at the cap: got %d, want 200", got)
		}
		if got := waitClosed(t, a); len(got) != 0 {
			t.Errorf("the oldest connection got %q, want it closed without an answer", got)
		}
		// That made room: below the cap again, b and c are served.
		if got := exchange(t, b, bufio.NewReader(b), s.addr, "/healthz"); got != 200 {
			t.Fatalf("the second connection: got %d, want 200", got)
		}
		if got := exchange(t, c, cb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("the connection that was served, again: got %d, want 200", got)
		}
	})
	t.Run("a request in progress is not cut", func(t *testing.T) {
		s := start(t, capped(2), testHandler)
		a := s.rawConn(t)
		a.SetDeadline(time.Now().Add(guard))
		const body = `{"port":0}`
		fmt.Fprintf(a, "POST /servers HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", s.addr, len(body))
		// The handler reads the body: sockman is working on a's request.
		ab := bufio.NewReader(a)
		if line, err := ab.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("got %q (%v), want 100 Continue", line, err)
		}
		ab.ReadString('\n') // the empty line after it
		// b takes the last slot while a's request is in progress; a is not
		// closed for it. b is served, then closed once it has been idle for
		// quietFor at the cap.
		b := s.rawConn(t)
		if got := exchange(t, b, bufio.NewReader(b), s.addr, "/healthz"); got != 200 {
			t.Fatalf("the connection at the cap: got %d, want 200", got)
		}
		waitClosed(t, b)
		if _, err := io.WriteString(a, body); err != nil {
			t.Fatalf("finishing the request in progress: %v", err)
		}
		res, err := http.ReadResponse(ab, nil)
		if err != nil {
			t.Fatalf("the request in progress: %v, want its answer", err)
		}
		res.Body.Close()
		if res.StatusCode != 201 {
			t.Errorf("the request in progress: got %d, want 201", res.StatusCode)
		}
	})
}
