package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// DefaultMaxStreams is the default of --max-streams.
const DefaultMaxStreams = 64

// streamReadLimit is the largest frame a stream's client may send: websocat
// sends 64 KiB frames, a browser one per send() call. A larger one closes
// the stream with 1009.
const streamReadLimit = 1 << 20

// A stream takes at most streamBatch messages, streamBatchBytes in all, per
// selection: it holds them (their headers counted against
// --max-buffer-total) until their frames are written.
const (
	streamBatch      = 64
	streamBatchBytes = 1 << 20
)

// bearerProtocol starts the subprotocol that carries the token, for
// browsers, which cannot put a header on a WebSocket.
const bearerProtocol = "sockman.bearer."

// streamShutdownReason is the close reason of code 1001.
const streamShutdownReason = "sockman is shutting down"

// streamClosedReason is the close reason of a socket closed because its
// stream's client went (close=true).
const streamClosedReason = "its stream ended (close=true)"

// stream pipes one socket to a WebSocket.
//
//	@Summary		Stream a socket over a WebSocket
//	@Description	A two-way pipe to one socket as a WebSocket (websocat ws://127.0.0.1:8080/sockets/sock-1/stream). The answer to a good upgrade is 101 Switching Protocols; every error comes before it, as a problem. A plain GET without an upgrade is 426.
//	@Description	The stream is the socket's consumer from after on (acknowledging every message up to it first; without after, from the oldest message held): while it is attached, a second stream and a read with after are 409 (a read without after still peeks).
//	@Description	mode=binary (the default): every received message is one binary frame; every frame the client sends, binary or text, goes to the peer byte for byte. mode=text: as binary, but messages that are valid UTF-8 go as text frames. mode=json: frames are JSON; out go the Message objects of reads, then a last {"type":"closed","reason":...}; in come {"data","encoding"?} (encoding utf8, base64 or hex) to send and {"ack":N} to acknowledge; a frame that is not such an object closes the stream with 1007 (1003 for a binary frame), the reason saying what was wrong.
//	@Description	A message is acknowledged once its frame is written, except with ack=client (mode=json only), where only the client's {"ack":N} acknowledges (N at most the seq of the last message sent): a stream cut at any moment then loses nothing, and the next one with after=N resumes exactly.
//	@Description	Backpressure both ways: a client that reads slowly slows the peer (nothing is dropped, the socket's buffer fills and TCP does the rest), a peer that reads slowly slows the client. Client frames up to 1 MiB are taken; a larger one closes the stream with 1009. A frame the client takes nothing of for --write-timeout cuts the stream.
//	@Description	Ends: when the peer closed and everything was delivered, close code 1000 with the socket's close reason; at shutdown, 1001. When the client goes, the socket stays open unless close=true.
//	@Description	The token may come as the Authorization header or as the subprotocol sockman.bearer.TOKEN (the token as base64url without padding; it is echoed back), never in the URL. A cross-origin upgrade is refused (403) unless its origin is listed with --cors-origin. At most --max-streams streams at once (503 past it).
//	@Tags			sockets
//	@ID				streamSocket
//	@Param			id		path	string	true	"Socket id"	example(sock-1)
//	@Param			after	query	integer	false	"Acknowledge up to this seq and stream the later messages"	minimum(0)
//	@Param			mode	query	string	false	"Frames: binary, text (UTF-8 messages as text frames) or json"	Enums(binary, text, json)	default(binary)
//	@Param			ack		query	string	false	"client: only the client's {\"ack\":N} acknowledges (mode=json only)"	Enums(client)
//	@Param			close	query	boolean	false	"Close the socket when the client goes"	default(false)
//	@Success		101		"Switching Protocols: the WebSocket stream"
//	@Failure		400		{object}	Problem	"Bad after (or one beyond the last message received), mode, ack (or ack without mode=json) or close; an unknown, empty or repeated query parameter; a malformed Sec-WebSocket-Key"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Host not allowed (DNS rebinding guard), or an upgrade from a page of another origin"
//	@Failure		404		{object}	Problem	"No such socket"
//	@Failure		409		{object}	Problem	"The socket already has a stream attached"
//	@Failure		426		{object}	Problem	"Not a WebSocket upgrade (or not version 13)"
//	@Failure		503		{object}	Problem	"--max-streams streams are open, or the service is shutting down"
//	@Security		BearerAuth
//	@x-no-head		true
//	@Router			/sockets/{id}/stream [get]
func (h *handlers) stream(c echo.Context) error {
	q, err := query(c, "after", "mode", "ack", "close")
	if err != nil {
		return err
	}
	p, err := parseStreamParams(q)
	if err != nil {
		return err
	}
	r := c.Request()
	if err := checkUpgrade(c.Response().Header(), r); err != nil {
		return err
	}
	s, err := h.reg.Socket(c.Param("id"))
	if err != nil {
		return err
	}
	if n := h.streams.Add(1); n > int64(h.opts.MaxStreams) {
		h.streams.Add(-1)
		return fmt.Errorf("%w: %d streams are open, the most --max-streams allows; close one (or raise --max-streams)", sockets.ErrLimit, h.opts.MaxStreams)
	}
	defer h.streams.Add(-1)
	cons, err := s.Attach()
	if err != nil {
		return err
	}
	defer cons.Detach()
	cursor := cons.Oldest() - 1
	if p.after != nil {
		if err := cons.Ack(*p.after); err != nil {
			return err
		}
		cursor = *p.after
	}
	ctx, release, err := h.hold(r.Context())
	if err != nil {
		return err
	}
	defer release()

	// The server's read and write timeouts bound a request; this one
	// lasts, with a deadline per frame (--write-timeout). net/http clears
	// the connection's deadlines when Accept hijacks it, not before:
	// cleared here, the upgrade is not cut by what is left of a request's.
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// The security middleware has checked the origin (crossOrigin) and
	// the token, as for any request; the library's own origin check knows
	// nothing of --cors-origin.
	conn, err := websocket.Accept(readBuffered{c.Response()}, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		Subprotocols:       bearerOffered(r.Header),
	})
	if err != nil {
		return nil // Accept answered; the verification above makes this a hijack failure
	}
	conn.SetReadLimit(streamReadLimit)
	st := &wsStream{conn: conn, cons: cons, p: p, stall: h.opts.StreamWriteTimeout}
	st.run(ctx, cursor)
	return nil
}

// streamReadBuffer is the read buffer of a stream's connection: one read
// from the kernel takes a whole 64 KiB frame (websocat's) or several small
// ones, where the HTTP server's 4 KiB buffer takes a large frame in two.
const streamReadBuffer = 64 << 10

// readBuffered hands websocket.Accept the hijacked connection with a read
// buffer of streamReadBuffer. Accept keeps what the reader it is handed has
// buffered and then reads the connection itself; so what the HTTP server
// had read ahead (a client may send its first frame with the upgrade
// request) is buffered in the new reader before Accept takes it.
type readBuffered struct{ http.ResponseWriter }

func (w readBuffered) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	ahead, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(ahead), conn), streamReadBuffer)
	if len(ahead) > 0 {
		// One read of the MultiReader returns all of ahead, from memory.
		if _, err := br.Peek(len(ahead)); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	return conn, bufio.NewReadWriter(br, brw.Writer), nil
}

func (w readBuffered) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streamParams are the parsed query of GET /sockets/{id}/stream.
type streamParams struct {
	after       *uint64
	mode        string // binary, text or json
	clientAck   bool
	closeSocket bool
}

// parseStreamParams validates the query of GET /sockets/{id}/stream.
func parseStreamParams(q map[string][]string) (streamParams, error) {
	p := streamParams{mode: "binary"}
	after, ok, err := queryUint(q, "after", 0, 1<<63-1)
	if err != nil {
		return p, err
	}
	if ok {
		p.after = &after
	}
	if v, ok, err := queryOne(q, "mode", "binary, text or json"); err != nil {
		return p, err
	} else if ok {
		switch v {
		case "binary", "text", "json":
			p.mode = v
		default:
			return p, badRequest("mode=%s must be binary, text or json", quote.String(v))
		}
	}
	if v, ok, err := queryOne(q, "ack", "client"); err != nil {
		return p, err
	} else if ok {
		if v != "client" {
			return p, badRequest("ack=%s must be client (or left out: a message is acknowledged once its frame is written)", quote.String(v))
		}
		if p.mode != "json" {
			return p, badRequest("ack=client needs mode=json: the client acknowledges with {\"ack\":N} frames")
		}
		p.clientAck = true
	}
	if v, ok, err := queryOne(q, "close", "true or false"); err != nil {
		return p, err
	} else if ok {
		if p.closeSocket, err = strconv.ParseBool(v); err != nil {
			return p, badRequest("close=%s must be true or false", quote.String(v))
		}
	}
	return p, nil
}

// errUpgradeRequired: a request for a WebSocket without the upgrade.
var errUpgradeRequired = errors.New("upgrade required")

// checkUpgrade refuses, as a problem, what websocket.Accept would answer
// with a plain-text error: a request that is no WebSocket upgrade (426,
// with the Upgrade header RFC 9110 asks for), of another version (426 with
// the version taken, as RFC 6455 asks), or with a malformed key (400).
func checkUpgrade(h http.Header, r *http.Request) error {
	if !isWebSocketUpgrade(r) || !r.ProtoAtLeast(1, 1) {
		h.Set("Upgrade", "websocket")
		h.Set("Connection", "Upgrade")
		return fmt.Errorf("%w: this is a WebSocket endpoint; open it with a WebSocket client (websocat ws://HOST:PORT%s), which sends Connection: Upgrade and Upgrade: websocket over HTTP/1.1", errUpgradeRequired, r.URL.Path)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		h.Set("Sec-WebSocket-Version", "13")
		return fmt.Errorf("%w: Sec-WebSocket-Version %s is not taken; only version 13 (RFC 6455) is", errUpgradeRequired, quote.String(v))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return badRequest("a WebSocket upgrade needs one Sec-WebSocket-Key header; it has %d", len(keys))
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return badRequest("Sec-WebSocket-Key %s must be 16 bytes in base64", quote.String(keys[0]))
	}
	return nil
}

// isWebSocketUpgrade reports whether r asks for a WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether a comma-separated header holds token,
// ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// bearerOffered returns the token subprotocol the client offered, if any,
// for Accept to echo (a browser fails a WebSocket whose answer picks none
// of the subprotocols it offered).
func bearerOffered(h http.Header) []string {
	if p, ok := bearerSubprotocol(h); ok {
		return []string{p}
	}
	return nil
}

// bearerSubprotocol returns the first subprotocol in h that carries a
// token (sockman.bearer.TOKEN).
func bearerSubprotocol(h http.Header) (string, bool) {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); strings.HasPrefix(p, bearerProtocol) {
				return p, true
			}
		}
	}
	return "", false
}

// bearerFromSubprotocol returns the token of a WebSocket upgrade's
// sockman.bearer. subprotocol: base64url without padding.
func bearerFromSubprotocol(r *http.Request) (string, bool) {
	if !isWebSocketUpgrade(r) {
		return "", false
	}
	p, ok := bearerSubprotocol(r.Header)
	if !ok {
		return "", false
	}
	tok, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(p, bearerProtocol))
	if err != nil {
		return "", false
	}
	return string(tok), true
}

// wsStream is one attached stream: its writer (run's goroutine) sends
// what the socket received; its reader (a goroutine run waits for) sends
// what the client sends to the peer, and takes its acknowledgements.
type wsStream struct {
	conn  *websocket.Conn
	cons  *sockets.Consumer
	p     streamParams
	stall time.Duration

	mu   sync.Mutex // guards the following fields
	sent uint64     // seq of the last message whose frame is written, or being written
}

// Why a stream ends before the socket's stream of messages does.
var (
	errClientGone = errors.New("the client went")
	errClientBad  = errors.New("the client sent what the stream does not take") // closed by the reader
	errPeerGone   = errors.New("the socket no longer takes data")
)

// run streams until the socket's messages end, the client goes, or ctx
// ends (the request's, or the service shuts down). It returns once the
// connection is closed and the reader has returned.
func (st *wsStream) run(ctx context.Context, cursor uint64) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	st.sent = cursor
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.read(ctx, cancel)
	}()
	endedBySocket := st.write(ctx, cursor)
	switch cause := context.Cause(ctx); {
	case endedBySocket:
	case errors.Is(cause, errClientBad), errors.Is(cause, errClientGone):
		// The reader closed the connection, or the client did.
		_ = st.conn.CloseNow()
	case ctx.Err() != nil && !errors.Is(cause, errPeerGone):
		_ = st.conn.Close(websocket.StatusGoingAway, streamShutdownReason)
	default:
		_ = st.conn.CloseNow()
	}
	<-done
	if st.p.closeSocket && !endedBySocket {
		st.cons.Socket().Close(streamClosedReason)
	}
}

// write sends the socket's messages from after cursor until they end (and
// reports true, once the close is sent), ctx ends, or a write fails.
func (st *wsStream) write(ctx context.Context, cursor uint64) bool {
	var bw *bufio.Writer
	if st.p.mode == "json" {
		bw = writers.Get().(*bufio.Writer)
		defer func() {
			bw.Reset(nil)
			writers.Put(bw)
		}()
	}
	for {
		sel := st.cons.Next(ctx, cursor, streamBatch, streamBatchBytes)
		if ctx.Err() != nil {
			sel.Release()
			return false
		}
		for i := range sel.Messages {
			m := &sel.Messages[i]
			// Sent before the write returns: the client may have the
			// frame, and acknowledge it, by then.
			st.mu.Lock()
			st.sent = m.Seq
			st.mu.Unlock()
			if err := st.frame(ctx, bw, m); err != nil {
				sel.Release()
				return false
			}
			cursor = m.Seq
			if !st.p.clientAck {
				_ = st.cons.Ack(cursor) // cannot fail: the seq was received, and the consumer is attached
			}
		}
		eof := sel.EOF
		sel.Release()
		if eof {
			reason := st.cons.Socket().Info().CloseReason
			if st.p.mode == "json" {
				if err := st.closedFrame(ctx, bw, reason); err != nil {
					return false
				}
			}
			_ = st.conn.Close(websocket.StatusNormalClosure, closeText(reason))
			return true
		}
	}
}

// frame writes one message as the mode says, within the write timeout.
func (st *wsStream) frame(ctx context.Context, bw *bufio.Writer, m *sockets.Message) error {
	ctx, cancel := context.WithTimeout(ctx, st.stall)
	defer cancel()
	switch st.p.mode {
	case "json":
		w, err := st.conn.Writer(ctx, websocket.MessageText)
		if err != nil {
			return err
		}
		bw.Reset(w)
		writeMessage(bw, m, "auto")
		if err := bw.Flush(); err != nil {
			return err
		}
		return w.Close()
	case "text":
		if utf8.Valid(m.Data) {
			return st.conn.Write(ctx, websocket.MessageText, m.Data)
		}
	}
	return st.conn.Write(ctx, websocket.MessageBinary, m.Data)
}

// closedFrame writes the last frame of mode=json.
func (st *wsStream) closedFrame(ctx context.Context, bw *bufio.Writer, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, st.stall)
	defer cancel()
	w, err := st.conn.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	bw.Reset(w)
	bw.WriteString(`{"type":"closed","reason":`)
	writeJSONString(bw, reason)
	bw.WriteByte('}')
	if err := bw.Flush(); err != nil {
		return err
	}
	return w.Close()
}

// closeText cuts a close reason to the 123 bytes a close frame holds.
func closeText(s string) string {
	const most = 123
	if len(s) <= most {
		return s
	}
	n := most
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// read takes the client's frames until the connection ends or a frame is
// refused, and ends the stream (cancel) with why. It reads with a context
// of its own: the shutdown must not cut the connection before the writer
// has sent its 1001.
func (st *wsStream) read(ctx context.Context, cancel context.CancelCauseFunc) {
	var buf []byte
	for {
		typ, r, err := st.conn.Reader(context.Background())
		if err != nil {
			cancel(errClientGone)
			return
		}
		buf, err = readFrame(r, buf[:0])
		if err != nil {
			cancel(errClientGone) // over the limit: the library closed with 1009
			return
		}
		if st.p.mode != "json" {
			if !st.send(ctx, cancel, buf) {
				return
			}
			continue
		}
		if typ != websocket.MessageText {
			st.refuse(cancel, errClientBad, websocket.StatusUnsupportedData, "mode=json takes text frames of JSON")
			return
		}
		f, err := parseClientFrame(buf)
		if err != nil {
			st.refuse(cancel, errClientBad, websocket.StatusInvalidFramePayloadData, err.Error())
			return
		}
		if f.ack != nil {
			if !st.ack(cancel, *f.ack) {
				return
			}
			continue
		}
		if !st.send(ctx, cancel, f.data) {
			return
		}
	}
}

// readFrame reads one frame into buf, growing it as needed (at most to the
// read limit and one byte).
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			n := min(max(2*cap(buf), 4<<10), streamReadLimit+1)
			if n <= cap(buf) {
				n = cap(buf) + 4<<10
			}
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// send writes a client's frame to the peer, and reports whether the stream
// reads on. A peer that no longer takes data stops the reading (the client
// is then slowed, nothing it sent is dropped), and the stream ends: with
// 1000 once what the socket received is delivered, if the peer went.
func (st *wsStream) send(ctx context.Context, cancel context.CancelCauseFunc, p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if _, err := st.cons.Send(ctx, p); err != nil {
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, sockets.ErrSocketClosed) {
			return false // the writer ends the stream once the socket's end is delivered
		}
		st.refuse(cancel, errPeerGone, websocket.StatusInternalError, err.Error())
		return false
	}
	return true
}

// ack takes the client's {"ack":N} and reports whether the stream reads on.
func (st *wsStream) ack(cancel context.CancelCauseFunc, n uint64) bool {
	st.mu.Lock()
	sent := st.sent
	st.mu.Unlock()
	if n > sent {
		st.refuse(cancel, errClientBad, websocket.StatusInvalidFramePayloadData,
			fmt.Sprintf("ack %d is beyond the last message sent (seq %d)", n, sent))
		return false
	}
	if err := st.cons.Ack(n); err != nil {
		st.refuse(cancel, errClientBad, websocket.StatusInvalidFramePayloadData, err.Error())
		return false
	}
	return true
}

// refuse closes the stream with code and reason, and then ends it with
// cause (the writer, woken by it, must not close first without the code).
func (st *wsStream) refuse(cancel context.CancelCauseFunc, cause error, code websocket.StatusCode, reason string) {
	_ = st.conn.Close(code, closeText(reason))
	cancel(cause)
}

// clientFrame is a frame of mode=json from the client.
type clientFrame struct {
	data []byte
	ack  *uint64
}

// parseClientFrame reads {"data","encoding"?} or {"ack":N}; its error
// says, in a few words for a close reason, what was wrong.
func parseClientFrame(b []byte) (clientFrame, error) {
	var v struct {
		Data     *string `json:"data"`
		Encoding string  `json:"encoding"`
		Ack      *uint64 `json:"ack"`
	}
	if err := jsonv2.Unmarshal(b, &v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return clientFrame{}, fmt.Errorf(`not {"data","encoding"} or {"ack":N}: %v`, err)
	}
	switch {
	case v.Ack != nil && (v.Data != nil || v.Encoding != ""):
		return clientFrame{}, errors.New(`a frame is {"data","encoding"} or {"ack":N}, not both`)
	case v.Ack != nil:
		return clientFrame{ack: v.Ack}, nil
	case v.Data == nil:
		return clientFrame{}, errors.New(`a frame needs data (to send) or ack (a seq)`)
	}
	data, err := decodeData(*v.Data, v.Encoding)
	if err != nil {
		return clientFrame{}, errors.New(strings.TrimPrefix(err.Error(), errBadRequest.Error()+": "))
	}
	return clientFrame{data: data}, nil
}
