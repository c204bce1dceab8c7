package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// Read limits: a request may narrow them, never widen them.
const (
	defaultReadLimit = 1000
	maxReadLimit     = 100000
	defaultReadBytes = 16 << 20
	maxReadBytes     = 64 << 20
)

// send writes to one socket.
//
//	@Summary		Send to a socket
//	@Description	Writes bytes to the connection and answers once they are written. The body is JSON {"data","encoding"} (encoding utf8 by default, base64, hex such as "48 65 6c" or "0x48,0x65", or escaped such as "AT\\r\\n"; a malformed one is a 400 that says at which byte), or raw bytes with Content-Type application/octet-stream or text/plain, sent byte for byte as they stream in (so a raw body without Content-Length that turns out to be over --max-body gets 413 after its first --max-body bytes went out; the detail says how many). A peer that takes no data within the write timeout gives 504 with the bytes sent so far.
//	@Description	On a framed socket (see framing on POST /servers and POST /clients) the send is one frame: lines appends \n, delimiter its delimiter, length_prefix prepends the header, and fixed takes exactly its size (else 400). ?frame=false sends the bytes as they are.
//	@Tags			sockets
//	@ID				send
//	@Accept			json
//	@Accept			octet-stream
//	@Accept			plain
//	@Produce		json
//	@Param			id		path		string		true	"Socket id"	example(sock-1)
//	@Param			frame	query		boolean		false	"On a framed socket, frame the send as its framing says (default true); false sends the bytes as they are"	default(true)
//	@Param			message	body		SendRequest	true	"What to send"
//	@Success		200		{object}	SendResult
//	@Failure		400		{object}	Problem	"Malformed body or encoding (the detail says at which byte); a fixed-size frame of another size; an unknown query parameter, or frame not true or false"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404		{object}	Problem	"No such socket"
//	@Failure		409		{object}	Problem	"The socket is closed"
//	@Failure		413		{object}	Problem	"Body too large"
//	@Failure		415		{object}	Problem	"Unsupported Content-Type, or a compressed body (a Content-Encoding other than identity)"
//	@Failure		503		{object}	Problem	"The service began shutting down while the body was still coming in"
//	@Failure		504		{object}	Problem	"The peer took no data within the write timeout"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/messages [post]
func (h *handlers) send(c echo.Context) error {
	frame, err := queryFrame(c)
	if err != nil {
		return err
	}
	s, err := h.reg.Socket(c.Param("id"))
	if err != nil {
		return err
	}
	if frame && s.Framing().Framed() {
		// A frame is sent whole: its header needs its length, and a
		// fixed frame its size, before the first byte goes out.
		data, err := readPayload(c)
		if err != nil {
			return err
		}
		n, err := s.SendFrame(c.Request().Context(), data)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, SendResult{Bytes: n})
	}
	var body io.Reader
	if isRaw(c) {
		if err := uncompressed(c); err != nil {
			return err
		}
		body = requestBody{c.Request().Body}
	} else {
		data, err := readPayload(c)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	n, err := s.Send(c.Request().Context(), body)
	if err != nil {
		return sendError(err, n)
	}
	return c.JSON(http.StatusOK, SendResult{Bytes: n})
}

// queryFrame reads the query of a send or broadcast: ?frame=false sends
// the bytes as they are on a framed socket.
func queryFrame(c echo.Context) (bool, error) {
	q, err := query(c, "frame")
	if err != nil {
		return false, err
	}
	v, ok, err := queryOne(q, "frame", "true or false")
	if err != nil || !ok {
		return true, err
	}
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badRequest("query parameter frame=%s must be true or false", quote.String(v))
}

// sendError says how much went out when a raw body, streamed to the peer as
// it arrives, turns out to be over --max-body: a bare 413 would suggest that
// nothing was sent.
func sendError(err error, sent int64) error {
	var mbe *http.MaxBytesError
	if sent > 0 && errors.As(err, &mbe) {
		return fmt.Errorf("%w: the body is over the %d byte limit (--max-body); its first %d bytes were sent to the peer before that was known", errTooLarge, mbe.Limit, sent)
	}
	return err
}

// requestBody reads a raw request body. A body that cannot be read to its
// end (the client went away mid-body, a malformed chunk) is the client's
// doing: a 400, not a server error. One over --max-body stays a 413.
type requestBody struct{ r io.Reader }

func (b requestBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
			err = badRequest("the request body could not be read to its end: %v", err)
		}
	}
	return n, err
}

// isRaw reports whether the request body is raw bytes to send as they are.
func isRaw(c echo.Context) bool {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	return isMediaType(ct, echo.MIMEOctetStream) || isMediaType(ct, echo.MIMETextPlain)
}

// readPayload returns the bytes a send or broadcast body asks to send.
func readPayload(c echo.Context) ([]byte, error) {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if isRaw(c) {
		if err := uncompressed(c); err != nil {
			return nil, err
		}
		return io.ReadAll(requestBody{c.Request().Body})
	}
	if ct == "" || !isMediaType(ct, echo.MIMEApplicationJSON) {
		return nil, errUnsupported(ct, "application/json", "application/octet-stream", "text/plain")
	}
	var req struct {
		Data     *string `json:"data"`
		Encoding string  `json:"encoding"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	if req.Data == nil {
		return nil, badRequest("data is required: the bytes to send, written in encoding")
	}
	return decodeData(*req.Data, req.Encoding)
}

// decodeData turns data written in encoding into bytes (see decodeField).
func decodeData(data, encoding string) ([]byte, error) {
	return decodeField("data", data, encoding)
}

// read returns received messages.
//
//	@Summary		Read what a socket received
//	@Description	Returns messages with seq > after, oldest first, and acknowledges (frees) every message with seq <= after. Without after it returns from the oldest message still held and frees nothing (a peek, which works also while a stream is attached; a read with after is then 409). The same request repeated returns the same messages, so a lost response is retried with the same after. cursor is the seq of the last message returned (or the after given when none): pass it as after next time.
//	@Description	With wait (a Go duration such as 5s, capped by --max-wait) it long-polls: when nothing is there it answers as soon as a message arrives or the socket closes, or empty when the time is up.
//	@Description	What an answer holds counts against --max-buffer-total until it is written: when the total is reached, a read returns fewer messages than limit asks (at least one). An answer whose client takes none of it for --answer-stall-timeout (15s by default) is cut: its connection closes, and the messages stay held for the next read.
//	@Description	When the Accept header prefers application/octet-stream to JSON (its q is above 0 and above application/json's, or equal and listed first) the answer is the bytes of the selected messages, concatenated; the cursor is in the Sockman-Cursor header and the state in Sockman-State (closed with an empty body: the stream has ended).
//	@Tags			sockets
//	@ID				read
//	@Produce		json
//	@Produce		octet-stream
//	@Param			id			path		string	true	"Socket id"	example(sock-1)
//	@Param			after		query		integer	false	"Acknowledge up to this seq and return later messages"	minimum(0)
//	@Param			limit		query		integer	false	"Most messages to return (default 1000)"	minimum(1)	maximum(100000)
//	@Param			max_bytes	query		integer	false	"Most bytes to return (default 16 MiB); one message is returned even if it alone is larger"	minimum(1)	maximum(67108864)
//	@Param			wait		query		string	false	"Long-poll up to this long (Go duration, e.g. 5s); longer waits, even ones too long for a Go duration, are cut to --max-wait"	example(5s)
//	@Param			encoding	query		string	false	"How data is written in a JSON answer: auto (utf8 where valid, else base64), base64 or hex (an octet-stream answer is the bytes themselves)"	Enums(auto, base64, hex)	default(auto)
//	@Success		200			{object}	MessageList
//	@Header			200			{integer}	Sockman-Cursor	"The cursor (octet-stream answers)"
//	@Header			200			{string}	Sockman-State	"connected or closed, as the state field of a JSON answer (octet-stream answers)"
//	@Failure		400			{object}	Problem	"Bad after (or one beyond the last message received), limit, max_bytes, wait or encoding; an unknown, empty or repeated query parameter"
//	@Failure		401			{object}	Problem	"Token missing or wrong"
//	@Failure		403			{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404			{object}	Problem	"No such socket"
//	@Failure		409			{object}	Problem	"A read with after while a stream is attached (GET /sockets/{id}/stream): the socket has one consumer at a time"
//	@Security		BearerAuth
//	@x-no-head		true
//	@Router			/sockets/{id}/messages [get]
func (h *handlers) read(c echo.Context) error {
	s, err := h.reg.Socket(c.Param("id"))
	if err != nil {
		return err
	}
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	p, err := parseReadParams(q, h.opts.MaxWait)
	if err != nil {
		return err
	}
	sel, err := s.Read(c.Request().Context(), p.ReadOptions)
	if err != nil {
		return err
	}
	// Once the answer is written, the engine may reuse the memory behind
	// the messages (when they are acknowledged).
	defer sel.Release()
	w := c.Response()
	if wantsRaw(c.Request().Header) {
		size := 0
		for _, m := range sel.Messages {
			size += len(m.Data)
		}
		w.Header().Set(echo.HeaderContentType, echo.MIMEOctetStream)
		// A known length spares the chunked framing: each message is then
		// one write to the connection.
		w.Header().Set(echo.HeaderContentLength, strconv.Itoa(size))
		w.Header().Set("Sockman-Cursor", strconv.FormatUint(sel.Cursor, 10))
		w.Header().Set("Sockman-State", sel.State)
		w.WriteHeader(http.StatusOK)
		sw := newStallWriter(w, h.opts.AnswerStallTimeout)
		for _, m := range sel.Messages {
			if _, err := sw.Write(m.Data); err != nil {
				return nil // the client went away or stopped reading; nothing more to say
			}
		}
		return nil
	}
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	if n, ok := messageListLen(s.ID(), sel, p.encoding); ok {
		w.Header().Set(echo.HeaderContentLength, strconv.Itoa(n))
	}
	w.WriteHeader(http.StatusOK)
	_ = writeMessageList(newStallWriter(w, h.opts.AnswerStallTimeout), s.ID(), sel, p.encoding)
	return nil
}

// readParams are the parsed query parameters of a read.
type readParams struct {
	sockets.ReadOptions
	encoding string
}

// parseReadParams validates the query of GET /sockets/{id}/messages.
func parseReadParams(q map[string][]string, maxWait time.Duration) (readParams, error) {
	p := readParams{encoding: "auto"}
	p.Limit, p.MaxBytes = defaultReadLimit, defaultReadBytes
	for name := range q {
		switch name {
		case "after", "limit", "max_bytes", "wait", "encoding":
		default:
			return p, badRequest("unknown query parameter %s; this endpoint takes after, limit, max_bytes, wait and encoding", quote.String(name))
		}
	}
	after, ok, err := queryUint(q, "after", 0, 1<<63-1)
	if err != nil {
		return p, err
	}
	if ok {
		p.After = &after
	}
	if n, ok, err := queryUint(q, "limit", 1, maxReadLimit); err != nil {
		return p, err
	} else if ok {
		p.Limit = int(n)
	}
	if n, ok, err := queryUint(q, "max_bytes", 1, maxReadBytes); err != nil {
		return p, err
	} else if ok {
		p.MaxBytes = int(n)
	}
	if v, ok, err := queryOne(q, "wait", "a Go duration such as 5s"); err != nil {
		return p, err
	} else if ok {
		if p.Wait, err = parseWait(v, maxWait); err != nil {
			return p, err
		}
	}
	if v, ok, err := queryEncoding(q); err != nil {
		return p, err
	} else if ok {
		p.encoding = v
	}
	return p, nil
}

// queryEncoding reads ?encoding=, how data is written in JSON (reads and
// the event stream): auto, base64 or hex.
func queryEncoding(q map[string][]string) (string, bool, error) {
	v, ok, err := queryOne(q, "encoding", "auto, base64 or hex")
	if err != nil || !ok {
		return "", ok, err
	}
	switch v {
	case "auto", "base64", "hex":
		return v, true, nil
	}
	return "", false, badRequest("encoding=%s must be auto, base64 or hex", quote.String(v))
}

// longDuration matches what time.ParseDuration reads, but for a sign other
// than +: numbers, each with its unit.
var longDuration = regexp.MustCompile(`^\+?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// parseWait reads a long poll's wait, cut to maxWait. A well-formed,
// non-negative duration too long for a time.Duration (about 292 years,
// 5000000h) is a very long wait: cut like any other, not refused.
func parseWait(v string, maxWait time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	switch {
	case err == nil && d >= 0:
		return min(d, maxWait), nil
	case err != nil && longDuration.MatchString(v): // only an overflow fails on this syntax
		return maxWait, nil
	}
	return 0, badRequest("wait=%s must be a non-negative Go duration such as 500ms or 5s", quote.String(v))
}
