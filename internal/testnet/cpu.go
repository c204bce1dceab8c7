package testnet

import (
	"syscall"
	"testing"
)

// ReportCPU returns a function that reports, as the metric cpu-ns/op, the
// CPU time this process used (every thread: handlers, read loops, the
// collector) per operation since ReportCPU was called. On a shared, noisy
// machine it moves far less than ns/op, which is wall time.
func ReportCPU(b *testing.B) func() {
	start := rusage()
	return func() {
		b.ReportMetric(float64(rusage()-start)/float64(b.N), "cpu-ns/op")
	}
}

func rusage() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
