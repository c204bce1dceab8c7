//go:build linux

package api

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// connectProbe is how long a connect to an address that never answers is
// given: long enough to tell "no answer" from a slow loopback handshake.
const connectProbe = 500 * time.Millisecond

// unansweredAddr returns a loopback address whose SYNs go unanswered: a
// listener with a backlog of 0 that never accepts, its queue filled by a
// connection of our own. Linux drops the SYN of a connect to a full accept
// queue, so the connect times out. It skips the test where the kernel does
// not behave so.
func unansweredAddr(t testing.TB) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatalf("listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, connectProbe)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			continue // it went into the queue; the queue is full once one does not
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return addr
		}
		t.Fatalf("filling the backlog of %s: %v", addr, err)
	}
	t.Skipf("the kernel completes connects to %s despite a full backlog: no way to make a connect time out on loopback", addr)
	return ""
}

// needFiles makes sure the process may open n more files, raising the soft
// RLIMIT_NOFILE up to the hard limit if it must; it skips the test if it
// cannot.
func needFiles(t testing.TB, n uint64) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	const inUse = 256 // the test binary, the race detector, the other tests
	if lim.Cur >= n+inUse {
		return
	}
	if lim.Max < n+inUse {
		t.Skipf("RLIMIT_NOFILE hard limit %d is below the %d files this test needs", lim.Max, n+inUse)
	}
	old := lim.Cur
	lim.Cur = n + inUse
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("raising RLIMIT_NOFILE from %d to %d: %v", old, lim.Cur, err)
	}
	t.Logf("raised the RLIMIT_NOFILE soft limit from %d to %d", old, lim.Cur)
}
