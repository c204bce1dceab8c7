package sockets

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// bufferSocket is a socket with a buffer and no connection: enough for Read,
// which only touches the buffer.
func bufferSocket(limit int, ov Overflow, mem *memory) *Socket {
	return &Socket{buf: newBuffer(limit, ov, mem), gauges: &gauges{}}
}

// pushSizes stores one message of each size, as the read loop does: the
// bytes (and an entry's cost) are counted in the registry total first.
// Message i is filled with byte i. Each stays a message of its own, as if a
// read had returned it before the next came (else they would be appended to
// one another).
func pushSizes(b *buffer, sizes ...int) {
	for i, n := range sizes {
		b.mem.add(int64(n + entryCost))
		b.push(bytes.Repeat([]byte{byte(i)}, n), nil, false, time.Now())
		b.mu.Lock()
		b.sealed = b.lastSeq
		b.mu.Unlock()
	}
}

// heldCost is what b's messages count against the registry total, by
// their own accounting: each its entry and cost, and the chunks that
// frames are views into once each.
func heldCost(b *buffer) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var c int64
	chunks := map[*block]bool{}
	for i := range b.msgs.n {
		e := b.msgs.at(i)
		c += int64(e.cost) + int64(entryCost)
		if e.blk != nil && e.blk.mem != nil && !chunks[e.blk] {
			chunks[e.blk] = true
			c += e.blk.cost
		}
	}
	return c
}

// costOf is what messages of these sizes, each a message of its own, count
// against the registry total.
func costOf(sizes ...int) int64 {
	var c int64
	for _, n := range sizes {
		c += int64(n + entryCost)
	}
	return c
}

func seqsOf(sel Selection) []uint64 {
	var seqs []uint64
	for _, m := range sel.Messages {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestBufferAckFreesAndWakes(t *testing.T) {
	mem := newMemory(0)
	b := newBuffer(100, OverflowBlock, mem)
	pushSizes(b, 10, 20, 30)
	space, freed := b.space()
	if space != 40 {
		t.Fatalf("space before ack: got %d, want 40", space)
	}
	if err := b.ack(2); err != nil {
		t.Fatalf("ack(2): got %v, want nil", err)
	}
	if !isClosed(freed) {
		t.Fatalf("freed channel after ack: got open, want closed (a read loop waiting for space must wake)")
	}
	size, count, _ := b.stats()
	if size != 30 || count != 1 {
		t.Fatalf("after ack(2): got %d bytes in %d messages, want 30 in 1", size, count)
	}
	if got, want := mem.used.Load(), costOf(30); got != want {
		t.Fatalf("registry total after ack(2): got %d, want %d", got, want)
	}
	if space, _ := b.space(); space != 70 {
		t.Fatalf("space after ack: got %d, want 70", space)
	}
}

func TestBufferAckNothingNewKeepsWaitersAsleep(t *testing.T) {
	b := newBuffer(100, OverflowBlock, newMemory(0))
	pushSizes(b, 10, 10)
	if err := b.ack(1); err != nil {
		t.Fatalf("ack(1): got %v, want nil", err)
	}
	_, freed := b.space()
	if err := b.ack(1); err != nil {
		t.Fatalf("ack(1) again: got %v, want nil", err)
	}
	if isClosed(freed) {
		t.Fatalf("freed channel after acking nothing new: got closed, want open")
	}
}

func TestReadCursorBeyondLastSeqIsInvalid(t *testing.T) {
	tests := map[string]struct {
		pushed int
		after  uint64
		want   error
	}{
		"empty buffer, after 0":  {pushed: 0, after: 0, want: nil},
		"empty buffer, after 1":  {pushed: 0, after: 1, want: ErrInvalid},
		"three held, after 3":    {pushed: 3, after: 3, want: nil},
		"three held, after 4":    {pushed: 3, after: 4, want: ErrInvalid},
		"three held, after huge": {pushed: 3, after: 1 << 63, want: ErrInvalid},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := bufferSocket(100, OverflowBlock, newMemory(0))
			for range tc.pushed {
				pushSizes(s.buf, 1)
			}
			_, err := s.Read(context.Background(), ReadOptions{After: ptr(tc.after)})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Read(after=%d): got %v, want %v", tc.after, err, tc.want)
			}
			if size, _, _ := s.buf.stats(); tc.want != nil && size != tc.pushed {
				t.Fatalf("buffered after a rejected cursor: got %d, want %d (nothing freed)", size, tc.pushed)
			}
		})
	}
}

func TestReadSameAfterReturnsSameMessages(t *testing.T) {
	s := bufferSocket(100, OverflowBlock, newMemory(0))
	pushSizes(s.buf, 1, 2, 3, 4)
	read := func() Selection {
		sel, err := s.Read(context.Background(), ReadOptions{After: ptr[uint64](1), Limit: 2})
		if err != nil {
			t.Fatalf("Read(after=1): got %v, want nil", err)
		}
		return sel
	}
	first := read()
	second := read() // a client whose response was lost retries
	if got, want := seqsOf(second), seqsOf(first); !slices.Equal(got, want) || len(got) != 2 {
		t.Fatalf("repeated read seqs: got %v, want %v (two messages)", got, want)
	}
	for i := range first.Messages {
		if !bytes.Equal(first.Messages[i].Data, second.Messages[i].Data) {
			t.Fatalf("repeated read message %d: got %q, want %q", i, second.Messages[i].Data, first.Messages[i].Data)
		}
	}
	if second.Cursor != 3 {
		t.Fatalf("cursor: got %d, want 3", second.Cursor)
	}
}

func TestReadLimitAndMaxBytes(t *testing.T) {
	tests := map[string]struct {
		opts       ReadOptions
		wantSeqs   []uint64
		wantCursor uint64
	}{
		"no caps returns all":             {opts: ReadOptions{}, wantSeqs: []uint64{1, 2, 3, 4}, wantCursor: 4},
		"limit 2":                         {opts: ReadOptions{Limit: 2}, wantSeqs: []uint64{1, 2}, wantCursor: 2},
		"limit beyond held":               {opts: ReadOptions{Limit: 10}, wantSeqs: []uint64{1, 2, 3, 4}, wantCursor: 4},
		"max_bytes exactly two":           {opts: ReadOptions{MaxBytes: 30}, wantSeqs: []uint64{1, 2}, wantCursor: 2},
		"max_bytes between two and three": {opts: ReadOptions{MaxBytes: 59}, wantSeqs: []uint64{1, 2}, wantCursor: 2},
		"max_bytes smaller than first":    {opts: ReadOptions{MaxBytes: 1}, wantSeqs: []uint64{1}, wantCursor: 1},
		"max_bytes smaller than next":     {opts: ReadOptions{After: ptr[uint64](3), MaxBytes: 1}, wantSeqs: []uint64{4}, wantCursor: 4},
		"limit tighter than max_bytes":    {opts: ReadOptions{Limit: 1, MaxBytes: 1000}, wantSeqs: []uint64{1}, wantCursor: 1},
		"max_bytes tighter than limit":    {opts: ReadOptions{Limit: 3, MaxBytes: 15}, wantSeqs: []uint64{1}, wantCursor: 1},
		"after the last returns nothing":  {opts: ReadOptions{After: ptr[uint64](4)}, wantSeqs: nil, wantCursor: 4},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := bufferSocket(1000, OverflowBlock, newMemory(0))
			pushSizes(s.buf, 10, 20, 30, 40)
			sel, err := s.Read(context.Background(), tc.opts)
			if err != nil {
				t.Fatalf("Read: got %v, want nil", err)
			}
			if got := seqsOf(sel); !slices.Equal(got, tc.wantSeqs) {
				t.Fatalf("seqs: got %v, want %v", got, tc.wantSeqs)
			}
			if sel.Cursor != tc.wantCursor {
				t.Fatalf("cursor: got %d, want %d", sel.Cursor, tc.wantCursor)
			}
		})
	}
}

func TestReadWithoutAfterStartsAtOldestHeldAndFreesNothing(t *testing.T) {
	mem := newMemory(0)
	s := bufferSocket(1000, OverflowBlock, mem)
	pushSizes(s.buf, 10, 20, 30)
	first, err := s.Read(context.Background(), ReadOptions{After: ptr[uint64](1)})
	if err != nil {
		t.Fatalf("Read(after=1): got %v, want nil", err)
	}
	first.Release()
	for i := range 2 {
		sel, err := s.Read(context.Background(), ReadOptions{})
		if err != nil {
			t.Fatalf("Read #%d without after: got %v, want nil", i, err)
		}
		if got, want := seqsOf(sel), []uint64{2, 3}; !slices.Equal(got, want) {
			t.Fatalf("Read #%d without after: got seqs %v, want %v", i, got, want)
		}
		if size, count, _ := s.buf.stats(); size != 50 || count != 2 {
			t.Fatalf("Read #%d without after: got %d bytes in %d messages held, want 50 in 2", i, size, count)
		}
		sel.Release()
	}
	if got, want := mem.used.Load(), costOf(20, 30); got != want {
		t.Fatalf("registry total: got %d, want %d", got, want)
	}
	// With nothing held, the cursor is the last seq: a client passes it on.
	if err := s.buf.ack(3); err != nil {
		t.Fatalf("ack(3): got %v, want nil", err)
	}
	sel, err := s.Read(context.Background(), ReadOptions{})
	if err != nil || len(sel.Messages) != 0 || sel.Cursor != 3 {
		t.Fatalf("Read with nothing held: got %d messages, cursor %d, err %v; want 0, 3, nil", len(sel.Messages), sel.Cursor, err)
	}
}

func TestBufferDropOldestDropsCountsAndLeavesGap(t *testing.T) {
	mem := newMemory(0)
	s := bufferSocket(25, OverflowDropOldest, mem)
	if space, _ := s.buf.space(); space != 25 {
		t.Fatalf("drop_oldest space: got %d, want the whole limit 25", space)
	}
	pushSizes(s.buf, 10, 10, 10) // seq 1 dropped to make room for seq 3
	pushSizes(s.buf, 20)         // seqs 2 and 3 dropped for seq 4
	size, count, dropped := s.buf.stats()
	if size != 20 || count != 1 || dropped != 30 {
		t.Fatalf("stats: got %d bytes, %d messages, %d dropped; want 20, 1, 30", size, count, dropped)
	}
	if got, want := mem.used.Load(), costOf(20); got != want {
		t.Fatalf("registry total: got %d, want %d (dropped bytes given back)", got, want)
	}
	sel, err := s.Read(context.Background(), ReadOptions{After: ptr[uint64](1)})
	if err != nil {
		t.Fatalf("Read(after=1): got %v, want nil", err)
	}
	if got, want := seqsOf(sel), []uint64{4}; !slices.Equal(got, want) {
		t.Fatalf("seqs after drops: got %v, want %v (the gap shows)", got, want)
	}
	if size > s.buf.limit {
		t.Fatalf("buffered: got %d, want at most %d", size, s.buf.limit)
	}
}

func TestBufferBlockSpaceNeverExceedsLimit(t *testing.T) {
	b := newBuffer(100, OverflowBlock, newMemory(0))
	for _, n := range []int{30, 50, 7, 13} {
		space, _ := b.space()
		if n > space {
			t.Fatalf("space: got %d, want at least %d", space, n)
		}
		pushSizes(b, n)
		if size, _, _ := b.stats(); size > 100 {
			t.Fatalf("buffered: got %d, want at most 100", size)
		}
	}
	if space, _ := b.space(); space != 0 {
		t.Fatalf("space of a full block buffer: got %d, want 0", space)
	}
}

func TestBufferReleaseIsIdempotentAndGivesMemoryBack(t *testing.T) {
	mem := newMemory(1 << 20)
	kept := newBuffer(100, OverflowBlock, mem)
	gone := newBuffer(100, OverflowBlock, mem)
	pushSizes(kept, 5)
	pushSizes(gone, 10, 20)
	if got, want := mem.used.Load(), costOf(5, 10, 20); got != want {
		t.Fatalf("registry total before release: got %d, want %d", got, want)
	}
	_, changed := gone.selectAfter(2, 0, 0)
	gone.release()
	gone.release()
	if got, want := mem.used.Load(), costOf(5); got != want {
		t.Fatalf("registry total after two releases: got %d, want %d", got, want)
	}
	if err := gone.ack(2); err != nil {
		t.Fatalf("ack after release: got %v, want nil", err)
	}
	if got, want := mem.used.Load(), costOf(5); got != want {
		t.Fatalf("registry total after ack of a released buffer: got %d, want %d", got, want)
	}
	if !isClosed(changed) {
		t.Fatalf("a long poll on a released buffer: got still waiting, want woken")
	}
	sel, _ := gone.selectAfter(0, 0, 0)
	if len(sel.Messages) != 0 || !sel.EOF {
		t.Fatalf("released buffer: got %d messages, EOF %v; want 0, true", len(sel.Messages), sel.EOF)
	}
}

func TestMemoryReserveNeverPassesTheTotal(t *testing.T) {
	const (
		total   = 1000
		readers = 8
	)
	mem := newMemory(total)
	granted := make([]int64, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			for {
				k := mem.reserve(300)
				if k == 0 {
					return
				}
				granted[i] += k
			}
		})
	}
	wg.Wait()
	var sum int64
	for _, g := range granted {
		sum += g
	}
	if sum != total || mem.used.Load() != total {
		t.Fatalf("granted to %d concurrent readers: got %d (used %d), want exactly %d", readers, sum, mem.used.Load(), total)
	}
	mem.add(-400)
	if k := mem.reserve(1000); k != 400 {
		t.Fatalf("reserve after 400 bytes were given back: got %d, want 400", k)
	}
}
