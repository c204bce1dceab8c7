package main

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory given back: the Go runtime returns freed memory to the system
// after a garbage collection, and a quiet process collects only every two
// minutes. Once sockman is quiet and its heap holds much more than the
// sockets and the answers in flight account for (deleted sockets,
// acknowledged data, answers cut by --answer-stall-timeout or written
// out), serve collects and returns the rest at once, so that RSS follows
// the registry-wide total back down.
const memReturnEvery = 2 * time.Second

// memReturnMin is the slack the heap may hold over the total in use, and
// the most a quiet process allocates per memReturnEvery: a quarter of
// --max-buffer-total, between 1 and 16 MiB.
func memReturnMin(maxTotal int64) int64 { return min(max(maxTotal/4, 1<<20), 16<<20) }

// memSample is what memReturn looks at.
type memSample struct {
	inUse  int64 // the registry-wide total in use
	heap   int64 // heap memory not given back: objects (live or not yet collected) and free spans
	allocs int64 // bytes allocated since the process started
}

// memReturn decides when to give memory back.
type memReturn struct {
	min    int64
	allocs int64 // at the last sample
}

// step reports whether to give memory back: the process allocated less
// than m.min since the last sample (it is quiet: giving back now does not
// make it fault the memory in again at once), and its heap holds over m.min
// more than the total in use.
func (m *memReturn) step(s memSample) bool {
	quiet := s.allocs-m.allocs < m.min
	m.allocs = s.allocs
	return quiet && s.heap-s.inUse > m.min
}

var memMetrics = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
	{Name: "/gc/heap/allocs:bytes"},
}

func readMemSample(inUse func() int64) memSample {
	ms := append([]metrics.Sample(nil), memMetrics...)
	metrics.Read(ms)
	v := func(i int) int64 {
		if ms[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(ms[i].Value.Uint64())
	}
	return memSample{inUse: inUse(), heap: v(0) + v(1), allocs: v(2)}
}

// returnMemory runs memReturn every memReturnEvery until ctx ends.
func returnMemory(ctx context.Context, inUse func() int64, maxTotal int64) {
	t := time.NewTicker(memReturnEvery)
	defer t.Stop()
	m := memReturn{min: memReturnMin(maxTotal)}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if m.step(readMemSample(inUse)) {
				// Twice: pooled blocks that were let go survive one
				// collection in their pool's victim cache.
				runtime.GC()
				debug.FreeOSMemory()
			}
		}
	}
}

// memLimitBase is what the process may hold beyond twice
// --max-buffer-total: goroutines, API connections, the event history, the
// runtime itself.
const memLimitBase = 24 << 20

// memoryLimit returns the soft memory limit serve sets for the Go runtime:
// twice the registry-wide total plus memLimitBase. The total bounds what
// the sockets and the answers in flight hold, live; the garbage they leave
// is what makes a Go heap grow to twice its live size (GOGC=100) and past
// it between collections. With the limit the collector runs sooner as the
// heap nears it, so that RSS stays within about twice the total plus a
// base, as the contract says, whatever the traffic. A GOMEMLIMIT set by the
// user is left as it is (set reports false).
func memoryLimit(maxTotal int64) (limit int64, set bool) {
	if cur := debug.SetMemoryLimit(-1); cur != math.MaxInt64 {
		return cur, false
	}
	if maxTotal > (math.MaxInt64-memLimitBase)/2 {
		return math.MaxInt64, false
	}
	return 2*maxTotal + memLimitBase, true
}
