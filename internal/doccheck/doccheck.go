// Package doccheck reads the Markdown documents of the repository for tests
// that check them against the code: the tables of flags and routes, and the
// walk-through of the README.
package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Read returns a document of the repository root, such as "FLAGS.md".
func Read(t testing.TB, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("doccheck: cannot find the repository root")
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Table returns the body rows of the first table in doc whose header row's
// first cell is header, each row as its cells with the surrounding spaces
// trimmed. It fails the test when there is no such table.
func Table(t testing.TB, doc, header string) [][]string {
	t.Helper()
	var rows [][]string
	in := false
	for line := range strings.SplitSeq(doc, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if in {
				break
			}
			continue
		}
		cells := cellsOf(line)
		switch {
		case !in && cells[0] == header:
			in = true
		case in && strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// the separator row
		case in:
			rows = append(rows, cells)
		}
	}
	if !in {
		t.Fatalf("doccheck: no table whose first column is %q", header)
	}
	return rows
}

// cellsOf splits a table row into its cells; a \| inside a cell is a |.
func cellsOf(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	line = strings.ReplaceAll(line, `\|`, "\x00")
	cells := strings.Split(line, "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|"))
	}
	return cells
}

var codeSpan = regexp.MustCompile("`([^`]*)`")

// Code returns the code spans of a cell, without their backquotes.
func Code(cell string) []string {
	var spans []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		spans = append(spans, m[1])
	}
	return spans
}
