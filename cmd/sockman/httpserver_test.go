package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The HTTP server bounds every phase of a request, and the whole-request
// bound leaves room for the longest wait a request may ask for.
func TestServiceConfigBounds(t *testing.T) {
	c, err := parseServeFlags(nil, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sc := serviceConfig(c, slog.New(slog.DiscardHandler))
	if sc.ReadHeaderTimeout != 10*time.Second || sc.MaxHeaderBytes != 64<<10 || sc.IdleTimeout <= 0 {
		t.Errorf("got ReadHeaderTimeout %v, MaxHeaderBytes %d, IdleTimeout %v; want 10s, 65536, positive", sc.ReadHeaderTimeout, sc.MaxHeaderBytes, sc.IdleTimeout)
	}
	longest := max(c.MaxWait, c.MaxConnectTimeout) + c.WriteTimeout
	if sc.RequestTimeout < longest+c.ReadHeaderTimeout {
		t.Errorf("got RequestTimeout %v; want at least %v (headers, the longest wait, a slow send)", sc.RequestTimeout, longest+c.ReadHeaderTimeout)
	}
	if sc.MaxAPIConns != c.MaxAPIConns || sc.Logger == nil {
		t.Errorf("got MaxAPIConns %d, Logger %v; want %d and a logger", sc.MaxAPIConns, sc.Logger, c.MaxAPIConns)
	}
	c.ReadHeaderTimeout = 3 * time.Second
	if got := serviceConfig(c, slog.New(slog.DiscardHandler)).ReadHeaderTimeout; got != 3*time.Second {
		t.Errorf("--read-header-timeout 3s: got ReadHeaderTimeout %v", got)
	}
}

// Waits too long to add up (a --max-connect-timeout of 2562047h) give the
// longest request bound there is, not a negative one, which net/http would
// read as no bound at all.
func TestRequestTimeoutDoesNotOverflow(t *testing.T) {
	c, err := parseServeFlags([]string{"--max-connect-timeout", "2562047h", "--write-timeout", "2562047h"}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := requestTimeout(c); got != math.MaxInt64 {
		t.Fatalf("requestTimeout with huge flags: got %v, want the longest duration", got)
	}
}

// Slowloris: clients that open connections and send their headers slowly,
// or never finish them, are cut at --read-header-timeout, and the API keeps
// answering meanwhile.
func TestSlowlorisIsCut(t *testing.T) {
	s := startService(t, []string{"--read-header-timeout", "1s"})
	const n = 64
	slow := make([]net.Conn, n)
	for i := range slow {
		slow[i] = s.rawConn(t)
		fmt.Fprintf(slow[i], "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Slow-%d: ", s.addr, i)
	}
	// One more sends a byte of header every 20 ms, which must not extend its time.
	dribbler := s.rawConn(t)
	fmt.Fprintf(dribbler, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Dribble: ", s.addr)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := dribbler.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	for range 10 {
		s.do("GET", "/healthz", nil).want(t, 200)
	}
	for _, c := range slow {
		if got := waitClosed(t, c); len(got) != 0 {
			t.Errorf("slow client got %q, want the connection closed without an answer", got)
		}
	}
	waitClosed(t, dribbler)
	s.do("GET", "/healthz", nil).want(t, 200)
}

// A client that sends its headers and then its body slowly is cut too, once
// the whole-request bound (headers + longest wait + two write timeouts) passes.
func TestSlowBodyIsCut(t *testing.T) {
	s := startService(t, []string{"--read-header-timeout", "100ms", "--max-wait", "100ms", "--max-connect-timeout", "100ms",
		"--connect-timeout", "100ms", "--write-timeout", "100ms"})
	c := s.rawConn(t)
	fmt.Fprintf(c, "POST /servers HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"port\":", s.addr)
	waitClosed(t, c)
	s.do("GET", "/healthz", nil).want(t, 200)
}

// Headers over MaxHeaderBytes are refused with 431 (by net/http, before any
// handler, so in its plain-text form).
func TestHeaderTooLarge(t *testing.T) {
	s := startService(t, nil)
	c := s.rawConn(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close()
	wg.Go(func() { // the server may answer and close before it read everything
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n", s.addr, strings.Repeat("a", 256<<10))
	})
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got %d, want 431", res.StatusCode)
	}
	s.do("GET", "/healthz", nil).want(t, 200)
}

// The longest long poll (--max-wait) still gets its whole answer: the
// server's write timeout is derived from it.
func TestLongestLongPollIsAnswered(t *testing.T) {
	s := startService(t, []string{"--max-wait", "500ms", "--read-header-timeout", "50ms", "--write-timeout", "50ms",
		"--max-connect-timeout", "100ms", "--connect-timeout", "100ms"})
	id := s.acceptedSocket(t)
	var list struct {
		Messages []any
		Cursor   *uint64
	}
	s.do("GET", "/sockets/"+id+"/messages?wait=1h", nil).want(t, 200).decode(t, &list)
	if len(list.Messages) != 0 || list.Cursor == nil {
		t.Errorf("got %+v, want no message and a cursor", list)
	}
}

// acceptedSocket opens a server through the API, connects a peer to it and
// returns the id of the accepted socket. The peer is closed with the test.
func (s *service) acceptedSocket(t testing.TB) string {
	t.Helper()
	var srv struct{ ID, Address string }
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	var id string
	waitFor(t, guard, func() bool {
		var got struct{ Sockets []string }
		s.do("GET", "/servers/"+srv.ID, nil).want(t, 200).decode(t, &got)
		if len(got.Sockets) > 0 {
			id = got.Sockets[0]
		}
		return id != ""
	})
	return id
}
