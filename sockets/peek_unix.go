//go:build unix

package sockets

import (
	"io"

	"golang.org/x/sys/unix"
)

// peekEnd looks at a connection without reading from it, for a read loop
// that has no memory to read into: wait reports that nothing is queued (wait
// until the connection is readable); otherwise err is io.EOF when the peer
// closed with nothing queued, the socket's error when it reset, and nil
// when data is queued (the caller waits for memory; a close comes after
// that data).
func peekEnd(fd int) (wait bool, err error) {
	var one [1]byte
	n, _, err := unix.Recvfrom(fd, one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return true, nil
	case err != nil:
		return false, err
	case n == 0:
		return false, io.EOF
	}
	return false, nil
}
