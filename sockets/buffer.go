package sockets

import (
	"cmp"
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
// (Its memory may be reused once the message is acknowledged and every
// Selection that returned it is released: see Selection.Release.)
type Message struct {
	Seq        uint64
	ReceivedAt time.Time
	Data       []byte
}

// entry is a stored message and the pooled block behind its Data, if any.
type entry struct {
	Message
	blk *block
}

// buffer holds the unacknowledged messages of one socket, bounded by limit
// bytes. It has its own lock; the socket's read loop is its only writer.
type buffer struct {
	limit    int
	overflow Overflow
	mem      *memory // registry-wide accounting, shared by every buffer

	mu       sync.Mutex    // guards the following fields
	msgs     []entry       // oldest first; msgs[i].Seq increases by 1 except across drops
	size     int           // total bytes in msgs
	lastSeq  uint64        // seq of the newest message ever stored
	dropped  int64         // bytes dropped by OverflowDropOldest
	eof      bool          // no more messages will come
	changed  chan struct{} // closed when a message arrives or eof is set; nil until a reader asks for it
	freed    chan struct{} // closed when acknowledged bytes are freed; nil until the read loop asks for it
	released bool          // the registry-wide memory was given back
	lastDrop drop          // what the last pushBlock dropped; its caller, the read loop, reads it
}

// drop is what one pushBlock dropped: bytes, in messages first to last.
type drop struct {
	bytes       int64
	first, last uint64
}

func newBuffer(limit int, overflow Overflow, mem *memory) *buffer {
	return &buffer{limit: limit, overflow: overflow, mem: mem}
}

// The wake channels are made when someone asks for one and closed (then
// forgotten) at the next change: a message that no reader waits for, and an
// acknowledgement that no read loop waits for, allocate nothing, and an
// idle socket holds no channel. b.mu must be held.

func (b *buffer) changedChan() chan struct{} {
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.changed
}

// wakeChanged wakes the readers waiting for a message or EOF and reports
// whether there was a channel to close.
func (b *buffer) wakeChanged() bool {
	if b.changed == nil {
		return false
	}
	close(b.changed)
	b.changed = nil
	return true
}

func (b *buffer) freedChan() chan struct{} {
	if b.freed == nil {
		b.freed = make(chan struct{})
	}
	return b.freed
}

func (b *buffer) wakeFreed() {
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
}

// space returns how many bytes the read loop may read now, and a channel that
// is closed when that may have changed. With OverflowDropOldest the whole limit
// is always available: old messages make room.
func (b *buffer) space() (int, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.overflow == OverflowDropOldest {
		return b.limit, b.freedChan()
	}
	return b.limit - b.size, b.freedChan()
}

// push stores data as the next message. The caller has checked space, so with
// OverflowBlock it always fits; with OverflowDropOldest the oldest messages are
// dropped until it does. The caller has already counted data in the
// registry-wide total (the read reserves it before reading). It reports
// whether a reader may be waiting for it.
func (b *buffer) push(data []byte, now time.Time) bool {
	return b.pushBlock(data, nil, now)
}

// pushBlock is push for data held in blk (nil: an unpooled slice); the
// buffer takes over the block's reference.
func (b *buffer) pushBlock(data []byte, blk *block, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	freed := 0
	b.lastDrop = drop{}
	for b.size+len(data) > b.limit && len(b.msgs) > 0 {
		b.lastDrop.first = cmp.Or(b.lastDrop.first, b.msgs[0].Seq)
		b.lastDrop.last = b.msgs[0].Seq
		n := len(b.msgs[0].Data)
		b.dropped += int64(n)
		freed += n
		b.size -= n
		b.msgs[0].blk.unref()
		b.msgs[0] = entry{}
		b.msgs = b.msgs[1:]
	}
	b.lastSeq++
	b.msgs = append(b.msgs, entry{Message{Seq: b.lastSeq, ReceivedAt: now, Data: data}, blk})
	b.size += len(data)
	if freed > 0 {
		b.lastDrop.bytes = int64(freed)
		b.mem.add(-int64(freed))
	}
	return b.wakeChanged()
}

// setEOF records that no more messages will come and wakes every waiter.
func (b *buffer) setEOF() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.eof {
		b.eof = true
		b.wakeChanged()
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
	for _, e := range b.msgs {
		e.blk.unref()
	}
	clear(b.msgs)
	b.msgs = nil
	b.size = 0
	b.eof = true
	b.wakeChanged()
	b.wakeFreed()
}

// Selection is what one read returned.
type Selection struct {
	Messages []Message
	// Cursor is the seq of the last message returned, or the after given
	// (0 when none) if nothing was returned.
	Cursor uint64
	// EOF: no more messages will arrive after these.
	EOF bool
	// State is the socket's state for the reader: StateClosed with no
	// Messages only at the end of the stream (see Socket.Read).
	State string

	held []*block // blocks behind Messages, one reference each; see Release
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
		b.msgs[i].blk.unref()
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
	b.wakeFreed()
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
		// entries while the caller encodes them. A pooled block stays out of
		// its pool until the selection is released.
		sel.Messages = make([]Message, end-start)
		for i, e := range b.msgs[start:end] {
			sel.Messages[i] = e.Message
			if e.blk != nil {
				e.blk.ref()
				sel.held = append(sel.held, e.blk)
			}
		}
		sel.Cursor = b.msgs[end-1].Seq
		sel.EOF = sel.EOF && end == len(b.msgs)
	}
	return sel, b.changedChan()
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
