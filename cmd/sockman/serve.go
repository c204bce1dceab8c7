package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/internal/loglimit"
	httpservice "github.com/sockman/sockman/internal/service" // the name service is the tests' running sockman
	"github.com/sockman/sockman/sockets"
)

// serve runs the API until ctx ends, then shuts down in order: the service
// (internal/service) stops taking requests and streams, ends long polls and
// streams, and waits for requests in flight and streams (up to
// --shutdown-timeout); then every server and socket is closed and their
// goroutines waited for. When ready is not nil it receives the API's address once it
// is serving. It refuses to start, before binding anything, when the
// configuration would expose the API without a token.
func serve(ctx context.Context, c serveConfig, stderr io.Writer, ready chan<- string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	// A flood of one line (20,000 refused connects) is bounded: at most
	// --log-max-similar lines of a kind a second, and a count of the rest.
	log := slog.New(loglimit.New(logHandler(c.LogFormat, stderr, &slog.HandlerOptions{Level: level}), c.LogMaxSimilar, time.Second))

	if err := c.check(); err != nil {
		return err
	}
	soft, hard, err := openFilesLimit(c)
	if err != nil {
		return err
	}
	c, scaled, err := fitFiles(c, soft, hard)
	if err != nil {
		return err
	}
	if scaled != "" {
		log.Warn(scaled)
	}
	if err := checkExposure(c); err != nil {
		return err
	}
	if err := (api.Options{Token: c.Token, AllowedHosts: c.AllowedHosts, CORSOrigins: c.CORSOrigins}).CheckSecurity(); err != nil {
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

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on --addr %s: %w", c.Addr, err)
	}
	if err := checkBound(c, ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	reg := sockets.New(sockets.Config{
		BufferBytes:     int(c.BufferBytes),
		MaxBufferBytes:  int(c.MaxBufferBytes),
		MaxBufferTotal:  c.MaxBufferTotal,
		MaxSockets:      c.MaxSockets,
		MaxServers:      c.MaxServers,
		MaxNameBytes:    c.MaxNameBytes,
		DialTimeout:     c.ConnectTimeout,
		MaxDialTimeout:  c.MaxConnectTimeout,
		WriteTimeout:    c.WriteTimeout,
		ClosedRetention: c.ClosedRetention,
		ConnectPolicy:   connectPolicy,
		ListenPolicy:    listenPolicy,
		Resolver:        c.resolver,
		Logger:          log,

		EventHistory:      c.EventHistory,
		EventHistoryBytes: c.EventHistoryBytes,
		MaxSubscribers:    c.MaxSubscribers,

		MaxRules:          c.MaxRules,
		MaxSchedules:      c.MaxSchedules,
		MaxPatternBytes:   int(c.MaxPatternBytes),
		MaxReplyBytes:     int(c.MaxReplyBytes),
		MinInterval:       c.MinInterval,
		MaxPendingReplies: c.MaxPendingReplies,
	})
	defer reg.Close()
	if limit, set := memoryLimit(c.MaxBufferTotal); set {
		debug.SetMemoryLimit(limit)
		defer debug.SetMemoryLimit(math.MaxInt64) // serve runs in tests too
		log.Debug("soft memory limit set: twice --max-buffer-total plus a base (GOMEMLIMIT overrides it)", "bytes", limit)
	}
	memCtx, stopMem := context.WithCancel(context.Background())
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		returnMemory(memCtx, reg.MemoryInUse, c.MaxBufferTotal)
	}()
	defer func() { stopMem(); <-memDone }()
	hosts := allowedHosts(c, ln.Addr())
	svc := httpservice.New(serviceConfig(c, log))
	metrics := api.NewMetrics(reg)
	side, err := listenSides(c, metrics, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer side.close(c.ShutdownTimeout)
	e := api.New(reg, api.Options{
		MaxBody:      c.MaxBody,
		MaxWait:      c.MaxWait,
		OpenAPI:      sockman.OpenAPI,
		Logger:       log,
		Token:        c.Token,
		AllowedHosts: hosts,
		CORSOrigins:  c.CORSOrigins,

		AnswerStallTimeout: c.AnswerStall,
		EventHeartbeat:     c.EventHeartbeat,
		StreamWriteTimeout: c.WriteTimeout,
		Holder:             svc,
		MaxStreams:         c.MaxStreams,
		Metrics:            metrics,
		Ready:              svc.Ready,
	})
	errc := make(chan error, 1)
	go func() { errc <- svc.Serve(ln, e) }()

	addr := ln.Addr().String()
	log.Info("sockman serving", "addr", addr, "swagger", "http://"+addr+"/swagger/index.html",
		"token", c.Token != "", "allowed_hosts", strings.Join(hosts, ","),
		"allow_connect", connectPolicy.String(), "allow_listen", listenPolicy.String(),
		"max_sockets", c.MaxSockets, "max_servers", c.MaxServers, "max_api_conns", c.MaxAPIConns, "open_files_limit", soft)
	if n := len(c.Token); n > 0 && n < minTokenLen {
		log.Warn("the token is short: a guessed token opens connections from this host; use at least 32 random characters, e.g. from: openssl rand -hex 32", "length", n)
	}
	if c.tokenOnCommandLine {
		log.Warn("the token was given with --token, which other users of this machine can read (ps, /proc); prefer --token-file or SOCKMAN_TOKEN")
	}
	if isUnspecified(hostOf(c.Addr)) && len(c.AllowedHosts) == 0 {
		log.Warn("--addr listens on every interface, but only loopback names are allowed as Host: list the names and addresses other machines use with --allowed-hosts", "addr", c.Addr)
	}
	if ready != nil {
		select {
		case ready <- addr:
		case <-ctx.Done():
		}
	}

	select {
	case err := <-errc:
		shutdown(svc, c.ShutdownTimeout)
		return fmt.Errorf("API server stopped: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown(svc, c.ShutdownTimeout) // logs what the timeout cut, if anything
	<-errc
	reg.Close()
	log.Info("stopped")
	return nil
}

// shutdown stops svc within timeout.
func shutdown(svc *httpservice.Service, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = svc.Shutdown(ctx)
}

// minTokenLen is the token length under which serve warns.
const minTokenLen = 16

// serviceConfig returns the bounds of the API's HTTP server, derived from c:
//
//   - ReadHeaderTimeout (--read-header-timeout) closes a client that is slow
//     to send its headers (slowloris); MaxHeaderBytes bounds their size.
//   - RequestTimeout bounds a whole request, body and answer included
//     (requestTimeout), and leaves room for the longest request sockman
//     allows: a long poll of --max-wait or a connect of
//     --max-connect-timeout.
//   - IdleTimeout closes kept-alive connections that send nothing.
//   - MaxAPIConns is --max-api-conns.
//   - The answer of a read gets its own progress deadline
//     (--answer-stall-timeout), renewed as the client takes it; the write
//     timeout gives each next request on the connection its deadline anew.
func serviceConfig(c serveConfig, log *slog.Logger) httpservice.Config {
	return httpservice.Config{
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		RequestTimeout:    requestTimeout(c),
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		MaxAPIConns:       c.MaxAPIConns,
		Logger:            log,
	}
}

// requestTimeout is the most one API request may take from its first byte to
// its answer's last: its headers, the longest wait a request may ask for (a
// long poll or a connect), and two write timeouts (a send to a slow peer, and
// the answer to a slow client). With the defaults: 10s + 2m + 20s. Flags
// long enough to overflow the sum give the longest duration there is, not a
// negative one (which net/http reads as no timeout at all).
func requestTimeout(c serveConfig) time.Duration {
	sum := time.Duration(0)
	for _, d := range []time.Duration{c.ReadHeaderTimeout, max(c.MaxWait, c.MaxConnectTimeout), c.WriteTimeout, c.WriteTimeout} {
		if d > math.MaxInt64-sum {
			return math.MaxInt64
		}
		sum += d
	}
	return sum
}

// hostOf returns the host part of a HOST:PORT.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// allowedHosts is the Host allow-list: --allowed-hosts, plus the --addr host
// and the bound address when they name one interface. An unspecified
// address (0.0.0.0, ::) is never a Host: a browser that sends it was pointed
// at 0.0.0.0 by some page, which is an attack, not a user.
func allowedHosts(c serveConfig, bound net.Addr) []string {
	hosts := append([]string(nil), c.AllowedHosts...)
	for _, h := range []string{hostOf(c.Addr), hostOf(bound.String())} {
		if h != "" && !isUnspecified(h) && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// checkExposure refuses, before anything is bound, to serve a host that is
// not a loopback address or "localhost" without a token: every interface
// ("", 0.0.0.0, ::), another address of the machine, or a name (which is not
// looked up here).
func checkExposure(c serveConfig) error {
	host := hostOf(c.Addr)
	if c.Token != "" || isLoopbackHost(host) {
		return nil
	}
	return exposureError(c.Addr)
}

// checkBound repeats the check on the address actually bound, in case
// localhost resolves to something else on this machine.
func checkBound(c serveConfig, bound net.Addr) error {
	tcp, ok := bound.(*net.TCPAddr)
	if c.Token != "" || (ok && tcp.IP.IsLoopback()) {
		return nil
	}
	return exposureError(fmt.Sprintf("%s (bound %s)", c.Addr, bound))
}

func exposureError(addr string) error {
	return fmt.Errorf("--addr %s can be reached from other machines and no token is set: anyone who reaches it could open connections from this host. "+
		"Either set a token (--token-file FILE or SOCKMAN_TOKEN; clients then send Authorization: Bearer <token>), "+
		"or listen on loopback only (--addr 127.0.0.1:8080)", addr)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
