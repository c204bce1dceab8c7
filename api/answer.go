package api

import (
	"io"
	"net/http"
	"time"
)

// answerChunk is the most an answer writes under one write deadline: a
// client must take this much per --answer-stall-timeout to keep its answer
// coming.
const answerChunk = 64 << 10

// stallWriter writes a read's answer in chunks of answerChunk under a write
// deadline that each chunk renews: a client that stops reading its answer
// has its connection closed once the timeout passes without progress,
// whatever the answer's size, and the read's memory goes back (the handler
// returns and releases the selection). A client that keeps reading, however
// slowly, is not cut: the deadline moves on with it, past the server's
// WriteTimeout if need be (the memory it holds counts against
// --max-buffer-total meanwhile). The deadline is renewed when an eighth of
// the timeout has passed since it was last set, so a client is cut between
// 7/8 of the timeout and the timeout after its last progress, and a fast
// answer does not pay a deadline per chunk.
//
// The last deadline stays on the connection after the answer, for what
// net/http still buffers and writes after the handler (the rest of the
// body, the end of a chunked one): an http.Server with a WriteTimeout
// (sockman serve sets one) gives the next request on the connection its
// deadline anew.
type stallWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration // 0: no deadline of its own
	set     time.Time     // when the deadline was last set
}

func newStallWriter(w http.ResponseWriter, timeout time.Duration) *stallWriter {
	return &stallWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := min(len(p)-n, answerChunk)
		if s.timeout > 0 {
			if now := time.Now(); now.Sub(s.set) >= s.timeout/8 {
				if err := s.rc.SetWriteDeadline(now.Add(s.timeout)); err != nil {
					s.timeout = 0 // a writer without deadlines (a test's recorder) just writes
				}
				s.set = now
			}
		}
		m, err := s.w.Write(p[n : n+k])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
