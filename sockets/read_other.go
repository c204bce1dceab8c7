//go:build !linux

package sockets

import (
	"io"
	"sync"
	"syscall"
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// queuedReader reads a socket's connection for its read loop.
type queuedReader struct {
	rc   syscall.RawConn
	mem  *memory
	held *[]byte // the pooled buffer behind the last read's data, until done
}

func newQueuedReader(rc syscall.RawConn, mem *memory) *queuedReader {
	return &queuedReader{rc: rc, mem: mem}
}

// read reads at most limit bytes (and no more than mem grants) once the
// connection is readable. This portable version reads into a pooled buffer,
// which push copies from; the Linux version reads large messages straight
// into their own memory. The bytes returned, and entryCost, stay counted in
// mem, as on Linux; call done once they are pushed. It never returns a
// block.
func (r *queuedReader) read(limit int) ([]byte, *block, bool, error) {
	mem := r.mem
	var (
		data []byte
		rerr error
	)
	err := r.rc.Read(func(fd uintptr) bool {
		granted := int(mem.reserve(int64(limit+entryCost))) - entryCost
		if granted <= 0 {
			mem.add(-int64(granted + entryCost))
			// The total is reached: look without taking anything, as on
			// Linux.
			wait, err := peekEnd(int(fd))
			rerr = err
			return !wait
		}
		bp := readBufs.Get().(*[]byte)
		n, err := syscall.Read(int(fd), (*bp)[:min(granted, len(*bp))])
		if n <= 0 {
			mem.add(-int64(granted + entryCost))
			readBufs.Put(bp)
		} else if n < granted {
			mem.add(-int64(granted - n))
		}
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			return false
		case err != nil:
			rerr = err
		case n == 0:
			rerr = io.EOF
		}
		if n > 0 {
			data, r.held = (*bp)[:n], bp
		}
		return true
	})
	if err != nil {
		return data, nil, false, err
	}
	return data, nil, false, rerr
}

// done gives the pooled buffer of the last read back.
func (r *queuedReader) done() {
	if r.held != nil {
		readBufs.Put(r.held)
		r.held = nil
	}
}
