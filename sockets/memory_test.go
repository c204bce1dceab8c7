package sockets

import (
	"context"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// The bounds of --max-buffer-total hold for what the process really holds,
// whatever peers and readers do (DESIGN: "Buffers and backpressure"). These
// tests measure the heap where the accounting alone could be fooled, with
// margins wide enough for the runtime's own noise.

// heapInuse is the heap in use after a collection.
func heapInuse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// A peer that sends one byte at a time, with nobody reading: the bytes join
// the newest message, and the total stops the socket long before the heap
// grows past it. (Each read was a message of its own, counted by its
// payload: 1-byte messages took about 150 bytes each.)
func TestTinyMessagesStayWithinTheTotal(t *testing.T) {
	const total = 256 << 10
	r := newTestRegistry(t, Config{MaxBufferTotal: total})
	_, peer, s := connectPair(t, r, ListenOptions{})
	peer.SetNoDelay(true)
	before := heapInuse()

	stop := make(chan struct{})
	sent := make(chan int64, 1)
	go func() {
		var n int64
		one := []byte{'a'}
		for {
			select {
			case <-stop:
				sent <- n
				return
			default:
			}
			peer.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := peer.Write(one); err == nil {
				n++
			}
		}
	}()
	waitFor(t, 4*guard, r.mem.full)
	close(stop)
	n := <-sent

	info := s.Info()
	grown := heapInuse() - before
	t.Logf("%d sends of 1 byte: %d bytes in %d messages buffered, %d accounted, heap grew %d", n, info.BufferedBytes, info.BufferedMessages, r.mem.used.Load(), grown)
	if used := r.mem.used.Load(); used > total {
		t.Fatalf("accounted: got %d, want at most the total %d", used, total)
	}
	if limit := int64(2*total + 512<<10); grown > limit {
		t.Fatalf("heap grew by %d for %d bytes buffered in %d messages, want at most %d (twice the total and a margin)", grown, info.BufferedBytes, info.BufferedMessages, limit)
	}
	if info.BufferedMessages > info.BufferedBytes/1024+1 {
		t.Fatalf("messages: got %d holding %d bytes, want the bytes joined into messages of many KiB", info.BufferedMessages, info.BufferedBytes)
	}
	runtime.KeepAlive(s)
}

// Messages that cannot be joined (a read returned each before the next came)
// count what each one costs: the total covers the heap they take.
func TestMessageCostCoversTheHeap(t *testing.T) {
	const msgs = 100000
	mem := newMemory(0)
	b := newBuffer(1<<30, OverflowBlock, mem)
	before := heapInuse()
	one := []byte{'a'}
	for range msgs {
		mem.add(int64(1 + entryCost))
		b.push(one, nil, false, time.Now())
		b.sealed = b.lastSeq
	}
	grown := heapInuse() - before
	used := mem.used.Load()
	t.Logf("%d messages of 1 byte: accounted %d, heap grew %d (%d bytes a message)", msgs, used, grown, grown/msgs)
	if grown > used+1<<20 {
		t.Fatalf("heap grew by %d, but the total counts %d: the accounting is below what is held", grown, used)
	}
	runtime.KeepAlive(b)
}

// A read that is still being answered keeps its messages: when they are
// acknowledged or dropped meanwhile, their cost stays counted until the
// read is released, and then goes back in full.
func TestHeldMessagesStayCountedUntilReleased(t *testing.T) {
	for _, tc := range []struct {
		name string
		ov   Overflow
		free func(b *buffer)
	}{
		{"acknowledged", OverflowBlock, func(b *buffer) { b.ack(3) }},
		{"dropped", OverflowDropOldest, func(b *buffer) { pushSizes(b, 100) }},
		{"socket deleted", OverflowBlock, func(b *buffer) { b.release() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMemory(0)
			b := newBuffer(100, tc.ov, mem)
			pushSizes(b, 10, 20, 30)
			sel, _ := b.selectAfter(0, 0, 0)
			held := mem.used.Load()
			if want := costOf(10, 20, 30) + 3*int64(selCost); held != want {
				t.Fatalf("accounted while the read is held: got %d, want %d (messages and headers)", held, want)
			}
			tc.free(b)
			after := mem.used.Load() - heldCost(b)
			if want := int64(10 + 20 + 30 + 3*selCost); after != want {
				t.Fatalf("accounted once they left the buffer, read still held: got %d beyond what the buffer holds, want %d", after, want)
			}
			sel.Release()
			sel.Release()
			if got, want := mem.used.Load(), heldCost(b); got != want {
				t.Fatalf("accounted after Release: got %d, want %d (what the buffer holds)", got, want)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.retired) != 0 {
				t.Fatalf("retired after Release: got %d, want none", len(b.retired))
			}
		})
	}
}

// Many reads of many small messages held at once: their headers count
// against the total, and past it a read returns fewer messages (at least
// one) instead of growing the heap. (Headers were not counted: 50 held
// reads of 5,000 messages took 14 MB outside every bound.)
func TestHeldReadHeadersCountAgainstTheTotal(t *testing.T) {
	const (
		msgs  = 5000
		reads = 50
		room  = 100 << 10
	)
	sizes := make([]int, msgs)
	for i := range sizes {
		sizes[i] = 1
	}
	mem := newMemory(costOf(sizes...) + room)
	b := newBuffer(1<<20, OverflowBlock, mem)
	pushSizes(b, sizes...)
	before := heapInuse()
	var sels []Selection
	got := 0
	for range reads {
		sel, _ := b.selectAfter(0, 0, 0)
		if len(sel.Messages) == 0 {
			t.Fatalf("a read past the total: got no message, want at least one")
		}
		got += len(sel.Messages)
		sels = append(sels, sel)
	}
	grown := heapInuse() - before
	used := mem.used.Load()
	t.Logf("%d held reads: %d messages, accounted %d of %d, heap grew %d", reads, got, used, mem.limit, grown)
	if used > mem.limit+reads*int64(selCost) {
		t.Fatalf("accounted: got %d, want at most %d (the total, and one header a read)", used, mem.limit+reads*int64(selCost))
	}
	if limit := int64(2*room + 4<<20); grown > limit {
		t.Fatalf("heap grew by %d for %d held headers, want at most %d", grown, got, limit)
	}
	for i := range sels {
		sels[i].Release()
	}
	if got, want := mem.used.Load(), costOf(sizes...); got != want {
		t.Fatalf("accounted after every Release: got %d, want %d", got, want)
	}
}

// Readers that hold their answers while a drop_oldest socket keeps
// receiving: what the answers hold stays counted, so the socket pauses at
// the total instead of dropping held messages for new ones without end; the
// memory really held (the distinct messages of the answers, and the
// buffer's) stays within the total. Release lets the socket go on. (Drops
// gave the bytes back while answers still held them: 20 stalled readers of
// a 16 MiB buffer held 700 MB under a 32 MiB total.)
func TestHeldReadsPauseADropOldestSocket(t *testing.T) {
	const (
		limit = 64 << 10
		total = 256 << 10
		reads = 20
	)
	r := newTestRegistry(t, Config{MaxBufferTotal: total})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: limit, Overflow: string(OverflowDropOldest)}})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := make([]byte, 16<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			peer.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			peer.Write(chunk)
		}
	}()
	defer func() { close(stop); <-done }()

	var sels []Selection
	var last uint64
	for range reads {
		// Wait for messages no held read has, or for the total to stop
		// the socket.
		waitFor(t, guard, func() bool { return s.buf.firstUnacked() > last || r.mem.full() })
		sel, err := s.Read(context.Background(), ReadOptions{Wait: guard})
		if err != nil || len(sel.Messages) == 0 {
			t.Fatalf("Read: got %d messages, %v; want some", len(sel.Messages), err)
		}
		last = sel.Cursor
		sels = append(sels, sel)
	}
	// What is really held: each distinct array behind the answers' and the
	// buffer's messages, once.
	arrays := map[*byte]int{}
	for _, sel := range sels {
		for _, m := range sel.Messages {
			arrays[unsafe.SliceData(m.Data)] = cap(m.Data)
		}
	}
	s.buf.mu.Lock()
	for i := range s.buf.msgs.n {
		e := s.buf.msgs.at(i)
		arrays[unsafe.SliceData(e.Data)] = cap(e.Data)
	}
	s.buf.mu.Unlock()
	held := 0
	for _, n := range arrays {
		held += n
	}
	used := r.mem.used.Load()
	t.Logf("%d held reads: %d bytes really held, %d accounted, %d dropped", reads, held, used, s.Info().DroppedBytes)
	if int64(held) > used {
		t.Fatalf("held: got %d bytes, but the total counts %d", held, used)
	}
	if used > total+reads*int64(selCost) {
		t.Fatalf("accounted: got %d, want at most %d", used, total+reads*int64(selCost))
	}

	// Released, the socket goes on dropping old messages for new ones.
	dropped := s.Info().DroppedBytes
	for i := range sels {
		sels[i].Release()
	}
	waitFor(t, guard, func() bool { return s.Info().DroppedBytes > dropped+limit })
}
