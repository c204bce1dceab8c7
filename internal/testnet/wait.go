package testnet

import (
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
