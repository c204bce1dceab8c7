package sockets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// accept loop, read loop, janitor and long poll must have an owner who
// waits for it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// guard bounds every wait in these tests. It is a failure guard only: no
// test asserts that anything is faster than it.
const guard = 10 * time.Second

// waitFor polls cond until it holds, failing the test after timeout. It is
// the one place where these tests poll.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// newTestRegistry returns a registry closed at the end of the test. It logs
// nowhere: rejections are asserted, not read from stderr.
func newTestRegistry(t testing.TB, cfg Config) *Registry {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := New(cfg)
	t.Cleanup(func() { r.Close() })
	return r
}

// listen opens a server on 127.0.0.1 and an ephemeral port.
func listen(t testing.TB, r *Registry, o ListenOptions) *Server {
	t.Helper()
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	srv, err := r.Listen(context.Background(), o)
	if err != nil {
		t.Fatalf("Listen(%+v): got %v, want nil", o, err)
	}
	return srv
}

// dialPeer connects a test peer to addr; it is closed at the end of the test.
func dialPeer(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: guard}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: got %v, want nil", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// acceptedSocket waits until srv has registered the connection of peer and
// returns its socket, matched by the peer's address.
func acceptedSocket(t testing.TB, r *Registry, srv *Server, peer net.Conn) *Socket {
	t.Helper()
	var found *Socket
	waitFor(t, guard, func() bool {
		for _, s := range r.Sockets(SocketFilter{ServerID: srv.id}) {
			if s.remote == peer.LocalAddr().String() {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// connectPair opens a server with o, connects a peer and returns the peer
// and the socket that accepted it.
func connectPair(t testing.TB, r *Registry, o ListenOptions) (*Server, *net.TCPConn, *Socket) {
	t.Helper()
	srv := listen(t, r, o)
	peer := dialPeer(t, srv.addr)
	return srv, peer, acceptedSocket(t, r, srv, peer)
}

// testListener is a plain listener for sockets that the registry dials.
func testListener(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: got %v, want nil", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// acceptPeer accepts one connection on ln, closed at the end of the test.
func acceptPeer(t testing.TB, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(guard))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept: got %v, want nil", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func portOf(t testing.TB, addr string) int {
	t.Helper()
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatalf("resolve %q: got %v, want nil", addr, err)
	}
	return ap.Port
}

// waitReadLoopDone waits until the socket's read loop has ended: the socket
// is closed and its buffer says EOF (the loop marks the socket closed a
// moment before it marks the buffer).
func waitReadLoopDone(t testing.TB, s *Socket) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(guard):
		t.Fatalf("socket %s: read loop still running after %v, want it ended", s.id, guard)
	}
}

func ptr[T any](v T) *T { return &v }

// drain reads s with a cursor (acknowledging as it goes) until want bytes
// came, or EOF, failing if nothing comes for guard. It returns the bytes and the messages' seqs.
func drain(t testing.TB, s *Socket, want int64) ([]byte, []uint64) {
	t.Helper()
	got, seqs, err := readUntil(s, want)
	if err != nil {
		t.Fatal(err)
	}
	return got, seqs
}

// readUntil is drain for goroutines other than the test's.
func readUntil(s *Socket, want int64) ([]byte, []uint64, error) {
	var (
		got    []byte
		seqs   []uint64
		cursor uint64
	)
	deadline := time.Now().Add(guard)
	for int64(len(got)) < want {
		if time.Now().After(deadline) {
			return got, seqs, fmt.Errorf("socket %s: got %d bytes and then nothing for %v, want %d", s.id, len(got), guard, want)
		}
		sel, err := s.Read(context.Background(), ReadOptions{After: ptr(cursor), Wait: guard})
		if err != nil {
			return got, seqs, fmt.Errorf("socket %s: Read(after=%d): got %v, want nil", s.id, cursor, err)
		}
		for _, m := range sel.Messages {
			got = append(got, m.Data...)
			seqs = append(seqs, m.Seq)
		}
		if len(sel.Messages) > 0 {
			deadline = time.Now().Add(guard) // the guard is against a stall, not a slow machine
		}
		cursor = sel.Cursor
		sel.Release()
		if sel.EOF {
			break
		}
	}
	// Acknowledge the last messages too, as a client's next read would.
	sel, err := s.Read(context.Background(), ReadOptions{After: ptr(cursor)})
	sel.Release()
	return got, seqs, err
}

// isTimeout reports whether err is a deadline error from a net.Conn.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
