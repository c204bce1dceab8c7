package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// jsonError turns a decoding error into a 400 (or 413) that says where the
// body went wrong.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the JSON body ends too early")
	case errors.As(err, &syn):
		return badRequest("the body is not valid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("the body must be a JSON object, not %s", jsonValue(typ.Value))
		}
		return badRequest("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), jsonValue(typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field %s; see /openapi.yaml for the fields this request takes", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("the JSON body cannot be read: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "uint64", "ptr":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "a " + goKind
}

// jsonValue names a kind of JSON value as UnmarshalTypeError.Value gives it
// ("array", "number", "number 1.5", ...) with its article.
func jsonValue(v string) string {
	if strings.HasPrefix(v, "array") || strings.HasPrefix(v, "object") {
		return "an " + v
	}
	return "a " + v
}

// isMediaType reports whether the Content-Type header value names want.
// Only the media type counts: sockman uses no parameter of it (a JSON body
// is UTF-8, a raw body is sent byte for byte), so a malformed or repeated
// parameter (charset without a value) does not turn the body away with a
// 415 that tells the user to send what they sent.
func isMediaType(header, want string) bool {
	mt, _, _ := strings.Cut(header, ";")
	return strings.EqualFold(strings.TrimSpace(mt), want)
}

// queryOf returns the request's query parameters, or a 400 when the query
// does not parse (a bad %-escape, a ';'): echo's QueryParams drops such a
// pair without a word, and the request would then do something else than
// asked (wait=%zz would not wait, after=%zz would acknowledge nothing).
func queryOf(c echo.Context) (url.Values, error) {
	q, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return nil, badRequest("the query string does not parse (%v); separate parameters with & and escape special characters as %%XX", err)
	}
	return q, nil
}

// onlyQuery refuses a query parameter not in names: a misspelt filter or
// option would otherwise be ignored without a word, and the request would do
// something else than asked (list every socket, keep sockets open, send
// text meant as hex).
func onlyQuery(values map[string][]string, names ...string) error {
	for name := range values {
		if !slices.Contains(names, name) {
			if len(names) == 0 {
				return badRequest("unknown query parameter %q; this endpoint takes no query parameters", name)
			}
			return badRequest("unknown query parameter %q; this endpoint takes %s", name, strings.Join(names, ", "))
		}
	}
	return nil
}

// query returns the request's query parameters: a 400 when the query does
// not parse (queryOf) or names a parameter not in names (onlyQuery). Every
// API handler calls it, with the names it takes, before it does anything.
func query(c echo.Context, names ...string) (url.Values, error) {
	q, err := queryOf(c)
	if err != nil {
		return nil, err
	}
	if err := onlyQuery(q, names...); err != nil {
		return nil, err
	}
	return q, nil
}

// uncompressed refuses a body sent with a content coding other than
// identity: sockman decodes none, and would otherwise send the compressed
// bytes of a raw body to the peer as they are, or fail to read a JSON one.
// The answer says, as RFC 9110 asks of a 415 for a content coding, which
// coding is accepted.
func uncompressed(c echo.Context) error {
	for _, v := range c.Request().Header.Values(echo.HeaderContentEncoding) {
		for coding := range strings.SplitSeq(v, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				c.Response().Header().Set(echo.HeaderAcceptEncoding, "identity")
				return fmt.Errorf("%w: Content-Encoding %q is not accepted; send the body uncompressed, without Content-Encoding", errUnsupportedMedia, coding)
			}
		}
	}
	return nil
}

func errUnsupported(got string, want ...string) error {
	return fmt.Errorf("%w: Content-Type %q is not accepted here; send %s", errUnsupportedMedia, got, strings.Join(want, " or "))
}

// queryOne returns the value of an optional query parameter, and whether
// it was given. A parameter given twice, or given without a value (?name,
// ?name=), is a 400 whose detail says so: taking the first value, or the
// empty one as "not given", would do something else than the request says.
// want describes the values it takes, for that detail.
func queryOne(values map[string][]string, name, want string) (string, bool, error) {
	v, ok := values[name]
	switch {
	case !ok:
		return "", false, nil
	case len(v) != 1:
		return "", false, badRequest("query parameter %s is given %d times; give it once", name, len(v))
	case v[0] == "":
		return "", false, badRequest("query parameter %s has no value; give %s, or leave the parameter out", name, want)
	}
	return v[0], true, nil
}

// queryUint parses an optional query parameter holding a whole number from
// lo to hi.
func queryUint(values map[string][]string, name string, lo, hi uint64) (uint64, bool, error) {
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	v, ok, err := queryOne(values, name, want)
	if !ok {
		return 0, false, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false, badRequest("query parameter %s=%q must be %s", name, v, want)
	}
	return n, true, nil
}
