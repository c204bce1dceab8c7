package sockets

import (
	"runtime"
	"testing"
)

// BenchmarkRetainNoneEcho streams b.N MiB through a mock with retain none
// and an echo rule that nobody reads, and reports the most the registry
// held (peak-total-bytes) and the heap in use after the stream: both stay
// flat however long the stream is. 1 GiB:
//
//	go test -run '^$' -bench RetainNoneEcho -benchtime 1024x ./sockets
func BenchmarkRetainNoneEcho(b *testing.B) {
	var peak int64
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	echoStream(b, Config{}, int64(b.N)<<20, func(used int64) { peak = max(peak, used) })
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(peak), "peak-total-bytes")
	b.ReportMetric(float64(after.HeapInuse), "heap-inuse-bytes")
}
