package sockets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestPeerCloseClosesSocketAndKeepsDataReadable(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	if _, err := peer.Write([]byte("sent before the close")); err != nil {
		t.Fatalf("peer write: got %v, want nil", err)
	}
	peer.Close()
	waitFor(t, guard, s.Closed)
	info := s.Info()
	if info.State != StateClosed || info.CloseReason != ReasonPeerClosed {
		t.Fatalf("state, reason: got %q, %q; want %q, %q", info.State, info.CloseReason, StateClosed, ReasonPeerClosed)
	}
	if info.ClosedAt.IsZero() {
		t.Fatalf("closed_at: got zero, want the close time")
	}
	got, _ := drain(t, s, int64(len("sent before the close")))
	if string(got) != "sent before the close" {
		t.Fatalf("data after the close: got %q, want %q", got, "sent before the close")
	}
	if info := s.Info(); info.BytesReceived != int64(len(got)) {
		t.Fatalf("bytes_received: got %d, want %d", info.BytesReceived, len(got))
	}
}

func TestPeerResetClosesSocketWithResetReason(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	peer.SetLinger(0) // Close sends RST instead of FIN
	peer.Close()
	waitFor(t, guard, s.Closed)
	if got := s.Info().CloseReason; got != ReasonPeerReset {
		t.Fatalf("close reason: got %q, want %q", got, ReasonPeerReset)
	}
	sel, err := s.Read(context.Background(), ReadOptions{Wait: guard})
	if err != nil || !sel.EOF {
		t.Fatalf("Read after reset: got EOF %v, err %v; want true, nil", sel.EOF, err)
	}
}

func TestCloseIsIdempotentAndKeepsFirstReason(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	s.Close(ReasonAPI)
	s.Close(ReasonShutdown)
	if got := s.Info().CloseReason; got != ReasonAPI {
		t.Fatalf("close reason after two closes: got %q, want %q", got, ReasonAPI)
	}
	if got := s.State(); got != StateClosed {
		t.Fatalf("state: got %q, want %q", got, StateClosed)
	}
	peer.SetReadDeadline(time.Now().Add(guard))
	if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer read after Close: got %d, %v; want 0, EOF", n, err)
	}
}

func TestSendAfterCloseIsSocketClosed(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, _, s := connectPair(t, r, ListenOptions{})
	s.Close(ReasonAPI)
	n, err := s.Send(context.Background(), strings.NewReader("late"))
	if !errors.Is(err, ErrSocketClosed) || n != 0 {
		t.Fatalf("Send after Close: got %d, %v; want 0, %v", n, err, ErrSocketClosed)
	}
}

func TestSendDeliversAndCountsBytes(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	n, err := s.Send(context.Background(), strings.NewReader("hello peer"))
	if err != nil || n != 10 {
		t.Fatalf("Send: got %d, %v; want 10, nil", n, err)
	}
	got := make([]byte, 10)
	peer.SetReadDeadline(time.Now().Add(guard))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "hello peer" {
		t.Fatalf("peer read: got %q, %v; want %q, nil", got, err, "hello peer")
	}
	if got := s.Info().BytesSent; got != 10 {
		t.Fatalf("bytes_sent: got %d, want 10", got)
	}
}

func TestConcurrentSendsNeverInterleave(t *testing.T) {
	const senders, each = 4, 1 << 20
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), bytes.NewReader(bytes.Repeat([]byte{'a' + byte(i)}, each))); err != nil {
				t.Errorf("Send %d: got %v, want nil", i, err)
			}
		})
	}
	got := make([]byte, senders*each)
	peer.SetReadDeadline(time.Now().Add(guard))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("peer read: got %v, want nil", err)
	}
	wg.Wait()
	seen := map[byte]bool{}
	for off := 0; off < len(got); off += each {
		run := got[off : off+each]
		if c := run[0]; seen[c] || bytes.Count(run, run[:1]) != each {
			t.Fatalf("bytes %d to %d: got a mixed or repeated run, want %d bytes of one sender", off, off+each, each)
		}
		seen[run[0]] = true
	}
}

// zeros yields zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestSendToPeerThatNeverReadsTimesOut(t *testing.T) {
	r := newTestRegistry(t, Config{WriteTimeout: 200 * time.Millisecond})
	s := stalledPeer(t, r)

	const offered = 256 << 20 // far more than any kernel buffers
	n, err := s.Send(context.Background(), io.LimitReader(zeros{}, offered))
	if !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Send to a peer that never reads: got %v, want %v", err, ErrWriteTimeout)
	}
	if n <= 0 || n >= offered {
		t.Fatalf("bytes sent before the timeout: got %d, want between 1 and %d", n, offered-1)
	}
	if want := fmt.Sprintf("%d bytes were sent", n); !strings.Contains(err.Error(), want) {
		t.Fatalf("error: got %q, want it to say %q", err, want)
	}
	if got := s.Info().BytesSent; got != n {
		t.Fatalf("bytes_sent: got %d, want %d", got, n)
	}
	if s.Closed() {
		t.Fatalf("state after a write timeout: got closed, want connected (the peer may read later)")
	}
}

// stalledPeer connects a peer with a tiny receive window that never reads.
func stalledPeer(t *testing.T, r *Registry) *Socket {
	t.Helper()
	srv := listen(t, r, ListenOptions{})
	d := net.Dialer{Timeout: guard, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatalf("dial: got %v, want nil", err)
	}
	t.Cleanup(func() { c.Close() })
	return acceptedSocket(t, r, srv, c)
}

// A send blocked on a peer that takes nothing ends when its context ends,
// not a write timeout later, and frees the socket for the next send.
func TestCancelledSendStopsBlockedWrite(t *testing.T) {
	r := newTestRegistry(t, Config{WriteTimeout: time.Hour})
	s := stalledPeer(t, r)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(ctx, io.LimitReader(zeros{}, 256<<20))
		done <- err
	}()
	waitFor(t, guard, func() bool { return s.Info().BytesSent > 0 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Send: got %v, want %v", err, context.Canceled)
		}
	case <-time.After(guard):
		t.Fatalf("cancelled Send still blocked after %v (write timeout is an hour)", guard)
	}
	// The next send takes the lock and its own deadline: a short context
	// ends it too, so it is not stuck behind the past deadline either.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := s.Send(ctx2, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a done context: got %v, want %v", err, context.Canceled)
	}
	if s.Closed() {
		t.Fatalf("state after a cancelled send: got closed, want connected")
	}
}

func TestLongPollWakesWhenDataArrives(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	done := make(chan Selection, 1)
	go func() {
		sel, _ := s.Read(context.Background(), ReadOptions{After: ptr[uint64](0), Wait: 2 * guard})
		done <- sel
	}()
	if _, err := peer.Write([]byte("wake up")); err != nil {
		t.Fatalf("peer write: got %v, want nil", err)
	}
	select {
	case sel := <-done:
		if len(sel.Messages) != 1 || string(sel.Messages[0].Data) != "wake up" || sel.Cursor != 1 {
			t.Fatalf("long poll: got %d messages, cursor %d; want \"wake up\", cursor 1", len(sel.Messages), sel.Cursor)
		}
	case <-time.After(guard):
		t.Fatalf("long poll: got no answer within %v, want the message", guard)
	}
}

func TestLongPollWakesOnPeerClose(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	done := make(chan Selection, 1)
	go func() {
		sel, _ := s.Read(context.Background(), ReadOptions{Wait: 2 * guard})
		done <- sel
	}()
	peer.Close()
	select {
	case sel := <-done:
		if len(sel.Messages) != 0 || !sel.EOF || sel.State != StateClosed {
			t.Fatalf("long poll at peer close: got %d messages, EOF %v, state %q; want 0, true, %q", len(sel.Messages), sel.EOF, sel.State, StateClosed)
		}
	case <-time.After(guard):
		t.Fatalf("long poll: got no answer within %v, want EOF", guard)
	}
}

func TestLongPollReturnsEmptyAtDeadline(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, _, s := connectPair(t, r, ListenOptions{})
	sel, err := s.Read(context.Background(), ReadOptions{After: ptr[uint64](0), Wait: 50 * time.Millisecond})
	if err != nil || len(sel.Messages) != 0 || sel.EOF || sel.Cursor != 0 {
		t.Fatalf("long poll at its deadline: got %d messages, EOF %v, cursor %d, err %v; want 0, false, 0, nil",
			len(sel.Messages), sel.EOF, sel.Cursor, err)
	}
}

func TestLongPollReturnsWhenContextCancelled(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, _, s := connectPair(t, r, ListenOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		sel, err := s.Read(ctx, ReadOptions{Wait: time.Hour})
		if err == nil && len(sel.Messages) != 0 {
			err = fmt.Errorf("got %d messages, want 0", len(sel.Messages))
		}
		done <- err
	}()
	cancel() // the client gave up
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("long poll after cancel: got %v, want nil", err)
		}
	case <-time.After(guard):
		t.Fatalf("long poll: got no answer within %v of cancel, want an empty answer", guard)
	}
	// goleak (TestMain) proves the poll left no goroutine or timer behind.
}

func TestLongPollWakesWhenSocketDeleted(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, _, s := connectPair(t, r, ListenOptions{})
	done := make(chan Selection, 1)
	go func() {
		sel, _ := s.Read(context.Background(), ReadOptions{Wait: time.Hour})
		done <- sel
	}()
	if err := r.DeleteSocket(s.ID()); err != nil {
		t.Fatalf("DeleteSocket: got %v, want nil", err)
	}
	select {
	case sel := <-done:
		if !sel.EOF {
			t.Fatalf("long poll on a deleted socket: got EOF %v, want true", sel.EOF)
		}
	case <-time.After(guard):
		t.Fatalf("long poll: got no answer within %v of DeleteSocket, want EOF", guard)
	}
}

// TestReadStateSaysClosedOnlyAtTheEnd: a read answers "closed" with no
// messages only when the selection reached the end of the stream; a socket
// that closed after the selection was made, with its last bytes stored
// since, reads as connected so that the client asks again.
func TestReadStateSaysClosedOnlyAtTheEnd(t *testing.T) {
	one := []Message{{Seq: 1, Data: []byte("x")}}
	for _, tc := range []struct {
		state string
		sel   Selection
		want  string
	}{
		{"connected", Selection{}, "connected"},
		{"connected", Selection{Messages: one}, "connected"},
		{"closed", Selection{EOF: true}, "closed"},
		{"closed", Selection{Messages: one, EOF: true}, "closed"},
		{"closed", Selection{Messages: one}, "closed"}, // more to read, and the client will
		{"closed", Selection{}, "connected"},           // closed after the selection
	} {
		if got := readState(tc.state, tc.sel); got != tc.want {
			t.Errorf("readState(%s, %d messages, EOF %v) = %s, want %s", tc.state, len(tc.sel.Messages), tc.sel.EOF, got, tc.want)
		}
	}
}

// A send that fails because the peer has gone must not close the socket
// under its read loop: what the peer sent before it closed, still queued in
// the kernel because the buffer was full, stays readable to the last byte.
func TestSendToGonePeerKeepsWhatItSent(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 1024}})
	// Well within what the kernel queues for a paused reader: a peer that
	// closes with data it could not deliver yet would reset, and TCP would
	// drop that data before sockman ever saw it.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 24<<10/16)
	if _, err := peer.Write(payload); err != nil {
		t.Fatalf("peer write: got %v, want nil", err)
	}
	// The buffer is full and the read loop paused, the rest queued.
	waitFor(t, guard, func() bool { n, _, _ := s.buf.stats(); return n == 1024 })
	peer.Close()
	// The first send after the close is answered by a reset; a later one
	// fails.
	var sendErr error
	waitFor(t, guard, func() bool {
		_, sendErr = s.Send(context.Background(), strings.NewReader("x"))
		return sendErr != nil
	})
	if !errors.Is(sendErr, ErrSocketClosed) {
		t.Fatalf("send to the gone peer: got %v, want ErrSocketClosed", sendErr)
	}
	got, _ := drain(t, s, int64(len(payload)))
	if !bytes.Equal(got, payload) {
		t.Fatalf("read after the failed send: got %d bytes, want the %d the peer sent", len(got), len(payload))
	}
	waitFor(t, guard, s.Closed)
	if got := s.Info().CloseReason; got != ReasonPeerClosed && got != ReasonPeerReset {
		t.Fatalf("close reason: got %q, want %q or %q", got, ReasonPeerClosed, ReasonPeerReset)
	}
}

// A send whose context ends just as it finishes leaves no past write
// deadline behind for the next send: that one must not fail with a write
// timeout while the peer reads everything. The race is narrow; many rounds
// make it show (under -race in tens of the rounds).
func TestCancelledSendLeavesNextSendAlone(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, peer)
		copied <- err
	}()
	for i := range 10_000 {
		ctx, cancel := context.WithCancel(context.Background())
		go cancel()
		s.Send(ctx, strings.NewReader("a")) // may or may not be cancelled
		if _, err := s.Send(context.Background(), strings.NewReader("b")); err != nil {
			t.Fatalf("round %d: send with a live context: got %v, want nil", i, err)
		}
	}
	s.Close(ReasonAPI)
	if err := <-copied; err != nil {
		t.Fatalf("peer: got %v, want a clean end", err)
	}
}

// With the registry-wide total reached by another socket, a socket that
// holds nothing still sees its peer close at once: a long poll on it
// returns the end instead of waiting for memory that another socket holds.
func TestPeerCloseSeenWhileTotalIsFull(t *testing.T) {
	r := newTestRegistry(t, Config{MaxBufferTotal: 64 << 10})
	srv := listen(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 64 << 10}})
	peerA := dialPeer(t, srv.addr)
	acceptedSocket(t, r, srv, peerA)
	peerB := dialPeer(t, srv.addr)
	b := acceptedSocket(t, r, srv, peerB)
	if _, err := peerA.Write(bytes.Repeat([]byte("a"), 64<<10)); err != nil {
		t.Fatalf("peer A write: got %v, want nil", err)
	}
	waitFor(t, guard, r.mem.full)
	peerB.Close()
	sel, err := b.Read(context.Background(), ReadOptions{Wait: guard})
	if err != nil {
		t.Fatalf("long poll on B: got %v, want nil", err)
	}
	if !sel.EOF || sel.State != StateClosed {
		t.Fatalf("long poll on B after its peer closed: got EOF %v, state %q; want true, %q", sel.EOF, sel.State, StateClosed)
	}
	if got := b.Info().CloseReason; got != ReasonPeerClosed {
		t.Fatalf("close reason: got %q, want %q", got, ReasonPeerClosed)
	}
}

// The time a socket closed, as the retention measures it, keeps the
// monotonic clock reading (Time.String shows it as m=): a step of the wall
// clock (NTP, a resumed VM) must not end the retention early, or late.
func TestClosedSinceKeepsMonotonicReading(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, _, s := connectPair(t, r, ListenOptions{})
	s.Close(ReasonAPI)
	at, closed := s.closedSince()
	if !closed || !strings.Contains(at.String(), " m=") {
		t.Fatalf("closedSince: got %v, closed %v; want a time with its monotonic reading", at, closed)
	}
	if got := s.Info().ClosedAt; got.Location() != time.UTC {
		t.Fatalf("closed_at: got %v, want UTC", got)
	}
}
