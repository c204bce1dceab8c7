package service

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/sockets"
)

// syncBuffer is a log sink that tests read while the service writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// withAPI starts the real API (api.New over a real registry) on a service
// that holds its streams, and returns it with the router. The registry is
// closed with the test, after the service has shut down.
func withAPI(t *testing.T, c Config) (*running, *sockets.Registry, http.Handler) {
	t.Helper()
	reg := sockets.New(sockets.Config{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { reg.Close() }) // cleanups run last first: after the shutdown
	var e http.Handler
	r := start(t, c, func(s *Service) http.Handler {
		e = api.New(reg, api.Options{Logger: slog.New(slog.DiscardHandler), Holder: s, EventHeartbeat: 20 * time.Millisecond})
		return e
	})
	return r, reg, e
}

// acceptedSocket opens a server on reg, connects a peer to it (closed with
// the test) and returns the id of the socket it accepted.
func acceptedSocket(t *testing.T, reg *sockets.Registry) string {
	t.Helper()
	srv, err := reg.Listen(context.Background(), sockets.ListenOptions{Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := reg.Subscribe(sockets.SubscribeOptions{Filter: sockets.EventFilter{
		ServerIDs: []string{srv.Info().ID}, Types: []string{string(sockets.EventSocketConnected)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	peer, err := net.DialTimeout("tcp", srv.Info().Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	evs, err := sub.Next(ctx, nil, 0)
	if err != nil {
		t.Fatalf("waiting for the server to accept the peer: %v", err)
	}
	return evs[0].SocketID
}

// waitParked waits, on the engine's own signal, until n long polls are
// parked in reg.
func waitParked(t *testing.T, reg *sockets.Registry, n int) {
	t.Helper()
	deadline := time.NewTimer(guard)
	defer deadline.Stop()
	for {
		changed := reg.WaitingChanged()
		got := reg.Waiting()
		if got == n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %d parked reads; %d are", guard, n, got)
		}
	}
}

// heldStream stands for a hijacked stream (a WebSocket): it holds itself
// with the service, sees its context end, and releases once let go.
type heldStream struct {
	ended   chan struct{} // closed when its context ended
	letGo   chan struct{} // close to let it release
	release func()
	done    chan struct{} // closed once it released
}

func hold(t *testing.T, s *Service) *heldStream {
	t.Helper()
	ctx, release, ok := s.Hold()
	if !ok {
		t.Fatal("Hold before the shutdown: got ok false")
	}
	h := &heldStream{ended: make(chan struct{}), letGo: make(chan struct{}), release: release, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		<-ctx.Done()
		close(h.ended)
		<-h.letGo
		release()
	}()
	return h
}

func (h *heldStream) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(guard):
		t.Fatal("the held stream never released")
	}
}

func heldCount(s *Service) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// openEvents starts GET /events on addr and returns the answer once its
// header came.
func openEvents(t *testing.T, client *http.Client, addr string) *http.Response {
	t.Helper()
	res, err := client.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: status %d, want 200", res.StatusCode)
	}
	return res
}

// Shutdown with a long poll parked, an event stream open and a held stream
// that ends only when its context does: the poll answers, the streams'
// contexts end, Shutdown waits for the held stream's release and returns
// without error, every hold released; no goroutine is left (the package's
// goleak check).
func TestShutdownEndsAndWaitsForStreams(t *testing.T) {
	r, reg, _ := withAPI(t, Config{RequestTimeout: time.Minute})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res := openEvents(t, &http.Client{Transport: tr}, r.addr)
	streamEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, res.Body)
		streamEnded <- err
	}()
	h := hold(t, r.Service)
	id := acceptedSocket(t, reg)
	polled := make(chan int, 1)
	go func() {
		res, err := (&http.Client{Transport: tr}).Get("http://" + r.addr + "/sockets/" + id + "/messages?wait=60s")
		if err != nil {
			polled <- 0
			return
		}
		res.Body.Close()
		polled <- res.StatusCode
	}()
	waitParked(t, reg, 1)
	if got := heldCount(r.Service); got != 2 {
		t.Fatalf("held streams before the shutdown: got %d, want 2 (the event stream and one more)", got)
	}

	shut := shutdownInBackground(r.Service)
	select {
	case <-h.ended:
	case <-time.After(guard):
		t.Fatal("the held stream's context did not end at the shutdown")
	}
	select {
	case code := <-polled:
		if code != http.StatusOK {
			t.Fatalf("the long poll at the shutdown: got %d, want 200 with what it has", code)
		}
	case <-time.After(guard):
		t.Fatal("the long poll is still parked after the shutdown began")
	}
	select {
	case err := <-streamEnded:
		if err != nil {
			t.Fatalf("the event stream at the shutdown: %v, want its clean end", err)
		}
	case <-time.After(guard):
		t.Fatal("the event stream is still open after the shutdown began")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a stream was still held", err)
	default: // it cannot return before the release below
	}
	close(h.letGo)
	h.wait(t)
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: got %v, want nil", err)
		}
	case <-time.After(guard):
		t.Fatal("Shutdown did not return once every stream was released")
	}
	if got := heldCount(r.Service); got != 0 {
		t.Fatalf("held streams after the shutdown: got %d, want 0", got)
	}
}

// A stream that ignores its context, and a request that does too, make
// Shutdown return at its timeout with an error that says what was cut; the
// request's connection is closed; the log says so too.
func TestShutdownTimeoutSaysWhatWasCut(t *testing.T) {
	var logs syncBuffer
	entered, unblock := make(chan struct{}), make(chan struct{})
	r := start(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, func(*Service) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			close(entered)
			<-unblock // ignores its context
		})
	})
	defer close(unblock)
	_, release, ok := r.Hold() // never released before the timeout
	if !ok {
		t.Fatal("Hold before the shutdown: got ok false")
	}
	defer release()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	requestErr := make(chan error, 1)
	go func() {
		res, err := (&http.Client{Transport: tr}).Get("http://" + r.addr + "/")
		if err == nil {
			res.Body.Close()
		}
		requestErr <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown at its timeout: got %v, want context.DeadlineExceeded", err)
	}
	for _, want := range []string{"1 connections", "1 held streams"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Shutdown's error %q does not say %q", err, want)
		}
	}
	select {
	case err := <-requestErr:
		if err == nil {
			t.Error("the request cut by the timeout got an answer, want its connection closed")
		}
	case <-time.After(guard):
		t.Fatal("the request's connection is still open after the shutdown timeout")
	}
	if l := logs.String(); !strings.Contains(l, "requests still running at the shutdown timeout were cut") || !strings.Contains(l, "streams=1") {
		t.Errorf("the log does not say what was cut:\n%s", l)
	}
	if again := r.Shutdown(context.Background()); again == nil || again.Error() != err.Error() {
		t.Errorf("a second Shutdown: got %v, want the first one's error", again)
	}
}

// Once the shutdown has begun, Hold refuses (ok false), and the event
// stream answers 503 shutting-down: here through the same router on a
// second listener, as a request already in flight would see it.
func TestHoldAfterShutdownIsRefused(t *testing.T) {
	r, _, e := withAPI(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with nothing open: got %v, want nil", err)
	}
	if ctx, release, ok := r.Hold(); ok || ctx != nil || release != nil {
		t.Fatalf("Hold after the shutdown: got ok %v, want false and nothing to release", ok)
	}

	late := httptest.NewServer(e)
	defer late.Close()
	res, err := late.Client().Get(late.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p struct{ Type, Detail string }
	if err := json.NewDecoder(bufio.NewReader(res.Body)).Decode(&p); err != nil {
		t.Fatalf("decoding the answer: %v", err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || p.Type != "urn:sockman:problem:shutting-down" {
		t.Fatalf("GET /events after the shutdown: got %d %s (%s), want 503 urn:sockman:problem:shutting-down", res.StatusCode, p.Type, p.Detail)
	}
}

// Serve after the shutdown began serves nothing: it returns
// http.ErrServerClosed at once, with its listener closed.
func TestServeAfterShutdown(t *testing.T) {
	s := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve: got %v, want nil", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Serve(ln, http.NotFoundHandler()); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: got %v, want http.ErrServerClosed", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), guard); err == nil {
		c.Close()
		t.Fatal("the listener still takes connections after Serve returned")
	}
}
