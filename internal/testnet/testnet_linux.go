//go:build linux

package testnet

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// fillTries bounds the connects spent filling the accept queue of the
// listener UnansweredAddr makes. Linux queues backlog+1 connections; the
// rest is slack for kernels that queue a few more.
const fillTries = 32

// boundSocket returns a TCP socket bound to an ephemeral port of 127.0.0.1,
// and that port. The socket is closed when the test ends.
func boundSocket(t testing.TB) (fd, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fd, sa.(*syscall.SockaddrInet4).Port
}

// RefusedPort returns a loopback port bound by a socket that does not
// listen: a connect to it is refused, and no one else can take the port
// while the test runs.
func RefusedPort(t testing.TB) int {
	t.Helper()
	_, port := boundSocket(t)
	return port
}

// UnansweredAddr returns a loopback address whose SYNs go unanswered: a
// listener with a backlog of 0 that never accepts, its queue filled by
// connections of our own. Linux drops the SYN of a connect to a full accept
// queue, so the connect times out. It skips the test where the kernel does
// not behave so: it completes the connects regardless, or refuses or
// resets them (net.ipv4.tcp_abort_on_overflow). The listener and the
// connections are closed when the test ends.
func UnansweredAddr(t testing.TB) string {
	t.Helper()
	fd, port := boundSocket(t)
	if err := syscall.Listen(fd, 0); err != nil { // never accepted
		t.Fatalf("listen: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range fillTries {
		c, err := net.DialTimeout("tcp", addr, ConnectProbe)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			continue // it went into the queue; the queue is full once one does not
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return addr
		}
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
			t.Skipf("filling the backlog of %s: %v: this kernel refuses connects to a full accept queue, so a connect timeout cannot be made on loopback", addr, err)
		}
		t.Fatalf("filling the backlog of %s: %v", addr, err)
	}
	t.Skipf("%d connects to %s, a listener with backlog 0, all succeeded: this kernel does not drop SYNs to a full accept queue, so a connect timeout cannot be made on loopback", fillTries, addr)
	return ""
}

// UnansweredPort is UnansweredAddr's port.
func UnansweredPort(t testing.TB) int {
	t.Helper()
	_, port, err := net.SplitHostPort(UnansweredAddr(t))
	if err != nil {
		t.Fatalf("split host port: %v", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port %q: %v", port, err)
	}
	return p
}

// RaiseOpenFiles makes sure the process may have need files open, raising
// the soft RLIMIT_NOFILE to need (at most the hard limit) if it must. It
// skips the test if it cannot. need counts every file of the process, the
// test binary's and the race detector's too, so callers add headroom.
func RaiseOpenFiles(t testing.TB, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		t.Skipf("RLIMIT_NOFILE hard limit %d is below the %d files this test needs", lim.Max, need)
	}
	old := lim.Cur
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("raising RLIMIT_NOFILE from %d to %d: %v", old, lim.Cur, err)
	}
	t.Logf("raised the RLIMIT_NOFILE soft limit from %d to %d", old, lim.Cur)
}
