package api

import (
	"bufio"
	"context"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// Media types of the event stream.
const (
	mimeEventStream = "text/event-stream"
	mimeNDJSON      = "application/x-ndjson"
)

// DefaultEventHeartbeat is how often an idle event stream gets a ": ping"
// comment when Options.EventHeartbeat is zero.
const DefaultEventHeartbeat = 15 * time.Second

// An event stream flushes at once eventBurst times in a row; past that,
// while events keep coming, at most once per eventCoalesce: a batch ready
// sooner waits out the rest and goes with what came meanwhile. A steady flow
// then costs each stream one write (and one wake-up) per eventCoalesce, not
// one per event, while a few events close together (a send and its answer)
// and an event after a quiet spell go at once.
const eventCoalesce = time.Millisecond

const eventBurst = 2

// streamEndTimeout bounds the write of an event stream's end, once the
// stream is over (at most the stall timeout).
const streamEndTimeout = time.Second

// events streams what happens.
//
//	@Summary		Stream events
//	@Description	Everything that happens, in one order, as Server-Sent Events (text/event-stream, the default: an id, an event and a data line each, the data a JSON Event) or, with Accept: application/x-ndjson, one JSON Event per line (curl -N | jq). The answer is an array of Event only in the sense that it is a sequence of them; it does not end until the client goes, the service shuts down, or the client takes no data for --write-timeout.
//	@Description	Event types: server.listening, server.closed, socket.connected, socket.received, socket.sent, socket.dropped, socket.closed, socket.removed, and events.lost (this stream missed count events, ids first_id to last_id; its id is last_id). Ids increase by 1 in the order things happened; for one socket, socket.connected comes before its socket.received and socket.sent, and socket.closed after them. Every event of an accepted socket carries its server_id.
//	@Description	The service keeps a history of the last --event-history events (and --event-history-bytes of their data). Resume with the Last-Event-ID header (an EventSource sends it when it reconnects; it wins over after) or after: the events after that id that the history still holds come first, after an events.lost for those it no longer holds (counted without the filter: what is gone cannot be filtered). A stream that falls behind by more than the history holds gets events.lost for what it missed (counted through its filter), never holds up a socket.
//	@Description	With data=true, socket.received and socket.sent carry encoding and data, written as reads write them. The bytes are copied only while a stream with data=true is attached, at most 256 KiB per event and --event-history-bytes in all (the oldest events' bytes are let go first): an event whose bytes were not all kept has data_truncated true and data holds the first of them (or none).
//	@Description	An idle text/event-stream gets a comment line ": ping" every --event-heartbeat. At most --max-subscribers streams at once (503 past it).
//	@Tags			events
//	@ID				streamEvents
//	@Produce		text/event-stream
//	@Produce		application/x-ndjson
//	@Param			socket_id		query		string	false	"Only the events of these sockets (comma-separated ids); with server_id, the events of either"	example(sock-1,sock-2)
//	@Param			server_id		query		string	false	"Only the events of these servers and of the sockets they accepted (comma-separated ids)"	example(srv-1)
//	@Param			types			query		string	false	"Only these event types (comma-separated): exact names, a prefix such as socket.*, or *. events.lost always comes"	example(socket.received,socket.sent)
//	@Param			data			query		boolean	false	"Add encoding and data to socket.received and socket.sent"	default(false)
//	@Param			encoding		query		string	false	"How data is written: auto (utf8 where valid, else base64), base64 or hex"	Enums(auto, base64, hex)	default(auto)
//	@Param			after			query		integer	false	"Start with the events after this id that the history holds (Last-Event-ID wins over it)"	minimum(0)
//	@Param			Last-Event-ID	header		integer	false	"Resume after this id, as after does"	minimum(0)
//	@Success		200				{array}		Event	"The events, as they happen"
//	@Failure		400				{object}	Problem	"Bad socket_id, server_id, types, data, encoding, after or Last-Event-ID (or an id beyond the last event); an unknown, empty or repeated query parameter"
//	@Failure		401				{object}	Problem	"Token missing or wrong"
//	@Failure		403				{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		503				{object}	Problem	"--max-subscribers streams are open, or the service is shutting down"
//	@Security		BearerAuth
//	@x-no-head		true
//	@Router			/events [get]
func (h *handlers) events(c echo.Context) error {
	q, err := query(c, "socket_id", "server_id", "types", "data", "encoding", "after")
	if err != nil {
		return err
	}
	p, err := parseEventParams(q, c.Request().Header)
	if err != nil {
		return err
	}
	ctx, release, err := h.hold(c.Request().Context())
	if err != nil {
		return err
	}
	defer release()
	sub, err := h.reg.Subscribe(p.SubscribeOptions)
	if err != nil {
		return err
	}
	defer sub.Close()
	s := &eventStream{w: c.Response(), rc: http.NewResponseController(c.Response()), p: p,
		stall: h.opts.StreamWriteTimeout, bw: writers.Get().(*bufio.Writer)}
	s.bw.Reset(c.Response())
	defer func() {
		s.bw.Reset(nil)
		writers.Put(s.bw)
	}()
	s.run(ctx, sub, h.opts.EventHeartbeat)
	return nil
}

// eventStream writes one subscription to its client.
type eventStream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	bw    *bufio.Writer
	p     eventParams
	stall time.Duration
	ctx   context.Context // the request's
	timer *time.Timer     // pause's, made at its first use
}

// run writes events until the client goes, ctx ends (the request's, or the
// service shuts down) or the subscription ends.
func (s *eventStream) run(ctx context.Context, sub *sockets.Subscription, heartbeat time.Duration) {
	// The server's read and write timeouts bound a request; this one lasts.
	// No read deadline (a past one would cancel the context), and a write
	// deadline per write: a client that takes nothing for s.stall is cut.
	_ = s.rc.SetReadDeadline(time.Time{})
	h := s.w.Header()
	h.Set(echo.HeaderContentType, mimeEventStream)
	if s.p.ndjson {
		h.Set(echo.HeaderContentType, mimeNDJSON)
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	s.w.WriteHeader(http.StatusOK)
	s.ctx = ctx
	// A write blocked on a client that reads nothing must not hold the
	// shutdown for a whole stall timeout: a deadline in the past ends it.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = s.rc.SetWriteDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-fired
		}
		// The end of the answer (its last chunk) gets a deadline of its
		// own: a stream cut by the shutdown still ends cleanly, unless its
		// client reads nothing.
		_ = s.rc.SetWriteDeadline(time.Now().Add(min(s.stall, streamEndTimeout)))
	}()
	if !s.arm() || !s.flush() {
		return
	}
	var buf []sockets.Event
	// due is when the flushes so far would have used the allowance up, at
	// one per eventCoalesce (the generic cell rate algorithm's theoretical
	// arrival time): a flush waits for what is beyond eventBurst of them.
	var due time.Time
	for {
		var err error
		buf, err = sub.Next(ctx, buf[:0], heartbeat)
		if err != nil {
			return
		}
		now := time.Now()
		if due.Before(now) {
			due = now
		}
		if wait := due.Sub(now) - (eventBurst-1)*eventCoalesce; wait > 0 && len(buf) > 0 {
			if !s.pause(wait) {
				return
			}
			buf = sub.More(buf)
		}
		if !s.arm() {
			return
		}
		if len(buf) == 0 {
			if !s.p.ndjson {
				s.bw.WriteString(": ping\n\n")
			}
		}
		for i := range buf {
			s.write(&buf[i])
		}
		clear(buf) // let go of the data
		if !s.flush() {
			return
		}
		due = due.Add(eventCoalesce)
	}
}

// pause waits for d, and reports whether the stream goes on (the request's
// context did not end meanwhile).
func (s *eventStream) pause(d time.Duration) bool {
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-s.timer.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// arm gives the writes of the next batch the stall timeout (a batch larger
// than the buffer writes before its flush), and reports whether the stream
// goes on. The context is checked after the deadline is set, so that the
// past deadline of a cancellation just before cannot be overwritten.
func (s *eventStream) arm() bool {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	return s.ctx.Err() == nil
}

// flush sends what is written and reports whether the client took it.
func (s *eventStream) flush() bool {
	return s.bw.Flush() == nil && s.rc.Flush() == nil
}

// write writes one event in the stream's format.
func (s *eventStream) write(e *sockets.Event) {
	bw := s.bw
	if !s.p.ndjson {
		bw.WriteString("id: ")
		bw.Write(strconv.AppendUint(bw.AvailableBuffer(), e.ID, 10))
		bw.WriteString("\nevent: ")
		bw.WriteString(string(e.Type))
		bw.WriteString("\ndata: ")
	}
	writeEvent(bw, e, s.p.data, s.p.encoding)
	if !s.p.ndjson {
		bw.WriteString("\n\n")
	} else {
		bw.WriteByte('\n')
	}
}

// writeEvent writes e as one line of JSON (an Event), with its data when
// withData. The fields are those of its type; see Event.
//
// Numbers are formatted into the writer's free buffer and names written in
// pieces, so that an event costs no allocation.
func writeEvent(bw *bufio.Writer, e *sockets.Event, withData bool, encoding string) {
	name := func(name string) {
		bw.WriteString(`,"`)
		bw.WriteString(name)
		bw.WriteString(`":`)
	}
	putStr := func(n, v string) {
		name(n)
		writeJSONString(bw, v)
	}
	putUint := func(n string, v uint64) {
		name(n)
		bw.Write(strconv.AppendUint(bw.AvailableBuffer(), v, 10))
	}
	putInt := func(n string, v int64) {
		name(n)
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), v, 10))
	}
	bw.WriteString(`{"id":`)
	bw.Write(strconv.AppendUint(bw.AvailableBuffer(), e.ID, 10))
	putStr("type", string(e.Type))
	bw.WriteString(`,"time":"`)
	bw.Write(e.Time.AppendFormat(bw.AvailableBuffer(), time.RFC3339Nano))
	bw.WriteByte('"')
	if e.SocketID != "" {
		putStr("socket_id", e.SocketID)
	}
	if e.ServerID != "" {
		putStr("server_id", e.ServerID)
	}
	switch e.Type {
	case sockets.EventServerListening:
		putStr("address", e.Address)
	case sockets.EventServerClosed:
		putStr("reason", e.Reason)
	case sockets.EventSocketConnected:
		putStr("kind", string(e.Kind))
		putStr("local_address", e.LocalAddress)
		putStr("remote_address", e.RemoteAddress)
	case sockets.EventSocketReceived:
		putUint("seq", e.Seq)
		putInt("size", e.Size)
	case sockets.EventSocketSent:
		putInt("size", e.Size)
		putStr("source", string(e.Source))
	case sockets.EventSocketDropped:
		putInt("bytes", e.Bytes)
		putUint("first_seq", e.FirstSeq)
		putUint("last_seq", e.LastSeq)
	case sockets.EventSocketClosed:
		putStr("reason", e.Reason)
		putInt("bytes_received", e.BytesReceived)
		putInt("bytes_sent", e.BytesSent)
	case sockets.EventLost:
		putUint("count", e.Count)
		putUint("first_id", e.FirstID)
		putUint("last_id", e.LastID)
	}
	if withData && (e.Type == sockets.EventSocketReceived || e.Type == sockets.EventSocketSent) {
		writeEventData(bw, e.Data, encoding)
		if e.Truncated() {
			bw.WriteString(`,"data_truncated":true`)
		}
	}
	bw.WriteByte('}')
}

// writeEventData writes the encoding and data members as a read writes a
// message's.
func writeEventData(bw *bufio.Writer, data []byte, encoding string) {
	enc := encoding
	if enc == "auto" {
		enc = "base64"
		if utf8.Valid(data) {
			enc = "utf8"
		}
	}
	bw.WriteString(`,"encoding":"`)
	bw.WriteString(enc)
	bw.WriteString(`","data":`)
	switch enc {
	case "utf8":
		// A view, not a copy: an event's Data is never modified.
		writeJSONString(bw, unsafe.String(unsafe.SliceData(data), len(data)))
	case "hex":
		bw.WriteByte('"')
		writeEncoded(bw, data, 1, 2, hex.AppendEncode)
		bw.WriteByte('"')
	default:
		bw.WriteByte('"')
		writeEncoded(bw, data, 3, 4, appendBase64)
		bw.WriteByte('"')
	}
}

// eventParams are the parsed query and headers of GET /events.
type eventParams struct {
	sockets.SubscribeOptions
	encoding string
	data     bool
	ndjson   bool
}

var (
	socketIDPattern = regexp.MustCompile(`^sock-[1-9][0-9]*$`)
	serverIDPattern = regexp.MustCompile(`^srv-[1-9][0-9]*$`)
)

// parseEventParams validates the query and headers of GET /events.
func parseEventParams(q map[string][]string, header http.Header) (eventParams, error) {
	p := eventParams{encoding: "auto", ndjson: wantsNDJSON(header)}
	var err error
	if p.Filter.SocketIDs, err = queryIDs(q, "socket_id", socketIDPattern, "sock-1"); err != nil {
		return p, err
	}
	if p.Filter.ServerIDs, err = queryIDs(q, "server_id", serverIDPattern, "srv-1"); err != nil {
		return p, err
	}
	if v, ok, err := queryOne(q, "types", "event types such as socket.received,socket.sent or socket.*"); err != nil {
		return p, err
	} else if ok {
		for _, t := range strings.Split(v, ",") {
			if !sockets.ValidEventType(t) {
				return p, badRequest("types: %s is not an event type; give comma-separated names of %s, a prefix such as socket.* or server.*, or *",
					quote.String(t), eventTypeNames())
			}
			p.Filter.Types = append(p.Filter.Types, t)
		}
	}
	if v, ok, err := queryOne(q, "data", "true or false"); err != nil {
		return p, err
	} else if ok {
		if p.data, err = strconv.ParseBool(v); err != nil {
			return p, badRequest("data=%s must be true or false", quote.String(v))
		}
	}
	p.Data = p.data
	if v, ok, err := queryEncoding(q); err != nil {
		return p, err
	} else if ok {
		p.encoding = v
	}
	after, ok, err := queryUint(q, "after", 0, 1<<63-1)
	if err != nil {
		return p, err
	}
	if ok {
		p.After = &after
	}
	if vs := header.Values("Last-Event-ID"); len(vs) > 0 {
		n, err := strconv.ParseUint(strings.TrimSpace(vs[0]), 10, 63)
		if len(vs) > 1 || err != nil {
			return p, badRequest("Last-Event-ID %s must be one event id, a whole number from 0 (the id line of the last event received)", quote.String(strings.Join(vs, ", ")))
		}
		p.After = &n
	}
	return p, nil
}

// queryIDs parses an optional comma-separated list of ids.
func queryIDs(q map[string][]string, name string, pattern *regexp.Regexp, example string) ([]string, error) {
	v, ok, err := queryOne(q, name, "comma-separated ids such as "+example)
	if !ok {
		return nil, err
	}
	ids := strings.Split(v, ",")
	for _, id := range ids {
		if !pattern.MatchString(id) {
			return nil, badRequest("%s: %s is not an id such as %s; give comma-separated ids", name, quote.String(id), example)
		}
	}
	return ids, nil
}

func eventTypeNames() string {
	names := make([]string, len(sockets.EventTypes))
	for i, t := range sockets.EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// wantsNDJSON reports whether the Accept header prefers application/x-ndjson
// to text/event-stream (as wantsRaw weighs octet-stream against JSON);
// without one, or with a malformed one, the answer is text/event-stream.
func wantsNDJSON(h http.Header) bool {
	ranges := acceptRanges(strings.Join(h.Values(echo.HeaderAccept), ","))
	ndQ, ndAt := preference(ranges, "application", "x-ndjson")
	sseQ, sseAt := preference(ranges, "text", "event-stream")
	return ndQ > 0 && (ndQ > sseQ || ndQ == sseQ && ndAt < sseAt)
}

// Event is one event of GET /events. id, type and time are always there; the
// other fields are those of its type, as the contract lists them.
type Event struct {
	// Increases by 1 from event to event, in the order things happened (events.lost: last_id).
	ID uint64 `json:"id" example:"42"`
	// What happened.
	Type string `json:"type" enums:"server.listening,server.closed,socket.connected,socket.received,socket.sent,socket.dropped,socket.closed,socket.removed,events.lost" example:"socket.received"`
	// When (RFC 3339, UTC).
	Time time.Time `json:"time" format:"date-time" example:"2026-12-04T10:00:00.123456789Z"`
	// The socket: every socket.* event.
	SocketID string `json:"socket_id,omitempty" example:"sock-1"`
	// The server: server.* events, and every socket.* event of a socket it accepted.
	ServerID string `json:"server_id,omitempty" example:"srv-1"`
	// server.listening: the bound host:port.
	Address string `json:"address,omitempty" example:"127.0.0.1:9988"`
	// server.closed: deleted through the API, service shutting down, or accept failed: ...; socket.closed: the socket's close_reason.
	Reason string `json:"reason,omitempty" example:"peer closed"`
	// socket.connected: accepted or client.
	Kind string `json:"kind,omitempty" enums:"accepted,client" example:"accepted"`
	// socket.connected: our end, host:port.
	LocalAddress string `json:"local_address,omitempty" example:"127.0.0.1:9988"`
	// socket.connected: the peer's end, host:port.
	RemoteAddress string `json:"remote_address,omitempty" example:"127.0.0.1:53412"`
	// socket.received: the seq of the message the bytes were stored in, as reads give it. Bytes that arrive while no read has returned the newest message are appended to it: their event has that message's seq again, with the size (and data) of the bytes appended.
	Seq uint64 `json:"seq,omitempty" example:"3"`
	// socket.received and socket.sent: bytes received (appended to message seq), or written to the peer.
	Size int64 `json:"size,omitempty" example:"5"`
	// socket.sent: who sent the bytes: api (POST /sockets/{id}/messages), broadcast (POST /servers/{id}/messages), stream (a client of GET /sockets/{id}/stream), rule (a reply rule's answer), greeting (a server's greeting) or schedule (POST .../schedules).
	Source string `json:"source,omitempty" enums:"api,broadcast,stream,rule,greeting,schedule" example:"api"`
	// socket.dropped: bytes drop_oldest dropped to make room.
	Bytes int64 `json:"bytes,omitempty" example:"4096"`
	// socket.dropped: seq of the first message dropped.
	FirstSeq uint64 `json:"first_seq,omitempty" example:"1"`
	// socket.dropped: seq of the last message dropped.
	LastSeq uint64 `json:"last_seq,omitempty" example:"2"`
	// socket.closed: bytes received in all.
	BytesReceived *int64 `json:"bytes_received,omitempty" example:"5"`
	// socket.closed: bytes sent in all.
	BytesSent *int64 `json:"bytes_sent,omitempty" example:"5"`
	// events.lost: how many events this stream missed.
	Count uint64 `json:"count,omitempty" example:"120"`
	// events.lost: id of the first event missed.
	FirstID uint64 `json:"first_id,omitempty" example:"3"`
	// events.lost: id of the last event missed.
	LastID uint64 `json:"last_id,omitempty" example:"122"`
	// With data=true, socket.received and socket.sent: how data is written.
	Encoding string `json:"encoding,omitempty" enums:"utf8,base64,hex" example:"utf8"`
	// With data=true, socket.received and socket.sent: the bytes, written in encoding.
	Data *string `json:"data,omitempty" example:"hello"`
	// With data=true: data holds only the first of the size bytes (or none): the history did not keep them all.
	DataTruncated bool `json:"data_truncated,omitempty" example:"false"`
} // @name Event
