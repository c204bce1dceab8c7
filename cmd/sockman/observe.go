package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/sockman/sockman/api"
)

// sides are the listeners beside the API; either may be nil.
type sides struct{ metrics, pprof *sideListener }

// listenSides binds --metrics-addr and --pprof-addr, when set. On an error
// nothing stays bound.
func listenSides(c serveConfig, m *api.Metrics, log *slog.Logger) (sides, error) {
	var s sides
	var err error
	if s.metrics, err = listenSide("--metrics-addr", c.MetricsAddr, metricsOnly(m.Handler()), log); err != nil {
		return s, err
	}
	if s.pprof, err = listenSide("--pprof-addr", c.PprofAddr, pprofHandler(), log); err != nil {
		s.metrics.close(time.Second)
		return sides{}, err
	}
	return s, nil
}

// close stops both listeners.
func (s sides) close(timeout time.Duration) {
	s.metrics.close(timeout)
	s.pprof.close(timeout)
}

// metricsOnly serves h at /metrics and 404 elsewhere.
func metricsOnly(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return mux
}

// logHandler is the handler of --log-format: text or json.
func logHandler(format string, w io.Writer, o *slog.HandlerOptions) slog.Handler {
	if format == "json" {
		return slog.NewJSONHandler(w, o)
	}
	return slog.NewTextHandler(w, o)
}

// sideListener is one of the loopback-only listeners beside the API
// (--metrics-addr, --pprof-addr): a plain http.Server with timeouts, no
// token, no Host check, since only this machine can reach it.
type sideListener struct {
	name string
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// listenSide binds addr for flag, refusing any address that is not
// loopback (checked before and after binding), and serves h on it until
// close. "" binds nothing and returns nil.
func listenSide(flag, addr string, h http.Handler, log *slog.Logger) (*sideListener, error) {
	if addr == "" {
		return nil, nil
	}
	if !isLoopbackHost(hostOf(addr)) {
		return nil, sideExposureError(flag, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s %s: %w", flag, addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, sideExposureError(flag, fmt.Sprintf("%s (bound %s)", addr, ln.Addr()))
	}
	s := &sideListener{
		name: flag,
		ln:   ln,
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("side listener stopped", "flag", flag, "err", err)
		}
	}()
	log.Info("serving "+flag, "addr", ln.Addr().String())
	return s, nil
}

// Addr returns the bound address.
func (s *sideListener) Addr() string { return s.ln.Addr().String() }

// close stops the listener within timeout and waits for its goroutine. It
// is a no-op on nil.
func (s *sideListener) close(timeout time.Duration) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}

func sideExposureError(flag, addr string) error {
	return fmt.Errorf("%s %s is not a loopback address: it serves without a token, so only this machine may reach it; use 127.0.0.1:PORT or [::1]:PORT (a remote scraper uses the API's /metrics with the token)", flag, addr)
}

// pprofHandler serves net/http/pprof under /debug/pprof/, on a mux of its
// own (the package also registers on http.DefaultServeMux, which sockman
// never serves).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
