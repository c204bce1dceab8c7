package sockets

import (
	"sync"
	"sync/atomic"
)

// memory accounts what every socket buffer of one registry holds against
// Config.MaxBufferTotal: what its messages cost (see entryCost), and what reads
// still being answered hold (see Selection.Release). A socket whose read
// would exceed the total waits (block) like a full buffer, so the limit is
// backpressure, not data loss.
type memory struct {
	limit   int64 // 0: no limit
	used    atomic.Int64
	waiting atomic.Bool // a reader waits on freed; add must wake it

	mu    sync.Mutex    // guards freed
	freed chan struct{} // closed and replaced when bytes are given back
}

func newMemory(limit int64) *memory {
	return &memory{limit: limit, freed: make(chan struct{})}
}

// add changes the used total by n (negative to give back).
func (m *memory) add(n int64) {
	m.used.Add(n)
	// Order matters: freedChan sets waiting before the caller loads used, and add changes
	// used before it loads waiting, so a waiter either sees the new total or
	// is woken.
	if n < 0 && m.waiting.Load() {
		m.mu.Lock()
		m.waiting.Store(false)
		close(m.freed)
		m.freed = make(chan struct{})
		m.mu.Unlock()
	}
}

// reserve takes up to n bytes of the total for a read about to happen and
// returns how many it took, 0 when the total is reached. Checking and taking
// in one step is what keeps read loops that wake at the same time from all
// reading into the same room: the limit holds however many sockets read.
func (m *memory) reserve(n int64) int64 {
	for {
		used := m.used.Load()
		k := n
		if m.limit > 0 {
			k = min(n, m.limit-used)
		}
		if k <= 0 {
			return 0
		}
		if m.used.CompareAndSwap(used, used+k) {
			return k
		}
	}
}

// avail returns how many more bytes may be buffered (a large number when
// unlimited).
func (m *memory) avail() int64 {
	if m.limit <= 0 {
		return 1 << 62
	}
	return m.limit - m.used.Load()
}

// freedChan returns a channel closed when bytes are next given back. The
// caller must check avail again after taking it, then wait.
func (m *memory) freedChan() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waiting.Store(true)
	return m.freed
}

// full reports whether the total has no room left for one more message.
func (m *memory) full() bool {
	return m.limit > 0 && m.used.Load() >= m.limit-int64(entryCost)
}
