package sockets

import (
	"math/rand/v2"
	"testing"
)

// TestQueueKeepsOrderAndBound: whatever the pushes and pops, the queue
// gives back its entries in order, leaves no entry behind in a slot it no
// longer holds, and its array stays within what entryCost pays for.
func TestQueueKeepsOrderAndBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	var q queue
	next, first := uint64(1), uint64(1)
	check := func(step int) {
		t.Helper()
		if q.n != int(next-first) {
			t.Fatalf("step %d: %d entries, want %d", step, q.n, next-first)
		}
		for i := range q.n {
			if s := q.at(i).Seq; s != first+uint64(i) {
				t.Fatalf("step %d: entry %d has seq %d, want %d", step, i, s, first+uint64(i))
			}
		}
		live := 0
		for i := range q.a {
			if q.a[i].Seq != 0 {
				live++
			}
		}
		if live != q.n {
			t.Fatalf("step %d: %d slots hold an entry, want the %d held", step, live, q.n)
		}
		if len(q.a) > entrySlots*q.n+minSlots {
			t.Fatalf("step %d: %d slots for %d entries, want at most %d", step, len(q.a), q.n, entrySlots*q.n+minSlots)
		}
	}
	for step := range 3000 {
		switch k := rng.IntN(600); {
		case rng.IntN(3) == 0:
			q.room(k)
			for range k {
				q.push(entry{Message: Message{Seq: next}})
				next++
			}
		case rng.IntN(2) == 0:
			k = min(k, q.n)
			for range k {
				q.pop()
				first++
			}
		default:
			k = min(k, q.n)
			q.popN(k)
			first += uint64(k)
		}
		q.trim()
		check(step)
	}
	q.clearAll()
	first = next
	check(-1)
}
