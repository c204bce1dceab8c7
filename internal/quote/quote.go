// Package quote writes user input into a message a person reads: quoted as
// Go quotes it (%q), and cut when it is long, so that an error about a
// megabyte of input is not a megabyte itself.
package quote

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Max is the most bytes of quoted input, quotes and escapes included, that
// String writes before it cuts.
const Max = 200

// String returns s quoted as by strconv.Quote. When that is longer than
// Max, it quotes the longest start of s (whole characters) that fits in
// Max, and says how long s was:
//
//	"aaaa"... (the first 198 of 1048576 bytes)
func String(s string) string {
	if len(s) <= Max {
		if q := strconv.Quote(s); len(q) <= Max {
			return q
		}
	}
	// Escapes quote one byte of input as up to four (\xff), so the start
	// shrinks in proportion until its quote fits.
	n := min(len(s), Max-2)
	for {
		n = runeStart(s, n)
		q := strconv.Quote(s[:n])
		if len(q) <= Max || n == 0 {
			return fmt.Sprintf("%s... (the first %d of %d bytes)", q, n, len(s))
		}
		n = min(n-1, n*(Max-2)/(len(q)-2))
	}
}

// runeStart moves n back to the start of the character it falls in, by at
// most utf8.UTFMax-1 bytes (invalid bytes are quoted one by one).
func runeStart(s string, n int) int {
	for i := 0; i < utf8.UTFMax-1 && n > 0 && n < len(s) && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return n
}
