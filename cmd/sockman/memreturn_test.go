package main

import "testing"

// Memory is given back once the total has fallen by memReturnMin and to
// half its high mark, and not again until it has fallen so anew.
func TestMemReturnSteps(t *testing.T) {
	const mib = 1 << 20
	var m memReturn
	for i, s := range []struct {
		inUse int64
		want  bool
	}{
		{100 * mib, false},
		{60 * mib, false}, // fell by 40 MiB, but not to half
		{50 * mib, true},  // to half of 100 MiB
		{40 * mib, false}, // the high mark is now 50 MiB: fell by 10 MiB only
		{20 * mib, true},  // by 30 MiB, to under half of 50
		{24 * mib, false}, // grew
		{12 * mib, false}, // to half of 24, but by 12 MiB only
		{8 * mib, true},   // by 16 MiB
		{0, false},        // by 8 MiB only
	} {
		if got := m.step(s.inUse); got != s.want {
			t.Fatalf("step %d (%d MiB in use): got %v, want %v", i, s.inUse/mib, got, s.want)
		}
	}
}
