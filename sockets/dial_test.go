package sockets

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/fakedns"
	"github.com/sockman/sockman/internal/testnet"
)

func TestDialRegistersClientSocket(t *testing.T) {
	r := newTestRegistry(t, Config{})
	ln := testListener(t)
	s, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: portOf(t, ln.Addr().String())})
	if err != nil {
		t.Fatalf("Dial: got %v, want nil", err)
	}
	peer := acceptPeer(t, ln)
	info := s.Info()
	if info.Kind != KindClient || info.ServerID != "" || info.State != StateConnected ||
		info.RemoteAddress != peer.LocalAddr().String() || info.LocalAddress != peer.RemoteAddr().String() {
		t.Fatalf("client socket info: got %+v, want kind %q, no server, connected, peer %s", info, KindClient, peer.LocalAddr())
	}
	if info.BufferBytes != DefaultBufferBytes || info.Overflow != OverflowBlock {
		t.Fatalf("buffer, overflow: got %d, %q; want the defaults %d, %q", info.BufferBytes, info.Overflow, DefaultBufferBytes, OverflowBlock)
	}
	if got, err := r.Socket(s.ID()); err != nil || got != s {
		t.Fatalf("Socket(%q): got %v, %v; want the dialled socket", s.ID(), got, err)
	}
	if _, err := s.Send(context.Background(), strings.NewReader("ping")); err != nil {
		t.Fatalf("Send: got %v, want nil", err)
	}
	buf := make([]byte, 4)
	peer.SetReadDeadline(time.Now().Add(guard))
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read: got %q, %v; want \"ping\", nil", buf, err)
	}
	peer.Write([]byte("pong"))
	if got, _ := drain(t, s, 4); string(got) != "pong" {
		t.Fatalf("socket read: got %q, want \"pong\"", got)
	}
}

// freePort returns a loopback port that nothing listens on: it was bound a
// moment ago and released.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: got %v, want nil", err)
	}
	port := portOf(t, ln.Addr().String())
	ln.Close()
	return port
}

func TestDialRefusedIsConnectFailed(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: freePort(t)})
	if !errors.Is(err, ErrConnectFailed) {
		t.Fatalf("Dial to a closed port: got %v, want %v", err, ErrConnectFailed)
	}
	if got := len(r.Sockets(SocketFilter{})); got != 0 {
		t.Fatalf("sockets after a failed dial: got %d, want 0", got)
	}
}

func TestDialTimeoutIsConnectTimeout(t *testing.T) {
	port := testnet.UnansweredPort(t)
	r := newTestRegistry(t, Config{})
	_, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: port, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("Dial to a listener that drops SYNs: got %v, want %v", err, ErrConnectTimeout)
	}
	// The reserved slot came back: MaxSockets is not eaten by timeouts.
	r.mu.Lock()
	open := r.open
	r.mu.Unlock()
	if open != 0 {
		t.Fatalf("open slots after a timed-out dial: got %d, want 0", open)
	}
}

func TestDialInvalidOptionsAreInvalid(t *testing.T) {
	r := newTestRegistry(t, Config{MaxBufferBytes: 1 << 20, MaxDialTimeout: time.Minute})
	port := portOf(t, testListener(t).Addr().String())
	tests := map[string]DialOptions{
		"empty host":            {Port: port},
		"port 0":                {Host: "127.0.0.1", Port: 0},
		"port 70000":            {Host: "127.0.0.1", Port: 70000},
		"negative port":         {Host: "127.0.0.1", Port: -1},
		"negative buffer":       {Host: "127.0.0.1", Port: port, Recv: RecvOptions{BufferBytes: -1}},
		"buffer above the most": {Host: "127.0.0.1", Port: port, Recv: RecvOptions{BufferBytes: 1<<20 + 1}},
		"unknown overflow":      {Host: "127.0.0.1", Port: port, Recv: RecvOptions{Overflow: "drop"}},
		"negative timeout":      {Host: "127.0.0.1", Port: port, Timeout: -time.Second},
		"timeout above the max": {Host: "127.0.0.1", Port: port, Timeout: time.Hour},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := r.Dial(context.Background(), o); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Dial(%+v): got %v, want %v", o, err, ErrInvalid)
			}
		})
	}
	if got := len(r.Sockets(SocketFilter{})); got != 0 {
		t.Fatalf("sockets after invalid dials: got %d, want 0", got)
	}
}

// A connect whose request ends while it is under way (the client went away,
// the service is shutting down) is the cancellation, which the API answers
// 503, not a failure of the target: neither while connecting nor while the
// name is looked up. Nothing is registered and the slot comes back.
func TestDialCancelledIsNotConnectFailed(t *testing.T) {
	dns := fakedns.Start(t)
	dns.Drop("unanswered.test") // the lookup waits until cancelled
	for name, tc := range map[string]struct {
		o        DialOptions
		underWay func() bool
	}{
		// The dial has reserved its slot; its SYN goes to a listener that
		// drops it.
		"connecting": {DialOptions{Host: "127.0.0.1", Port: testnet.UnansweredPort(t), Timeout: guard}, func() bool { return true }},
		// The lookup reached the name server, which does not answer.
		"resolving": {DialOptions{Host: "unanswered.test", Port: 80, Timeout: guard}, func() bool { return dns.Queries("unanswered.test") > 0 }},
	} {
		t.Run(name, func(t *testing.T) {
			r := newTestRegistry(t, Config{Resolver: dns.Resolver(), MaxDialTimeout: guard})
			o := tc.o
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := r.Dial(ctx, o)
				errc <- err
			}()
			waitFor(t, guard, func() bool {
				r.mu.Lock()
				reserved := r.open == 1
				r.mu.Unlock()
				return reserved && tc.underWay()
			})
			cancel()
			err := <-errc
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrConnectFailed) || errors.Is(err, ErrConnectTimeout) {
				t.Fatalf("Dial cancelled while %s: got %v, want context.Canceled and no connect failure", name, err)
			}
			r.mu.Lock()
			open := r.open
			r.mu.Unlock()
			if open != 0 || len(r.Sockets(SocketFilter{})) != 0 {
				t.Fatalf("after the cancelled dial: %d open slots, %d sockets; want 0, 0", open, len(r.Sockets(SocketFilter{})))
			}
		})
	}
}
