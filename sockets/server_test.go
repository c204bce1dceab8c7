package sockets

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcceptRegistersSocketWithKindAndServer(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 1234, Overflow: string(OverflowDropOldest)}})
	info := s.Info()
	want := SocketInfo{
		ID:            s.ID(),
		Kind:          KindAccepted,
		ServerID:      srv.Info().ID,
		LocalAddress:  peer.RemoteAddr().String(),
		RemoteAddress: peer.LocalAddr().String(),
		State:         StateConnected,
		CreatedAt:     info.CreatedAt,
		BufferBytes:   1234,
		Overflow:      OverflowDropOldest,
		Framing:       Framing{Type: FrameRaw},
		Retain:        RetainAll,
		NoDelay:       true,
		KeepAlive:     DefaultKeepAlive,
	}
	if info != want {
		t.Fatalf("socket info: got %+v, want %+v", info, want)
	}
	if info.CreatedAt.IsZero() || info.CreatedAt.Location() != time.UTC {
		t.Fatalf("created_at: got %v, want a UTC time", info.CreatedAt)
	}
	si := srv.Info()
	if !slices.Equal(si.Sockets, []string{s.ID()}) || si.Accepted != 1 || si.State != StateListening {
		t.Fatalf("server info: got sockets %v, accepted %d, state %q; want [%s], 1, %q", si.Sockets, si.Accepted, si.State, s.ID(), StateListening)
	}
	if port := portOf(t, si.Address); port == 0 {
		t.Fatalf("server address: got %q, want the bound ephemeral port", si.Address)
	}
}

func TestDeleteServerKeepsOrClosesAcceptedSockets(t *testing.T) {
	tests := map[string]struct {
		closeSockets bool
		wantState    string
		wantReason   string
	}{
		"without close_sockets keeps sockets open": {closeSockets: false, wantState: StateConnected},
		"with close_sockets closes them":           {closeSockets: true, wantState: StateClosed, wantReason: ReasonServerClosed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newTestRegistry(t, Config{})
			srv, peer, s := connectPair(t, r, ListenOptions{})
			id := srv.Info().ID
			if err := r.DeleteServer(id, tc.closeSockets); err != nil {
				t.Fatalf("DeleteServer: got %v, want nil", err)
			}
			if _, err := r.Server(id); !errors.Is(err, ErrServerNotFound) {
				t.Fatalf("Server after delete: got %v, want %v", err, ErrServerNotFound)
			}
			if err := r.DeleteServer(id, tc.closeSockets); !errors.Is(err, ErrServerNotFound) {
				t.Fatalf("second DeleteServer: got %v, want %v", err, ErrServerNotFound)
			}
			if c, err := net.DialTimeout("tcp", srv.Info().Address, guard); err == nil {
				c.Close()
				t.Fatalf("connect to a deleted server: got a connection, want refused")
			}
			info := s.Info()
			if info.State != tc.wantState || info.CloseReason != tc.wantReason {
				t.Fatalf("socket state, reason: got %q, %q; want %q, %q", info.State, info.CloseReason, tc.wantState, tc.wantReason)
			}
			peer.SetReadDeadline(time.Now().Add(guard))
			if tc.closeSockets {
				if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("peer read: got %v, want EOF", err)
				}
				return
			}
			// Still open both ways.
			if _, err := s.Send(context.Background(), strings.NewReader("still here")); err != nil {
				t.Fatalf("Send after DeleteServer: got %v, want nil", err)
			}
			buf := make([]byte, len("still here"))
			if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "still here" {
				t.Fatalf("peer read: got %q, %v; want %q, nil", buf, err, "still here")
			}
			peer.Write([]byte("and back"))
			if got, _ := drain(t, s, int64(len("and back"))); string(got) != "and back" {
				t.Fatalf("socket read: got %q, want %q", got, "and back")
			}
		})
	}
}

func TestListenOnPortInUseIsAddrInUse(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{})
	other := testListener(t)
	tests := map[string]int{
		"port of a sockman server": portOf(t, srv.Info().Address),
		"port of another listener": portOf(t, other.Addr().String()),
	}
	for name, port := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1", Port: port})
			if !errors.Is(err, ErrAddrInUse) {
				t.Fatalf("Listen on port %d: got %v, want %v", port, err, ErrAddrInUse)
			}
			if got := len(r.Servers()); got != 1 {
				t.Fatalf("servers: got %d, want 1", got)
			}
		})
	}
}

func TestListenInvalidOptionsAreInvalid(t *testing.T) {
	r := newTestRegistry(t, Config{MaxBufferBytes: 1 << 20})
	tests := map[string]ListenOptions{
		"negative port":         {Port: -1},
		"port 70000":            {Port: 70000},
		"negative buffer":       {Recv: RecvOptions{BufferBytes: -1}},
		"buffer above the most": {Recv: RecvOptions{BufferBytes: 1<<20 + 1}},
		"unknown overflow":      {Recv: RecvOptions{Overflow: "drop_newest"}},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := r.Listen(context.Background(), o); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Listen(%+v): got %v, want %v", o, err, ErrInvalid)
			}
		})
	}
	if got := len(r.Servers()); got != 0 {
		t.Fatalf("servers after invalid listens: got %d, want 0", got)
	}
}

func TestMaxServersIsLimit(t *testing.T) {
	r := newTestRegistry(t, Config{MaxServers: 2})
	first := listen(t, r, ListenOptions{})
	listen(t, r, ListenOptions{})
	if _, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1"}); !errors.Is(err, ErrLimit) {
		t.Fatalf("third Listen with MaxServers 2: got %v, want %v", err, ErrLimit)
	}
	if err := r.DeleteServer(first.Info().ID, false); err != nil {
		t.Fatalf("DeleteServer: got %v, want nil", err)
	}
	listen(t, r, ListenOptions{}) // the slot came back
}

func TestMaxSocketsRejectsAcceptAndDial(t *testing.T) {
	r := newTestRegistry(t, Config{MaxSockets: 2})
	srv := listen(t, r, ListenOptions{})
	acceptedSocket(t, r, srv, dialPeer(t, srv.addr))
	second := acceptedSocket(t, r, srv, dialPeer(t, srv.addr))

	over := dialPeer(t, srv.addr)
	over.SetReadDeadline(time.Now().Add(guard))
	if n, err := over.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("peer over MaxSockets: got %d bytes, %v; want the connection closed at once", n, err)
	}
	waitFor(t, guard, func() bool { return srv.Info().Rejected == 1 })
	if got := srv.Info().Accepted; got != 2 {
		t.Fatalf("accepted: got %d, want 2", got)
	}
	if got := len(r.Sockets(SocketFilter{})); got != 2 {
		t.Fatalf("sockets: got %d, want 2", got)
	}
	dial := DialOptions{Host: "127.0.0.1", Port: portOf(t, srv.addr)}
	if _, err := r.Dial(context.Background(), dial); !errors.Is(err, ErrLimit) {
		t.Fatalf("Dial over MaxSockets: got %v, want %v", err, ErrLimit)
	}
	// A closed socket gives its slot back (it stays readable meanwhile).
	second.Close(ReasonAPI)
	c, err := r.Dial(context.Background(), dial)
	if err != nil {
		t.Fatalf("Dial after a close freed a slot: got %v, want nil", err)
	}
	c.Close(ReasonAPI)
}

func TestBroadcastReachesEveryConnectedSocket(t *testing.T) {
	const peers = 3
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{})
	var conns []*net.TCPConn
	var socks []*Socket
	for range peers {
		c := dialPeer(t, srv.addr)
		conns = append(conns, c)
		socks = append(socks, acceptedSocket(t, r, srv, c))
	}
	socks[0].Close(ReasonAPI) // closed sockets are skipped
	msg := []byte("to everyone")
	n, sent, err := r.Broadcast(context.Background(), srv.Info().ID, msg)
	if err != nil || n != peers-1 || sent != int64((peers-1)*len(msg)) {
		t.Fatalf("Broadcast: got %d sockets, %d bytes, %v; want %d, %d, nil", n, sent, err, peers-1, (peers-1)*len(msg))
	}
	for i, c := range conns[1:] {
		buf := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(guard))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != string(msg) {
			t.Fatalf("peer %d: got %q, %v; want %q, nil", i+1, buf, err, msg)
		}
	}
	if _, _, err := r.Broadcast(context.Background(), "srv-"+strconv.Itoa(99), msg); !errors.Is(err, ErrServerNotFound) {
		t.Fatalf("Broadcast to an unknown server: got %v, want %v", err, ErrServerNotFound)
	}
}

// A broadcast writes every socket straight from the message: it holds no
// copy buffer per socket (256 KiB each) while slow peers keep it waiting.
// 64 peers that never read hold it with the message half sent; the heap
// must not grow by a buffer per socket meanwhile.
func TestBroadcastHoldsNoBufferPerSocket(t *testing.T) {
	const peers = 64
	r := newTestRegistry(t, Config{WriteTimeout: guard})
	srv := listen(t, r, ListenOptions{})
	var conns []*net.TCPConn
	for range peers {
		c := dialPeer(t, srv.addr)
		c.SetReadBuffer(4096) // and it never reads
		s := acceptedSocket(t, r, srv, c)
		s.conn.SetWriteBuffer(4096)
		conns = append(conns, c)
	}
	data := bytes.Repeat([]byte("x"), 1<<20)
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	go func() {
		_, _, err := r.Broadcast(context.Background(), srv.Info().ID, data)
		done <- err
	}()
	// Every socket's send is under way, on a peer that reads nothing.
	waitSending(t, r, peers)
	runtime.GC()
	runtime.ReadMemStats(&during)
	grew := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	for _, c := range conns {
		c.Close() // the sends end; the broadcast returns
	}
	if err := <-done; err != nil {
		t.Fatalf("Broadcast: got %v, want nil", err)
	}
	if grew > 4<<20 {
		t.Fatalf("heap while a 1 MiB broadcast waits on %d peers: grew %d KiB, want it not to grow with the sockets (a buffer each would be %d KiB)", peers, grew>>10, peers*readSize>>10)
	}
}

// A broadcast whose request ends (the client went away, the service shuts
// down) says so, with what it got done, instead of reporting success.
func TestBroadcastCancelledSaysSo(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, _, _ := connectPair(t, r, ListenOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, sent, err := r.Broadcast(ctx, srv.Info().ID, []byte("late"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Broadcast with its request ended: got %d sockets, %d bytes, %v; want context.Canceled", n, sent, err)
	}
}
