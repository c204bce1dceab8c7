package service

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/sockets"
)

// /readyz answers 200 while the service serves and 503 shutting-down once
// its shutdown has begun, while it still waits for a held stream: here
// through the same router on a second listener, as a request in flight on
// a kept-alive connection would see it. Ready is false before Serve too.
func TestReadyzDuringShutdown(t *testing.T) {
	reg := sockets.New(sockets.Config{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { reg.Close() })
	var e http.Handler
	r := start(t, Config{}, func(s *Service) http.Handler {
		e = api.New(reg, api.Options{Logger: slog.New(slog.DiscardHandler), Holder: s, Ready: s.Ready})
		return e
	})
	readyz := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var p struct{ Type string }
		_ = json.NewDecoder(res.Body).Decode(&p)
		return res.StatusCode, p.Type
	}
	if code, _ := readyz("http://" + r.addr); code != http.StatusOK {
		t.Fatalf("/readyz while serving: got %d, want 200", code)
	}

	h := hold(t, r.Service)
	shut := shutdownInBackground(r.Service)
	select {
	case <-h.ended:
	case <-time.After(guard):
		t.Fatal("the shutdown did not begin")
	}
	if r.Ready() {
		t.Error("Ready during the shutdown: got true, want false")
	}
	late := httptest.NewServer(e)
	defer late.Close()
	if code, typ := readyz(late.URL); code != http.StatusServiceUnavailable || typ != "urn:sockman:problem:shutting-down" {
		t.Errorf("/readyz during the shutdown: got %d %s, want 503 urn:sockman:problem:shutting-down", code, typ)
	}
	if code, _ := func() (int, string) {
		res, err := http.Get(late.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, ""
	}(); code != http.StatusOK {
		t.Errorf("/healthz during the shutdown: got %d, want 200 (the process still answers)", code)
	}
	close(h.letGo)
	h.wait(t)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if s := New(Config{}); s.Ready() {
		t.Error("Ready before Serve: got true, want false")
	}
}
