package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sockman/sockman/api"
)

// TestEveryTypeIsARow: the page has one row per problem type, with its
// status and what to do.
func TestEveryTypeIsARow(t *testing.T) {
	var b bytes.Buffer
	write(&b, api.ProblemTypes)
	rows := 0
	for line := range strings.Lines(b.String()) {
		if strings.HasPrefix(line, "| `urn:") {
			rows++
		}
	}
	if rows != len(api.ProblemTypes) {
		t.Errorf("got %d rows, want %d", rows, len(api.ProblemTypes))
	}
	for _, k := range api.ProblemTypes {
		if !strings.Contains(b.String(), "| `"+k.Type+"` | ") || !strings.Contains(b.String(), k.Action) {
			t.Errorf("no row for %s with its action", k.Type)
		}
	}
}
