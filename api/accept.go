package api

import (
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// wantsRaw reports whether the request's Accept header prefers
// application/octet-stream to JSON (RFC 9110 §12.5.1). Each media type
// takes the q of the most specific range that covers it (the type itself,
// then type/*, then */*; 0 when none does). Octet-stream wins when its q is
// above zero and above JSON's, or equal to it and listed first; otherwise,
// and without an Accept header, the answer is JSON. An element that does
// not parse (a bad media range, a q that is not a qvalue) counts as not
// written: a malformed header falls back to JSON, never to an error.
func wantsRaw(h http.Header) bool {
	ranges := acceptRanges(strings.Join(h.Values(echo.HeaderAccept), ","))
	rawQ, rawAt := preference(ranges, "application", "octet-stream")
	jsonQ, jsonAt := preference(ranges, "application", "json")
	return rawQ > 0 && (rawQ > jsonQ || rawQ == jsonQ && rawAt < jsonAt)
}

// mediaRange is one element of an Accept header: type/subtype (either may
// be *) and its weight.
type mediaRange struct {
	typ, sub string
	q        float64
}

// qvalue is RFC 9110's weight: 0 to 1 with at most three decimals.
var qvalue = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

// acceptRanges parses an Accept header, leaving out the elements that do
// not parse.
func acceptRanges(accept string) []mediaRange {
	var ranges []mediaRange
	for _, elem := range splitList(accept) {
		if strings.TrimSpace(elem) == "" {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		mt, params, err := mime.ParseMediaType(elem)
		if err != nil {
			continue
		}
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok || typ == "*" && sub != "*" {
			continue
		}
		r := mediaRange{typ: typ, sub: sub, q: 1}
		if v, ok := params["q"]; ok {
			if !qvalue.MatchString(v) {
				continue
			}
			r.q, _ = strconv.ParseFloat(v, 64) // a qvalue always parses
		}
		ranges = append(ranges, r)
	}
	return ranges
}

// preference returns the q that ranges give typ/sub, from the most specific
// range that covers it (the first of them when several are as specific),
// and where that range is in the list; 0 and len(ranges) when none covers it.
func preference(ranges []mediaRange, typ, sub string) (q float64, at int) {
	best, at := -1, len(ranges)
	for i, r := range ranges {
		specific := -1
		switch {
		case r.typ == typ && r.sub == sub:
			specific = 2
		case r.typ == typ && r.sub == "*":
			specific = 1
		case r.typ == "*" && r.sub == "*":
			specific = 0
		}
		if specific > best {
			best, q, at = specific, r.q, i
		}
	}
	return q, at
}

// splitList splits a header value at the commas that are outside quoted
// strings: a parameter value may hold a comma.
func splitList(v string) []string {
	var (
		elems   []string
		start   int
		quoted  bool
		escaped bool
	)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			elems = append(elems, v[start:i])
			start = i + 1
		}
	}
	return append(elems, v[start:])
}
