package sockets

import (
	"fmt"
	"sync"
	"time"
)

// Overflow says what a socket does when its buffer is full.
type Overflow string

const (
	// OverflowBlock stops reading from the connection until the reader
	// acknowledges messages, so TCP flow control slows the peer. Nothing is lost.
	OverflowBlock Overflow = "block"
	// OverflowDropOldest keeps reading and drops the oldest messages, counting
	// their bytes in DroppedBytes. The gap shows in Seq.
	OverflowDropOldest Overflow = "drop_oldest"
)

// ParseOverflow returns the Overflow named s; "" means OverflowBlock.
func ParseOverflow(s string) (Overflow, error) {
	switch Overflow(s) {
	case "", OverflowBlock:
		return OverflowBlock, nil
	case OverflowDropOldest:
		return OverflowDropOldest, nil
	}
	return "", fmt.Errorf("%w: overflow %q is not one of block, drop_oldest", ErrInvalid, s)
}

// Message is one chunk received from the peer. Data is never modified after
// the message is stored, so it may be shared with readers without a copy.
type Message struct {
	Seq        uint64
	ReceivedAt time.Time
	Data       []byte
}

// buffer holds the unacknowledged messages of one socket, bounded by limit
// bytes. It has its own lock; the socket's read loop is its only writer.
type buffer struct {
	limit    int
	overflow Overflow
	mem      *memory // registry-wide accounting, shared by every buffer

	mu       sync.Mutex // guards the following fields
	msgs     []Message  // oldest first; msgs[i].Seq increases by 1 except across drops
	size     int        // total bytes in msgs
	lastSeq  uint64     // seq of the newest message ever stored
	dropped  int64      // bytes dropped by OverflowDropOldest
	eof      bool       // no more messages will come
	changed  chan struct{} // closed and replaced when a message arrives or eof is set
	freed    chan struct{} // closed and replaced when acknowledged bytes are freed
	released bool          // the registry-wide memory was given back
}

func newBuffer(limit int, overflow Overflow, mem *memory) *buffer {
	return &buffer{
		limit:    limit,
		overflow: overflow,
		mem:      mem,
		changed:  make(chan struct{}),
		freed:    make(chan struct{}),
	}
}

// space returns how many bytes the read loop may read now, and a channel that
// is closed when that may have changed. With OverflowDropOldest the whole limit
// is always available: old messages make room.
func (b *buffer) space() (int, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.overflow == OverflowDropOldest {
		return b.limit, b.freed
	}
	return b.limit - b.size, b.freed
}

// push stores data as the next message. The caller has checked space, so with
// OverflowBlock it always fits; with OverflowDropOldest the oldest messages are
// dropped until it does.
func (b *buffer) push(data []byte, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	freed := 0
	for b.size+len(data) > b.limit && len(b.msgs) > 0 {
		n := len(b.msgs[0].Data)
		b.dropped += int64(n)
		freed += n
		b.size -= n
		b.msgs[0] = Message{}
		b.msgs = b.msgs[1:]
	}
	b.lastSeq++
	b.msgs = append(b.msgs, Message{Seq: b.lastSeq, ReceivedAt: now, Data: data})
	b.size += len(data)
	b.mem.add(int64(len(data) - freed))
	close(b.changed)
	b.changed = make(chan struct{})
}

// setEOF records that no more messages will come and wakes every waiter.
func (b *buffer) setEOF() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.eof {
		b.eof = true
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// release gives the buffered bytes back to the registry-wide accounting and
// empties the buffer. It is idempotent; the socket calls it when it is deleted.
func (b *buffer) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return
	}
	b.released = true
	b.mem.add(-int64(b.size))
	clear(b.msgs)
	b.msgs = nil
	b.size = 0
	b.eof = true
	close(b.changed)
	b.changed = make(chan struct{})
	close(b.freed)
	b.freed = make(chan struct{})
}

// Selection is what one read returned.
type Selection struct {
	Messages []Message
	// Cursor is the seq of the last message returned, or the after given
	// (0 when none) if nothing was returned.
	Cursor uint64
	// EOF: no more messages will arrive after these.
	EOF bool
}

// ReadOptions select messages from a socket's buffer.
type ReadOptions struct {
	// After, when set, acknowledges (frees) every message with seq <= *After
	// and selects only later ones.
	After *uint64
	// Limit caps the number of messages; 0 means no cap.
	Limit int
	// MaxBytes caps their total size; 0 means no cap. At least one message is
	// returned when any is there, even if it alone is larger.
	MaxBytes int
	// Wait, when positive, blocks until a message is there, the socket closes,
	// Wait passes, or the context ends.
	Wait time.Duration
}

// ack frees messages up to after. It fails when after is beyond the newest
// message ever stored: such a cursor was never handed out.
func (b *buffer) ack(after uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if after > b.lastSeq {
		return fmt.Errorf("%w: cursor after=%d is beyond the last message received (seq %d); pass the cursor of a previous read", ErrInvalid, after, b.lastSeq)
	}
	i := 0
	freed := 0
	for i < len(b.msgs) && b.msgs[i].Seq <= after {
		freed += len(b.msgs[i].Data)
		i++
	}
	if i == 0 {
		return nil
	}
	clear(b.msgs[:i])
	b.msgs = b.msgs[i:]
	if len(b.msgs) == 0 {
		b.msgs = nil // let the backing array go
	}
	b.size -= freed
	if !b.released {
		b.mem.add(-int64(freed))
	}
	close(b.freed)
	b.freed = make(chan struct{})
	return nil
}

// selectAfter returns the messages after the given seq within the caps, and a
// channel closed when a new message arrives or EOF is set.
func (b *buffer) selectAfter(after uint64, limit, maxBytes int) (Selection, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sel := Selection{Cursor: after, EOF: b.eof}
	start := len(b.msgs)
	for i, m := range b.msgs {
		if m.Seq > after {
			start = i
			break
		}
	}
	total := 0
	end := start
	for end < len(b.msgs) {
		n := len(b.msgs[end].Data)
		if limit > 0 && end-start >= limit {
			break
		}
		if maxBytes > 0 && end > start && total+n > maxBytes {
			break
		}
		total += n
		end++
	}
	if end > start {
		// A copy of the slice headers: the buffer may drop or free these
		// entries while the caller encodes them.
		sel.Messages = append([]Message(nil), b.msgs[start:end]...)
		sel.Cursor = b.msgs[end-1].Seq
		sel.EOF = sel.EOF && end == len(b.msgs)
	}
	return sel, b.changed
}

// firstUnacked returns the seq of the oldest message held, or the next seq
// to come when none is held.
func (b *buffer) firstUnacked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) > 0 {
		return b.msgs[0].Seq
	}
	return b.lastSeq + 1
}

// stats returns the buffered bytes and messages and the dropped bytes.
func (b *buffer) stats() (size, count int, dropped int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size, len(b.msgs), b.dropped
}
