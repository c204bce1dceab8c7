package api

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/sockman/sockman/internal/testnet"
)

// TestManyPeersOnOneServer: 200 peers connect to one server at once; what
// each writes lands in its own socket (matched by remote_address), and one
// broadcast reaches all of them.
func TestManyPeersOnOneServer(t *testing.T) {
	t.Parallel()
	const peers = 200
	// Each connection is two sockets here, plus HTTP; 256 more for the test
	// binary, the race detector and the other tests.
	testnet.RaiseOpenFiles(t, 3*peers+256)
	a := newTestAPI(t)
	srv := a.listen(t)

	// All connect and write at once.
	conns := make([]*net.TCPConn, peers)
	errs := make([]error, peers)
	var wg sync.WaitGroup
	for i := range peers {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", srv.Address, testTimeout)
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c.(*net.TCPConn)
			_, errs[i] = c.Write([]byte(peerGreeting(c)))
		})
	}
	wg.Wait()
	byAddr := make(map[string]*net.TCPConn, peers)
	for i, c := range conns {
		if c != nil {
			t.Cleanup(func() { c.Close() })
			byAddr[c.LocalAddr().String()] = c
		}
		if errs[i] != nil {
			t.Fatalf("peer %d: %v", i, errs[i])
		}
	}

	// Every peer has its socket, holding exactly its greeting.
	var list []Socket
	waitFor(t, testTimeout, func() bool {
		list = a.sockets(t, "?server_id="+srv.ID)
		if len(list) != peers {
			return false
		}
		for _, s := range list {
			if s.BytesReceived != int64(len(peerGreeting(byAddr[s.RemoteAddress]))) {
				return false
			}
		}
		return true
	})
	seen := make(map[string]bool, peers)
	for _, s := range list {
		c, ok := byAddr[s.RemoteAddress]
		if !ok || seen[s.RemoteAddress] {
			t.Fatalf("socket %s has remote address %s: want one socket for each peer", s.ID, s.RemoteAddress)
		}
		seen[s.RemoteAddress] = true
		l := a.read(t, s.ID, "")
		if want := peerGreeting(c); len(l.Messages) != 1 || l.Messages[0].Data != want {
			t.Fatalf("socket %s of peer %s: got %+v, want the one message %q", s.ID, s.RemoteAddress, l.Messages, want)
		}
	}
	var got Server
	a.call(http.MethodGet, "/servers/"+srv.ID, nil).want(t, http.StatusOK).decode(t, &got)
	if got.Accepted != peers || len(got.Sockets) != peers || got.Rejected != 0 {
		t.Errorf("server: got accepted %d, %d sockets, rejected %d; want %d, %d, 0", got.Accepted, len(got.Sockets), got.Rejected, peers, peers)
	}

	// One broadcast reaches everyone.
	const news = "to all of you\n"
	var bc BroadcastResult
	a.call(http.MethodPost, "/servers/"+srv.ID+"/messages", SendRequest{Data: news}).want(t, http.StatusOK).decode(t, &bc)
	if bc.Sockets != peers || bc.Bytes != peers*int64(len(news)) {
		t.Errorf("broadcast: got %+v, want %d sockets and %d bytes", bc, peers, peers*len(news))
	}
	for _, c := range conns {
		if got := readPeer(t, c, len(news)); string(got) != news {
			t.Fatalf("peer %s got %q, want %q", c.LocalAddr(), got, news)
		}
	}
}

func peerGreeting(c net.Conn) string {
	return fmt.Sprintf("hello from %s\n", c.LocalAddr())
}

// TestDisconnectDetection: a peer's close and a peer's reset show as state
// closed with the reason at once, and what the peer sent before stays
// readable.
func TestDisconnectDetection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		hangUp func(*net.TCPConn)
		reason string
	}{
		{"close", func(c *net.TCPConn) { c.Close() }, "peer closed"},
		{"reset", func(c *net.TCPConn) { c.SetLinger(0); c.Close() }, "reset by peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(t)
			for _, kind := range []string{"accepted", "client"} {
				var (
					id   string
					peer *net.TCPConn
				)
				if kind == "accepted" {
					s, c := a.pair(t)
					id, peer = s.ID, c
				} else {
					ln := listenPeer(t)
					id = a.dial(t, ln.Addr().String()).ID
					peer = acceptPeer(t, ln)
				}
				last := "last words of the " + kind + " peer"
				writePeer(t, peer, []byte(last))
				// A reset may discard what the kernel has not yet handed
				// to sockman: let it arrive first.
				waitFor(t, testTimeout, func() bool { return a.socket(t, id).BytesReceived == int64(len(last)) })
				tc.hangUp(peer)

				var s Socket
				waitFor(t, testTimeout, func() bool { s = a.socket(t, id); return s.State == "closed" })
				if s.CloseReason != tc.reason || s.ClosedAt == nil || s.ClosedAt.Before(s.CreatedAt) {
					t.Errorf("%s socket: got close_reason %q closed_at %v, want %q and a time after it was created", kind, s.CloseReason, s.ClosedAt, tc.reason)
				}
				l := a.read(t, id, "?after=0")
				if len(l.Messages) != 1 || l.Messages[0].Data != last || l.State != "closed" {
					t.Errorf("%s socket after the %s: got %+v, want %q still readable, state closed", kind, tc.name, l, last)
				}
				if list := a.sockets(t, "?state=closed"); len(list) == 0 || list[len(list)-1].ID != id {
					t.Errorf("GET /sockets?state=closed: got %v, want it to end with %s", socketIDs(list), id)
				}
			}
		})
	}
}
