package sockets

import (
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// readQueued waits until the connection is readable, then reads what the
// kernel has queued (at most max bytes) into a slice of exactly that size.
// Nothing is allocated while the socket is idle, and the bytes are read
// straight into the slice that becomes the message: no copy.
//
// It returns io.EOF when the peer closed, the socket error otherwise; data
// may come with an error.
func readQueued(rc syscall.RawConn, max int) ([]byte, error) {
	var (
		data []byte
		rerr error
	)
	err := rc.Read(func(fd uintptr) bool {
		queued, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if err != nil {
			rerr = err
			return true
		}
		if queued == 0 {
			// Nothing queued: wait for readability, or tell EOF and
			// errors apart from "no data yet" with a 1-byte peek.
			var one [1]byte
			n, _, err := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			switch {
			case err == unix.EAGAIN || err == unix.EINTR:
				return false
			case err != nil:
				rerr = err
				return true
			case n == 0:
				rerr = io.EOF
				return true
			}
			queued = 1 // data arrived since the ioctl
		}
		buf := make([]byte, min(queued, max))
		n, err := unix.Read(int(fd), buf)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return false
		case err != nil:
			rerr = err
		case n == 0:
			rerr = io.EOF
		default:
			data = buf[:n]
		}
		return true
	})
	if err != nil {
		return data, err
	}
	return data, rerr
}
