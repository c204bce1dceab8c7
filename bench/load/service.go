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
	httpservice "github.com/sockman/sockman/internal/service" // service is this tool's running sockman
	"github.com/sockman/sockman/sockets"
)

// service is sockman running in this process, wired as `sockman serve`
// wires it (registry, API, and the HTTP server of internal/service, which
// holds the event streams and ends long polls at the shutdown) and stopped
// as serve stops it when SIGTERM comes: stop taking requests and streams,
// end long polls and streams, wait for requests in flight up to the
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
	serveErr     error         // the HTTP server stopped before SIGTERM
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
	// serve's bounds with its defaults; no cap on API connections, which
	// the load opens by the thousand.
	svc := httpservice.New(httpservice.Config{
		ReadHeaderTimeout: 10 * time.Second,
		RequestTimeout:    3 * time.Minute, // as serve's: each request's deadline anew after a read's answer set its own
		IdleTimeout:       2 * time.Minute,
		Logger:            log,
	})
	e := api.New(reg, api.Options{MaxWait: maxWait, OpenAPI: sockman.OpenAPI, Logger: log, Holder: svc})
	s := &service{reg: reg, addr: ln.Addr().String(), done: make(chan struct{})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	errc := make(chan error, 1)
	go func() { errc <- svc.Serve(ln, e) }()
	go func() {
		defer close(s.done)
		defer signal.Stop(sigs)
		select {
		case <-sigs:
		case err := <-errc:
			s.serveErr = err
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			svc.Shutdown(ctx)
			reg.Close()
			return
		}
		s.signalled = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		s.cut = svc.Shutdown(ctx)
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
