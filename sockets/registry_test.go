package sockets

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestIDsAreNeverReused(t *testing.T) {
	r := newTestRegistry(t, Config{})
	ln := testListener(t)
	dial := DialOptions{Host: "127.0.0.1", Port: portOf(t, ln.Addr().String())}
	var got []string
	for range 2 {
		srv := listen(t, r, ListenOptions{})
		got = append(got, srv.Info().ID)
		if err := r.DeleteServer(srv.Info().ID, false); err != nil {
			t.Fatalf("DeleteServer: got %v, want nil", err)
		}
	}
	srv := listen(t, r, ListenOptions{})
	got = append(got, srv.Info().ID)
	for range 2 {
		s, err := r.Dial(context.Background(), dial)
		if err != nil {
			t.Fatalf("Dial: got %v, want nil", err)
		}
		got = append(got, s.ID())
		if err := r.DeleteSocket(s.ID()); err != nil {
			t.Fatalf("DeleteSocket: got %v, want nil", err)
		}
	}
	got = append(got, acceptedSocket(t, r, srv, dialPeer(t, srv.addr)).ID()) // accepted and client share one sequence
	want := []string{"srv-1", "srv-2", "srv-3", "sock-1", "sock-2", "sock-3"}
	if !slices.Equal(got, want) {
		t.Fatalf("ids: got %v, want %v", got, want)
	}
}

func TestSocketsFilter(t *testing.T) {
	r := newTestRegistry(t, Config{})
	a := listen(t, r, ListenOptions{}) // srv-1
	b := listen(t, r, ListenOptions{}) // srv-2
	a1 := acceptedSocket(t, r, a, dialPeer(t, a.addr))
	a2 := acceptedSocket(t, r, a, dialPeer(t, a.addr))
	b1 := acceptedSocket(t, r, b, dialPeer(t, b.addr))
	ln := testListener(t)
	c1, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: portOf(t, ln.Addr().String())})
	if err != nil {
		t.Fatalf("Dial: got %v, want nil", err)
	}
	a2.Close(ReasonAPI)
	ids := func(socks ...*Socket) []string {
		var out []string
		for _, s := range socks {
			out = append(out, s.ID())
		}
		return out
	}
	tests := map[string]struct {
		f    SocketFilter
		want []string
	}{
		"no filter":             {SocketFilter{}, ids(a1, a2, b1, c1)},
		"kind accepted":         {SocketFilter{Kind: KindAccepted}, ids(a1, a2, b1)},
		"kind client":           {SocketFilter{Kind: KindClient}, ids(c1)},
		"server":                {SocketFilter{ServerID: a.Info().ID}, ids(a1, a2)},
		"unknown server":        {SocketFilter{ServerID: "srv-99"}, nil},
		"state closed":          {SocketFilter{State: StateClosed}, ids(a2)},
		"state connected":       {SocketFilter{State: StateConnected}, ids(a1, b1, c1)},
		"server and state":      {SocketFilter{ServerID: a.Info().ID, State: StateConnected}, ids(a1)},
		"client and server set": {SocketFilter{Kind: KindClient, ServerID: b.Info().ID}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ids(r.Sockets(tc.f)...); !slices.Equal(got, tc.want) {
				t.Fatalf("Sockets(%+v): got %v, want %v", tc.f, got, tc.want)
			}
		})
	}
}

func TestClosedSocketStaysReadableUntilDeleted(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, peer, s := connectPair(t, r, ListenOptions{})
	peer.Write([]byte("last words"))
	peer.Close()
	waitReadLoopDone(t, s)
	for i := range 2 {
		sel, err := s.Read(context.Background(), ReadOptions{})
		if err != nil || len(sel.Messages) != 1 || string(sel.Messages[0].Data) != "last words" || !sel.EOF {
			t.Fatalf("read #%d of a closed socket: got %d messages, EOF %v, err %v; want \"last words\", true, nil", i, len(sel.Messages), sel.EOF, err)
		}
		sel.Release()
	}
	if got, err := r.Socket(s.ID()); err != nil || got != s {
		t.Fatalf("Socket of a closed socket: got %v, %v; want it", got, err)
	}
	if err := r.DeleteSocket(s.ID()); err != nil {
		t.Fatalf("DeleteSocket: got %v, want nil", err)
	}
	if _, err := r.Socket(s.ID()); !errors.Is(err, ErrSocketNotFound) {
		t.Fatalf("Socket after delete: got %v, want %v", err, ErrSocketNotFound)
	}
	if err := r.DeleteSocket(s.ID()); !errors.Is(err, ErrSocketNotFound) {
		t.Fatalf("second DeleteSocket: got %v, want %v", err, ErrSocketNotFound)
	}
	if got := srv.Info().Sockets; len(got) != 0 {
		t.Fatalf("server sockets after delete: got %v, want none", got)
	}
	if got := r.mem.used.Load(); got != 0 {
		t.Fatalf("registry total after delete: got %d, want 0", got)
	}
}

func TestDeleteSocketClosesAnOpenOne(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	if err := r.DeleteSocket(s.ID()); err != nil {
		t.Fatalf("DeleteSocket: got %v, want nil", err)
	}
	if info := s.Info(); info.State != StateClosed || info.CloseReason != ReasonAPI {
		t.Fatalf("state, reason: got %q, %q; want %q, %q", info.State, info.CloseReason, StateClosed, ReasonAPI)
	}
	peer.SetReadDeadline(time.Now().Add(guard))
	if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read: got %v, want EOF", err)
	}
}

func TestSweepForgetsClosedSocketsAfterRetention(t *testing.T) {
	const retention = time.Minute
	r := newTestRegistry(t, Config{ClosedRetention: retention})
	srv := listen(t, r, ListenOptions{})
	openPeer := dialPeer(t, srv.addr)
	open := acceptedSocket(t, r, srv, openPeer)
	closedPeer := dialPeer(t, srv.addr)
	closed := acceptedSocket(t, r, srv, closedPeer)
	closedPeer.Write([]byte("kept for a while"))
	closedPeer.Close()
	waitFor(t, guard, func() bool { return closed.Closed() && closed.Info().BufferedBytes > 0 })

	r.sweep(time.Now())
	if _, err := r.Socket(closed.ID()); err != nil {
		t.Fatalf("closed socket within its retention: got %v, want it kept", err)
	}
	r.sweep(time.Now().Add(retention + time.Second))
	if _, err := r.Socket(closed.ID()); !errors.Is(err, ErrSocketNotFound) {
		t.Fatalf("closed socket past its retention: got %v, want %v", err, ErrSocketNotFound)
	}
	if _, err := r.Socket(open.ID()); err != nil {
		t.Fatalf("connected socket: got %v, want it kept (retention is for closed ones)", err)
	}
	if got := srv.Info().Sockets; !slices.Equal(got, []string{open.ID()}) {
		t.Fatalf("server sockets after sweep: got %v, want [%s]", got, open.ID())
	}
	if got := r.mem.used.Load(); got != 0 {
		t.Fatalf("registry total after sweep: got %d, want 0", got)
	}
}

func TestJanitorRunsWithTinyRetention(t *testing.T) {
	// A retention under 4ns once made the janitor's ticker interval zero,
	// which panics.
	r := newTestRegistry(t, Config{ClosedRetention: time.Nanosecond})
	_, peer, s := connectPair(t, r, ListenOptions{})
	peer.Close()
	waitFor(t, guard, func() bool {
		_, err := r.Socket(s.ID())
		return errors.Is(err, ErrSocketNotFound)
	})
}

func TestCloseStopsEverythingAndIsIdempotent(t *testing.T) {
	before := goleak.IgnoreCurrent()
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{})
	var peers []*net.TCPConn
	for range 3 {
		c := dialPeer(t, srv.addr)
		acceptedSocket(t, r, srv, c)
		peers = append(peers, c)
	}
	ln := testListener(t)
	port := portOf(t, ln.Addr().String())
	client, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatalf("Dial: got %v, want nil", err)
	}
	peers = append(peers, acceptPeer(t, ln))
	polled := make(chan Selection, 1)
	go func() {
		sel, _ := client.Read(context.Background(), ReadOptions{Wait: time.Hour})
		polled <- sel
	}()

	if err := r.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	if sel := <-polled; !sel.EOF {
		t.Fatalf("long poll during Close: got EOF %v, want true", sel.EOF)
	}
	// Close waited for every accept loop, read loop and the janitor.
	goleak.VerifyNone(t, before)
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
	for i, c := range peers {
		c.SetReadDeadline(time.Now().Add(guard))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("peer %d read after Close: got %v, want EOF", i, err)
		}
	}
	for _, s := range r.Sockets(SocketFilter{}) {
		if info := s.Info(); info.State != StateClosed || info.CloseReason != ReasonShutdown {
			t.Fatalf("socket %s: got %q, %q; want %q, %q", s.ID(), info.State, info.CloseReason, StateClosed, ReasonShutdown)
		}
	}
	if c, err := net.DialTimeout("tcp", srv.Info().Address, guard); err == nil {
		c.Close()
		t.Fatalf("connect to a server after Close: got a connection, want refused")
	}
	if _, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Listen after Close: got %v, want %v", err, ErrClosed)
	}
	if _, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: port}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial after Close: got %v, want %v", err, ErrClosed)
	}
}
