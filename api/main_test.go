package api

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// server, socket, long poll and HTTP connection a test starts must be gone
// when it ends. A run of every test fails too when a problem type of the
// table was received by none (problemCoverage).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(problemCoverage{m})
}
