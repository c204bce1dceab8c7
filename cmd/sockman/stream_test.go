package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialStream opens GET /sockets/{id}/stream on the service.
func (s *service) dialStream(t *testing.T, id string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/sockets/"+id+"/stream", nil)
	if err != nil {
		t.Fatalf("stream %s: %v", id, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestWebSocketStreamOutlivesRequestTimeout: a WebSocket stream is not cut
// by the HTTP server's read and write timeouts (here about 400ms for a
// whole request): the connection keeps them after the upgrade unless the
// stream clears them.
func TestWebSocketStreamOutlivesRequestTimeout(t *testing.T) {
	s := startService(t, []string{"--read-header-timeout", "100ms", "--max-wait", "100ms", "--connect-timeout", "100ms",
		"--max-connect-timeout", "100ms", "--write-timeout", "100ms"})
	var srv struct{ ID, Address string }
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	var id string
	waitFor(t, guard, func() bool {
		var got struct{ Sockets []string }
		s.do("GET", "/servers/"+srv.ID, nil).want(t, 200).decode(t, &got)
		if len(got.Sockets) > 0 {
			id = got.Sockets[0]
		}
		return id != ""
	})
	c := s.dialStream(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	start := time.Now()
	for n := 0; time.Since(start) < time.Second; n++ {
		if _, err := peer.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatalf("after %v and %d frames: %v, want the stream open", time.Since(start), n, err)
		}
		if err := c.Write(ctx, websocket.MessageBinary, []byte("y")); err != nil {
			t.Fatalf("after %v: writing: %v", time.Since(start), err)
		}
		buf := make([]byte, 1)
		peer.SetReadDeadline(time.Now().Add(guard))
		if _, err := peer.Read(buf); err != nil {
			t.Fatalf("after %v: the peer reading: %v", time.Since(start), err)
		}
	}
}

// TestShutdownEndsWebSocketStreams: the shutdown closes open WebSocket
// streams with 1001 and ends an open event stream, waits for them (the
// WebSocket's connection is hijacked: http.Server.Shutdown alone would not),
// cuts nothing at its timeout, and serve returns nil. The package's goleak
// check then sees no goroutine of theirs left.
func TestShutdownEndsWebSocketStreams(t *testing.T) {
	s := startService(t, nil)
	var srv struct{ ID, Address string }
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	var ids []string
	for n := 1; n <= 2; n++ {
		peer, err := net.DialTimeout("tcp", srv.Address, guard)
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		waitFor(t, guard, func() bool {
			var got struct{ Sockets []string }
			s.do("GET", "/servers/"+srv.ID, nil).want(t, 200).decode(t, &got)
			ids = got.Sockets
			return len(ids) == n
		})
	}
	var closes []chan error
	for _, id := range ids {
		c := s.dialStream(t, id)
		got := make(chan error, 1)
		go func() {
			_, _, err := c.Read(context.Background())
			got <- err
		}()
		closes = append(closes, got)
	}
	events, err := s.client.Do(s.request("GET", "/events", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	if events.StatusCode != 200 {
		t.Fatalf("GET /events: %d", events.StatusCode)
	}
	eventsEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, events.Body)
		eventsEnded <- err
	}()

	s.stop()
	for i, got := range closes {
		var ce websocket.CloseError
		if err := <-got; !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "sockman is shutting down" {
			t.Errorf("stream %d at the shutdown: got %v, want close 1001 \"sockman is shutting down\"", i, err)
		}
	}
	if err := <-eventsEnded; err != nil {
		t.Errorf("the event stream at the shutdown: %v, want its end", err)
	}
	if log := s.stderr.String(); strings.Contains(log, "were cut") {
		t.Errorf("the shutdown timeout cut something:\n%s", log)
	}
}
