// Package service owns sockman's HTTP server and every connection that
// outlives a request: it bounds each phase of a request, caps the API's
// connections, holds the long-lived streams (api.Holder) and shuts all of
// it down in order. `sockman serve` and the load tool (bench/load) run the
// API through it, so both stop the same way.
//
// Its log lines name the flags of `sockman serve` that set its bounds.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config sets the bounds of the HTTP server.
type Config struct {
	// ReadHeaderTimeout closes a client that is slow to send its headers
	// (slowloris).
	ReadHeaderTimeout time.Duration
	// RequestTimeout bounds a whole request, body and answer included: it
	// is both the read and the write timeout of the http.Server, so it must
	// leave room for the longest request (a long poll, a connect). A
	// read deadline that passed would also cancel the request's context,
	// which is why the two are one. Streams held with Hold set their own
	// deadlines instead (http.ResponseController). Zero: no bound.
	RequestTimeout time.Duration
	// IdleTimeout closes kept-alive connections that send nothing.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the size of a request's headers (net/http's
	// default when zero).
	MaxHeaderBytes int
	// MaxAPIConns is how many connections the API holds at once; at it,
	// the oldest one that is idle or has sent no request yet is closed to
	// make room (see apiConns). Zero or less: no cap.
	MaxAPIConns int
	// Logger gets the shutdown's account and the cap's warnings
	// (slog.Default when nil).
	Logger *slog.Logger
}

// Service is the HTTP server of the API and the owner of its long-lived
// streams. It implements api.Holder.
type Service struct {
	log   *slog.Logger
	srv   *http.Server
	conns *apiConns

	// base is every request's context and every held stream's: cancelled
	// when the shutdown begins, it ends long polls and streams at once.
	base       context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex    // guards the following fields
	serving  bool          // Serve was called
	closing  bool          // Shutdown began: Hold refuses
	held     int           // streams held and not yet released
	released chan struct{} // made by Shutdown; closed once held is 0

	shutdownOnce sync.Once
	shutdownDone chan struct{} // closed when the first Shutdown returns
	shutdownErr  error         // set before shutdownDone is closed
}

// New returns a service that serves nothing yet: pass it to api.New as the
// Holder, then call Serve with the handler.
func New(c Config) *Service {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Service{
		log:          log,
		conns:        newAPIConns(c.MaxAPIConns, log),
		base:         base,
		cancelBase:   cancel,
		shutdownDone: make(chan struct{}),
	}
	s.srv = &http.Server{
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.RequestTimeout,
		WriteTimeout:      c.RequestTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnState:         s.conns.track,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Serve answers the connections of ln with h until Shutdown. It blocks, and
// always returns an error: http.ErrServerClosed once Shutdown has begun
// (at once if it had begun before), or why ln failed. It closes ln. Call it
// once.
func (s *Service) Serve(ln net.Listener, h http.Handler) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		ln.Close()
		return errors.New("service: Serve called twice")
	}
	s.serving = true
	s.srv.Handler = h // before srv.Serve, which reads it; nothing else does
	s.mu.Unlock()
	return s.srv.Serve(s.conns.listener(ln))
}

// Hold registers one long-lived stream (api.Holder). Its context ends when
// the shutdown begins; release must be called once the stream is done with
// its connection, and may be called more than once. ok is false once the
// shutdown has begun: the stream must be refused.
func (s *Service) Hold() (ctx context.Context, release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, false
	}
	s.held++
	var once sync.Once
	return s.base, func() { once.Do(s.release) }, true
}

func (s *Service) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held--
	if s.held == 0 && s.released != nil {
		close(s.released)
		s.released = nil
	}
}

// Shutdown stops the service in order: it refuses new streams; ends every
// request's context and every held stream's (long polls answer at once,
// streams end); closes the listener and waits for requests in flight and
// for every held stream to be released, until ctx ends. Then, if anything
// is still running, it closes every connection the http.Server has, logs
// what it cut and returns an error that says so. Hijacked connections
// (WebSocket) are the holders': Shutdown waits for their release, but
// does not close them. Last it stops the connection cap's timer.
//
// It blocks until done. It is idempotent: a later call waits for the first
// one and returns its result.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		defer close(s.shutdownDone)
		s.shutdownErr = s.shutdown(ctx)
	})
	<-s.shutdownDone
	return s.shutdownErr
}

func (s *Service) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	released := make(chan struct{})
	if s.held == 0 {
		close(released)
	} else {
		s.released = released
	}
	s.mu.Unlock()
	defer s.conns.stop()

	s.cancelBase()
	err := s.srv.Shutdown(ctx)
	if err == nil {
		select {
		case <-released:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil {
		return nil
	}
	conns := s.conns.openConns()
	s.mu.Lock()
	streams := s.held
	s.mu.Unlock()
	s.srv.Close()
	s.log.Warn("requests still running at the shutdown timeout were cut", "connections", conns, "streams", streams, "err", err)
	return fmt.Errorf("the shutdown timeout cut what was still running: %d connections, %d held streams: %w", conns, streams, err)
}

// Ready reports whether the service takes work: Serve was called and
// Shutdown has not begun. It does not block.
func (s *Service) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serving && !s.closing
}
