package sockets

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// protocolOf returns SO_PROTOCOL of a socket: IPPROTO_TCP, or IPPROTO_MPTCP
// (262) for a multipath socket.
func protocolOf(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var proto int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		proto, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PROTOCOL)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("getsockopt SO_PROTOCOL: %v", serr)
	}
	return proto
}

// Go listens with MPTCP by default on Linux; sockman's listeners, the sockets
// they accept and the sockets it dials are plain TCP, even when the peer asks
// for MPTCP.
func TestListenersAndDialsArePlainTCP(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{})
	if got := protocolOf(t, srv.ln.(*net.TCPListener)); got != syscall.IPPROTO_TCP {
		t.Errorf("listener SO_PROTOCOL = %d, want %d (TCP)", got, syscall.IPPROTO_TCP)
	}

	d := net.Dialer{Timeout: guard}
	d.SetMultipathTCP(true)
	peer, err := d.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatalf("dial %s with MPTCP asked for: %v", srv.addr, err)
	}
	defer peer.Close()
	if mp, err := peer.(*net.TCPConn).MultipathTCP(); err == nil && mp {
		t.Errorf("a peer asking for MPTCP got MPTCP, want plain TCP")
	}
	waitFor(t, guard, func() bool { return len(srv.socketIDs()) == 1 })
	acc, err := r.Socket(srv.socketIDs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := protocolOf(t, acc.conn); got != syscall.IPPROTO_TCP {
		t.Errorf("accepted socket SO_PROTOCOL = %d, want %d (TCP)", got, syscall.IPPROTO_TCP)
	}

	_, port, _ := net.SplitHostPort(srv.addr)
	p, _ := strconv.Atoi(port)
	cl, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: p})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if got := protocolOf(t, cl.conn); got != syscall.IPPROTO_TCP {
		t.Errorf("dialed socket SO_PROTOCOL = %d, want %d (TCP)", got, syscall.IPPROTO_TCP)
	}
}
