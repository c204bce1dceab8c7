package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"
)

// Memory given back: the Go runtime returns freed memory to the system
// after a garbage collection, and an idle process collects only every two
// minutes. Once the sockets and the answers in flight have let go of much of
// what they held (deleted sockets, acknowledged data, answers cut by
// --answer-stall-timeout), serve collects and returns it at once, so that
// the process's RSS follows the registry-wide total back down.
const (
	memReturnEvery = 2 * time.Second
	memReturnMin   = 16 << 20 // let go of at least this much
)

// memReturn decides when to give memory back, from the total in use sampled
// every memReturnEvery.
type memReturn struct{ high int64 }

// step takes the total in use now and reports whether to give memory back:
// the total has fallen by at least memReturnMin, and to at most half of its
// high mark since the last time.
func (m *memReturn) step(inUse int64) bool {
	m.high = max(m.high, inUse)
	if m.high-inUse >= memReturnMin && inUse <= m.high/2 {
		m.high = inUse
		return true
	}
	return false
}

// returnMemory runs memReturn on inUse until ctx ends.
func returnMemory(ctx context.Context, inUse func() int64) {
	t := time.NewTicker(memReturnEvery)
	defer t.Stop()
	var m memReturn
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if m.step(inUse()) {
				// Twice: pooled blocks that were let go survive one
				// collection in their pool's victim cache.
				runtime.GC()
				debug.FreeOSMemory()
			}
		}
	}
}
