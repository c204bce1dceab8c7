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
	limit int
	data  []byte
	blk   *block
	err   error
}

func newQueuedReader(rc syscall.RawConn, mem *memory) *queuedReader {
	r := &queuedReader{rc: rc, mem: mem}
	r.fn = r.readFD
	return r
}

// read waits until the connection is readable, then reads what the kernel
// has queued (at most limit bytes, and no more than mem grants) into a slice
// of exactly that size. Nothing is allocated or reserved while the socket is
// idle. The bytes returned stay counted in mem; the caller hands them to the
// buffer. Nothing and no error means the registry-wide total is reached:
// wait for memory and call again.
//
// Every read starts with one read(2) into a pooled 16 KiB scratch: it tells
// data, EOF and "nothing yet" apart in one system call, and a message that
// fits (most do) costs that call and a copy into its exact-size slice. Only
// a full scratch asks SIOCINQ how much more is queued, and the rest is read
// straight into the message's memory: a pooled block when the message fills
// one (see blocks.go; blk is then that block), else an exact-size slice.
//
// It returns io.EOF when the peer closed, the socket error otherwise; data
// may come with an error.
func (r *queuedReader) read(limit int) (data []byte, blk *block, err error) {
	r.limit = limit
	if err := r.rc.Read(r.fn); err != nil {
		r.err = err
	}
	data, blk, err = r.data, r.blk, r.err
	r.data, r.blk, r.err = nil, nil, nil // hold no message between reads
	return data, blk, err
}

// readFD is the function RawConn.Read calls: false means "wait until the
// connection is readable, then call again".
func (r *queuedReader) readFD(fd uintptr) bool {
	limit, mem := r.limit, r.mem
	// Reserve for the first read only while it runs: an idle socket holds
	// no share of the total, and two sockets cannot read into one share.
	// What the read does not fill is given back at once.
	granted := int(mem.reserve(int64(min(limit, firstRead))))
	if granted == 0 {
		// The registry-wide total leaves nothing for this socket: look
		// without taking anything, so that a peer's close or reset with
		// nothing queued ends the socket now, not once some other socket's
		// data is acknowledged.
		wait, err := peekEnd(int(fd))
		r.err = err
		return !wait
	}
	scratch := firstBufs.Get().(*[firstRead]byte)
	defer firstBufs.Put(scratch)
	n, err := unix.Read(int(fd), scratch[:granted])
	if n < granted {
		mem.add(-int64(granted - max(n, 0)))
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
		r.data = make([]byte, n)
		copy(r.data, scratch[:n])
		return true
	}
	// The scratch came back full: more may be queued.
	queued, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil || queued <= 0 {
		r.data = make([]byte, n)
		copy(r.data, scratch[:n])
		return true
	}
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
	r.data = buf[: n+m : n+m]
	return true
}
