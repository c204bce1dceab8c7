package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A read whose client takes none of its answer must give back what the
// answer holds within --answer-stall-timeout, whatever the answer's size:
// its connection is closed, and the handler returns (releasing the
// selection). Before, it stayed until the server's WriteTimeout (2m30s by
// default; never, here).
func TestReadAnswerToAStalledClientIsCut(t *testing.T) {
	const (
		stall   = 300 * time.Millisecond
		payload = 12 << 20 // far more than the client's and the kernel's buffers take
	)
	a := newTestAPI(t, withOptions(func(o *Options) { o.AnswerStallTimeout = stall }))
	s, peer := a.pair(t, func(c *ServerCreate) { c.BufferBytes = 16 << 20 })
	go peer.Write(make([]byte, payload))
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BufferedBytes == payload })

	// A client with a 4 KiB receive buffer that asks for everything and
	// reads nothing.
	d := net.Dialer{Timeout: testTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", a.srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("dial the API: %v", err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /sockets/%s/messages?max_bytes=16777216 HTTP/1.1\r\nHost: %s\r\nAccept: application/octet-stream\r\n%s: 1\r\n\r\n",
		s.ID, a.srv.Listener.Addr(), leanCheckHeader)
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 1 })
	// The handler returns once its write has made no progress for the
	// stall timeout; without one it would wait for the client for good.
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })

	// The connection was cut: the client gets a part of the answer, then
	// the end of the connection.
	conn.SetReadDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer's head: %v", err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Length") != strconv.Itoa(payload) {
		t.Fatalf("answer: got %d with Content-Length %q, want 200 with %d", res.StatusCode, res.Header.Get("Content-Length"), payload)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if n >= payload || err == nil {
		t.Fatalf("body of the stalled answer: got %d bytes, err %v; want fewer than %d, then the connection's end", n, err, payload)
	}

	// Nothing was acknowledged: a reader that reads gets everything.
	if got := a.socket(t, s.ID).BufferedBytes; got != payload {
		t.Fatalf("buffered after the cut answer: got %d, want %d", got, payload)
	}
}
