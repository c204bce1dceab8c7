package api

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/sockman/sockman/sockets"
)

// leanCheckHeader, on a GET of messages, makes the harness validate the
// answer without copying and decoding its payload: a JSON answer is checked
// with the contents of every "data" string left out (status, headers and the
// whole structure are still checked), an octet-stream answer with an empty
// body (any bytes are valid there). Only the integrity tests use it, on their
// large reads: without it the validator decodes megabytes of base64 again and
// the JSON integrity tests take minutes under -race.
const leanCheckHeader = "X-Test-Lean-Check"

// strippingRecorder passes a response through and keeps a copy of a JSON
// body with the contents of "data" strings dropped, nothing of another body.
// It relies on those contents holding no quote, which holds for base64 and hex.
type strippingRecorder struct {
	http.ResponseWriter
	status int
	header http.Header
	kept   []byte
	inData bool // the last byte seen was inside a "data" string
}

var dataKey = []byte(`"data":"`)

func (r *strippingRecorder) WriteHeader(code int) {
	if r.header == nil {
		r.status, r.header = code, r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *strippingRecorder) Write(p []byte) (int, error) {
	if r.header == nil {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(p)
	if mediaType(r.header.Get("Content-Type")) != "application/json" {
		return n, err
	}
	for p := p[:n]; len(p) > 0; {
		if r.inData {
			i := bytes.IndexByte(p, '"')
			if i < 0 {
				break
			}
			r.inData, p = false, p[i:]
		}
		// A key split across two writes is found once its end arrives.
		from := max(0, len(r.kept)-len(dataKey)+1)
		start := len(r.kept)
		r.kept = append(r.kept, p...)
		k := bytes.Index(r.kept[from:], dataKey)
		if k < 0 {
			break
		}
		end := from + k + len(dataKey)
		r.kept, r.inData, p = r.kept[:end], true, p[end-start:]
	}
	return n, err
}

func (r *strippingRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// TestLeanCheckStripsOnlyData: the harness's lean check keeps every byte of
// a JSON answer but the contents of "data" strings, however the answer is
// cut into writes, and passes the whole answer through.
func TestLeanCheckStripsOnlyData(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	var msgs []sockets.Message
	for i := range 50 {
		data := make([]byte, rng.IntN(2000))
		rand.NewChaCha8([32]byte{byte(i)}).Read(data)
		msgs = append(msgs, sockets.Message{Seq: uint64(i + 1), ReceivedAt: time.Unix(int64(i), 0).UTC(), Data: data})
	}
	var answer bytes.Buffer
	if err := writeMessageList(&answer, "sock-1", sockets.Selection{Messages: msgs, Cursor: 50, State: "connected"}, "base64"); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`"data":"[^"]*"`).ReplaceAll(answer.Bytes(), []byte(`"data":""`))

	for _, maxWrite := range []int{1, 2, 7, 8, 9, 100, 1 << 20} {
		w := httptest.NewRecorder()
		rec := &strippingRecorder{ResponseWriter: w}
		rec.Header().Set("Content-Type", "application/json")
		for p := answer.Bytes(); len(p) > 0; {
			n := min(len(p), 1+rng.IntN(maxWrite))
			rec.Write(p[:n])
			p = p[n:]
		}
		if !bytes.Equal(w.Body.Bytes(), answer.Bytes()) {
			t.Fatalf("writes of up to %d bytes: the client got %d bytes that differ from the %d written", maxWrite, w.Body.Len(), answer.Len())
		}
		if !bytes.Equal(rec.kept, want) {
			t.Fatalf("writes of up to %d bytes: kept\n%.300q\nwant\n%.300q", maxWrite, rec.kept, want)
		}
	}
}
