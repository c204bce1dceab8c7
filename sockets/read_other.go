//go:build !linux

package sockets

import (
	"bytes"
	"io"
	"sync"
	"syscall"
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// readQueued reads at most max bytes once the connection is readable. This
// portable version reads into a pooled buffer and copies out what came; the
// Linux version reads straight into an exactly sized slice.
func readQueued(rc syscall.RawConn, max int) ([]byte, error) {
	var (
		data []byte
		rerr error
	)
	err := rc.Read(func(fd uintptr) bool {
		bp := readBufs.Get().(*[]byte)
		defer readBufs.Put(bp)
		n, err := syscall.Read(int(fd), (*bp)[:min(max, len(*bp))])
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
		return data, err
	}
	return data, rerr
}
