package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/sockets"
)

// serve runs the API until ctx ends, then shuts down in order: stop taking
// requests and end long polls, wait for requests in flight (up to
// --shutdown-timeout), close every server and socket and wait for their
// goroutines. When ready is not nil it receives the API's address once it
// is serving.
func serve(ctx context.Context, c serveConfig, stderr io.Writer, ready chan<- string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if err := checkExposure(c); err != nil {
		return err
	}
	connectPolicy, err := sockets.ParsePolicy("--allow-connect", c.AllowConnect)
	if err != nil {
		return err
	}
	listenPolicy, err := sockets.ParsePolicy("--allow-listen", c.AllowListen)
	if err != nil {
		return err
	}
	if c.MaxSockets <= 0 || c.MaxServers <= 0 {
		return errors.New("--max-sockets and --max-servers must be positive")
	}

	reg := sockets.New(sockets.Config{
		BufferBytes:     int(c.BufferBytes),
		MaxBufferBytes:  int(c.MaxBufferBytes),
		MaxBufferTotal:  c.MaxBufferTotal,
		MaxSockets:      c.MaxSockets,
		MaxServers:      c.MaxServers,
		DialTimeout:     c.ConnectTimeout,
		WriteTimeout:    c.WriteTimeout,
		ClosedRetention: c.ClosedRetention,
		ConnectPolicy:   connectPolicy,
		ListenPolicy:    listenPolicy,
		Logger:          log,
	})
	defer reg.Close()

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on --addr %s: %w", c.Addr, err)
	}
	e := api.New(reg, api.Options{
		MaxBody:      c.MaxBody,
		MaxWait:      c.MaxWait,
		OpenAPI:      sockman.OpenAPI,
		Logger:       log,
		Token:        c.Token,
		AllowedHosts: append(c.AllowedHosts, hostOf(c.Addr), hostOf(ln.Addr().String())),
		CORSOrigins:  c.CORSOrigins,
	})

	// Cancelling the base context ends every request's context: long polls
	// answer at once instead of holding the shutdown.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// Room for the longest long poll, then for a slow send.
		WriteTimeout: c.MaxWait + c.WriteTimeout + 30*time.Second,
		BaseContext:  func(net.Listener) context.Context { return baseCtx },
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("sockman serving", "addr", ln.Addr().String(), "swagger", "http://"+ln.Addr().String()+"/swagger/index.html", "token", c.Token != "")
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("API server stopped: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown timeout were cut", "err", err)
		srv.Close()
	}
	<-errc
	reg.Close()
	log.Info("stopped")
	return nil
}

// hostOf returns the host part of a HOST:PORT.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// checkExposure refuses to serve a non-loopback address without a token.
func checkExposure(c serveConfig) error {
	host := hostOf(c.Addr)
	if c.Token != "" || isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("--addr %s is reachable from other machines and no token is set: anyone who reaches it could open connections from this host. Set --token-file FILE (or SOCKMAN_TOKEN), or listen on 127.0.0.1", c.Addr)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
