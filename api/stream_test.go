package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/sockets"
)

// upgradeHeader are the header pairs of a WebSocket upgrade, for requests
// that the service answers before it (a problem).
var upgradeHeader = []string{"Connection", "Upgrade", "Upgrade", "websocket",
	"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}

// wsURL is the ws:// URL of path on the API.
func (a *testAPI) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(a.srv.URL, "http") + path
}

// openStream opens GET /sockets/{id}/stream with query (such as
// "?mode=json"); a failed upgrade fails the test. The stream is cut at the
// end of the test, and the test waits for its handler to return.
func openStream(t testing.TB, a *testAPI, id, query string, opts ...func(*websocket.DialOptions)) *websocket.Conn {
	t.Helper()
	c, res, err := dialStream(a, id, query, opts...)
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("stream %s%s: got %v (status %d), want an upgrade", id, query, err, status)
	}
	c.SetReadLimit(-1)
	a.streamsOnce.Do(func() {
		// Registered before the streams' own cleanups, so it runs after
		// them: once every stream is cut, every handler must return.
		t.Cleanup(func() { waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 }) })
	})
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialStream tries the upgrade.
func dialStream(a *testAPI, id, query string, opts ...func(*websocket.DialOptions)) (*websocket.Conn, *http.Response, error) {
	o := &websocket.DialOptions{}
	for _, f := range opts {
		f(o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return websocket.Dial(ctx, a.wsURL("/sockets/"+id+"/stream"+query), o)
}

// closeStatus waits for the stream's end and returns its close code and reason.
func closeStatus(t testing.TB, c *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		t.Fatalf("waiting for the close: got %v, want a close frame", err)
	}
}

// readWSFrame reads one frame within the test timeout.
func readWSFrame(t testing.TB, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return typ, b
}

func writeFrame(t testing.TB, c *websocket.Conn, typ websocket.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.Write(ctx, typ, b); err != nil {
		t.Fatalf("writing a frame: %v", err)
	}
}

// TestStreamEchoBothWays: echoBytes of random binary from the peer reach
// the WebSocket client, and as many from the client reach the peer, at the
// same time, each SHA-256 equal.
func TestStreamEchoBothWays(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	c := openStream(t, a, s.ID, "")

	var wg sync.WaitGroup
	var peerSent, peerGot, wsSent, wsGot [32]byte
	errs := make(chan error, 4)
	wg.Add(4)
	go func() { // peer -> socket
		defer wg.Done()
		h := sha256.New()
		_, err := io.Copy(io.MultiWriter(peer, h), io.LimitReader(rand.NewChaCha8([32]byte{1}), echoBytes))
		copy(peerSent[:], h.Sum(nil))
		errs <- err
	}()
	go func() { // stream -> WebSocket client
		defer wg.Done()
		h := sha256.New()
		var n int64
		for n < echoBytes {
			_, b, err := c.Read(context.Background())
			if err != nil {
				errs <- err
				return
			}
			h.Write(b)
			n += int64(len(b))
		}
		copy(wsGot[:], h.Sum(nil))
		errs <- nil
	}()
	go func() { // WebSocket client -> peer, in websocat's 64 KiB frames
		defer wg.Done()
		h := sha256.New()
		rng := rand.NewChaCha8([32]byte{2})
		buf := make([]byte, 64<<10)
		for n := 0; n < echoBytes; n += len(buf) {
			rng.Read(buf)
			h.Write(buf)
			if err := c.Write(context.Background(), websocket.MessageBinary, buf); err != nil {
				errs <- err
				return
			}
		}
		copy(wsSent[:], h.Sum(nil))
		errs <- nil
	}()
	go func() { // the peer reads
		defer wg.Done()
		h := sha256.New()
		_, err := io.CopyN(h, peer, echoBytes)
		copy(peerGot[:], h.Sum(nil))
		errs <- err
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("echo: %v", err)
		}
	}
	if peerSent != wsGot {
		t.Errorf("peer to client: SHA-256 of what the client got differs from what the peer sent (%d bytes)", echoBytes)
	}
	if wsSent != peerGot {
		t.Errorf("client to peer: SHA-256 of what the peer got differs from what the client sent (%d bytes)", echoBytes)
	}
	// The peer can have read the last bytes before the write that sent
	// them has returned and counted them: the counters may lag a moment.
	waitFor(t, testTimeout, func() bool {
		got := a.socket(t, s.ID)
		return got.BytesSent == echoBytes && got.BytesReceived == echoBytes
	})
}

// TestStreamBackpressureSlowReader: a WebSocket client that reads nothing
// stops the stream taking from the buffer; the buffer fills to its bound and
// the peer's writes block; nothing is dropped, and once the client reads,
// every byte arrives in order.
func TestStreamBackpressureSlowReader(t *testing.T) {
	t.Parallel()
	const bound = 64 << 10
	a := newTestAPI(t)
	s, peer := a.pair(t, func(r *ServerCreate) { r.BufferBytes = bound })
	c := openStream(t, a, s.ID, "")

	wrote := sha256.New()
	var total int64
	rng := rand.NewChaCha8([32]byte{'w', 's'})
	buf := make([]byte, 64<<10)
	for {
		rng.Read(buf)
		peer.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := peer.Write(buf)
		wrote.Write(buf[:n])
		total += int64(n)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("peer write: %v", err)
		}
		if total > 1<<30 {
			t.Fatalf("the peer wrote %d bytes to a client that reads nothing: nothing pushed back", total)
		}
	}
	got := a.socket(t, s.ID)
	t.Logf("the peer was held up after %d bytes; the socket holds %d", total, got.BufferedBytes)
	if got.BufferedBytes > bound || got.DroppedBytes != 0 {
		t.Fatalf("got buffered %d dropped %d, want at most %d buffered and none dropped", got.BufferedBytes, got.DroppedBytes, bound)
	}
	peer.SetWriteDeadline(time.Time{})
	peer.CloseWrite()

	read := sha256.New()
	var n int64
	for n < total {
		_, b := readWSFrame(t, c)
		read.Write(b)
		n += int64(len(b))
	}
	if n != total || !bytes.Equal(read.Sum(nil), wrote.Sum(nil)) {
		t.Fatalf("got %d bytes, want the %d the peer wrote, SHA-256 equal", n, total)
	}
	if code, reason := closeStatus(t, c); code != websocket.StatusNormalClosure || reason != sockets.ReasonPeerClosed {
		t.Fatalf("the end: got close %d %q, want 1000 %q", code, reason, sockets.ReasonPeerClosed)
	}
}

// TestStreamBackpressureSlowPeer: a peer that reads nothing stops the
// stream reading the client's frames, so the client's writes block (here
// until its own deadline gives up); what reached the peer is what the
// client wrote, in order, nothing dropped before it. (The stream, blocked
// in its send to the peer, sees the client go only when that send gives
// up, after the socket's write timeout; the frame it was sending is then
// cut where the peer stopped taking it, as a send's is.)
func TestStreamBackpressureSlowPeer(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, withConfig(func(c *sockets.Config) { c.WriteTimeout = 2 * time.Second }))
	s, peer := a.pair(t)
	c := openStream(t, a, s.ID, "")
	const frame = 64 << 10
	var sent bytes.Buffer
	rng := rand.NewChaCha8([32]byte{'s', 'p'})
	buf := make([]byte, frame)
	for {
		rng.Read(buf)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Write(ctx, websocket.MessageBinary, buf)
		cancel()
		if err != nil {
			break // blocked for a second: the peer is not reading, nor is the stream
		}
		sent.Write(buf)
		if sent.Len() > 1<<30 {
			t.Fatalf("the client wrote %d bytes to a peer that reads nothing: nothing pushed back", sent.Len())
		}
	}
	t.Logf("the client was held up after %d bytes", sent.Len())
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 }) // the stream has ended
	got := a.socket(t, s.ID)
	if got.BytesSent > int64(sent.Len())+frame || got.State != "connected" {
		t.Fatalf("the peer was sent %d bytes of the %d written, state %s; want at most a frame more, connected", got.BytesSent, sent.Len(), got.State)
	}
	if b := readPeer(t, peer, int(got.BytesSent)); !bytes.Equal(b, append(sent.Bytes(), buf...)[:len(b)]) {
		t.Fatalf("the peer got %d bytes that differ from what the client wrote", len(b))
	}
}

// TestStreamKeepsBytesSentWithTheUpgrade: a client frame sent in the same
// write as the upgrade request (read ahead by the HTTP server before the
// upgrade) reaches the peer.
func TestStreamKeepsBytesSentWithTheUpgrade(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	host := strings.TrimPrefix(a.srv.URL, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := []byte("sent at once")
	key := [4]byte{7, 7, 7, 7}
	frame := append([]byte{0x82, 0x80 | byte(len(payload))}, key[:]...)
	for i, b := range payload {
		frame = append(frame, b^key[i%4])
	}
	req := "GET /sockets/" + s.ID + "/stream HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	if got := readPeer(t, peer, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("the peer got %q, want %q", got, payload)
	}
	c.Close()
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
}

// jsonOut is a frame of mode=json from the service.
type jsonOut struct {
	Seq      uint64 `json:"seq"`
	Size     int    `json:"size"`
	Encoding string `json:"encoding"`
	Data     string `json:"data"`
	Type     string `json:"type"`
	Reason   string `json:"reason"`
}

func (m jsonOut) bytes(t testing.TB) []byte {
	if m.Encoding == "base64" {
		b, err := base64.StdEncoding.DecodeString(m.Data)
		if err != nil {
			t.Fatalf("data: %v", err)
		}
		return b
	}
	return []byte(m.Data)
}

func readJSON(t testing.TB, c *websocket.Conn) jsonOut {
	t.Helper()
	typ, b := readWSFrame(t, c)
	var m jsonOut
	if err := json.Unmarshal(b, &m); typ != websocket.MessageText || err != nil {
		t.Fatalf("got a %v frame %q (%v), want a text frame of JSON", typ, b, err)
	}
	return m
}

// TestStreamClientAckResume: with ack=client, a stream cut at random
// points and resumed with after = the last ack loses nothing and repeats
// nothing. The peer writes one line at a time, when the client has
// everything written so far, so that each line is a message of its own.
func TestStreamClientAckResume(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	rng := rand.New(rand.NewPCG(13, 13))
	lines := 3*resumeCuts + 100

	var want bytes.Buffer // what the peer wrote
	var got bytes.Buffer  // what the client acknowledged: its own, for good
	var last uint64
	written, cuts := 0, 0
	for done := false; !done; {
		var c *websocket.Conn
		waitFor(t, testTimeout, func() bool { // the last stream's end may not have detached yet
			var err error
			var res *http.Response
			c, res, err = dialStream(a, s.ID, "?mode=json&ack=client&after="+uintString(last))
			if err != nil && (res == nil || res.StatusCode != http.StatusConflict) {
				t.Fatalf("resuming after %d: %v", last, err)
			}
			return err == nil
		})
		var pending bytes.Buffer
		for {
			if got.Len()+pending.Len() == want.Len() {
				if written == lines {
					peer.CloseWrite()
					written++
				} else if written < lines {
					line := strings.Repeat("x", written%37) + uintString(uint64(written)) + "\n"
					want.WriteString(line)
					writePeer(t, peer, []byte(line))
					written++
				}
			}
			if cuts < resumeCuts && rng.IntN(4) == 0 {
				cuts++
				c.CloseNow() // with what came since the last ack unacknowledged
				break
			}
			m := readJSON(t, c)
			if m.Type == "closed" {
				done = true
				c.Close(websocket.StatusNormalClosure, "")
				got.Write(pending.Bytes()) // the stream ended: all is delivered
				break
			}
			if m.Seq <= last {
				t.Fatalf("got seq %d after acknowledging %d: repeated", m.Seq, last)
			}
			pending.Write(m.bytes(t))
			if rng.IntN(2) == 0 {
				writeFrame(t, c, websocket.MessageText, []byte(`{"ack":`+uintString(m.Seq)+`}`))
				got.Write(pending.Bytes())
				pending.Reset()
				last = m.Seq
			}
		}
		waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
	}
	if cuts < resumeCuts {
		t.Errorf("the stream was cut %d times, want %d", cuts, resumeCuts)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("after %d cuts: got %d bytes, want the %d the peer sent, in order, once", cuts, got.Len(), want.Len())
	}
}

func uintString(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestStreamModes: mode=text sends UTF-8 messages as text frames and
// others as binary; mode=json sends Message objects, takes data and ack
// frames, and ends with a closed frame and 1000.
func TestStreamModes(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)

	s, peer := a.pair(t)
	c := openStream(t, a, s.ID, "?mode=text")
	writePeer(t, peer, []byte("héllo"))
	if typ, b := readWSFrame(t, c); typ != websocket.MessageText || string(b) != "héllo" {
		t.Fatalf("mode=text, UTF-8: got %v %q, want a text frame", typ, b)
	}
	writePeer(t, peer, []byte{0xff, 0xfe})
	if typ, b := readWSFrame(t, c); typ != websocket.MessageBinary || !bytes.Equal(b, []byte{0xff, 0xfe}) {
		t.Fatalf("mode=text, not UTF-8: got %v %q, want a binary frame", typ, b)
	}
	writeFrame(t, c, websocket.MessageText, []byte("typed\n"))
	if got := readPeer(t, peer, 6); string(got) != "typed\n" {
		t.Fatalf("mode=text, a text frame to the peer: got %q", got)
	}

	s2, peer2 := a.pair(t)
	j := openStream(t, a, s2.ID, "?mode=json")
	writePeer(t, peer2, []byte{0xff, 1, 2})
	m := readJSON(t, j)
	if m.Seq != 1 || m.Size != 3 || m.Encoding != "base64" || !bytes.Equal(m.bytes(t), []byte{0xff, 1, 2}) {
		t.Fatalf("mode=json: got %+v, want seq 1, 3 bytes in base64", m)
	}
	writeFrame(t, j, websocket.MessageText, []byte(`{"data":"aGk=","encoding":"base64"}`))
	if got := readPeer(t, peer2, 2); string(got) != "hi" {
		t.Fatalf("mode=json, a data frame to the peer: got %q, want hi", got)
	}
	writeFrame(t, j, websocket.MessageText, []byte(`{"ack":1}`))
	peer2.Close()
	if m := readJSON(t, j); m.Type != "closed" || m.Reason != sockets.ReasonPeerClosed {
		t.Fatalf("mode=json, the end: got %+v, want a closed frame with reason %q", m, sockets.ReasonPeerClosed)
	}
	if code, reason := closeStatus(t, j); code != websocket.StatusNormalClosure || reason != sockets.ReasonPeerClosed {
		t.Fatalf("mode=json: got close %d %q, want 1000 %q", code, reason, sockets.ReasonPeerClosed)
	}
	if got := a.socket(t, s2.ID); got.BufferedMessages != 0 {
		t.Errorf("after the stream: got %d messages held, want none (each acknowledged once written)", got.BufferedMessages)
	}
}

// TestStreamJSONRefusesMalformedFrames: a client frame of mode=json that is
// no data or ack object closes the stream with 1007 (1003 for a binary
// frame), saying what was wrong; the socket stays open.
func TestStreamJSONRefusesMalformedFrames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		typ   websocket.MessageType
		frame string
		code  websocket.StatusCode
		says  string
	}{
		{"not JSON", websocket.MessageText, `hello`, websocket.StatusInvalidFramePayloadData, `not {"data"`},
		{"unknown member", websocket.MessageText, `{"dta":"x"}`, websocket.StatusInvalidFramePayloadData, `dta`},
		{"neither", websocket.MessageText, `{}`, websocket.StatusInvalidFramePayloadData, `needs data`},
		{"both", websocket.MessageText, `{"data":"x","ack":1}`, websocket.StatusInvalidFramePayloadData, `not both`},
		{"bad base64", websocket.MessageText, `{"data":"!","encoding":"base64"}`, websocket.StatusInvalidFramePayloadData, `base64`},
		{"ack beyond", websocket.MessageText, `{"ack":7}`, websocket.StatusInvalidFramePayloadData, `beyond the last message sent`},
		{"binary", websocket.MessageBinary, `{"data":"x"}`, websocket.StatusUnsupportedData, `text frames`},
	}
	a := newTestAPI(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := a.pair(t)
			c := openStream(t, a, s.ID, "?mode=json&ack=client")
			writeFrame(t, c, tc.typ, []byte(tc.frame))
			code, reason := closeStatus(t, c)
			if code != tc.code || !strings.Contains(reason, tc.says) {
				t.Fatalf("got close %d %q, want %d saying %q", code, reason, tc.code, tc.says)
			}
			waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
			if got := a.socket(t, s.ID); got.State != "connected" {
				t.Fatalf("after the stream: got state %s, want connected", got.State)
			}
		})
	}
}

// TestStreamReadLimit: a client frame of 1 MiB goes to the peer; one of
// 1 MiB and a byte closes the stream with 1009.
func TestStreamReadLimit(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	c := openStream(t, a, s.ID, "")
	big := bytes.Repeat([]byte{'m'}, streamReadLimit)
	writeFrame(t, c, websocket.MessageBinary, big)
	if got := readPeer(t, peer, len(big)); !bytes.Equal(got, big) {
		t.Fatalf("a frame of 1 MiB: the peer got %d bytes, want them all", len(got))
	}
	writeFrame(t, c, websocket.MessageBinary, append(big, 'x'))
	if code, _ := closeStatus(t, c); code != websocket.StatusMessageTooBig {
		t.Fatalf("a frame of 1 MiB + 1: got close %d, want 1009", code)
	}
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
	if got := a.socket(t, s.ID); got.BytesSent != int64(len(big)) || got.State != "connected" {
		t.Fatalf("got %d bytes sent, state %s; want %d (nothing of the frame too large), connected", got.BytesSent, got.State, len(big))
	}
}

// TestStreamMaxStreams: --max-streams streams are taken, one more is 503,
// and the room comes back when one ends.
func TestStreamMaxStreams(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, withOptions(func(o *Options) { o.MaxStreams = 2 }))
	s1, _ := a.pair(t)
	s2, _ := a.pair(t)
	s3, _ := a.pair(t)
	c1 := openStream(t, a, s1.ID, "")
	openStream(t, a, s2.ID, "")
	res := a.call(http.MethodGet, "/sockets/"+s3.ID+"/stream", nil, upgradeHeader...).want(t, http.StatusServiceUnavailable)
	if p := res.problem(t); !strings.Contains(p.Detail, "--max-streams") {
		t.Fatalf("got detail %q, want it to name --max-streams", p.Detail)
	}
	c1.Close(websocket.StatusNormalClosure, "")
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 1 })
	openStream(t, a, s3.ID, "")
}

// TestStreamBadRequests: every bad parameter is a 400 problem before the
// upgrade.
func TestStreamBadRequests(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, _ := a.pair(t)
	for query, says := range map[string]string{
		"?mode=hex":             "mode",
		"?ack=client":           "mode=json",
		"?mode=text&ack=client": "mode=json",
		"?mode=json&ack=server": "ack",
		"?close=maybe":          "close",
		"?after=x":              "after",
		"?after=9":              "beyond the last message",
		"?token=s3cret":         "unknown query parameter",
		"?mode=json&mode=text":  "2 times",
	} {
		req := a.newRequest(http.MethodGet, "/sockets/"+s.ID+"/stream"+query, nil, upgradeHeader...)
		req.Header.Set(contract.SkipRequestHeader, "bad on purpose")
		res := a.do(req).want(t, http.StatusBadRequest)
		if p := res.problem(t); !strings.Contains(p.Detail, says) {
			t.Errorf("%s: got detail %q, want it to mention %q", query, p.Detail, says)
		}
	}
	hdr := append([]string{}, upgradeHeader...)
	hdr[len(hdr)-1] = "short"
	a.call(http.MethodGet, "/sockets/"+s.ID+"/stream", nil, hdr...).want(t, http.StatusBadRequest)
	a.call(http.MethodGet, "/sockets/sock-99/stream", nil, upgradeHeader...).want(t, http.StatusNotFound)
}

// TestStreamOneConsumer: a second stream, and a read with after, are 409
// while a stream is attached; a read without after peeks.
func TestStreamOneConsumer(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	c := openStream(t, a, s.ID, "")
	if _, res, err := dialStream(a, s.ID, ""); err == nil || res == nil || res.StatusCode != http.StatusConflict {
		t.Fatalf("a second stream: got %v, want 409", err)
	}
	p := a.call(http.MethodGet, "/sockets/"+s.ID+"/messages?after=0", nil).want(t, http.StatusConflict).problem(t)
	if !strings.Contains(p.Detail, "stream attached") {
		t.Errorf("a read with after: got detail %q, want it to say a stream is attached", p.Detail)
	}
	a.call(http.MethodGet, "/sockets/"+s.ID+"/messages", nil).want(t, http.StatusOK)
	writePeer(t, peer, []byte("x"))
	readWSFrame(t, c)
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
	a.call(http.MethodGet, "/sockets/"+s.ID+"/messages?after=1", nil).want(t, http.StatusOK)
	if got := a.socket(t, s.ID); got.State != "connected" {
		t.Errorf("after the client went: got state %s, want connected (no close=true)", got.State)
	}
}

// TestStreamCloseTrueClosesTheSocket: with close=true, the client's going
// closes the socket.
func TestStreamCloseTrueClosesTheSocket(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	c := openStream(t, a, s.ID, "?close=true")
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })
	wantEOF(t, peer)
}

// TestStreamPlainGetIs426: a GET without an upgrade is a 426 problem that
// names the upgrade.
func TestStreamPlainGetIs426(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, _ := a.pair(t)
	res := a.call(http.MethodGet, "/sockets/"+s.ID+"/stream", nil).want(t, http.StatusUpgradeRequired)
	if p := res.problem(t); p.Type != problemPrefix+"upgrade-required" || res.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("got %s with Upgrade %q, want upgrade-required with Upgrade: websocket", p.Type, res.Header.Get("Upgrade"))
	}
	hdr := append([]string{}, upgradeHeader...)
	hdr[5] = "8"
	res = a.call(http.MethodGet, "/sockets/"+s.ID+"/stream", nil, hdr...).want(t, http.StatusUpgradeRequired)
	if res.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("version 8: got Sec-WebSocket-Version %q, want 13", res.Header.Get("Sec-WebSocket-Version"))
	}
}

// TestStreamTokenAndOrigin: the token comes as a header or as the
// sockman.bearer. subprotocol (echoed), never in the query; a cross-origin
// upgrade is 403 unless its origin is trusted.
func TestStreamTokenAndOrigin(t *testing.T) {
	t.Parallel()
	const token = "s3cret"
	a := newTestAPI(t, withOptions(func(o *Options) {
		o.Token = token
		o.CORSOrigins = []string{"https://console.example"}
	}))
	bearer := "Bearer " + token
	var srv Server
	a.call(http.MethodPost, "/servers", ServerCreate{Port: ptr(0)}, "Authorization", bearer).want(t, http.StatusCreated).decode(t, &srv)
	peer := dialPeer(t, srv.Address)
	var s Socket
	waitFor(t, testTimeout, func() bool {
		var l SocketList
		a.call(http.MethodGet, "/sockets?server_id="+srv.ID, nil, "Authorization", bearer).want(t, http.StatusOK).decode(t, &l)
		for _, x := range l.Sockets {
			if x.RemoteAddress == peer.LocalAddr().String() {
				s = x
			}
		}
		return s.ID != ""
	})

	proto := bearerProtocol + base64.RawURLEncoding.EncodeToString([]byte(token))
	c := openStream(t, a, s.ID, "", func(o *websocket.DialOptions) { o.Subprotocols = []string{proto} })
	if c.Subprotocol() != proto {
		t.Fatalf("got subprotocol %q, want the token's echoed", c.Subprotocol())
	}
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })

	for name, o := range map[string]func(*websocket.DialOptions){
		"no token":    func(*websocket.DialOptions) {},
		"wrong token": func(o *websocket.DialOptions) { o.Subprotocols = []string{bearerProtocol + "bm9wZQ"} },
	} {
		if _, res, err := dialStream(a, s.ID, "", o); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: got %v, want 401", name, err)
		}
	}
	p := a.call(http.MethodGet, "/sockets/"+s.ID+"/stream?token="+token, nil, upgradeHeader...).want(t, http.StatusUnauthorized).problem(t)
	if !strings.Contains(p.Detail, "never taken from the URL") {
		t.Errorf("token in the query: got detail %q, want it to say the URL is never read", p.Detail)
	}

	header := func(origin string) func(*websocket.DialOptions) {
		return func(o *websocket.DialOptions) {
			o.HTTPHeader = http.Header{"Authorization": {bearer}, "Origin": {origin}}
		}
	}
	if _, res, err := dialStream(a, s.ID, "", header("https://evil.example")); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin upgrade: got %v, want 403", err)
	}
	c = openStream(t, a, s.ID, "", header("https://console.example"))
	c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
	c = openStream(t, a, s.ID, "", header(a.srv.URL)) // its own origin
	c.Close(websocket.StatusNormalClosure, "")
}

// testHolder is a Holder whose shutdown the test starts.
type testHolder struct {
	ctx  context.Context
	wg   sync.WaitGroup
	held chan struct{}
}

func (h *testHolder) Hold() (context.Context, func(), bool) {
	h.wg.Add(1)
	h.held <- struct{}{}
	return h.ctx, h.wg.Done, true
}

// TestStreamShutdown: when the holder's context ends, the client gets
// 1001, the handler returns and lets go of its hold.
func TestStreamShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	h := &testHolder{ctx: ctx, held: make(chan struct{}, 1)}
	a := newTestAPI(t, withOptions(func(o *Options) { o.Holder = h }))
	s, _ := a.pair(t)
	c := openStream(t, a, s.ID, "")
	<-h.held
	cancel()
	if code, reason := closeStatus(t, c); code != websocket.StatusGoingAway || reason != streamShutdownReason {
		t.Fatalf("got close %d %q, want 1001 %q", code, reason, streamShutdownReason)
	}
	h.wg.Wait()
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
}
