package sockets

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitWaiting waits, on the registry's own signal, until n reads are parked.
func waitWaiting(t testing.TB, r *Registry, n int) {
	t.Helper()
	waitGauge(t, "parked reads", r.WaitingChanged, r.Waiting, n)
}

// waitSending waits, on the registry's own signal, until n sends are under
// way.
func waitSending(t testing.TB, r *Registry, n int) {
	t.Helper()
	waitGauge(t, "sends under way", r.SendingChanged, r.Sending, n)
}

func waitGauge(t testing.TB, what string, changedChan func() <-chan struct{}, count func() int, n int) {
	t.Helper()
	deadline := time.NewTimer(guard)
	defer deadline.Stop()
	for {
		changed := changedChan()
		got := count()
		if got == n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %d %s; %d are", guard, n, what, got)
		}
	}
}

// parkedRead is a Read with a wait, in its own goroutine.
type parkedRead struct {
	done chan struct{}
	sel  Selection
	err  error
}

func startRead(s *Socket, ctx context.Context, o ReadOptions) *parkedRead {
	p := &parkedRead{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.sel, p.err = s.Read(ctx, o)
	}()
	return p
}

func (p *parkedRead) wait(t testing.TB) Selection {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(guard):
		t.Fatalf("the read is still parked after %v", guard)
	}
	if p.err != nil {
		t.Fatalf("Read: got %v, want nil", p.err)
	}
	p.sel.Release()
	return p.sel
}

// Waiting counts the reads parked for data, and only those: each one from
// when it parks until a message, its context, its deadline or the socket's
// close ends it. A read that finds data, or does not wait, never counts.
func TestWaitingCountsParkedReads(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peerA, a := connectPair(t, r, ListenOptions{})
	_, _, b := connectPair(t, r, ListenOptions{})
	_, _, c := connectPair(t, r, ListenOptions{})
	if got := r.Waiting(); got != 0 {
		t.Fatalf("no read yet: Waiting() = %d, want 0", got)
	}

	byData := startRead(a, context.Background(), ReadOptions{Wait: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	byCtx := startRead(b, ctx, ReadOptions{Wait: time.Minute})
	byClose := startRead(c, context.Background(), ReadOptions{Wait: time.Minute})
	waitWaiting(t, r, 3)

	peerA.Write([]byte("wake"))
	if sel := byData.wait(t); len(sel.Messages) != 1 {
		t.Fatalf("the read woken by data: got %d messages, want 1", len(sel.Messages))
	}
	waitWaiting(t, r, 2)
	cancel()
	byCtx.wait(t)
	waitWaiting(t, r, 1)
	c.Close("test")
	byClose.wait(t)
	waitWaiting(t, r, 0)

	// With a message there, or no wait, a read answers without parking:
	// the count does not move at all.
	changed := r.WaitingChanged()
	after := uint64(0)
	if sel, err := a.Read(context.Background(), ReadOptions{After: &after, Wait: time.Minute}); err != nil || len(sel.Messages) != 1 {
		t.Fatalf("a read with a message there: got %d messages, %v; want 1, nil", len(sel.Messages), err)
	} else {
		sel.Release()
	}
	if sel, err := b.Read(context.Background(), ReadOptions{}); err != nil || len(sel.Messages) != 0 {
		t.Fatalf("a read without a wait: got %d messages, %v; want none, nil", len(sel.Messages), err)
	}
	select {
	case <-changed:
		t.Fatalf("Waiting changed (now %d) for reads that did not park", r.Waiting())
	default:
	}
}

// A read parked until its own deadline counts until then.
func TestWaitingEndsWithTheDeadline(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, _, s := connectPair(t, r, ListenOptions{})
	parked := r.WaitingChanged() // closed when the read parks
	p := startRead(s, context.Background(), ReadOptions{Wait: 50 * time.Millisecond})
	select {
	case <-parked:
	case <-time.After(guard):
		t.Fatal("the read never parked")
	}
	waitWaiting(t, r, 0)
	p.wait(t)
	if got := r.Waiting(); got != 0 {
		t.Fatalf("after the deadline: Waiting() = %d, want 0", got)
	}
}

// Every change of the count closes the channel taken before it, however
// many watchers there are: a watcher that reads the count after taking the
// channel misses none.
func TestWaitingChangedMissesNoChange(t *testing.T) {
	var w gauge
	first := w.changed()
	second := w.changed()
	if first != second {
		t.Fatal("two watchers before a change got different channels")
	}
	w.add(1)
	for i, ch := range []<-chan struct{}{first, second} {
		select {
		case <-ch:
		default:
			t.Fatalf("watcher %d: its channel is open after a change", i)
		}
	}
	next := w.changed()
	select {
	case <-next:
		t.Fatal("a channel taken after the change is already closed")
	default:
	}
	w.add(-1)
	<-next
	if got := w.n.Load(); got != 0 {
		t.Fatalf("count: got %d, want 0", got)
	}
}

// Sending counts the sends under way: one that waits on a peer that takes
// nothing counts until its write timeout ends it, and one that went out
// whole counts no more.
func TestSendingCountsSendsUnderWay(t *testing.T) {
	r := newTestRegistry(t, Config{WriteTimeout: 200 * time.Millisecond})
	_, peer, s := connectPair(t, r, ListenOptions{})
	peer.SetReadBuffer(4096) // and it reads nothing
	s.conn.SetWriteBuffer(4096)
	if got := r.Sending(); got != 0 {
		t.Fatalf("no send yet: Sending() = %d, want 0", got)
	}
	if _, err := s.SendBytes(context.Background(), []byte("small")); err != nil {
		t.Fatalf("a small send: %v", err)
	}
	if got := r.Sending(); got != 0 {
		t.Fatalf("after a send went out: Sending() = %d, want 0", got)
	}
	started := r.SendingChanged() // closed when the send below starts
	done := make(chan error, 1)
	go func() {
		_, err := s.SendBytes(context.Background(), make([]byte, 8<<20))
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(guard):
		t.Fatal("the send never counted")
	}
	waitSending(t, r, 0) // its write timeout ends it
	if err := <-done; !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("a send the peer takes nothing of: got %v, want ErrWriteTimeout", err)
	}
}
