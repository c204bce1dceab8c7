package sockets

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
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

// fullBacklogAddr returns the address of a loopback listener whose accept
// queue is full: Linux drops the SYNs sent to it, so a connect hangs until
// its timeout. It skips the test when this kernel does not behave so.
func fullBacklogAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: got %v, want nil", err)
	}
	syscall.CloseOnExec(fd)
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: got %v, want nil", err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // never accepted
		t.Fatalf("listen: got %v, want nil", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: got %v, want nil", err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	const tries = 32
	for range tries {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			if isTimeout(err) {
				return addr
			}
			t.Skipf("filling the backlog of %s: got %v, want a connect or a timeout; cannot make a connect time out on this kernel", addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skipf("%d connects to a listener with backlog 0 all succeeded: this kernel does not drop SYNs to a full accept queue, so a connect timeout cannot be made on loopback", tries)
	return ""
}

func TestDialTimeoutIsConnectTimeout(t *testing.T) {
	addr := fullBacklogAddr(t)
	r := newTestRegistry(t, Config{})
	_, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: portOf(t, addr), Timeout: 300 * time.Millisecond})
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
		"negative buffer":       {Host: "127.0.0.1", Port: port, BufferBytes: -1},
		"buffer above the most": {Host: "127.0.0.1", Port: port, BufferBytes: 1<<20 + 1},
		"unknown overflow":      {Host: "127.0.0.1", Port: port, Overflow: "drop"},
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
