package api

import (
	"io"
	"net/http"
	"time"
)

// answerChunk is the most an answer writes under one write deadline.
const answerChunk = 32 << 10

// stallWriter writes a read's answer in chunks of answerChunk, each under a
// write deadline of timeout from its start: a client that stops reading its
// answer has its connection closed once timeout passes without progress,
// whatever the answer's size, and the read's memory goes back (the handler
// returns and releases the selection). A client that keeps reading, however
// slowly, is not cut: each chunk gets the timeout anew, past the server's
// WriteTimeout if need be (the memory it holds counts against
// --max-buffer-total meanwhile).
//
// The last deadline stays on the connection after the answer, for what
// net/http writes after the handler (the end of a chunked body): an
// http.Server with a WriteTimeout (sockman serve sets one) gives the next
// request on the connection its deadline anew.
type stallWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration // 0: no deadline of its own
}

func newStallWriter(w http.ResponseWriter, timeout time.Duration) *stallWriter {
	return &stallWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := min(len(p)-n, answerChunk)
		if s.timeout > 0 {
			// A writer without deadlines (a test's recorder) just writes.
			_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
		}
		m, err := s.w.Write(p[n : n+k])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// flush sends what net/http still buffers, under a deadline of its own.
func (s *stallWriter) flush() error {
	if s.timeout > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	}
	if err := s.rc.Flush(); err != nil && err != http.ErrNotSupported {
		return err
	}
	return nil
}
