//go:build !linux

package sockets

import (
	"bytes"
	"io"
	"sync"
	"syscall"
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// queuedReader reads a socket's connection for its read loop.
type queuedReader struct {
	rc  syscall.RawConn
	mem *memory
}

func newQueuedReader(rc syscall.RawConn, mem *memory) *queuedReader {
	return &queuedReader{rc: rc, mem: mem}
}

// read reads at most limit bytes (and no more than mem grants) once the
// connection is readable. This portable version reads into a pooled buffer
// and copies out what came; the Linux version reads straight into an exactly
// sized slice or a pooled block. The bytes returned stay counted in mem, as
// on Linux. It never returns a block.
func (r *queuedReader) read(limit int) ([]byte, *block, error) {
	mem := r.mem
	var (
		data []byte
		rerr error
	)
	err := r.rc.Read(func(fd uintptr) bool {
		granted := int(mem.reserve(int64(limit)))
		if granted == 0 {
			// The total is reached: look without taking anything, as on
			// Linux.
			wait, err := peekEnd(int(fd))
			rerr = err
			return !wait
		}
		bp := readBufs.Get().(*[]byte)
		defer readBufs.Put(bp)
		n, err := syscall.Read(int(fd), (*bp)[:min(granted, len(*bp))])
		if n < granted {
			mem.add(-int64(granted - max(n, 0)))
		}
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			return false
		case err != nil:
			rerr = err
		case n == 0:
			rerr = io.EOF
		default:
			data = bytes.Clone((*bp)[:n])
		}
		return true
	})
	if err != nil {
		return data, nil, err
	}
	return data, nil, rerr
}
