package testnet

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// WaitFor polls cond every 5ms until it holds, and fails the test if it
// still does not after timeout. It is for state a test cannot be told about.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition still false after %v", timeout)
		}
		<-tick.C
	}
}

// WaitClosed reads c until the other end closes it (EOF or reset), failing
// the test if it is still open after timeout. It returns what was read.
func WaitClosed(t testing.TB, c net.Conn, timeout time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: still open after %v, want it closed by the service", c.LocalAddr(), timeout)
	}
	return b
}
