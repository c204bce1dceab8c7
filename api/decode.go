package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/quote"
)

// jsonError turns a decoding error of decodeJSON into a 400 (or 413) that
// says where the body went wrong. v is what the body was decoded into: an
// unknown member that differs from one of its members only in case is
// named with it.
func jsonError(err error, body []byte, v any) error {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return mbe
	}
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the JSON body ends too early")
	}
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		return syntaxError(se, body)
	}
	se, ok := errors.AsType[*json.SemanticError](err)
	if !ok {
		return badRequest("the JSON body cannot be read: %v", err)
	}
	name := se.JSONPointer.LastToken()
	switch {
	case errors.Is(se.Err, json.ErrUnknownName):
		if known := memberFolding(v, name); known != "" {
			return badRequest("unknown field %s: member names match exactly, did you mean %q?", quote.String(name), known)
		}
		return badRequest("unknown field %s; see /openapi.yaml for the fields this request takes", quote.String(name))
	case se.JSONPointer == "":
		return badRequest("the body must be a JSON object, not %s", jsonValue(se.JSONKind, se.JSONValue))
	case se.GoType != nil && se.JSONKind != 0:
		t := se.GoType
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		why := ""
		if errors.Is(se.Err, strconv.ErrRange) {
			why = " (out of range)"
		}
		if name == "keepalive" {
			why = ` (a duration such as "15s", or "0" for off)`
		}
		return badRequest("field %s must be %s, not %s%s", quote.String(name), jsonKind(t.Kind()), jsonValue(se.JSONKind, se.JSONValue), why)
	}
	return badRequest("the JSON body cannot be read: %v", err)
}

// syntaxError is the 400 of a body that is not JSON text. JSON text is
// UTF-8 (RFC 8259) and names each member once (RFC 7493): encoding/json v1
// took invalid UTF-8 and lone UTF-16 surrogates (\ud800) as U+FFFD, so that a
// send put other bytes on the wire than the body held, and kept the last of
// a member named twice without a word. Those get a detail of their own.
func syntaxError(se *jsontext.SyntacticError, body []byte) error {
	why := se.Err.Error()
	switch off := se.ByteOffset; {
	case errors.Is(se, jsontext.ErrDuplicateName):
		return badRequest("the body names a member twice (duplicate object member name %s); give each once", quote.String(se.JSONPointer.LastToken()))
	case strings.Contains(why, "UTF-8") || strings.Contains(why, "surrogate"):
		if se.JSONPointer == "/data" {
			return badRequest("the body is not valid JSON text (%s at byte %d): JSON strings are UTF-8 and cannot hold other bytes; send those with \"encoding\":\"base64\" or \"hex\", or as a raw application/octet-stream body", why, se.ByteOffset)
		}
		return badRequest("the body is not valid JSON text (%s at byte %d): JSON is UTF-8, and a \\u escape of a UTF-16 surrogate needs its pair", why, se.ByteOffset)
	case off >= 0 && off < int64(len(body)) && body[off] == ',':
		// jsontext blames the comma of {"port":0,}, where the value
		// that should follow it is missing.
		if rest := bytes.TrimLeft(body[off+1:], " \t\r\n"); len(rest) > 0 && (rest[0] == '}' || rest[0] == ']') {
			return badRequest("the body is not valid JSON at byte %d: a comma before %q; JSON takes no comma after the last member or element", off, rest[0])
		}
	}
	return badRequest("the body is not valid JSON at byte %d: %s", se.ByteOffset, why)
}

// memberFolding returns the member of struct v whose name matches name
// when case is ignored (as encoding/json v1 matched it), or "".
func memberFolding(v any, name string) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	for f := range t.Fields() {
		member, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if member != "" && member != "-" && strings.EqualFold(member, name) {
			return member
		}
	}
	return ""
}

// jsonKind names what a Go field of kind k takes, with its article.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return "a " + k.String()
}

// jsonValue names a kind of JSON value with its article, and a number
// with its value ("a number 1.5").
func jsonValue(k jsontext.Kind, v jsontext.Value) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		if len(v) > 0 {
			if len(v) > quote.Max {
				return "a number " + quote.String(string(v))
			}
			return "a number " + string(v)
		}
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a " + k.String()
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
				return badRequest("unknown query parameter %s; this endpoint takes no query parameters", quote.String(name))
			}
			return badRequest("unknown query parameter %s; this endpoint takes %s", quote.String(name), strings.Join(names, ", "))
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
				return fmt.Errorf("%w: Content-Encoding %s is not accepted; send the body uncompressed, without Content-Encoding", errUnsupportedMedia, quote.String(coding))
			}
		}
	}
	return nil
}

func errUnsupported(got string, want ...string) error {
	return fmt.Errorf("%w: Content-Type %s is not accepted here; send %s", errUnsupportedMedia, quote.String(got), strings.Join(want, " or "))
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
		return 0, false, badRequest("query parameter %s=%s must be %s", name, quote.String(v), want)
	}
	return n, true, nil
}
