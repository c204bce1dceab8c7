//go:build !linux

package testnet

import (
	"net"
	"testing"
)

// UnansweredAddr skips: only Linux is known to drop SYNs to a full backlog.
func UnansweredAddr(t testing.TB) string {
	t.Helper()
	t.Skip("no known way to make a loopback connect time out on this system")
	return ""
}

// UnansweredPort skips, as UnansweredAddr does.
func UnansweredPort(t testing.TB) int {
	t.Helper()
	UnansweredAddr(t)
	return 0
}

// RefusedPort returns a loopback port that nothing listens on: it was bound
// a moment ago and released. Unlike on Linux, another process could take it.
func RefusedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// RaiseOpenFiles trusts the system's file limit.
func RaiseOpenFiles(testing.TB, uint64) {}
