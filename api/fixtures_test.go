package api

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Fixtures: servers, sockets and their peers. Each helper fails the test
// unless its calls succeed.

// listen opens a server on an ephemeral loopback port; extra fields go into
// the ServerCreate body.
func (a *testAPI) listen(t testing.TB, extra ...func(*ServerCreate)) Server {
	t.Helper()
	port := 0
	req := ServerCreate{Port: &port}
	for _, f := range extra {
		f(&req)
	}
	var srv Server
	a.call(http.MethodPost, "/servers", req).want(t, http.StatusCreated).decode(t, &srv)
	return srv
}

// dial connects a client socket to addr.
func (a *testAPI) dial(t testing.TB, addr string, extra ...func(*ClientCreate)) Socket {
	t.Helper()
	host, port := splitAddr(t, addr)
	req := ClientCreate{Host: host, Port: &port}
	for _, f := range extra {
		f(&req)
	}
	var s Socket
	a.call(http.MethodPost, "/clients", req).want(t, http.StatusCreated).decode(t, &s)
	return s
}

func (a *testAPI) socket(t testing.TB, id string) Socket {
	t.Helper()
	var s Socket
	a.call(http.MethodGet, "/sockets/"+id, nil).want(t, http.StatusOK).decode(t, &s)
	return s
}

func (a *testAPI) sockets(t testing.TB, query string) []Socket {
	t.Helper()
	var l SocketList
	a.call(http.MethodGet, "/sockets"+query, nil).want(t, http.StatusOK).decode(t, &l)
	return l.Sockets
}

// read reads messages of socket id as JSON with the given query.
func (a *testAPI) read(t testing.TB, id, query string) MessageList {
	t.Helper()
	var l MessageList
	a.call(http.MethodGet, "/sockets/"+id+"/messages"+query, nil).want(t, http.StatusOK).decode(t, &l)
	return l
}

// accepted waits until server srvID has accepted the connection whose local
// end is peer, and returns that socket.
func (a *testAPI) accepted(t testing.TB, srvID string, peer net.Conn) Socket {
	t.Helper()
	var found Socket
	waitFor(t, testTimeout, func() bool {
		for _, s := range a.sockets(t, "?server_id="+srvID) {
			if s.RemoteAddress == peer.LocalAddr().String() {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// pair opens a server and connects a peer to it; it returns the accepted
// socket and the peer's end.
func (a *testAPI) pair(t testing.TB, extra ...func(*ServerCreate)) (Socket, *net.TCPConn) {
	t.Helper()
	return a.connect(t, a.listen(t, extra...))
}

// connect connects a peer to srv and returns the accepted socket and the
// peer's end.
func (a *testAPI) connect(t testing.TB, srv Server) (Socket, *net.TCPConn) {
	t.Helper()
	peer := dialPeer(t, srv.Address)
	return a.accepted(t, srv.ID, peer), peer
}

// Peers: the other end of sockman's connections, plain net code.

// dialPeer connects to addr; cleanup closes the connection.
func dialPeer(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("peer dialling %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// listenPeer listens on an ephemeral loopback port; cleanup closes it.
func listenPeer(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peer listening: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// acceptPeer accepts one connection on ln within the failure guard; cleanup
// closes it.
func acceptPeer(t testing.TB, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(testTimeout))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("peer accepting: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readPeer reads exactly n bytes from c within the failure guard.
func readPeer(t testing.TB, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("peer reading %d bytes: %v", n, err)
	}
	return buf
}

// writePeer writes p to c within the failure guard.
func writePeer(t testing.TB, c net.Conn, p []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write(p); err != nil {
		t.Fatalf("peer writing %d bytes: %v", len(p), err)
	}
}

func splitAddr(t testing.TB, addr string) (string, int) {
	t.Helper()
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatalf("splitting %q: %v", addr, err)
	}
	return ap.IP.String(), ap.Port
}

// freePort returns a loopback port nothing listens on (it was just closed).
func freePort(t testing.TB) int {
	t.Helper()
	ln := listenPeer(t)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
