//go:build linux

package sockets_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockman/sockman/api"
)

// logLines keeps the messages a registry logs, for a test to read.
type logLines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }

func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}

var retryRE = regexp.MustCompile(`^server (\S+): accept: (.*); retrying in (\S+)$`)

// retries returns, in order, the delays the accept loop of server id chose
// after a failed accept, and the accept errors.
func (l *logLines) retries(t testing.TB, id string) ([]time.Duration, []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var (
		delays []time.Duration
		errs   []string
	)
	for _, m := range l.msgs {
		sub := retryRE.FindStringSubmatch(m)
		if sub == nil || sub[1] != id {
			continue
		}
		d, err := time.ParseDuration(sub[3])
		if err != nil {
			t.Fatalf("log line %q: %v", m, err)
		}
		delays, errs = append(delays, d), append(errs, sub[2])
	}
	return delays, errs
}

// backoff is what the accept loop must wait after its nth failure in a
// row: 5 ms doubling to 1 s, as net/http does.
func backoff(n int) time.Duration {
	d := 5 * time.Millisecond
	for range n {
		d = min(2*d, time.Second)
	}
	return d
}

// exhaustFiles lowers the soft RLIMIT_NOFILE to a little above what the
// process has open, then opens /dev/null until no descriptor is left, and
// returns the filler descriptors. Cleanup closes them and restores the
// limit. RLIMIT_NOFILE is process-wide: a test that calls this must not run
// in parallel with others.
func exhaustFiles(t *testing.T) *[]int {
	t.Helper()
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	low := orig
	low.Cur = uint64(len(open) + 32)
	if low.Cur >= orig.Cur {
		t.Skipf("%d descriptors are open, too close to the soft limit %d", len(open), orig.Cur)
	}
	fillers := new([]int)
	t.Cleanup(func() {
		for _, fd := range *fillers {
			syscall.Close(fd)
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("lowering RLIMIT_NOFILE to %d: %v", low.Cur, err)
	}
	fill(t, fillers)
	return fillers
}

// fill opens /dev/null until the process has no descriptor left.
func fill(t *testing.T, fillers *[]int) {
	t.Helper()
	for range 4096 {
		fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EMFILE) {
			return
		}
		if err != nil {
			t.Fatalf("opening %s: %v", os.DevNull, err)
		}
		*fillers = append(*fillers, fd)
	}
	t.Fatalf("opened 4096 files without running out under the lowered limit")
}

// freeAll closes the fillers.
func freeAll(fillers *[]int) {
	for _, fd := range *fillers {
		syscall.Close(fd)
	}
	*fillers = nil
}

// dialWithLastFile frees one descriptor and dials addr with it: the
// connection completes in the kernel, but sockman has no descriptor to
// accept it with.
func dialWithLastFile(t *testing.T, fillers *[]int, addr string) net.Conn {
	t.Helper()
	last := len(*fillers) - 1
	syscall.Close((*fillers)[last])
	*fillers = (*fillers)[:last]
	c, err := net.DialTimeout("tcp", addr, faultGuard)
	if err != nil {
		t.Fatalf("dialling %s with the one free descriptor: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFDExhaustion runs the process out of file descriptors while a server
// has a connection waiting: the accept loop must back off (5 ms doubling to
// 1 s, never spinning), the API must stay up and answer new work with a
// clear 503, existing sockets must keep working, and all must recover when
// descriptors are freed. It does not call t.Parallel: the limit it lowers
// is the whole process's.
func TestFDExhaustion(t *testing.T) {
	logs := &logLines{}
	a := newFaultAPI(t, func(c *faultConfig) { c.cfg.Logger = slog.New(logs) })
	var srv api.Server
	a.call(http.MethodPost, "/servers", map[string]any{"port": 0}).want(t, http.StatusCreated).decode(t, &srv)
	s, peer := a.pair(t, "accepted", nil) // work that exists before the exhaustion
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	targetPort := target.Addr().(*net.TCPAddr).Port
	// Every API call below reuses this one keep-alive connection: a new one
	// would need a descriptor.
	a.call(http.MethodGet, "/healthz", nil).want(t, http.StatusOK)

	fillers := exhaustFiles(t)
	waiting := dialWithLastFile(t, fillers, srv.Address)

	// The accept loop backs off, and the delays it logs prove it: each
	// failure in a row waits twice as long as the one before, up to 1 s.
	// However slow the machine, a spinning loop could not produce this.
	var delays []time.Duration
	faultWaitFor(t, faultGuard, "the accept backoff to reach 1s", func() bool {
		delays, _ = logs.retries(t, srv.ID)
		return len(delays) > 0 && delays[len(delays)-1] == time.Second
	})
	delays, errs := logs.retries(t, srv.ID)
	for i, d := range delays {
		if d != backoff(i) {
			t.Fatalf("accept retry %d: got delay %v, want %v (all: %v)", i+1, d, backoff(i), delays)
		}
	}
	if !strings.Contains(errs[0], "too many open files") {
		t.Errorf("accept error: got %q, want it to say too many open files", errs[0])
	}

	// The API stays up, and says clearly why new work fails.
	a.call(http.MethodGet, "/healthz", nil).want(t, http.StatusOK)
	a.call(http.MethodPost, "/clients", map[string]any{"host": "127.0.0.1", "port": targetPort}).
		problem(t, http.StatusServiceUnavailable, "limit-reached", "no file descriptor", "ulimit -n")
	a.call(http.MethodPost, "/servers", map[string]any{"port": 0}).
		problem(t, http.StatusServiceUnavailable, "limit-reached", "no file descriptor")
	var got api.Server
	a.call(http.MethodGet, "/servers/"+srv.ID, nil).want(t, http.StatusOK).decode(t, &got)
	if got.State != "listening" || got.Accepted != 0 {
		t.Fatalf("server while out of descriptors: got state %q, accepted %d; want listening, 0", got.State, got.Accepted)
	}
	// Existing sockets work both ways: reading and sending need no descriptor.
	peer.Write([]byte("still here"))
	var l api.MessageList
	a.call(http.MethodGet, "/sockets/"+s.ID+"/messages?after=0&wait=30s", nil).want(t, http.StatusOK).decode(t, &l)
	if len(l.Messages) != 1 || l.Messages[0].Data != "still here" {
		t.Fatalf("read while out of descriptors: got %+v, want \"still here\"", l.Messages)
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", map[string]string{"data": "me too"}).want(t, http.StatusOK)
	if b := peerReadN(t, peer, 6); string(b) != "me too" {
		t.Fatalf("peer: got %q, want %q", b, "me too")
	}

	// Descriptors come back: the waiting connection is accepted, and new
	// work succeeds.
	freeAll(fillers)
	accepted := acceptedOf(t, a, srv.ID, waiting)
	waiting.Write([]byte("accepted at last"))
	a.call(http.MethodGet, "/sockets/"+accepted.ID+"/messages?after=0&wait=30s", nil).want(t, http.StatusOK).decode(t, &l)
	if len(l.Messages) != 1 || l.Messages[0].Data != "accepted at last" {
		t.Fatalf("read from the late accept: got %+v, want \"accepted at last\"", l.Messages)
	}
	a.call(http.MethodPost, "/clients", map[string]any{"host": "127.0.0.1", "port": targetPort}).want(t, http.StatusCreated)
	a.call(http.MethodPost, "/servers", map[string]any{"port": 0}).want(t, http.StatusCreated)

	// A good accept reset the backoff: the next exhaustion starts at 5 ms.
	before := len(delays)
	fill(t, fillers)
	second := dialWithLastFile(t, fillers, srv.Address)
	faultWaitFor(t, faultGuard, "the accept loop to fail again", func() bool {
		delays, _ = logs.retries(t, srv.ID)
		return len(delays) > before
	})
	if delays[before] != backoff(0) {
		t.Fatalf("first retry after a good accept: got %v, want %v", delays[before], backoff(0))
	}
	freeAll(fillers)
	acceptedOf(t, a, srv.ID, second)
	t.Logf("accept retries while out of descriptors: %v", delays)
}

// acceptedOf waits until server id has accepted the connection whose local
// end is peer, and returns its socket.
func acceptedOf(t *testing.T, a *faultAPI, id string, peer net.Conn) api.Socket {
	t.Helper()
	var found api.Socket
	faultWaitFor(t, faultGuard, fmt.Sprintf("server %s to accept %s", id, peer.LocalAddr()), func() bool {
		var l api.SocketList
		a.call(http.MethodGet, "/sockets?server_id="+id, nil).want(t, http.StatusOK).decode(t, &l)
		for _, s := range l.Sockets {
			if s.RemoteAddress == peer.LocalAddr().String() {
				found = s
				return true
			}
		}
		return false
	})
	return found
}
