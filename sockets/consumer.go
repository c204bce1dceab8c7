package sockets

import (
	"context"
	"sync"
)

// A socket's buffer has one consumer at a time: the cursor reads (Read with
// After, which acknowledge), or one attached Consumer (a stream). Readers
// that do not acknowledge (Read without After) may look at any time.
// Socket.consMu guards which it is, and is held across an acknowledgement,
// so that a read cannot free what a stream has just taken over.

// Consumer is the one attached consumer of a socket's buffer. It selects,
// acknowledges and sends on the socket's behalf until Detach. Its methods
// may be called from several goroutines at once (a stream acknowledges from
// its reader while its writer selects).
type Consumer struct {
	s    *Socket
	once sync.Once
}

// Attach makes the caller the socket's one consumer until Detach. While it
// is attached, Ack and Read with After fail with a *BusyError (matching
// ErrSocketBusy); so does a second Attach. A closed socket may be attached
// too: what it holds is still to be consumed. Attach does not block.
func (s *Socket) Attach() (*Consumer, error) {
	s.consMu.Lock()
	defer s.consMu.Unlock()
	if s.consumer != nil {
		return nil, &BusyError{ID: s.id}
	}
	c := &Consumer{s: s}
	s.consumer = c
	return c, nil
}

// Ack acknowledges (frees) every message with seq <= after. It fails with
// ErrInvalid when after is beyond the newest message ever stored (such a
// cursor was never handed out), and with a *BusyError while a Consumer is
// attached (which acknowledges through its own Ack). It does not block on
// the peer.
func (s *Socket) Ack(after uint64) error {
	s.consMu.Lock()
	defer s.consMu.Unlock()
	if s.consumer != nil {
		return &BusyError{ID: s.id}
	}
	return s.buf.ack(after)
}

// Socket returns the socket consumed.
func (c *Consumer) Socket() *Socket { return c.s }

// Detach ends the consumer: the cursor reads consume again. What it did not
// acknowledge stays held. It is idempotent.
func (c *Consumer) Detach() {
	c.once.Do(func() {
		c.s.consMu.Lock()
		if c.s.consumer == c {
			c.s.consumer = nil
		}
		c.s.consMu.Unlock()
	})
}

// Ack acknowledges every message with seq <= after, as Socket.Ack does but
// on the consumer's behalf. After Detach it fails as Socket.Ack does.
func (c *Consumer) Ack(after uint64) error {
	s := c.s
	s.consMu.Lock()
	defer s.consMu.Unlock()
	if s.consumer != c {
		return &BusyError{ID: s.id}
	}
	return s.buf.ack(after)
}

// Oldest returns the seq of the oldest message held, or of the next one to
// come when none is: a consumer that starts without a cursor starts after
// Oldest()-1.
func (c *Consumer) Oldest() uint64 { return c.s.buf.firstUnacked() }

// Next selects the messages after the given seq, at most limit of them and
// maxBytes in all (0: no cap; one message is returned even when it alone is
// larger), without acknowledging them. It blocks until there is one, the
// socket's stream ends (the selection's EOF) or ctx ends (then it returns
// an empty selection). The caller must Release the selection.
func (c *Consumer) Next(ctx context.Context, after uint64, limit, maxBytes int) Selection {
	return c.s.selectWait(ctx, after, limit, maxBytes, -1)
}

// Send writes p to the peer as Socket.SendBytes does; its socket.sent event
// names the stream as its source.
func (c *Consumer) Send(ctx context.Context, p []byte) (int64, error) {
	return c.s.sendBytes(ctx, SourceStream, p)
}
