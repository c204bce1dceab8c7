package sockets

import (
	"sync"
	"sync/atomic"
)

// Large reads go into pooled blocks instead of fresh slices. A stream of
// 256 KiB messages would otherwise allocate (and the kernel fault in, and
// the runtime zero, and the collector sweep) its whole volume again and
// again; a block comes back to its pool once the message is acknowledged
// (or dropped, or the socket deleted) and every Selection that returned it
// is released. A selection that is never released keeps its blocks from the
// pool for good: the garbage collector takes them as it would any slice.
//
// A block is used whole: the read loop reads exactly a class size into it, so
// a message never holds more memory than its length. Smaller reads get
// exact-size slices, or are appended to the newest message (buffer.push).

// blockSizes are the block classes, smallest first; the largest is readSize.
var blockSizes = [...]int{64 << 10, 128 << 10, 256 << 10}

var blockPools [len(blockSizes)]sync.Pool

// block is a pooled message buffer, or the memory shared by the frames of
// one read (see frameChunk).
type block struct {
	buf   []byte       // len is its class size
	class int          // index into blockSizes; -1: not pooled
	refs  atomic.Int32 // the buffer's references plus one per unreleased Selection
	// A chunk of frames counts its cost in mem itself, once, while any
	// reference is left; a raw message's block is counted by its entry.
	mem  *memory
	cost int64
}

// frameChunk makes blk (or, with none, data, which the caller owns) the
// memory of frames, holding one reference: its cost (dataCost) is counted
// in mem from now until the last reference goes, so that frames that share
// it count it exactly once, and for as long as any frame or Selection
// holds it.
func frameChunk(data []byte, blk *block, mem *memory) *block {
	if blk == nil {
		blk = &block{buf: data[:cap(data)], class: -1}
		blk.refs.Store(1)
	}
	blk.mem, blk.cost = mem, int64(len(blk.buf))
	mem.add(blk.cost)
	return blk
}

// blockClass returns the largest class that n bytes fill, or -1 when n is
// smaller than every class.
func blockClass(n int) int {
	for c := len(blockSizes) - 1; c >= 0; c-- {
		if n >= blockSizes[c] {
			return c
		}
	}
	return -1
}

// getBlock returns a block of class c holding one reference.
func getBlock(c int) *block {
	b, _ := blockPools[c].Get().(*block)
	if b == nil {
		b = &block{buf: make([]byte, blockSizes[c]), class: c}
	}
	b.refs.Store(1)
	return b
}

func (b *block) ref() { b.refs.Add(1) }

// unref drops one reference; the last one puts the block back in its pool.
// It is safe on a nil block (a message read into an exact-size slice).
func (b *block) unref() { b.unrefN(1) }

// unrefN drops n references at once.
func (b *block) unrefN(n int32) {
	if b == nil || b.refs.Add(-n) != 0 {
		return
	}
	if b.mem != nil {
		m := b.mem
		b.mem = nil
		m.add(-b.cost)
	}
	if b.class >= 0 {
		blockPools[b.class].Put(b)
	}
}

// Release tells the engine that the caller is done with the messages' Data
// (it has written them out), so that the memory behind them may be reused
// once the buffer has let them go too. Data must not be used afterwards.
// Until Release, the selection's headers and whatever of its messages the
// buffer let go of meanwhile (acknowledged, dropped, or the socket deleted)
// count against the registry-wide total: call it once every Read is
// answered, even one whose answer failed. A second call does nothing.
func (s *Selection) Release() {
	for _, b := range s.held {
		b.unref()
	}
	s.held = nil
	if s.buf != nil && len(s.Messages) > 0 {
		s.buf.unhold(s.Messages[0].Seq, s.Messages[len(s.Messages)-1].Seq, s.charge)
	}
	s.buf, s.charge = nil, 0
}
