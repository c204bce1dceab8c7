package sockets

import (
	"cmp"
	"fmt"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/sockman/sockman/internal/quote"
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
	return "", fmt.Errorf("%w: overflow %s is not one of block, drop_oldest", ErrInvalid, quote.String(s))
}

// Message is one chunk received from the peer. Data never changes once a
// read has returned the message, so it may be shared with readers without a
// copy. (Until then, bytes that arrive are appended to the newest message:
// see buffer.push. Its memory may be reused once the message is
// acknowledged and every Selection that returned it is released: see
// Selection.Release.)
type Message struct {
	Seq        uint64
	ReceivedAt time.Time
	Data       []byte
	// Partial: the frame was cut short by the peer's close, or was over
	// max_frame (a framed socket's last message).
	Partial bool
}

// entry is a stored message, the pooled block behind its Data (if any), its
// cost against the registry-wide total, and how many unreleased Selections
// hold it.
type entry struct {
	Message
	blk   *block
	cost  int32 // dataCost of Data, without entryCost
	holds int32
}

// The registry-wide total (--max-buffer-total) counts what a message really
// costs, not its payload alone: the capacity of its slice (or its block's
// size, or its share of the memory of the frames of its read) plus
// entryCost, which covers its slot in the buffer's ring of entries (kept at
// most entrySlots times as long as the entries it holds, see queue.trim).
// buffer_bytes, a socket's own limit, counts payload: it is what users ask
// for and see in buffered_bytes.
const entryCost = entrySlots * int(unsafe.Sizeof(entry{}))

// selCost is what one message returned by a read costs until the read is
// released: its header in Selection.Messages, and the record the buffer keeps
// of it if it is acknowledged or dropped meanwhile (retired).
const selCost = int(unsafe.Sizeof(Message{})) + int(unsafe.Sizeof(retired{}))

// coalesceMax is the largest message that later bytes are appended to. Bytes
// that arrive while no read has returned the newest message yet are added to
// it (up to this size) instead of making a message each: a peer that sends a
// byte at a time costs a few bytes of memory per byte, not an entry each.
// Reads large enough for a pooled block are never appended to.
const coalesceMax = 32 << 10

// retired is a message that left the buffer (acknowledged, dropped, or the
// socket deleted) while a Selection still held it: its cost stays counted in
// the total until the last such Selection is released.
type retired struct {
	seq   uint64
	cost  int32 // dataCost; 0 once given back
	holds int32
}

// buffer holds the unacknowledged messages of one socket, bounded by limit
// bytes. It has its own lock; the socket's read loop is its only writer.
type buffer struct {
	limit    int
	overflow Overflow
	mem      *memory // registry-wide accounting, shared by every buffer

	mu       sync.Mutex    // guards the following fields
	msgs     queue         // oldest first; msgs.at(i).Seq == msgs.seq0()+i
	size     int           // payload bytes in msgs
	lastSeq  uint64        // seq of the newest message ever stored
	sealed   uint64        // seq of the newest message a read returned: it and older ones never change
	dropped  int64         // bytes dropped by OverflowDropOldest
	eof      bool          // no more messages will come
	changed  chan struct{} // closed when a message arrives or eof is set; nil until a reader asks for it
	freed    chan struct{} // closed when acknowledged bytes are freed; nil until the read loop asks for it
	released bool          // the registry-wide memory was given back
	retired  []retired     // by seq; see retired
	lastDrop drop          // what the last push dropped; its caller, the read loop, reads it
	next     frameMark     // what pushFrame asks of the push it makes; only the read loop uses it
}

// frameMark is how pushFrame marks the message that push stores.
type frameMark struct {
	whole   bool // a message of its own, never appended to
	partial bool
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

// push stores data as the next message, or appends it to the newest one
// (see coalesceMax). The caller has checked space, so with OverflowBlock it
// always fits; with OverflowDropOldest the oldest messages are dropped until
// it does. blk is the pooled block behind data (nil: none), whose reference
// the buffer takes over; owned says data is the caller's to keep (a block,
// or a slice made for it), else it is copied. The caller has already
// reserved len(data)+entryCost of the registry-wide total (the read
// reserves before reading); push settles that with what storing it really
// costs. It reports whether a reader may be waiting for it.
func (b *buffer) push(data []byte, blk *block, owned bool, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	delta := -int64(len(data) + entryCost) // the reservation, settled below
	b.lastDrop = drop{}
	if b.released {
		// The socket is deleted: nobody reads these any more.
		blk.unref()
		b.mem.add(delta)
		return false
	}
	for b.size+len(data) > b.limit && b.msgs.n > 0 {
		old := b.msgs.at(0)
		b.lastDrop.first = cmp.Or(b.lastDrop.first, old.Seq)
		b.lastDrop.last = old.Seq
		n := len(old.Data)
		b.dropped += int64(n)
		b.lastDrop.bytes += int64(n)
		b.size -= n
		delta -= b.free(old, nil)
		b.msgs.pop()
	}
	if blk == nil && !b.next.whole && b.appendable(len(data)) {
		delta += b.appendTo(b.msgs.at(b.msgs.n-1), data)
	} else {
		if !owned {
			data = append(make([]byte, 0, len(data)), data...)
		}
		c := dataCost(data, blk)
		b.lastSeq++
		b.msgs.push(entry{Message: Message{Seq: b.lastSeq, ReceivedAt: now, Data: data, Partial: b.next.partial}, blk: blk, cost: int32(c)})
		delta += int64(c + entryCost)
	}
	b.size += len(data)
	b.msgs.trim()
	b.mem.add(delta)
	if b.next.whole {
		return b.changed != nil // woken once for all the frames of a read: see wakeFrames
	}
	return b.wakeChanged()
}

// pushFrame is push of one frame, copied, as a message of its own (frames
// are never appended to one another); partial marks it Partial. It wakes
// no reader: the stage calls wakeFrames once it has stored the frames of
// a read, so that a waiting reader takes them together instead of one
// wake-up each. The read loop is its only caller.
func (b *buffer) pushFrame(p []byte, partial bool, now time.Time) bool {
	b.next = frameMark{whole: true, partial: partial}
	defer func() { b.next = frameMark{} }()
	return b.push(p, nil, false, now)
}

// span is where one frame's message lies in the memory of its read.
type span struct{ lo, hi int }

// pushFrames stores the frames at spans of base as messages of their own,
// under one lock: views into base, whose memory is chunk (see frameChunk),
// each holding a reference to it, so that a frame costs its entry and
// its share of one allocation instead of a copy each. The caller has
// reserved entryCost of the total for each, and with OverflowBlock checked
// that the buffer has room for them all; with OverflowDropOldest the oldest
// messages (whole frames) are dropped as each needs. each is called with
// b.mu held after each frame is stored, with its seq, its size, and what
// storing it dropped. Like pushFrame it wakes no reader (see wakeFrames);
// it reports whether a reader may be waiting. The read loop is its only
// caller.
func (b *buffer) pushFrames(chunk *block, base []byte, spans []span, now time.Time, each func(seq uint64, p []byte, d drop)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		b.mem.add(-int64(len(spans) * entryCost))
		return false
	}
	b.msgs.room(len(spans))           // one growth for all of them
	chunk.refs.Add(int32(len(spans))) // before a drop below may let one go
	var delta int64
	var u unrefs
	for _, sp := range spans {
		n := sp.hi - sp.lo
		d := drop{}
		for b.size+n > b.limit && b.msgs.n > 0 {
			old := b.msgs.at(0)
			d.first = cmp.Or(d.first, old.Seq)
			d.last = old.Seq
			d.bytes += int64(len(old.Data))
			b.size -= len(old.Data)
			delta -= b.free(old, &u)
			b.msgs.pop()
		}
		b.dropped += d.bytes
		b.lastSeq++
		p := base[sp.lo:sp.hi:sp.hi]
		b.msgs.push(entry{Message: Message{Seq: b.lastSeq, ReceivedAt: now, Data: p}, blk: chunk})
		b.size += n
		each(b.lastSeq, p, d)
	}
	u.flush()
	b.lastDrop = drop{}
	b.msgs.trim()
	b.mem.add(delta)
	return b.changed != nil
}

// unrefs gathers the references that messages leaving the buffer let go
// of, so that the frames of one chunk let go of theirs in one step.
type unrefs struct {
	blk *block
	n   int32
}

func (u *unrefs) add(blk *block) {
	if blk == u.blk {
		u.n++
		return
	}
	u.flush()
	u.blk, u.n = blk, 1
}

func (u *unrefs) flush() {
	if u.blk != nil {
		u.blk.unrefN(u.n)
	}
	u.blk, u.n = nil, 0
}

// wakeFrames wakes the readers waiting for what pushFrame stored.
func (b *buffer) wakeFrames() {
	b.mu.Lock()
	b.wakeChanged()
	b.mu.Unlock()
}

// dataCost is what a message's bytes cost: its block, or its slice's capacity.
func dataCost(data []byte, blk *block) int {
	if blk != nil {
		return len(blk.buf)
	}
	return cap(data)
}

// appendable reports whether n more bytes may go into the newest message: no
// read has returned it, it is a plain slice, and it stays within coalesceMax.
// b.mu must be held.
func (b *buffer) appendable(n int) bool {
	if b.msgs.n == 0 {
		return false
	}
	e := b.msgs.at(b.msgs.n - 1)
	return e.Seq > b.sealed && e.blk == nil && e.holds == 0 && len(e.Data)+n <= coalesceMax
}

// appendTo appends data to e and returns how much more e costs than before,
// less what it took from the total itself. Growth doubles the capacity, up
// to coalesceMax, so that a byte at a time is amortised; the room beyond
// data is taken from the total here, and when the total cannot give it the
// slice grows to exactly what it needs, which the caller's reservation of
// len(data) covers. b.mu must be held.
func (b *buffer) appendTo(e *entry, data []byte) int64 {
	old := cap(e.Data)
	need := len(e.Data) + len(data)
	if need <= old {
		e.Data = append(e.Data, data...) // into room already counted
		return 0
	}
	grow := min(max(2*old, need, 64), coalesceMax)
	var took int64
	if extra := int64(grow - need); extra > 0 {
		if took = b.mem.reserve(extra); took < extra {
			b.mem.add(-took)
			took, grow = 0, need
		}
	}
	nd := make([]byte, need, grow)
	copy(nd, e.Data)
	copy(nd[len(e.Data):], data)
	e.Data = nd
	e.cost = int32(grow)
	return int64(grow-old) - took
}

// free lets go of a message leaving the buffer and returns the cost given
// back: all of it, or nothing while a Selection holds it (it is then
// retired, and given back on the last Release). Its block's reference goes
// to u (nil: at once). b.mu must be held.
func (b *buffer) free(e *entry, u *unrefs) int64 {
	if u != nil {
		u.add(e.blk)
	} else {
		e.blk.unref()
	}
	c := int64(e.cost) + int64(entryCost)
	if e.holds > 0 {
		b.retired = append(b.retired, retired{seq: e.Seq, cost: e.cost, holds: e.holds})
		return int64(entryCost)
	}
	return c
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
// empties the buffer (what unreleased Selections hold stays counted until
// they are released). It is idempotent; the socket calls it when it is
// deleted.
func (b *buffer) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return
	}
	var freed int64
	var u unrefs
	for i := range b.msgs.n {
		freed += b.free(b.msgs.at(i), &u)
	}
	u.flush()
	b.mem.add(-freed)
	b.released = true
	b.msgs.clearAll()
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

	held   []*block // blocks behind Messages, one reference each; see Release
	buf    *buffer  // the buffer that holds Messages for it; nil once released
	charge int64    // what it counts against the total itself (its headers)
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
	var freed int64
	var u unrefs
	for i < b.msgs.n {
		e := b.msgs.at(i)
		if e.Seq > after {
			break
		}
		b.size -= len(e.Data)
		freed += b.free(e, &u)
		i++
	}
	u.flush()
	if i == 0 {
		return nil
	}
	b.msgs.popN(i)
	b.msgs.trim()
	if !b.released {
		b.mem.add(-freed)
	}
	b.wakeFreed()
	return nil
}

// selectAfter returns the messages after the given seq within the caps, and a
// channel closed when a new message arrives or EOF is set. The selection's
// headers count against the registry-wide total until it is released: when
// the total has no room for them, it returns fewer messages (at least one).
func (b *buffer) selectAfter(after uint64, limit, maxBytes int) (Selection, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sel := Selection{Cursor: after, EOF: b.eof}
	q := &b.msgs
	start := q.n
	if q.n > 0 && after < q.at(q.n-1).Seq {
		start = int(max(after+1, q.seq0()) - q.seq0())
	}
	total := 0
	end := start
	for end < q.n {
		n := len(q.at(end).Data)
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
		// What the total can give decides how many headers it takes.
		want := int64(end-start) * int64(selCost)
		took := b.mem.reserve(want)
		if k := int(took / int64(selCost)); k < end-start {
			k = max(k, 1)
			end = start + k
			b.mem.add(int64(k*selCost) - took)
			took = int64(k * selCost)
		}
		sel.charge = took
		sel.buf = b
		// A copy of the slice headers: the buffer may drop or free these
		// entries while the caller encodes them. A pooled block stays out of
		// its pool until the selection is released, and what the buffer
		// lets go of meanwhile stays counted (see free).
		// One reference to a block is enough for all its messages (the
		// frames of one read share one).
		sel.Messages = make([]Message, end-start)
		var last *block
		for i := range end - start {
			e := q.at(start + i)
			sel.Messages[i] = e.Message
			e.holds++
			if e.blk != nil && e.blk != last {
				e.blk.ref()
				sel.held = append(sel.held, e.blk)
				last = e.blk
			}
		}
		sel.Cursor = q.at(end - 1).Seq
		b.sealed = max(b.sealed, sel.Cursor)
		sel.EOF = sel.EOF && end == q.n
	}
	return sel, b.changedChan()
}

// unhold is Selection.Release's part in the buffer: the messages lo..hi are
// no longer held by it, and charge goes back to the total with what retired
// messages no Selection holds any more.
func (b *buffer) unhold(lo, hi uint64, charge int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	freed := charge
	if b.msgs.n > 0 {
		first := b.msgs.seq0()
		for seq := max(lo, first); seq <= hi && seq-first < uint64(b.msgs.n); seq++ {
			b.msgs.at(int(seq-first)).holds--
		}
	}
	i := sort.Search(len(b.retired), func(i int) bool { return b.retired[i].seq >= lo })
	for ; i < len(b.retired) && b.retired[i].seq <= hi; i++ {
		r := &b.retired[i]
		if r.holds--; r.holds == 0 {
			freed += int64(r.cost)
			r.cost = 0
		}
	}
	// Forget what nobody holds: from the front, and all of it when most is.
	j := 0
	for j < len(b.retired) && b.retired[j].holds == 0 {
		j++
	}
	b.retired = b.retired[j:]
	live := 0
	for _, r := range b.retired {
		if r.holds > 0 {
			live++
		}
	}
	if live == 0 {
		b.retired = nil
	} else if live < len(b.retired)/2 {
		kept := make([]retired, 0, live)
		for _, r := range b.retired {
			if r.holds > 0 {
				kept = append(kept, r)
			}
		}
		b.retired = kept
	}
	b.mem.add(-freed)
}

// firstUnacked returns the seq of the oldest message held, or the next seq
// to come when none is held.
func (b *buffer) firstUnacked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.msgs.n > 0 {
		return b.msgs.seq0()
	}
	return b.lastSeq + 1
}

// stats returns the buffered bytes and messages and the dropped bytes.
func (b *buffer) stats() (size, count int, dropped int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size, b.msgs.n, b.dropped
}
