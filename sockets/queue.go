package sockets

import (
	"math/bits"
	"sync"
)

// queue holds a buffer's entries, oldest first, in a ring: acknowledging
// and dropping from its front moves nothing, so a reader that keeps up
// with a stream of small frames costs no copying of entries. Its array
// grows to a power of two and shrinks when over entrySlots times what it
// holds (trim), so that entryCost covers it; arrays let go of are cleared
// and pooled by size for the next growth.
type queue struct {
	a    []entry // the ring; len(a) is 0 or a power of two
	head int     // index in a of the oldest entry
	n    int     // entries held
}

// entrySlots is how many slots of a queue's array a message pays for
// (entryCost); a queue holds at most entrySlots*n+minSlots.
const (
	entrySlots = 3
	minSlots   = 16
)

// at returns the i-th oldest entry, i < n.
func (q *queue) at(i int) *entry {
	return &q.a[(q.head+i)&(len(q.a)-1)]
}

// seq0 is the seq of the oldest entry; n > 0.
func (q *queue) seq0() uint64 { return q.a[q.head].Seq }

// pop clears the oldest entry and lets it go; n > 0.
func (q *queue) pop() {
	q.a[q.head] = entry{}
	q.head = (q.head + 1) & (len(q.a) - 1)
	q.n--
}

// popN clears and lets go of the k oldest entries.
func (q *queue) popN(k int) {
	for k > 0 {
		run := min(k, len(q.a)-q.head)
		clear(q.a[q.head : q.head+run])
		q.head = (q.head + run) & (len(q.a) - 1)
		q.n -= run
		k -= run
	}
}

// push appends e, growing the array when it is full.
func (q *queue) push(e entry) {
	if q.n == len(q.a) {
		q.resize(q.n + 1)
	}
	q.a[(q.head+q.n)&(len(q.a)-1)] = e
	q.n++
}

// room makes the array hold k more entries with one growth.
func (q *queue) room(k int) {
	if q.n+k > len(q.a) {
		q.resize(q.n + k)
	}
}

// trim lets the array go, or a smaller one take its place, when it is over
// entrySlots times as long as what it holds.
func (q *queue) trim() {
	if len(q.a) > entrySlots*q.n+minSlots {
		q.resize(q.n + q.n/2) // room to grow before the next growth
	}
}

// resize moves the entries to an array of the smallest power of two that
// holds at least c of them (none when c is 0).
func (q *queue) resize(c int) {
	var na []entry
	if c > 0 {
		na = getEntries(max(c, minSlots))
		k := copy(na, q.a[q.head:min(len(q.a), q.head+q.n)])
		copy(na[k:], q.a[:q.n-k])
	}
	n := q.n
	if q.a != nil {
		q.popN(n) // the other slots are clear already
		putEntries(q.a)
	}
	q.a, q.head, q.n = na, 0, n
}

// clearAll lets every entry go (the caller has freed them) and the array.
func (q *queue) clearAll() {
	q.popN(q.n)
	q.resize(0)
}

// entryPools are the cleared arrays of the queues, by power of two
// (index: its log2), up to maxPooledSlots.
var entryPools [17]sync.Pool

const maxPooledSlots = 1 << (len(entryPools) - 1)

// getEntries returns a cleared array of the smallest power of two >= c.
func getEntries(c int) []entry {
	lg := bits.Len(uint(c - 1))
	if lg < len(entryPools) {
		if a, _ := entryPools[lg].Get().(*[]entry); a != nil {
			return *a
		}
	}
	return make([]entry, 1<<lg)
}

// putEntries pools a cleared array.
func putEntries(a []entry) {
	if len(a) <= maxPooledSlots {
		entryPools[bits.Len(uint(len(a)-1))].Put(&a)
	}
}
