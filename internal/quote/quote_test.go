package quote

import (
	"strconv"
	"strings"
	"testing"
)

func TestShortInputIsQuotedWhole(t *testing.T) {
	for _, s := range []string{"", "sock-1", `a "b" c`, "caf\u00e9", "\x00\xff", strings.Repeat("a", Max-2)} {
		if got, want := String(s), strconv.Quote(s); got != want {
			t.Errorf("String(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestLongInputIsCut(t *testing.T) {
	for name, s := range map[string]string{
		"ascii":        strings.Repeat("a", 1<<20),
		"just over":    strings.Repeat("a", Max-1),
		"nul bytes":    strings.Repeat("\x00", 1<<20),
		"invalid":      strings.Repeat("\xff", 5000),
		"continuation": strings.Repeat("\x80", 5000),
		"multi-byte":   strings.Repeat("\u00e9\U0001F600", 10000),
		"line sep":     strings.Repeat("\u2028", 10000),
		"mixed":        strings.Repeat("ab\x01\u00e9\xfe", 10000),
	} {
		t.Run(name, func(t *testing.T) {
			got := String(s)
			q, rest, ok := strings.Cut(got, "... (the first ")
			if !ok {
				t.Fatalf("String of %d bytes = %.300s, want it cut", len(s), got)
			}
			if len(q) > Max {
				t.Errorf("the quoted part is %d bytes, want at most %d", len(q), Max)
			}
			if len(got) > Max+40 {
				t.Errorf("String of %d bytes is %d bytes long, want at most %d", len(s), len(got), Max+40)
			}
			start, err := strconv.Unquote(q)
			if err != nil || !strings.HasPrefix(s, start) || len(start) < Max/10 {
				t.Errorf("the quoted part %s: want a quoted start of the input of at least %d bytes (%v)", q, Max/10, err)
			}
			if want := strconv.Itoa(len(start)) + " of " + strconv.Itoa(len(s)) + " bytes)"; rest != want {
				t.Errorf("got %q after the quote, want %q", rest, want)
			}
		})
	}
}
