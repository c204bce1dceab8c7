//go:build unix

package service

import "golang.org/x/sys/unix"

// bytesWaiting reports whether the socket fd has data queued to be read,
// without reading it and without waiting.
func bytesWaiting(fd int) bool {
	var one [1]byte
	n, _, err := unix.Recvfrom(fd, one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && n > 0
}
