package contract

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// Streamed answers are validated as the sequence they are: an operation
// documents a text/event-stream or application/x-ndjson answer as an array
// of its event schema, and these decoders turn the recorded stream into
// that array. A Server-Sent Event must have a data line holding one JSON
// value; when it has id and event lines, they must agree with the value's
// id and type members. Comment lines (": ping") are skipped.

func eventStreamDecoder(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	var (
		out        []any
		id, typ    string
		data       []string
		lineNumber int
	)
	end := func() error {
		if data == nil {
			if id != "" || typ != "" {
				return fmt.Errorf("line %d: an event (id %q, event %q) without a data line", lineNumber, id, typ)
			}
			return nil
		}
		var v any
		if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &v); err != nil {
			return fmt.Errorf("line %d: the data of an event is not JSON: %v", lineNumber, err)
		}
		if m, ok := v.(map[string]any); ok {
			if n, ok := m["id"].(float64); ok && id != "" && id != strconv.FormatFloat(n, 'f', -1, 64) {
				return fmt.Errorf("line %d: id line %q, but the data's id is %v", lineNumber, id, n)
			}
			if t, ok := m["type"].(string); ok && typ != "" && typ != t {
				return fmt.Errorf("line %d: event line %q, but the data's type is %q", lineNumber, typ, t)
			}
		}
		out = append(out, v)
		id, typ, data = "", "", nil
		return nil
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		lineNumber++
		line := sc.Text()
		if line == "" {
			if err := end(); err != nil {
				return nil, err
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			typ = value
		case "data":
			data = append(data, value)
		case "retry":
		default:
			return nil, fmt.Errorf("line %d: unknown Server-Sent Events field %q", lineNumber, field)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if id != "" || typ != "" || data != nil {
		return nil, fmt.Errorf("the stream ends inside an event (no blank line after its last line)")
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func ndjsonDecoder(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			if i == len(bytes.Split(b, []byte("\n")))-1 {
				break
			}
			return nil, fmt.Errorf("line %d is empty", i+1)
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("line %d is not JSON: %v", i+1, err)
		}
		out = append(out, v)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("the last line does not end with a newline")
	}
	return out, nil
}
