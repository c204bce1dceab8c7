package sockets_test

// Fault tests: real loopback peers misbehave (reset, half-close, read or
// write slowly, stop reading, never answer) while a real API over a real
// registry serves them, and each test checks both the bytes and what the API
// reports. The integrity test mixes such faults into a thousand streams.
//
// These tests live outside package sockets so that they can drive the
// engine through the HTTP API (package api imports sockets).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/internal/testnet"
	"github.com/sockman/sockman/sockets"
)

// faultGuard bounds every wait in these tests. It is a failure guard only:
// no test asserts that anything is faster than it.
const faultGuard = 30 * time.Second

// faultScale is SOCKMAN_STRESS_SCALE (default 1): the stress tests multiply
// their sizes by it. CI runs them at 1 under -race; bench/load runs the
// same kinds of load at full size.
func faultScale(t testing.TB) int {
	v := os.Getenv("SOCKMAN_STRESS_SCALE")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SOCKMAN_STRESS_SCALE=%q: want a whole number from 1", v)
	}
	return n
}

// faultWaitFor polls cond until it holds, failing the test after timeout.
func faultWaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; it never happened", timeout, what)
		}
		<-tick.C
	}
}

// pollUntil polls cond until it holds or timeout passes, then says which:
// faultWaitFor for goroutines other than the test's.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// faultWaitParked waits until n reads are parked in the registry, waiting
// for data: the way to know that a long poll is waiting in the engine, not
// still on its way there.
func faultWaitParked(t testing.TB, r *sockets.Registry, n int) {
	t.Helper()
	deadline := time.NewTimer(faultGuard)
	defer deadline.Stop()
	for {
		changed := r.WaitingChanged()
		got := r.Waiting()
		if got == n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %d parked reads; %d are", faultGuard, n, got)
		}
	}
}

// uncheckedHeader, on a request, passes it by the openapi.yaml validator,
// which reads a request's whole body before the router sees any of it: a
// test that streams a body must set it.
const uncheckedHeader = "X-Test-Unchecked"

// faultConfig is what newFaultAPI builds from.
type faultConfig struct {
	cfg     sockets.Config
	opts    api.Options
	checked bool // validate every exchange against openapi.yaml
}

// faultAPI is one sockman in the test's process: a registry, the real
// router over it on a loopback httptest server, and a client of its own.
type faultAPI struct {
	t      testing.TB
	reg    *sockets.Registry
	url    string
	client *http.Client

	active atomic.Int64 // requests inside the router

	mu        sync.Mutex // guards internals
	internals []string   // every 500 the router answered: there must be none
}

// faultNoDNS resolves nothing: no test may send a DNS query anywhere.
var faultNoDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in tests")
}}

// newFaultAPI starts the API. Policies allow loopback only, so no input can
// reach another host. Cleanup ends long polls, closes the registry (every
// socket and goroutine), then the HTTP server, and fails the test if any
// request was answered 500.
func newFaultAPI(t testing.TB, edit ...func(*faultConfig)) *faultAPI {
	t.Helper()
	loopback := []string{"127.0.0.0/8", "[::1]"}
	connect, err := sockets.ParsePolicy("--allow-connect", loopback)
	if err != nil {
		t.Fatal(err)
	}
	listen, err := sockets.ParsePolicy("--allow-listen", loopback)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	fc := faultConfig{
		cfg: sockets.Config{
			BufferBytes:   1 << 20,
			WriteTimeout:  10 * time.Second,
			ConnectPolicy: connect,
			ListenPolicy:  listen,
			Resolver:      faultNoDNS,
			Logger:        quiet,
		},
		opts:    api.Options{MaxBody: 16 << 20, MaxWait: time.Minute, OpenAPI: sockman.OpenAPI, Logger: quiet},
		checked: true,
	}
	for _, e := range edit {
		e(&fc)
	}
	a := &faultAPI{t: t, reg: sockets.New(fc.cfg)}
	router := api.New(a.reg, fc.opts)
	var checked http.Handler = router
	if fc.checked {
		v, err := contract.New(sockman.OpenAPI)
		if err != nil {
			t.Fatalf("loading openapi.yaml: %v", err)
		}
		checked = v.Middleware(func(err error) { t.Errorf("openapi.yaml: %v", err) })(router)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.active.Add(1)
		defer a.active.Add(-1)
		h := checked
		if r.Header.Get(uncheckedHeader) != "" {
			h = router
		}
		h.ServeHTTP(&faultStatusWriter{ResponseWriter: w, a: a, r: r}, r)
	}))
	base, cancel := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	a.url = srv.URL
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	a.client = &http.Client{Transport: tr, Timeout: 2 * faultGuard}
	t.Cleanup(func() {
		cancel() // long polls answer at once, as at a shutdown
		a.reg.Close()
		srv.Close()
		tr.CloseIdleConnections()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, s := range a.internals {
			t.Errorf("the API answered 500: %s", s)
		}
	})
	return a
}

// faultStatusWriter notes every 500 the router writes, including those to
// a client that has gone.
type faultStatusWriter struct {
	http.ResponseWriter
	a *faultAPI
	r *http.Request
}

func (w *faultStatusWriter) WriteHeader(code int) {
	if code == http.StatusInternalServerError {
		w.a.mu.Lock()
		w.a.internals = append(w.a.internals, w.r.Method+" "+w.r.URL.RequestURI())
		w.a.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// faultResp is a finished exchange with its whole body read.
type faultResp struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

// try sends a request and reads the whole answer; it does not touch the
// test, so any goroutine may call it. body is nil, []byte (sent as
// application/octet-stream), an io.Reader (sent chunked, octet-stream), or
// anything else (sent as JSON); header holds name, value pairs.
func (a *faultAPI) try(ctx context.Context, method, path string, body any, header ...string) (faultResp, error) {
	var (
		r  io.Reader
		ct string
	)
	switch b := body.(type) {
	case nil:
	case []byte:
		r, ct = bytes.NewReader(b), "application/octet-stream"
	case io.Reader:
		r, ct = b, "application/octet-stream"
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return faultResp{}, err
		}
		r, ct = bytes.NewReader(js), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, r)
	if err != nil {
		return faultResp{}, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := a.client.Do(req)
	if err != nil {
		return faultResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return faultResp{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return faultResp{method: method, path: path, status: res.StatusCode, header: res.Header, body: b}, nil
}

// call is try for the test's goroutine: a transport error fails the test.
func (a *faultAPI) call(method, path string, body any, header ...string) faultResp {
	a.t.Helper()
	res, err := a.try(context.Background(), method, path, body, header...)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}

// apiReport is an answer other than the one wanted: the API reported a
// failure (as opposed to a transport error, which is the test's).
type apiReport struct {
	resp faultResp
	want int
}

func (e *apiReport) Error() string {
	return fmt.Sprintf("%s %s: got status %d, want %d; body: %.300s", e.resp.method, e.resp.path, e.resp.status, e.want, e.resp.body)
}

// check returns an *apiReport unless the answer has status code.
func (r faultResp) check(code int) error {
	if r.status != code {
		return &apiReport{r, code}
	}
	return nil
}

// want fails the test unless the answer has status code; it returns r.
func (r faultResp) want(t testing.TB, code int) faultResp {
	t.Helper()
	if err := r.check(code); err != nil {
		t.Fatal(err)
	}
	return r
}

// decode decodes a JSON answer into v.
func (r faultResp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s %s: decoding %T: %v; body: %.300s", r.method, r.path, v, err, r.body)
	}
}

// problem checks that the answer is a problem+json document of status code
// and type urn:sockman:problem:slug whose detail holds every inDetail, and
// returns the detail.
func (r faultResp) problem(t testing.TB, code int, slug string, inDetail ...string) string {
	t.Helper()
	r.want(t, code)
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "application/problem+json" {
		t.Fatalf("%s %s: got Content-Type %q, want application/problem+json", r.method, r.path, mt)
	}
	var p api.Problem
	r.decode(t, &p)
	if p.Status != code || p.Type != "urn:sockman:problem:"+slug || p.Detail == "" {
		t.Fatalf("%s %s: got problem %+v, want status %d, type urn:sockman:problem:%s and a detail", r.method, r.path, p, code, slug)
	}
	for _, s := range inDetail {
		if !strings.Contains(p.Detail, s) {
			t.Errorf("%s %s: got detail %q, want it to say %q", r.method, r.path, p.Detail, s)
		}
	}
	return p.Detail
}

// socket returns GET /sockets/{id}.
func (a *faultAPI) socket(t testing.TB, id string) api.Socket {
	t.Helper()
	var s api.Socket
	a.call(http.MethodGet, "/sockets/"+id, nil).want(t, http.StatusOK).decode(t, &s)
	return s
}

// waitSocket polls GET /sockets/{id} until cond holds and returns the socket.
func (a *faultAPI) waitSocket(t testing.TB, id, what string, cond func(api.Socket) bool) api.Socket {
	t.Helper()
	var s api.Socket
	faultWaitFor(t, faultGuard, "socket "+id+" "+what, func() bool {
		s = a.socket(t, id)
		return cond(s)
	})
	return s
}

// pairKinds are the two ways a socket comes to be; most fault tests run
// once for each.
var pairKinds = []string{"accepted", "client"}

// pair returns a connected socket of the given kind and the peer's end of
// it, closed with the test. peerControl, when set, tunes the peer's socket
// before it connects (or before its listener accepts).
func (a *faultAPI) pair(t testing.TB, kind string, peerControl func(fd int)) (api.Socket, *net.TCPConn) {
	t.Helper()
	control := func(_, _ string, c syscall.RawConn) error {
		if peerControl != nil {
			return c.Control(func(fd uintptr) { peerControl(int(fd)) })
		}
		return nil
	}
	switch kind {
	case "accepted":
		var srv api.Server
		a.call(http.MethodPost, "/servers", map[string]any{"port": 0}).want(t, http.StatusCreated).decode(t, &srv)
		d := net.Dialer{Timeout: faultGuard, Control: control}
		c, err := d.Dial("tcp", srv.Address)
		if err != nil {
			t.Fatalf("peer dialling %s: %v", srv.Address, err)
		}
		t.Cleanup(func() { c.Close() })
		peer := c.(*net.TCPConn)
		var found api.Socket
		faultWaitFor(t, faultGuard, "the server to accept the peer", func() bool {
			var l api.SocketList
			a.call(http.MethodGet, "/sockets?server_id="+srv.ID, nil).want(t, http.StatusOK).decode(t, &l)
			for _, s := range l.Sockets {
				if s.RemoteAddress == peer.LocalAddr().String() {
					found = s
					return true
				}
			}
			return false
		})
		return found, peer
	case "client":
		lc := net.ListenConfig{Control: control}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("peer listening: %v", err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		var s api.Socket
		a.call(http.MethodPost, "/clients", map[string]any{"host": "127.0.0.1", "port": port}).want(t, http.StatusCreated).decode(t, &s)
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(faultGuard))
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("peer accepting: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return s, c.(*net.TCPConn)
	}
	t.Fatalf("unknown kind %q", kind)
	return api.Socket{}, nil
}

// readAll reads socket id with a cursor and long polls until it is closed
// and drained, and returns the bytes. raw reads octet-stream answers (state
// in Sockman-State), else JSON in the given encoding. A non-200 answer
// is an *apiReport: the API reported a failure.
func (a *faultAPI) readAll(ctx context.Context, id string, raw bool, encoding string) ([]byte, error) {
	return a.readUntil(ctx, id, raw, encoding, -1)
}

// readUntil is readAll that also stops once it has at least stop bytes
// (when stop is not negative).
func (a *faultAPI) readUntil(ctx context.Context, id string, raw bool, encoding string, stop int) ([]byte, error) {
	var (
		data   []byte
		cursor uint64
	)
	for stop < 0 || len(data) < stop {
		q := fmt.Sprintf("/sockets/%s/messages?after=%d&wait=5s", id, cursor)
		if encoding != "" {
			q += "&encoding=" + encoding
		}
		if raw {
			res, err := a.try(ctx, http.MethodGet, q, nil, "Accept", "application/octet-stream")
			if err != nil {
				return data, err
			}
			if err := res.check(http.StatusOK); err != nil {
				return data, err
			}
			next, err := strconv.ParseUint(res.header.Get("Sockman-Cursor"), 10, 64)
			if err != nil {
				return data, fmt.Errorf("%s: Sockman-Cursor %q: %v", q, res.header.Get("Sockman-Cursor"), err)
			}
			data, cursor = append(data, res.body...), next
			if len(res.body) == 0 && res.header.Get("Sockman-State") == sockets.StateClosed {
				return data, nil
			}
			continue
		}
		res, err := a.try(ctx, http.MethodGet, q, nil)
		if err != nil {
			return data, err
		}
		if err := res.check(http.StatusOK); err != nil {
			return data, err
		}
		var l api.MessageList
		if err := json.Unmarshal(res.body, &l); err != nil {
			return data, fmt.Errorf("%s: %v", q, err)
		}
		for _, m := range l.Messages {
			b, err := faultDecode(m)
			if err != nil {
				return data, fmt.Errorf("%s: message %d: %v", q, m.Seq, err)
			}
			data = append(data, b...)
		}
		cursor = l.Cursor
		if len(l.Messages) == 0 && l.State == sockets.StateClosed {
			return data, nil
		}
	}
	return data, nil
}

// faultDecode returns the bytes of a message, checking its size.
func faultDecode(m api.Message) ([]byte, error) {
	b, err := m.Bytes()
	if err == nil && len(b) != m.Size {
		err = fmt.Errorf("size %d, but data holds %d bytes", m.Size, len(b))
	}
	return b, err
}

// faultBytes returns n pseudo-random bytes that differ with seed.
func faultBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return b
}

// sum is a short SHA-256 for messages.
func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// faultShrinkSendBuffer sets SO_SNDBUF of sockman's end of socket s to its
// minimum (and so turns off its autotuning), so that a send blocks after a
// few KiB instead of megabytes. sockman's end is a descriptor of this very
// process: it is found by its addresses.
func faultShrinkSendBuffer(t testing.TB, s api.Socket) {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	name := func(sa syscall.Sockaddr) string {
		if in, ok := sa.(*syscall.SockaddrInet4); ok {
			return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)).String()
		}
		return ""
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		local, err1 := syscall.Getsockname(fd)
		remote, err2 := syscall.Getpeername(fd)
		if err1 != nil || err2 != nil || name(local) != s.LocalAddress || name(remote) != s.RemoteAddress {
			continue
		}
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1); err != nil {
			t.Fatalf("SO_SNDBUF on %s: %v", s.ID, err)
		}
		return
	}
	t.Fatalf("no descriptor of this process is socket %s (%s -> %s)", s.ID, s.LocalAddress, s.RemoteAddress)
}

// smallReceiveBuffer makes a peer's receive buffer as small as the kernel allows.
func smallReceiveBuffer(fd int) {
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1)
}

// sendResult is the end of a send started in a goroutine.
type sendResult struct {
	res faultResp
	err error
}

func (a *faultAPI) sendAsync(ctx context.Context, id string, body any) <-chan sendResult {
	out := make(chan sendResult, 1)
	go func() {
		res, err := a.try(ctx, http.MethodPost, "/sockets/"+id+"/messages", body)
		out <- sendResult{res, err}
	}()
	return out
}

// waitSend waits for a send started by sendAsync: a send that does not end
// is the bug these tests look for.
func waitSend(t testing.TB, c <-chan sendResult) faultResp {
	t.Helper()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("send: %v", r.err)
		}
		return r.res
	case <-time.After(faultGuard):
		t.Fatalf("send still running after %v: it hangs", faultGuard)
	}
	return faultResp{}
}

// peerReadN reads exactly n bytes from c within the guard.
func peerReadN(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(faultGuard))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("peer reading %d bytes: %v", n, err)
	}
	return b
}

// peerReadToEOF reads c until sockman closes it and returns what came; a
// reset instead of a clean close fails the test.
func peerReadToEOF(t testing.TB, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(faultGuard))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("peer reading to the end: %v after %d bytes, want a clean close", err, len(b))
	}
	return b
}

func TestFaultPeerResetKeepsDataAndReportsReset(t *testing.T) {
	for _, kind := range pairKinds {
		t.Run(kind, func(t *testing.T) {
			a := newFaultAPI(t)
			s, peer := a.pair(t, kind, nil)
			payload := faultBytes(1, 48<<10)
			if _, err := peer.Write(payload); err != nil {
				t.Fatalf("peer write: %v", err)
			}
			a.waitSocket(t, s.ID, "to receive the payload", func(s api.Socket) bool { return s.BytesReceived == int64(len(payload)) })

			peer.SetLinger(0) // close sends RST, not FIN
			peer.Close()
			got := a.waitSocket(t, s.ID, "to close", func(s api.Socket) bool { return s.State == sockets.StateClosed })
			if got.CloseReason != sockets.ReasonPeerReset {
				t.Errorf("close_reason: got %q, want %q", got.CloseReason, sockets.ReasonPeerReset)
			}
			// What came before the reset is all there, byte for byte.
			data, err := a.readAll(context.Background(), s.ID, false, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, payload) {
				t.Fatalf("read after the reset: got %d bytes (sha %s), want the %d sent (sha %s)", len(data), sum(data), len(payload), sum(payload))
			}
			a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", map[string]string{"data": "late"}).
				problem(t, http.StatusConflict, "socket-closed", sockets.ReasonPeerReset)
		})
	}
}

func TestFaultPeerHalfCloseClosesBothWaysAndKeepsData(t *testing.T) {
	for _, kind := range pairKinds {
		t.Run(kind, func(t *testing.T) {
			a := newFaultAPI(t)
			s, peer := a.pair(t, kind, nil)
			payload := faultBytes(2, 40<<10)
			if _, err := peer.Write(payload); err != nil {
				t.Fatalf("peer write: %v", err)
			}
			if err := peer.CloseWrite(); err != nil {
				t.Fatalf("peer half-close: %v", err)
			}
			// A long poll from the start returns the data, then sees the close.
			data, err := a.readAll(context.Background(), s.ID, kind == "client", "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, payload) {
				t.Fatalf("read: got %d bytes (sha %s), want the %d sent (sha %s)", len(data), sum(data), len(payload), sum(payload))
			}
			got := a.socket(t, s.ID)
			if got.State != sockets.StateClosed || got.CloseReason != sockets.ReasonPeerClosed || got.ClosedAt == nil {
				t.Errorf("socket: got state %q, close_reason %q, closed_at %v; want closed, %q, set", got.State, got.CloseReason, got.ClosedAt, sockets.ReasonPeerClosed)
			}
			// sockman closed its side too: the peer's read ends cleanly.
			if rest := peerReadToEOF(t, peer); len(rest) != 0 {
				t.Errorf("peer: got %d unexpected bytes before EOF", len(rest))
			}
			a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", []byte("late")).
				problem(t, http.StatusConflict, "socket-closed", sockets.ReasonPeerClosed)
		})
	}
}

func TestFaultSlowPeerWriterIsReadAsItComes(t *testing.T) {
	a := newFaultAPI(t)
	s, peer := a.pair(t, "accepted", nil)
	// 1 KiB/s: 128 bytes every 125 ms, 2 KiB in all. The peer also waits
	// for each piece to be read before it writes the next, so that every
	// long poll has exactly one piece to answer with.
	payload := faultBytes(3, 2<<10)
	read := make(chan struct{}, 1)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		tick := time.NewTicker(125 * time.Millisecond)
		defer tick.Stop()
		for p := payload; len(p) > 0; p = p[128:] {
			<-tick.C
			if _, err := peer.Write(p[:128]); err != nil {
				return
			}
			select {
			case <-read:
			case <-time.After(faultGuard):
				return
			}
		}
		peer.CloseWrite()
	}()
	defer func() { <-wrote }()
	var (
		data   []byte
		cursor uint64
		polls  int // answers that brought data
	)
	for {
		var l api.MessageList
		a.call(http.MethodGet, fmt.Sprintf("/sockets/%s/messages?after=%d&wait=30s", s.ID, cursor), nil).
			want(t, http.StatusOK).decode(t, &l)
		for _, m := range l.Messages {
			b, err := faultDecode(m)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, b...)
		}
		if len(l.Messages) > 0 {
			polls++
			read <- struct{}{}
		}
		cursor = l.Cursor
		if l.State == sockets.StateClosed && len(l.Messages) == 0 {
			break
		}
	}
	if !bytes.Equal(data, payload) {
		t.Fatalf("read: got %d bytes (sha %s), want %d (sha %s)", len(data), sum(data), len(payload), sum(payload))
	}
	// Each long poll answered when its piece arrived, not when its 30 s
	// wait ran out (sixteen of those would outlast the guard).
	if polls != len(payload)/128 {
		t.Errorf("long polls that brought data: got %d, want %d, one per piece", polls, len(payload)/128)
	}
	if got := a.socket(t, s.ID); got.CloseReason != sockets.ReasonPeerClosed {
		t.Errorf("close_reason: got %q, want %q", got.CloseReason, sockets.ReasonPeerClosed)
	}
}

func TestFaultSlowPeerReaderGetsEverything(t *testing.T) {
	// The peer takes 1 KiB/s, through the smallest buffers both ends allow,
	// so the send waits on it for seconds. It keeps taking data, so the send
	// must not time out (--write-timeout is about a peer that takes none).
	// The peer makes progress about every second (when its reads open the
	// TCP window); the whole send takes about 9 s, longer than the 5 s
	// write timeout.
	a := newFaultAPI(t, func(c *faultConfig) { c.cfg.WriteTimeout = 5 * time.Second })
	s, peer := a.pair(t, "client", smallReceiveBuffer)
	faultShrinkSendBuffer(t, s)
	payload := faultBytes(4, 12<<10)

	got := make(chan []byte, 1)
	go func() {
		var b []byte
		buf := make([]byte, 256)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		peer.SetReadDeadline(time.Now().Add(faultGuard))
		for range tick.C {
			n, err := io.ReadFull(peer, buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- b
	}()
	sent := a.sendAsync(context.Background(), s.ID, payload)
	// The API answers other requests while the send waits on the peer.
	a.call(http.MethodGet, "/healthz", nil).want(t, http.StatusOK)
	a.call(http.MethodGet, "/sockets/"+s.ID, nil).want(t, http.StatusOK)

	var r api.SendResult
	waitSend(t, sent).want(t, http.StatusOK).decode(t, &r)
	if r.Bytes != int64(len(payload)) {
		t.Fatalf("send: got bytes %d, want %d", r.Bytes, len(payload))
	}
	a.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)
	var data []byte
	select {
	case data = <-got:
	case <-time.After(faultGuard):
		t.Fatalf("peer still reading after %v", faultGuard)
	}
	if !bytes.Equal(data, payload) {
		t.Fatalf("peer got %d bytes (sha %s), want %d (sha %s)", len(data), sum(data), len(payload), sum(payload))
	}
}

func TestFaultStalledPeerMakesSendTimeOut(t *testing.T) {
	for _, kind := range pairKinds {
		t.Run(kind, func(t *testing.T) {
			a := newFaultAPI(t, func(c *faultConfig) { c.cfg.WriteTimeout = 500 * time.Millisecond })
			s, peer := a.pair(t, kind, smallReceiveBuffer)
			faultShrinkSendBuffer(t, s)
			first, second := faultBytes(5, 256<<10), faultBytes(6, 64<<10)

			// The first send blocks on the peer; a second one waits behind
			// it, and the API answers other requests meanwhile.
			firstDone := a.sendAsync(context.Background(), s.ID, first)
			a.waitSocket(t, s.ID, "to start sending", func(s api.Socket) bool { return s.BytesSent > 0 })
			secondDone := a.sendAsync(context.Background(), s.ID, second)
			a.call(http.MethodGet, "/healthz", nil).want(t, http.StatusOK)

			// Both end, with a clear error that says how much went out.
			n1 := sentBeforeTimeout(t, waitSend(t, firstDone), len(first))
			n2 := sentBeforeTimeout(t, waitSend(t, secondDone), len(second))
			if n1 == 0 {
				t.Fatalf("first send: got 0 bytes sent, want the kernel buffers' worth")
			}
			got := a.socket(t, s.ID)
			if got.State != sockets.StateConnected || got.BytesSent != n1+n2 {
				t.Fatalf("socket after the timeouts: got state %q, bytes_sent %d; want connected, %d", got.State, got.BytesSent, n1+n2)
			}
			// Exactly those bytes reach the peer once it reads again, and a
			// later send follows them with nothing in between.
			want := append(append([]byte(nil), first[:n1]...), second[:n2]...)
			if b := peerReadN(t, peer, len(want)); !bytes.Equal(b, want) {
				t.Fatalf("peer: got sha %s, want the %d bytes the API said it sent (sha %s)", sum(b), len(want), sum(want))
			}
			a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", map[string]string{"data": "after"}).want(t, http.StatusOK)
			if b := peerReadN(t, peer, 5); string(b) != "after" {
				t.Fatalf("peer after the timeout: got %q, want %q", b, "after")
			}
		})
	}
}

// sentBeforeTimeout checks that a send answered 504 write-timeout and
// returns how many bytes its detail says went out.
func sentBeforeTimeout(t testing.TB, res faultResp, size int) int64 {
	t.Helper()
	detail := res.problem(t, http.StatusGatewayTimeout, "write-timeout", "took no data for 500ms")
	var n int64
	if _, err := fmt.Sscanf(detail[strings.LastIndex(detail, "; ")+2:], "%d bytes were sent", &n); err != nil {
		t.Fatalf("detail %q: want it to end with how many bytes were sent: %v", detail, err)
	}
	if n < 0 || n >= int64(size) {
		t.Fatalf("bytes sent before the timeout: got %d, want from 0 to %d", n, size-1)
	}
	return n
}

func TestFaultConnectRefused(t *testing.T) {
	a := newFaultAPI(t)
	port := testnet.RefusedPort(t)
	a.call(http.MethodPost, "/clients", map[string]any{"host": "127.0.0.1", "port": port}).
		problem(t, http.StatusBadGateway, "connect-failed", "refused", strconv.Itoa(port))
	var l api.SocketList
	a.call(http.MethodGet, "/clients", nil).want(t, http.StatusOK).decode(t, &l)
	if len(l.Sockets) != 0 {
		t.Fatalf("clients after a refused connect: got %d, want 0", len(l.Sockets))
	}
}

func TestFaultConnectTimesOut(t *testing.T) {
	a := newFaultAPI(t, func(c *faultConfig) { c.cfg.MaxSockets = 1 })
	port := testnet.UnansweredPort(t)
	a.call(http.MethodPost, "/clients", map[string]any{"host": "127.0.0.1", "port": port, "timeout_ms": 300}).
		problem(t, http.StatusGatewayTimeout, "connect-timeout", "did not answer within 300ms")
	// Nothing is registered, and the slot the dial held came back: with
	// --max-sockets 1, a connect elsewhere still works.
	var l api.SocketList
	a.call(http.MethodGet, "/clients", nil).want(t, http.StatusOK).decode(t, &l)
	if len(l.Sockets) != 0 {
		t.Fatalf("clients after a timed-out connect: got %d, want 0", len(l.Sockets))
	}
	a.pair(t, "client", nil)
}

func TestFaultPortInUse(t *testing.T) {
	a := newFaultAPI(t)
	// Taken by someone else.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	a.call(http.MethodPost, "/servers", map[string]any{"port": port}).
		problem(t, http.StatusConflict, "address-in-use", strconv.Itoa(port))

	// Taken by sockman itself: the first server keeps working.
	var srv api.Server
	a.call(http.MethodPost, "/servers", map[string]any{"port": 0}).want(t, http.StatusCreated).decode(t, &srv)
	_, p, _ := net.SplitHostPort(srv.Address)
	mine, _ := strconv.Atoi(p)
	a.call(http.MethodPost, "/servers", map[string]any{"host": "127.0.0.1", "port": mine}).
		problem(t, http.StatusConflict, "address-in-use")
	var l api.ServerList
	a.call(http.MethodGet, "/servers", nil).want(t, http.StatusOK).decode(t, &l)
	if len(l.Servers) != 1 || l.Servers[0].State != sockets.StateListening {
		t.Fatalf("servers: got %+v, want srv-1 alone, listening", l.Servers)
	}
	c, err := net.DialTimeout("tcp", srv.Address, faultGuard)
	if err != nil {
		t.Fatalf("dialling the first server: %v", err)
	}
	defer c.Close()
	faultWaitFor(t, faultGuard, "the first server to accept", func() bool {
		var s api.Server
		a.call(http.MethodGet, "/servers/"+srv.ID, nil).want(t, http.StatusOK).decode(t, &s)
		return s.Accepted == 1
	})
}

func TestFaultClientGoneMidLongPollLosesNothing(t *testing.T) {
	for _, accept := range []string{"application/json", "application/octet-stream"} {
		t.Run(accept, func(t *testing.T) {
			a := newFaultAPI(t)
			s, peer := a.pair(t, "accepted", nil)
			peer.Write([]byte("one"))
			a.waitSocket(t, s.ID, "to receive one", func(s api.Socket) bool { return s.BytesReceived == 3 })

			// A long poll past message 1, abandoned while it waits.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := a.try(ctx, http.MethodGet, "/sockets/"+s.ID+"/messages?after=1&wait=60s", nil, "Accept", accept)
				done <- err
			}()
			faultWaitParked(t, a.reg, 1)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("abandoned poll: got %v, want the client's own cancellation", err)
			}
			// The handler ended with the client, not with the wait.
			faultWaitFor(t, faultGuard, "the abandoned poll's handler to return", func() bool { return a.active.Load() == 0 })

			// What arrives next is read with the same cursor; nothing is lost.
			peer.Write([]byte("two"))
			var l api.MessageList
			a.call(http.MethodGet, "/sockets/"+s.ID+"/messages?after=1&wait=30s", nil).want(t, http.StatusOK).decode(t, &l)
			if len(l.Messages) != 1 || l.Messages[0].Seq != 2 || l.Messages[0].Data != "two" {
				t.Fatalf("read after the abandoned poll: got %+v, want seq 2 \"two\"", l.Messages)
			}
		})
	}
}

func TestFaultClientGoneMidSend(t *testing.T) {
	a := newFaultAPI(t)
	s, peer := a.pair(t, "client", nil)
	first := faultBytes(6, 64<<10)

	// A raw send streamed from a pipe: half of it goes out, then the client
	// goes away in the middle of its body.
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.try(ctx, http.MethodPost, "/sockets/"+s.ID+"/messages", io.Reader(pr), uncheckedHeader, "streamed body")
		done <- err
	}()
	go pw.Write(first) // ends when the transport stops reading the pipe
	if b := peerReadN(t, peer, len(first)); !bytes.Equal(b, first) {
		t.Fatalf("peer: got sha %s, want the streamed bytes (sha %s)", sum(b), sum(first))
	}
	cancel()
	pw.CloseWithError(errors.New("client gone")) // else the transport waits for the body
	if err := <-done; err == nil {
		t.Fatalf("abandoned send: got an answer, want the client's own error")
	}
	faultWaitFor(t, faultGuard, "the abandoned send's handler to return", func() bool { return a.active.Load() == 0 })

	// The socket is fine, counts what went out, and the next send follows
	// the first bytes with nothing in between.
	got := a.socket(t, s.ID)
	if got.State != sockets.StateConnected || got.BytesSent != int64(len(first)) {
		t.Fatalf("socket: got state %q, bytes_sent %d; want connected, %d", got.State, got.BytesSent, len(first))
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", []byte("next")).want(t, http.StatusOK)
	if b := peerReadN(t, peer, 4); string(b) != "next" {
		t.Fatalf("peer: got %q, want %q", b, "next")
	}
}

func TestFaultMalformedChunkedSendIsABadRequest(t *testing.T) {
	a := newFaultAPI(t)
	s, peer := a.pair(t, "accepted", nil)
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(a.url, "http://"), faultGuard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One good chunk, then a chunk size that is not hex: the client is
	// still there to read the answer, which must be its fault, not ours.
	fmt.Fprintf(c, "POST /sockets/%s/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"+
		"Transfer-Encoding: chunked\r\n%s: raw\r\n\r\n5\r\nhello\r\nZZ\r\n", s.ID, uncheckedHeader)
	c.SetReadDeadline(time.Now().Add(faultGuard))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	faultResp{method: http.MethodPost, path: "/sockets/" + s.ID + "/messages", status: res.StatusCode, header: res.Header, body: body}.
		problem(t, http.StatusBadRequest, "bad-request", "5 bytes were sent")
	if b := peerReadN(t, peer, 5); string(b) != "hello" {
		t.Fatalf("peer: got %q, want the good chunk %q", b, "hello")
	}
}

func TestFaultDeleteDuringLongPoll(t *testing.T) {
	for _, kind := range pairKinds {
		t.Run(kind, func(t *testing.T) {
			a := newFaultAPI(t)
			s, peer := a.pair(t, kind, nil)
			polled := make(chan sendResult, 1)
			go func() {
				res, err := a.try(context.Background(), http.MethodGet, "/sockets/"+s.ID+"/messages?after=0&wait=60s", nil)
				polled <- sendResult{res, err}
			}()
			faultWaitParked(t, a.reg, 1)
			a.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)

			// The poll answers at once, saying the socket is closed.
			var l api.MessageList
			waitSend(t, polled).want(t, http.StatusOK).decode(t, &l)
			if l.State != sockets.StateClosed || len(l.Messages) != 0 || l.Cursor != 0 {
				t.Fatalf("poll cut by DELETE: got state %q, %d messages, cursor %d; want closed, none, 0", l.State, len(l.Messages), l.Cursor)
			}
			if rest := peerReadToEOF(t, peer); len(rest) != 0 {
				t.Fatalf("peer: got %d bytes, want a clean close", len(rest))
			}
			a.call(http.MethodGet, "/sockets/"+s.ID+"/messages", nil).problem(t, http.StatusNotFound, "socket-not-found")
		})
	}
}

// The integrity test.
//
// A stream is one payload carried over one socket in one direction: in (a
// peer writes, the API reads) or out (the API sends, a peer reads). Faults
// are mixed in. Every stream must either arrive byte for byte (SHA-256) or
// end in a state the API reports as an error; a stream cut short but
// reported as fine is a loss, and fails the test. So does a fault-free
// stream that does not arrive whole and reported fine, and any stream whose
// bytes are not a prefix of what was sent (corruption, reordering).

// Faults mixed into the streams.
const (
	faultPeerReset   = "peer reset"           // in, out: the peer resets half way
	faultAPIDelete   = "deleted mid-stream"   // in: the reader deletes the socket half way
	faultDrop        = "drop_oldest overflow" // in: a 4 KiB drop_oldest buffer, read late
	faultHalfClose   = "peer half-close"      // out: the peer half-closes half way
	faultClientAbort = "client gone mid-send" // out: a raw send's client goes away mid-body
)

// stream is one planned stream and, once run, what came of it.
type stream struct {
	n       int
	in      bool
	kind    string // accepted or client
	fault   string
	payload []byte
	chunks  []int  // write or send sizes, summing to len(payload)
	raw     bool   // read or send raw octet-stream rather than JSON
	enc     string // JSON encoding: of reads (auto, base64, hex) or sends (utf8, base64, hex)

	got    []byte // what arrived at the far end
	report string // "" when every API answer said fine, else what the API reported
	err    error  // a failure of the test itself (transport error, broken protocol)
}

func (s *stream) String() string {
	dir := "out"
	if s.in {
		dir = "in"
	}
	return fmt.Sprintf("stream %d (%s, %s, %d bytes in %d chunks, raw %v, enc %q, fault %q)",
		s.n, dir, s.kind, len(s.payload), len(s.chunks), s.raw, s.enc, s.fault)
}

// planStreams makes count streams from seed. maxBytes bounds a payload and
// maxChunk a write or send.
func planStreams(seed uint64, count, maxBytes, maxChunk int) []*stream {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	list := make([]*stream, count)
	for i := range list {
		s := &stream{n: i, in: i%2 == 0, kind: pairKinds[rng.IntN(2)], raw: rng.IntN(3) == 0}
		size := rng.IntN(maxBytes + 1)
		if rng.IntN(4) == 0 { // text: valid UTF-8 however it is cut, with what JSON escapes
			const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \"\\<>&\n\t\x01\x7f{}[]:,"
			s.payload = make([]byte, size)
			for j := range s.payload {
				s.payload[j] = alphabet[rng.IntN(len(alphabet))]
			}
		} else {
			s.payload = faultBytes(seed+uint64(i), size)
		}
		for left := size; left > 0; {
			n := min(left, 1+rng.IntN(maxChunk))
			s.chunks = append(s.chunks, n)
			left -= n
		}
		if s.in {
			s.enc = []string{"", "", "base64", "hex"}[rng.IntN(4)]
		} else {
			s.enc = []string{"base64", "hex"}[rng.IntN(2)]
			if s.payload != nil && utf8.Valid(s.payload) && rng.IntN(2) == 0 {
				s.enc = "utf8"
			}
		}
		if rng.IntN(10) < 3 && len(s.chunks) >= 2 {
			faults := []string{faultPeerReset, faultHalfClose, faultClientAbort}
			if s.in {
				faults = []string{faultPeerReset, faultAPIDelete, faultDrop}
			}
			s.fault = faults[rng.IntN(len(faults))]
		}
		list[i] = s
	}
	return list
}

// streamServers are the servers that accept the streams' peers.
type streamServers struct {
	block, drop api.Server
}

// connect opens the stream's socket and returns it with the peer's end.
func (a *faultAPI) connect(ctx context.Context, st *stream, srvs streamServers) (api.Socket, *net.TCPConn, error) {
	drop := st.fault == faultDrop
	if st.kind == "accepted" {
		srv := srvs.block
		if drop {
			srv = srvs.drop
		}
		c, err := net.DialTimeout("tcp", srv.Address, faultGuard)
		if err != nil {
			return api.Socket{}, nil, err
		}
		peer := c.(*net.TCPConn)
		var (
			found api.Socket
			ferr  error
		)
		accepted := pollUntil(faultGuard, func() bool {
			res, err := a.try(ctx, http.MethodGet, "/sockets?server_id="+srv.ID+"&state=connected", nil)
			if err == nil {
				err = res.check(http.StatusOK)
			}
			var l api.SocketList
			if err == nil {
				err = json.Unmarshal(res.body, &l)
			}
			if ferr = err; err != nil {
				return true
			}
			for _, s := range l.Sockets {
				if s.RemoteAddress == peer.LocalAddr().String() {
					found = s
					return true
				}
			}
			return false
		})
		switch {
		case ferr != nil:
			peer.Close()
			return api.Socket{}, nil, ferr
		case !accepted:
			peer.Close()
			return api.Socket{}, nil, fmt.Errorf("server %s did not accept %s within %v", srv.ID, peer.LocalAddr(), faultGuard)
		}
		return found, peer, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return api.Socket{}, nil, err
	}
	defer ln.Close()
	body := map[string]any{"host": "127.0.0.1", "port": ln.Addr().(*net.TCPAddr).Port}
	if drop {
		body["buffer_bytes"], body["overflow"] = 4096, "drop_oldest"
	}
	res, err := a.try(ctx, http.MethodPost, "/clients", body)
	if err == nil {
		err = res.check(http.StatusCreated)
	}
	if err != nil {
		return api.Socket{}, nil, err
	}
	var s api.Socket
	if err := json.Unmarshal(res.body, &s); err != nil {
		return api.Socket{}, nil, err
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(faultGuard))
	c, err := ln.Accept()
	if err != nil {
		return api.Socket{}, nil, err
	}
	return s, c.(*net.TCPConn), nil
}

// finish records an error of the stream: an *apiReport is the API
// reporting a failure; anything else is the test's own failure.
func (st *stream) fail(err error) {
	if r, ok := errors.AsType[*apiReport](err); ok {
		if st.report == "" {
			st.report = r.Error()
		}
		return
	}
	if st.err == nil {
		st.err = err
	}
}

// runIn carries a stream from a peer to the API's reader.
func (a *faultAPI) runIn(ctx context.Context, st *stream, srvs streamServers) {
	s, peer, err := a.connect(ctx, st, srvs)
	if err != nil {
		st.fail(err)
		return
	}
	defer peer.Close()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		off := 0
		peer.SetWriteDeadline(time.Now().Add(faultGuard))
		for i, n := range st.chunks {
			if st.fault == faultPeerReset && i == len(st.chunks)/2 {
				peer.SetLinger(0)
				peer.Close()
				return
			}
			if _, err := peer.Write(st.payload[off : off+n]); err != nil {
				return // the socket was deleted under the peer
			}
			off += n
		}
		peer.Close()
	}()
	defer func() { <-wrote }() // bounded by the write deadline
	if st.fault == faultDrop {
		<-wrote // read late: the small buffer overflows on the way
	}

	if st.fault == faultAPIDelete {
		st.got, err = a.readUntil(ctx, s.ID, st.raw, st.enc, len(st.payload)/2)
		if err != nil {
			st.fail(err)
			return
		}
		if err := a.deleteSocket(ctx, s.ID); err != nil {
			st.fail(err)
			return
		}
		more, err := a.readAll(ctx, s.ID, st.raw, st.enc)
		st.got = append(st.got, more...)
		if err == nil {
			st.err = fmt.Errorf("read after DELETE: got 200, want 404")
			return
		}
		st.fail(err)
		return
	}
	st.got, err = a.readAll(ctx, s.ID, st.raw, st.enc)
	if err != nil {
		st.fail(err)
		return
	}
	info, err := a.socketInfo(ctx, s.ID)
	if err != nil {
		st.fail(err)
		return
	}
	switch {
	case info.DroppedBytes > 0:
		st.report = fmt.Sprintf("dropped_bytes %d", info.DroppedBytes)
	case info.CloseReason != sockets.ReasonPeerClosed:
		st.report = "close_reason " + info.CloseReason
	}
	if err := a.deleteSocket(ctx, s.ID); err != nil {
		st.fail(err)
	}
}

// runOut carries a stream from the API's sends to a peer.
func (a *faultAPI) runOut(ctx context.Context, st *stream, srvs streamServers) {
	s, peer, err := a.connect(ctx, st, srvs)
	if err != nil {
		st.fail(err)
		return
	}
	defer peer.Close()
	half := len(st.payload) / 2
	var received atomic.Int64
	faulted := make(chan struct{}) // the peer has reset or half-closed
	read := make(chan []byte, 1)
	go func() {
		var got []byte
		buf := make([]byte, 32<<10)
		peer.SetReadDeadline(time.Now().Add(2 * faultGuard))
		for {
			n, err := peer.Read(buf)
			got = append(got, buf[:n]...)
			received.Store(int64(len(got)))
			if len(got) >= half && faulted != nil {
				switch st.fault {
				case faultPeerReset:
					peer.SetLinger(0)
					peer.Close()
					close(faulted)
					read <- got
					return
				case faultHalfClose:
					peer.CloseWrite()
					close(faulted)
					faulted = nil
				}
			}
			if err != nil {
				read <- got
				return
			}
		}
	}()

	sendErr := a.sendChunks(ctx, st, s.ID, half, &received, faulted)
	if sendErr != nil {
		st.fail(sendErr)
	}
	if st.err == nil {
		if info, err := a.socketInfo(ctx, s.ID); err != nil {
			st.fail(err)
		} else if info.State != sockets.StateConnected && st.report == "" {
			st.report = "state " + info.State + ", close_reason " + info.CloseReason
		}
		if err := a.deleteSocket(ctx, s.ID); err != nil {
			st.fail(err)
		}
	}
	select {
	case st.got = <-read:
	case <-time.After(2 * faultGuard):
		st.err = fmt.Errorf("the peer did not see the end of the stream within %v", 2*faultGuard)
	}
}

// sendChunks sends the stream's chunks and returns the first failure.
// Around the half way mark it waits for the peer's fault to land, so that
// the fault happens mid-stream and not after the last send.
func (a *faultAPI) sendChunks(ctx context.Context, st *stream, id string, half int, received *atomic.Int64, faulted <-chan struct{}) error {
	off := 0
	for i, n := range st.chunks {
		chunk := st.payload[off : off+n]
		path := "/sockets/" + id + "/messages"
		var (
			res faultResp
			err error
		)
		switch {
		case st.fault == faultClientAbort && i == len(st.chunks)/2:
			return a.abortSend(ctx, path, chunk, int64(off), received)
		case st.raw:
			res, err = a.try(ctx, http.MethodPost, path, chunk)
		default:
			data := string(chunk)
			switch st.enc {
			case "base64":
				data = base64.StdEncoding.EncodeToString(chunk)
			case "hex":
				data = hex.EncodeToString(chunk)
			}
			res, err = a.try(ctx, http.MethodPost, path, map[string]string{"data": data, "encoding": st.enc})
		}
		if err == nil {
			err = res.check(http.StatusOK)
		}
		if err != nil {
			return err
		}
		var r api.SendResult
		if err := json.Unmarshal(res.body, &r); err != nil || r.Bytes != int64(n) {
			return fmt.Errorf("send: got %s, want bytes %d", res.body, n)
		}
		off += n
		if (st.fault == faultPeerReset || st.fault == faultHalfClose) && off >= half && faulted != nil {
			select {
			case <-faulted:
			case <-time.After(faultGuard):
				return fmt.Errorf("the peer did not %s within %v", st.fault, faultGuard)
			}
			faulted = nil
			// The API must notice; if it never does, this fails the stream.
			var ierr error
			closed := pollUntil(faultGuard, func() bool {
				info, err := a.socketInfo(ctx, id)
				ierr = err
				return err != nil || info.State == sockets.StateClosed
			})
			switch {
			case ierr != nil:
				return ierr
			case !closed:
				return fmt.Errorf("socket %s still connected %v after its peer's %s", id, faultGuard, st.fault)
			}
		}
	}
	return nil
}

// abortSend streams chunk as a raw body and goes away once half of it has
// reached the peer (which had sent bytes before it). It reports the abort.
func (a *faultAPI) abortSend(ctx context.Context, path string, chunk []byte, sent int64, received *atomic.Int64) error {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.try(ctx, http.MethodPost, path, io.Reader(pr), uncheckedHeader, "streamed body")
		done <- err
	}()
	go pw.Write(chunk[:len(chunk)/2]) // ends when the pipe closes
	if !pollUntil(faultGuard, func() bool { return received.Load() >= sent+int64(len(chunk)/2) }) {
		cancel()
		pw.CloseWithError(errors.New("client gone"))
		<-done
		return fmt.Errorf("the peer got %d bytes of a streamed send, want %d", received.Load(), sent+int64(len(chunk)/2))
	}
	cancel()
	pw.CloseWithError(errors.New("client gone"))
	if err := <-done; err == nil {
		return fmt.Errorf("an abandoned send got an answer")
	}
	return &apiReport{faultResp{method: http.MethodPost, path: path, status: 0, body: []byte("the client went away mid-body")}, http.StatusOK}
}

func (a *faultAPI) socketInfo(ctx context.Context, id string) (api.Socket, error) {
	var s api.Socket
	res, err := a.try(ctx, http.MethodGet, "/sockets/"+id, nil)
	if err == nil {
		err = res.check(http.StatusOK)
	}
	if err == nil {
		err = json.Unmarshal(res.body, &s)
	}
	return s, err
}

func (a *faultAPI) deleteSocket(ctx context.Context, id string) error {
	res, err := a.try(ctx, http.MethodDelete, "/sockets/"+id, nil)
	if err == nil {
		err = res.check(http.StatusNoContent)
	}
	return err
}

func TestIntegrityUnderFaults(t *testing.T) {
	scale := faultScale(t)
	const seed = 20261129
	streams := planStreams(seed, 1000*scale, 8<<10*scale, 2<<10*scale)
	a := newFaultAPI(t, func(c *faultConfig) { c.cfg.BufferBytes = 64 << 10 })
	var srvs streamServers
	a.call(http.MethodPost, "/servers", map[string]any{"port": 0}).want(t, http.StatusCreated).decode(t, &srvs.block)
	a.call(http.MethodPost, "/servers", map[string]any{"port": 0, "buffer_bytes": 4096, "overflow": "drop_oldest"}).
		want(t, http.StatusCreated).decode(t, &srvs.drop)

	ctx := t.Context()
	work := make(chan *stream)
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			for st := range work {
				if st.in {
					a.runIn(ctx, st, srvs)
				} else {
					a.runOut(ctx, st, srvs)
				}
			}
		})
	}
	for _, st := range streams {
		work <- st
	}
	close(work)
	wg.Wait()

	var verified, reported, faulted, bytesOK int
	for _, st := range streams {
		match := bytes.Equal(st.got, st.payload)
		switch {
		case st.err != nil:
			t.Errorf("%v: %v", st, st.err)
		case !match && st.report == "":
			t.Errorf("%v: LOST: got %d bytes (sha %s), want %d (sha %s), and the API reported no error",
				st, len(st.got), sum(st.got), len(st.payload), sum(st.payload))
		case st.fault == "" && (!match || st.report != ""):
			t.Errorf("%v: a stream without faults: got %d of %d bytes (match %v), API report %q; want all of it, reported fine",
				st, len(st.got), len(st.payload), match, st.report)
		case st.fault != faultDrop && !bytes.HasPrefix(st.payload, st.got):
			t.Errorf("%v: got %d bytes that are not a prefix of what was sent: corrupted", st, len(st.got))
		}
		if st.fault != "" {
			faulted++
		}
		if match {
			verified++
			bytesOK += len(st.got)
		} else if st.report != "" {
			reported++
		}
	}
	t.Logf("%d streams (%d with faults): %d verified byte for byte (%d bytes), %d ended in an error the API reported, 0 lost",
		len(streams), faulted, verified, bytesOK, reported)
}
