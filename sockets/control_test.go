package sockets

import (
	"bytes"
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// readAll reads peer until EOF (or an error), within the guard.
func readAll(t *testing.T, peer interface {
	io.Reader
	SetReadDeadline(time.Time) error
}) ([]byte, error) {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(guard))
	var got bytes.Buffer
	_, err := io.Copy(&got, peer)
	return got.Bytes(), err
}

func TestShutdownSendsFINAndKeepsReading(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	if _, err := s.SendBytes(context.Background(), []byte("bye")); err != nil {
		t.Fatalf("send: got %v, want nil", err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatalf("a second Shutdown: got %v, want nil (idempotent)", err)
	}
	got, err := readAll(t, peer)
	if err != nil || string(got) != "bye" {
		t.Fatalf("peer read to EOF: got %q, %v; want %q, nil", got, err, "bye")
	}
	if info := s.Info(); !info.WriteClosed || info.State != StateConnected {
		t.Fatalf("after shutdown: got write_closed %v, state %q; want true, connected", info.WriteClosed, info.State)
	}
	if _, err := peer.Write([]byte("still heard")); err != nil {
		t.Fatalf("peer write after our FIN: got %v, want nil", err)
	}
	if got, _ := drain(t, s, int64(len("still heard"))); string(got) != "still heard" {
		t.Fatalf("read after shutdown: got %q, want %q", got, "still heard")
	}
	_, err = s.SendBytes(context.Background(), []byte("x"))
	if !errors.Is(err, ErrWriteClosed) || errors.Is(err, ErrSocketClosed) {
		t.Fatalf("send after shutdown: got %v, want ErrWriteClosed only", err)
	}
	peer.Close()
	waitFor(t, guard, s.Closed)
	if got := s.Info().CloseReason; got != ReasonPeerClosed {
		t.Fatalf("close reason: got %q, want %q", got, ReasonPeerClosed)
	}
	if err := s.Shutdown(); !errors.Is(err, ErrSocketClosed) {
		t.Fatalf("Shutdown of a closed socket: got %v, want ErrSocketClosed", err)
	}
}

func TestHalfCloseKeepsSocketWritableAfterPeerFIN(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{HalfClose: true}})
	peer.Write([]byte("request"))
	peer.CloseWrite()
	if got, _ := drain(t, s, int64(len("request"))); string(got) != "request" {
		t.Fatalf("read: got %q, want %q", got, "request")
	}
	waitFor(t, guard, func() bool { return s.Info().ReadClosed })
	if info := s.Info(); info.State != StateConnected || info.WriteClosed {
		t.Fatalf("after the peer's FIN: got state %q, write_closed %v; want connected, false", info.State, info.WriteClosed)
	}
	if _, err := s.SendBytes(context.Background(), []byte("answer")); err != nil {
		t.Fatalf("send after the peer's FIN: got %v, want nil", err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	got, err := readAll(t, peer)
	if err != nil || string(got) != "answer" {
		t.Fatalf("peer read: got %q, %v; want %q, nil", got, err, "answer")
	}
	waitFor(t, guard, s.Closed)
	if got := s.Info().CloseReason; got != ReasonBothShut {
		t.Fatalf("close reason: got %q, want %q", got, ReasonBothShut)
	}
}

func TestHalfCloseSocketClosesWhenPeerGoneOnSend(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{HalfClose: true}})
	peer.SetLinger(0)
	peer.CloseWrite()
	waitFor(t, guard, func() bool { return s.Info().ReadClosed })
	peer.Close() // an RST: the peer is gone
	waitFor(t, guard, func() bool {
		s.SendBytes(context.Background(), []byte("x"))
		return s.Closed()
	})
	if got := s.Info().CloseReason; got != ReasonPeerReset && got != ReasonPeerClosed {
		t.Fatalf("close reason: got %q, want the peer's", got)
	}
}

func TestWithoutHalfClosePeerFINCloses(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	peer.CloseWrite()
	waitFor(t, guard, s.Closed)
	if info := s.Info(); info.ReadClosed || info.CloseReason != ReasonPeerClosed {
		t.Fatalf("got read_closed %v, reason %q; want false, %q", info.ReadClosed, info.CloseReason, ReasonPeerClosed)
	}
}

func TestCloseSocketKeepsItReadable(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	peer.Write([]byte("kept"))
	waitFor(t, guard, func() bool { return s.Info().BytesReceived == 4 })
	if _, err := r.CloseSocket(s.ID(), CloseOptions{}); err != nil {
		t.Fatalf("CloseSocket: got %v, want nil", err)
	}
	if got, err := readAll(t, peer); err != nil || len(got) != 0 {
		t.Fatalf("peer read: got %q, %v; want EOF", got, err)
	}
	if _, err := r.Socket(s.ID()); err != nil {
		t.Fatalf("the closed socket: got %v, want it still known", err)
	}
	if got, _ := drain(t, s, 4); string(got) != "kept" {
		t.Fatalf("read after close: got %q, want %q", got, "kept")
	}
	if info := s.Info(); info.State != StateClosed || info.CloseReason != ReasonAPI {
		t.Fatalf("got %q, %q; want closed, %q", info.State, info.CloseReason, ReasonAPI)
	}
	if _, err := r.CloseSocket("sock-99", CloseOptions{}); !errors.Is(err, ErrSocketNotFound) {
		t.Fatalf("CloseSocket of an unknown id: got %v, want ErrSocketNotFound", err)
	}
}

func TestResetIsSeenByThePeer(t *testing.T) {
	for _, del := range []bool{false, true} {
		name := map[bool]string{false: "close", true: "delete"}[del]
		t.Run(name, func(t *testing.T) {
			r := newTestRegistry(t, Config{})
			_, peer, s := connectPair(t, r, ListenOptions{})
			if del {
				if err := r.ForgetSocket(s.ID(), CloseOptions{Reset: true}); err != nil {
					t.Fatalf("ForgetSocket: got %v, want nil", err)
				}
			} else if _, err := r.CloseSocket(s.ID(), CloseOptions{Reset: true}); err != nil {
				t.Fatalf("CloseSocket: got %v, want nil", err)
			}
			if _, err := readAll(t, peer); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("peer read: got %v, want ECONNRESET", err)
			}
			if got := s.Info().CloseReason; got != ReasonAPIReset {
				t.Fatalf("close reason: got %q, want %q", got, ReasonAPIReset)
			}
		})
	}
}

func sockopt(t *testing.T, s *Socket, level, opt int) int {
	t.Helper()
	rc, err := s.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) })
	if serr != nil {
		t.Fatalf("getsockopt: %v", serr)
	}
	return v
}

const tcpKeepIdle = 0x4 // TCP_KEEPIDLE on Linux

func TestTCPOptionsAreSetOnTheSocket(t *testing.T) {
	r := newTestRegistry(t, Config{})
	cases := []struct {
		name      string
		recv      RecvOptions
		noDelay   bool
		keepAlive time.Duration
	}{
		{"defaults", RecvOptions{}, true, DefaultKeepAlive},
		{"no_delay off, keepalive 7s", RecvOptions{NoDelay: ptr(false), KeepAlive: ptr(7 * time.Second)}, false, 7 * time.Second},
		{"keepalive off", RecvOptions{KeepAlive: ptr(time.Duration(0))}, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, _, s := connectPair(t, r, ListenOptions{Recv: c.recv})
			for _, info := range []struct {
				what string
				nd   bool
				ka   time.Duration
			}{{"socket", s.Info().NoDelay, s.Info().KeepAlive}, {"server", srv.Info().NoDelay, srv.Info().KeepAlive}} {
				if info.nd != c.noDelay || info.ka != c.keepAlive {
					t.Fatalf("%s info: got no_delay %v, keepalive %v; want %v, %v", info.what, info.nd, info.ka, c.noDelay, c.keepAlive)
				}
			}
			if got := sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_NODELAY) != 0; got != c.noDelay {
				t.Fatalf("TCP_NODELAY: got %v, want %v", got, c.noDelay)
			}
			ka := sockopt(t, s, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) != 0
			if ka != (c.keepAlive > 0) {
				t.Fatalf("SO_KEEPALIVE: got %v, want %v", ka, c.keepAlive > 0)
			}
			if c.keepAlive > 0 {
				if got := sockopt(t, s, syscall.IPPROTO_TCP, tcpKeepIdle); got != int(c.keepAlive/time.Second) {
					t.Fatalf("TCP_KEEPIDLE: got %d, want %d", got, c.keepAlive/time.Second)
				}
			}
		})
	}
	ln := testListener(t)
	c, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: portOf(t, ln.Addr().String()),
		Recv: RecvOptions{NoDelay: ptr(false), KeepAlive: ptr(3 * time.Second)}})
	if err != nil {
		t.Fatalf("Dial: got %v, want nil", err)
	}
	acceptPeer(t, ln)
	if sockopt(t, c, syscall.IPPROTO_TCP, syscall.TCP_NODELAY) != 0 || sockopt(t, c, syscall.IPPROTO_TCP, tcpKeepIdle) != 3 {
		t.Fatalf("a client's TCP options: want no_delay off and keepalive 3s on the socket")
	}
}

func TestConnOptionsOutOfRange(t *testing.T) {
	r := newTestRegistry(t, Config{MaxNameBytes: 8})
	for name, o := range map[string]RecvOptions{
		"keepalive under 1s":    {KeepAlive: ptr(500 * time.Millisecond)},
		"keepalive not seconds": {KeepAlive: ptr(1500 * time.Millisecond)},
		"keepalive too long":    {KeepAlive: ptr(MaxKeepAlive + time.Second)},
		"keepalive negative":    {KeepAlive: ptr(-time.Second)},
		"name too long":         {Name: "123456789"},
		"name with a newline":   {Name: "a\nb"},
		"name not UTF-8":        {Name: "\xff"},
	} {
		if _, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1", Recv: o}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if _, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1", Recv: RecvOptions{Name: "12345678"}}); err != nil {
		t.Errorf("a name of MaxNameBytes: got %v, want nil", err)
	}
}

func TestNamesAreInheritedAndFiltered(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, _, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Name: "modem"}})
	connectPair(t, r, ListenOptions{Recv: RecvOptions{Name: "modem-2"}})
	if srv.Info().Name != "modem" || s.Info().Name != "modem" {
		t.Fatalf("names: got server %q, socket %q; want modem for both", srv.Info().Name, s.Info().Name)
	}
	got := r.Sockets(SocketFilter{Name: "modem"})
	if len(got) != 1 || got[0] != s {
		t.Fatalf("sockets named modem: got %d, want just %s", len(got), s.ID())
	}
}

func TestPeerSocketIDWhenBothEndsAreOurs(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{})
	c, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: portOf(t, srv.addr)})
	if err != nil {
		t.Fatalf("Dial: got %v, want nil", err)
	}
	var a *Socket
	waitFor(t, guard, func() bool {
		list := r.Sockets(SocketFilter{ServerID: srv.id})
		if len(list) == 1 {
			a = list[0]
		}
		return a != nil
	})
	if got := c.Info().PeerSocketID; got != a.ID() {
		t.Fatalf("client's peer_socket_id: got %q, want %q", got, a.ID())
	}
	if got := a.Info().PeerSocketID; got != c.ID() {
		t.Fatalf("accepted socket's peer_socket_id: got %q, want %q", got, c.ID())
	}
	// A peer that is not the registry's leaves it empty.
	_, _, other := connectPair(t, r, ListenOptions{})
	if got := other.Info().PeerSocketID; got != "" {
		t.Fatalf("peer_socket_id with a foreign peer: got %q, want empty", got)
	}
	if err := r.DeleteSocket(c.ID()); err != nil {
		t.Fatal(err)
	}
	r.mu.RLock()
	n := len(r.conns)
	r.mu.RUnlock()
	if n != 2 { // a and other; c is gone
		t.Fatalf("index of connections after a delete: got %d entries, want 2", n)
	}
}

// TestConnControlEvents: connection control adds no event type: the peer's
// FIN on a half-close socket publishes nothing, and each way a socket ends
// is a socket.closed with its reason.
func TestConnControlEvents(t *testing.T) {
	r := newTestRegistry(t, Config{})
	sub := subscribe(t, r, SubscribeOptions{Filter: EventFilter{Types: []string{string(EventSocketClosed)}}})

	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{HalfClose: true}})
	peer.CloseWrite()
	waitFor(t, guard, func() bool { return s.Info().ReadClosed })
	noMoreEvents(t, sub)
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	_, _, s2 := connectPair(t, r, ListenOptions{})
	if _, err := r.CloseSocket(s2.ID(), CloseOptions{Reset: true}); err != nil {
		t.Fatal(err)
	}
	got := nextEvents(t, sub, 2)
	want := map[string]string{s.ID(): ReasonBothShut, s2.ID(): ReasonAPIReset}
	for _, e := range got {
		if e.Reason != want[e.SocketID] {
			t.Errorf("socket.closed of %s: got reason %q, want %q", e.SocketID, e.Reason, want[e.SocketID])
		}
		delete(want, e.SocketID)
	}
	if len(want) != 0 {
		t.Fatalf("socket.closed events: got %s, want one for each socket", eventSummary(got))
	}
}

// TestHalfCloseFINInTheMiddleOfAFrame: the peer's FIN that cuts a frame
// short stores it as partial, the socket stays open for sends, and its
// close reason says what became of the frame.
func TestHalfCloseFINInTheMiddleOfAFrame(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{HalfClose: true, Framing: Framing{Type: FrameLines}}})
	peer.Write([]byte("whole\ncut"))
	peer.CloseWrite()
	waitFor(t, guard, func() bool { return s.Info().ReadClosed })
	sel, err := s.Read(context.Background(), ReadOptions{})
	if err != nil || len(sel.Messages) != 2 || !sel.Messages[1].Partial || string(sel.Messages[1].Data) != "cut" {
		t.Fatalf("messages: got %d (%v), want whole and a partial cut", len(sel.Messages), err)
	}
	sel.Release()
	if _, err := s.SendBytes(context.Background(), []byte("still\n")); err != nil {
		t.Fatalf("send: got %v, want nil", err)
	}
	s.Close(ReasonAPI)
	want := ReasonAPI + "; the peer's FIN came in the middle of a frame: its first 3 bytes are stored as a partial message"
	if got := s.Info().CloseReason; got != want {
		t.Fatalf("close reason: got %q, want %q", got, want)
	}
}
