package sockets

import (
	"io"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// firstRead is the size of the pooled scratch that every read starts with.
const firstRead = 16 << 10

var firstBufs = sync.Pool{New: func() any { return new([firstRead]byte) }}

// queuedReader reads a socket's connection for its read loop. It is made
// once per loop, with the function RawConn.Read calls, so that a read
// allocates nothing but the message itself.
type queuedReader struct {
	rc  syscall.RawConn
	mem *memory
	fn  func(fd uintptr) bool // r.readFD

	// The current read's limit and outcome.
	limit   int
	data    []byte
	blk     *block
	owned   bool             // data is not the scratch
	scratch *[firstRead]byte // held from a read until done
	err     error
}

func newQueuedReader(rc syscall.RawConn, mem *memory) *queuedReader {
	r := &queuedReader{rc: rc, mem: mem}
	r.fn = r.readFD
	return r
}

// read waits until the connection is readable, then reads what the kernel
// has queued (at most limit bytes, and no more than mem grants). Nothing is
// allocated or reserved while the socket is idle. The bytes returned, and
// entryCost for the message they may make, stay counted in mem; the caller
// hands them to the buffer (push), then calls done. Nothing and no error
// means the registry-wide total is reached: wait for memory and call again.
//
// Every read starts with one read(2) into a pooled 16 KiB scratch: it tells
// data, EOF and "nothing yet" apart in one system call, and a message that
// fits (most do) is returned in the scratch (owned false: push copies it,
// or appends it to the newest message). Only a full scratch asks SIOCINQ
// how much more is queued, and the rest is read straight into the message's
// memory: a pooled block when the message fills one (see blocks.go; blk is
// then that block), else an exact-size slice.
//
// It returns io.EOF when the peer closed, the socket error otherwise; data
// may come with an error.
func (r *queuedReader) read(limit int) (data []byte, blk *block, owned bool, err error) {
	r.limit = limit
	if err := r.rc.Read(r.fn); err != nil {
		r.err = err
	}
	data, blk, owned, err = r.data, r.blk, r.owned, r.err
	r.data, r.blk, r.owned, r.err = nil, nil, false, nil // hold no message between reads
	return data, blk, owned, err
}

// done gives the scratch of the last read back to its pool: an idle socket
// holds none.
func (r *queuedReader) done() {
	if r.scratch != nil {
		firstBufs.Put(r.scratch)
		r.scratch = nil
	}
}

// readFD is the function RawConn.Read calls: false means "wait until the
// connection is readable, then call again".
func (r *queuedReader) readFD(fd uintptr) bool {
	limit, mem := r.limit, r.mem
	// Reserve for the first read only while it runs: an idle socket holds
	// no share of the total, and two sockets cannot read into one share.
	// What the read does not fill is given back at once.
	granted := int(mem.reserve(int64(min(limit, firstRead)+entryCost))) - entryCost
	if granted <= 0 {
		mem.add(-int64(granted + entryCost))
		// The registry-wide total leaves nothing for this socket: look
		// without taking anything, so that a peer's close or reset with
		// nothing queued ends the socket now, not once some other socket's
		// data is acknowledged.
		wait, err := peekEnd(int(fd))
		r.err = err
		return !wait
	}
	scratch := firstBufs.Get().(*[firstRead]byte)
	n, err := unix.Read(int(fd), scratch[:granted])
	if n <= 0 {
		// No message: its entry's share goes back too.
		mem.add(-int64(granted + entryCost))
		firstBufs.Put(scratch)
	} else if n < granted {
		mem.add(-int64(granted - n))
	}
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return false
	case err != nil:
		r.err = err
		return true
	case n == 0:
		r.err = io.EOF
		return true
	}
	if n < granted || n >= limit {
		r.data, r.scratch = scratch[:n], scratch
		return true
	}
	// The scratch came back full: more may be queued.
	queued, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil || queued <= 0 {
		r.data, r.scratch = scratch[:n], scratch
		return true
	}
	defer firstBufs.Put(scratch)
	want := min(queued, limit-n)
	if c := blockClass(n + want); c >= 0 {
		want = blockSizes[c] - n // exactly fill the block
	}
	more := int(mem.reserve(int64(want)))
	var buf []byte
	if c := blockClass(n + more); c >= 0 && n+more == blockSizes[c] {
		r.blk = getBlock(c)
		buf = r.blk.buf
	} else {
		buf = make([]byte, n+more)
	}
	copy(buf, scratch[:n])
	m := 0
	if more > 0 {
		m, err = unix.Read(int(fd), buf[n:])
		if m < more {
			mem.add(-int64(more - max(m, 0)))
		}
		m = max(m, 0)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			// Not expected (the bytes were queued and this is the only
			// reader); what was read is the message.
		case err != nil:
			r.err = err
		case m == 0:
			r.err = io.EOF
		}
	}
	r.data, r.owned = buf[:n+m:n+m], true
	return true
}
