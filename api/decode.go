package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
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
			return badRequest("the body must be a JSON object, not a %s", typ.Value)
		}
		return badRequest("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
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

// isMediaType reports whether the Content-Type header value names want.
func isMediaType(header, want string) bool {
	mt, _, err := mime.ParseMediaType(header)
	return err == nil && strings.EqualFold(mt, want)
}

func errUnsupported(got string, want ...string) error {
	return fmt.Errorf("%w: Content-Type %q is not accepted here; send %s", errUnsupportedMedia, got, strings.Join(want, " or "))
}

// queryInt parses an optional non-negative integer query parameter.
func queryUint(values map[string][]string, name string, max uint64) (uint64, bool, error) {
	v, ok := values[name]
	if !ok {
		return 0, false, nil
	}
	if len(v) != 1 {
		return 0, false, badRequest("query parameter %s is given %d times; give it once", name, len(v))
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil || n > max {
		return 0, false, badRequest("query parameter %s=%q must be a whole number from 0 to %d", name, v[0], max)
	}
	return n, true, nil
}
