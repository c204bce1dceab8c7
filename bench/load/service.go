package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/sockets"
)

// service is sockman running in this process, wired as `sockman serve`
// wires it (registry, API, http.Server with a base context that ends long
// polls) and stopped as serve stops it when SIGTERM comes: stop taking
// requests and end long polls, wait for requests in flight up to the
// shutdown timeout, close every server and socket and wait for their
// goroutines. Running it here, not as a child process, is what lets the
// tool count its goroutines and descriptors before and after.
type service struct {
	reg  *sockets.Registry
	addr string
	done chan struct{} // closed when the shutdown is over

	// Set before done is closed.
	signalled    time.Time     // when SIGTERM arrived
	shutdownTook time.Duration // from SIGTERM to the registry closed
	cut          error         // the shutdown timeout cut requests (nil: all finished)
	serveErr     error         // the http.Server stopped before SIGTERM
}

// startService starts sockman on 127.0.0.1 and an ephemeral port. It shuts
// down when the process gets SIGTERM (or SIGINT).
func startService(cfg sockets.Config, maxWait, shutdownTimeout time.Duration, log *slog.Logger) (*service, error) {
	cfg.Logger = log
	reg := sockets.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		reg.Close()
		return nil, err
	}
	e := api.New(reg, api.Options{MaxWait: maxWait, OpenAPI: sockman.OpenAPI, Logger: log})
	base, cancelBase := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      3 * time.Minute, // as serve's: each request's deadline anew after a read's answer set its own
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s := &service{reg: reg, addr: ln.Addr().String(), done: make(chan struct{})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		defer close(s.done)
		defer signal.Stop(sigs)
		select {
		case <-sigs:
		case err := <-errc:
			s.serveErr = err
			cancelBase()
			reg.Close()
			return
		}
		s.signalled = time.Now()
		cancelBase()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			s.cut = err
			srv.Close()
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
		reg.Close()
		s.shutdownTook = time.Since(s.signalled)
	}()
	return s, nil
}

// terminate sends SIGTERM to this process, as an operator or a supervisor
// would, and waits for the service to stop, at most limit.
func (s *service) terminate(limit time.Duration) error {
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("sockman still shutting down %v after SIGTERM", limit)
	}
}
