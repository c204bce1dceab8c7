package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// Memory is given back when the process is quiet and its heap holds much
// more than the total in use; not while it allocates, nor when the heap is
// what the sockets hold.
func TestMemReturnSteps(t *testing.T) {
	const mib = 1 << 20
	for total, want := range map[int64]int64{1 << 30: 16 * mib, 32 * mib: 8 * mib, 1 * mib: 1 * mib} {
		if got := memReturnMin(total); got != want {
			t.Errorf("memReturnMin(%d MiB): got %d MiB, want %d", total/mib, got/mib, want/mib)
		}
	}
	m := memReturn{min: 8 * mib}
	for i, s := range []struct {
		memSample
		want bool
	}{
		{memSample{inUse: 0, heap: 4 * mib, allocs: 4 * mib}, false},           // small heap
		{memSample{inUse: 30 * mib, heap: 80 * mib, allocs: 500 * mib}, false}, // busy
		{memSample{inUse: 30 * mib, heap: 36 * mib, allocs: 501 * mib}, false}, // quiet, the heap is what the sockets hold
		{memSample{inUse: 1 * mib, heap: 60 * mib, allocs: 900 * mib}, false},  // let go, but still busy
		{memSample{inUse: 1 * mib, heap: 60 * mib, allocs: 901 * mib}, true},   // quiet now: give back
		{memSample{inUse: 1 * mib, heap: 5 * mib, allocs: 901 * mib}, false},   // given back
		{memSample{inUse: 0, heap: 9*mib + 1, allocs: 901*mib + 7*mib}, true},  // slack over the min, allocating under it
	} {
		if got := m.step(s.memSample); got != s.want {
			t.Fatalf("step %d (%+v): got %v, want %v", i, s.memSample, got, s.want)
		}
	}
}

func TestMemoryLimitIsTwiceTheTotalPlusABaseUnlessGOMEMLIMITSaysOtherwise(t *testing.T) {
	const mib = 1 << 20
	if got, set := memoryLimit(32 * mib); !set || got != 64*mib+memLimitBase {
		t.Errorf("memoryLimit(32 MiB) with no GOMEMLIMIT: got %d, %v, want %d, true", got, set, 64*mib+memLimitBase)
	}
	if _, set := memoryLimit(math.MaxInt64 / 2); set {
		t.Errorf("memoryLimit of a total too large to double: set a limit, want none")
	}
	old := debug.SetMemoryLimit(1 << 40)
	defer debug.SetMemoryLimit(old)
	if got, set := memoryLimit(32 * mib); set || got != 1<<40 {
		t.Errorf("memoryLimit with a limit already set (GOMEMLIMIT): got %d, %v, want the limit kept (%d, false)", got, set, int64(1<<40))
	}
}
