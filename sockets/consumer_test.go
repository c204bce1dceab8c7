package sockets

import (
	"context"
	"errors"
	"testing"
)

func TestAttachIsOneConsumerAtATime(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatalf("peer write: %v", err)
	}
	waitFor(t, guard, func() bool { return s.Info().BufferedBytes == 5 })

	c, err := s.Attach()
	if err != nil {
		t.Fatalf("Attach: got %v, want nil", err)
	}
	if _, err := s.Attach(); !errors.Is(err, ErrSocketBusy) {
		t.Fatalf("second Attach: got %v, want %v", err, ErrSocketBusy)
	}
	if err := s.Ack(0); !errors.Is(err, ErrSocketBusy) {
		t.Fatalf("Ack while attached: got %v, want %v", err, ErrSocketBusy)
	}
	if _, err := s.Read(context.Background(), ReadOptions{After: ptr(uint64(0))}); !errors.Is(err, ErrSocketBusy) {
		t.Fatalf("Read with After while attached: got %v, want %v", err, ErrSocketBusy)
	}
	var be *BusyError
	if err := s.Ack(0); !errors.As(err, &be) || be.ID != s.ID() {
		t.Fatalf("Ack while attached: got %v, want a *BusyError naming %s", err, s.ID())
	}
	// A read without a cursor peeks: it consumes nothing.
	sel, err := s.Read(context.Background(), ReadOptions{})
	if err != nil || len(sel.Messages) != 1 {
		t.Fatalf("peek while attached: got %d messages, %v; want 1, nil", len(sel.Messages), err)
	}
	sel.Release()

	// The consumer selects without acknowledging, and acknowledges apart.
	sel = c.Next(context.Background(), c.Oldest()-1, 0, 0)
	if len(sel.Messages) != 1 || string(sel.Messages[0].Data) != "hello" {
		t.Fatalf("Next: got %d messages, want the one with hello", len(sel.Messages))
	}
	seq := sel.Cursor
	sel.Release()
	if got := s.Info().BufferedBytes; got != 5 {
		t.Fatalf("buffered after Next: got %d, want 5 (Next acknowledges nothing)", got)
	}
	if err := c.Ack(seq + 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("consumer Ack beyond the last message: got %v, want %v", err, ErrInvalid)
	}
	if err := c.Ack(seq); err != nil {
		t.Fatalf("consumer Ack: got %v, want nil", err)
	}
	if got := s.Info().BufferedBytes; got != 0 {
		t.Fatalf("buffered after Ack: got %d, want 0", got)
	}

	c.Detach()
	c.Detach() // idempotent
	if err := c.Ack(seq); !errors.Is(err, ErrSocketBusy) {
		t.Fatalf("Ack of a detached consumer: got %v, want %v", err, ErrSocketBusy)
	}
	if err := s.Ack(seq); err != nil {
		t.Fatalf("Ack after Detach: got %v, want nil", err)
	}
	c2, err := s.Attach()
	if err != nil {
		t.Fatalf("Attach after Detach: got %v, want nil", err)
	}
	c.Detach() // the old one's Detach must not detach the new one
	if err := s.Ack(seq); !errors.Is(err, ErrSocketBusy) {
		t.Fatalf("Ack with a new consumer after an old one's Detach: got %v, want %v", err, ErrSocketBusy)
	}
	c2.Detach()
}

func TestAckErrorsAsTheReadsDid(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, _, s := connectPair(t, r, ListenOptions{})
	if err := s.Ack(1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Ack beyond the last message: got %v, want %v", err, ErrInvalid)
	}
	if _, err := s.Read(context.Background(), ReadOptions{After: ptr(uint64(1))}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Read after beyond the last message: got %v, want %v", err, ErrInvalid)
	}
}

func TestConsumerNextWaitsAndEndsWithEOF(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	c, err := s.Attach()
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	defer c.Detach()
	got := make(chan Selection, 1)
	go func() { got <- c.Next(context.Background(), 0, 0, 0) }()
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatalf("peer write: %v", err)
	}
	sel := <-got
	if len(sel.Messages) != 1 {
		t.Fatalf("Next: got %d messages, want 1", len(sel.Messages))
	}
	after := sel.Cursor
	sel.Release()
	peer.Close()
	sel = c.Next(context.Background(), after, 0, 0)
	if !sel.EOF || len(sel.Messages) != 0 {
		t.Fatalf("Next after the peer closed: got EOF %v with %d messages, want EOF and none", sel.EOF, len(sel.Messages))
	}
	sel.Release()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, peer2, s2 := connectPair(t, r, ListenOptions{})
	defer peer2.Close()
	c2, _ := s2.Attach()
	defer c2.Detach()
	if sel := c2.Next(ctx, 0, 0, 0); len(sel.Messages) != 0 || sel.EOF {
		t.Fatalf("Next with an ended context: got %d messages, EOF %v; want none", len(sel.Messages), sel.EOF)
	}
}

func TestConsumerSendPublishesSourceStream(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})
	sub := subscribe(t, r, SubscribeOptions{Filter: EventFilter{Types: []string{string(EventSocketSent)}}})
	c, _ := s.Attach()
	defer c.Detach()
	if n, err := c.Send(context.Background(), []byte("ping")); n != 4 || err != nil {
		t.Fatalf("Send: got %d, %v; want 4, nil", n, err)
	}
	buf := make([]byte, 4)
	if _, err := peer.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read: got %q, %v", buf, err)
	}
	evs := nextEvents(t, sub, 1)
	if evs[0].Source != SourceStream || evs[0].Size != 4 {
		t.Fatalf("socket.sent: got source %q size %d, want %q 4", evs[0].Source, evs[0].Size, SourceStream)
	}
}
