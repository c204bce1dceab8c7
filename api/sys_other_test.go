//go:build !linux

package api

import (
	"testing"
	"time"
)

const connectProbe = 500 * time.Millisecond

// unansweredAddr skips: only Linux is known to drop SYNs to a full backlog.
func unansweredAddr(t testing.TB) string {
	t.Helper()
	t.Skip("no known way to make a loopback connect time out on this system")
	return ""
}

// needFiles trusts the system's file limit.
func needFiles(testing.TB, uint64) {}
