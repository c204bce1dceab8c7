package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/sockets"
)

// eventClient reads one GET /events stream in a goroutine of its own.
type eventClient struct {
	res    *http.Response
	events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
	gate   chan struct{} // closed by resume: the stream is read from then on
	once   sync.Once
}

// resume starts reading the stream. Idempotent.
func (c *eventClient) resume() { c.once.Do(func() { close(c.gate) }) }

// sseEvent is one event of the stream, or a comment (": ping").
type sseEvent struct {
	id, event, comment string
	data               map[string]any
	raw                string
}

// openEvents starts GET /events with the query and header pairs, and
// returns once the answer's header came. The stream is closed at the end
// of the test.
func openEvents(t *testing.T, a *testAPI, query string, header ...string) *eventClient {
	t.Helper()
	c := openEventsWith(t, a, a.client, query, header...)
	c.resume()
	return c
}

// openEventsWith is openEvents through client; the stream is not read
// until resume.
func openEventsWith(t *testing.T, a *testAPI, client *http.Client, query string, header ...string) *eventClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req := a.newRequest(http.MethodGet, "/events"+query, nil, header...).WithContext(ctx)
	res, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /events%s: %v", query, err)
	}
	c := &eventClient{res: res, events: make(chan sseEvent, 1<<16), cancel: cancel, done: make(chan struct{}), gate: make(chan struct{})}
	t.Cleanup(c.close)
	if res.StatusCode != http.StatusOK {
		return c
	}
	ndjson := mediaType(res.Header.Get("Content-Type")) == mimeNDJSON
	go func() {
		defer close(c.done)
		defer close(c.events)
		select {
		case <-c.gate:
		case <-ctx.Done():
			return
		}
		br := bufio.NewReaderSize(res.Body, 1<<20)
		var e sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if ndjson {
				e = sseEvent{raw: line}
				if json.Unmarshal([]byte(line), &e.data) != nil {
					e.comment = "not JSON: " + line
				}
				c.events <- e
				continue
			}
			switch {
			case line == "":
				if e.id != "" || e.event != "" || e.raw != "" {
					c.events <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, ": "):
				c.events <- sseEvent{comment: line[2:]}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.raw = line[6:]
				if json.Unmarshal([]byte(e.raw), &e.data) != nil {
					e.comment = "data not JSON: " + e.raw
				}
			}
		}
	}()
	return c
}

// close ends the stream and waits for its reader. Idempotent.
func (c *eventClient) close() {
	c.cancel()
	c.res.Body.Close()
	if c.res.StatusCode == http.StatusOK {
		<-c.done
	}
}

// next returns the next event, skipping comments, failing after testTimeout.
func (c *eventClient) next(t *testing.T) sseEvent {
	t.Helper()
	for {
		select {
		case e, ok := <-c.events:
			if !ok {
				t.Fatal("the event stream ended, want another event")
			}
			if e.data == nil && e.comment == "ping" {
				continue
			}
			if e.data == nil {
				t.Fatalf("got %+v, want an event", e)
			}
			return e
		case <-time.After(testTimeout):
			t.Fatal("no event within the guard")
		}
	}
}

// fields returns an event's members but time, which is checked apart.
func (e sseEvent) fields(t *testing.T) map[string]any {
	t.Helper()
	ts, _ := e.data["time"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
		t.Errorf("event %s: time %q, want RFC 3339 in UTC", e.raw, ts)
	}
	m := make(map[string]any, len(e.data))
	for k, v := range e.data {
		if k != "time" {
			m[k] = v
		}
	}
	return m
}

// TestEventsLifecycleOverSSE follows a server, the socket it accepts and a
// client socket through their lives: every event in order with its fields,
// the SSE id and event lines agreeing, and the bytes both ways with data.
func TestEventsLifecycleOverSSE(t *testing.T) {
	for _, data := range []bool{false, true} {
		t.Run(fmt.Sprintf("data=%v", data), func(t *testing.T) {
			a := newTestAPI(t)
			query := ""
			if data {
				query = "?data=true"
			}
			ev := openEvents(t, a, query)
			if ct := ev.res.Header.Get("Content-Type"); mediaType(ct) != mimeEventStream {
				t.Fatalf("Content-Type %q, want %s", ct, mimeEventStream)
			}
			srv := a.listen(t, func(c *ServerCreate) { c.BufferBytes, c.Overflow = 8, "drop_oldest" })
			s, peer := a.connect(t, srv)
			writePeer(t, peer, []byte("hello"))
			waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BytesReceived == 5 })
			a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"w\u00f6rld"}`).want(t, http.StatusOK)
			a.call(http.MethodPost, "/servers/"+srv.ID+"/messages", `{"data":"/wA=","encoding":"base64"}`).want(t, http.StatusOK)
			if got := string(readPeer(t, peer, 8)); got != "w\u00f6rld\xff\x00" {
				t.Fatalf("peer got %q", got)
			}
			writePeer(t, peer, []byte("abcdef")) // 5 + 6 > 8: drops "hello"
			waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BytesReceived == 11 })
			a.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)
			a.call(http.MethodDelete, "/servers/"+srv.ID, nil).want(t, http.StatusNoContent)
			ln := listenPeer(t)
			cl := a.dial(t, ln.Addr().String())
			acceptPeer(t, ln).Close()

			sid, vid := s.ID, srv.ID
			withData := func(m map[string]any, enc, d string) map[string]any {
				if data {
					m["encoding"], m["data"] = enc, d
				}
				return m
			}
			want := []map[string]any{
				{"type": "server.listening", "server_id": vid, "address": srv.Address},
				{"type": "socket.connected", "socket_id": sid, "server_id": vid, "kind": "accepted", "local_address": s.LocalAddress, "remote_address": s.RemoteAddress},
				withData(map[string]any{"type": "socket.received", "socket_id": sid, "server_id": vid, "seq": 1.0, "size": 5.0}, "utf8", "hello"),
				withData(map[string]any{"type": "socket.sent", "socket_id": sid, "server_id": vid, "size": 6.0, "source": "api"}, "utf8", "w\u00f6rld"),
				withData(map[string]any{"type": "socket.sent", "socket_id": sid, "server_id": vid, "size": 2.0, "source": "broadcast"}, "base64", "/wA="),
				{"type": "socket.dropped", "socket_id": sid, "server_id": vid, "bytes": 5.0, "first_seq": 1.0, "last_seq": 1.0},
				withData(map[string]any{"type": "socket.received", "socket_id": sid, "server_id": vid, "seq": 2.0, "size": 6.0}, "utf8", "abcdef"),
				{"type": "socket.closed", "socket_id": sid, "server_id": vid, "reason": sockets.ReasonAPI, "bytes_received": 11.0, "bytes_sent": 8.0},
				{"type": "socket.removed", "socket_id": sid, "server_id": vid},
				{"type": "server.closed", "server_id": vid, "reason": sockets.ServerReasonDeleted},
				{"type": "socket.connected", "socket_id": cl.ID, "kind": "client", "local_address": cl.LocalAddress, "remote_address": cl.RemoteAddress},
				{"type": "socket.closed", "socket_id": cl.ID, "reason": sockets.ReasonPeerClosed, "bytes_received": 0.0, "bytes_sent": 0.0},
			}
			for i, w := range want {
				e := ev.next(t)
				w["id"] = float64(i + 1)
				if e.id != strconv.Itoa(i+1) || e.event != w["type"] {
					t.Errorf("event %d: id line %q, event line %q, want %d and %s", i, e.id, e.event, i+1, w["type"])
				}
				if got := e.fields(t); fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("event %d:\n got %v\nwant %v", i, got, w)
				}
			}
		})
	}
}

// TestEventsNDJSON: with Accept application/x-ndjson, one JSON event a line;
// with data, encoding=hex writes the bytes as reads do.
func TestEventsNDJSON(t *testing.T) {
	a := newTestAPI(t)
	ev := openEvents(t, a, "?data=true&encoding=hex&types=socket.received", "Accept", "application/x-ndjson")
	if ct := ev.res.Header.Get("Content-Type"); mediaType(ct) != mimeNDJSON {
		t.Fatalf("Content-Type %q, want %s", ct, mimeNDJSON)
	}
	s, peer := a.pair(t)
	writePeer(t, peer, []byte("hi\n"))
	e := ev.next(t)
	if e.id != "" || e.data["type"] != "socket.received" || e.data["socket_id"] != s.ID || e.data["encoding"] != "hex" || e.data["data"] != "68690a" {
		t.Fatalf("got %s, want the socket.received of %s with data 68690a in hex", e.raw, s.ID)
	}
}

// TestEventsResume: Last-Event-ID (over after) replays what follows it;
// an id the history no longer holds begins with events.lost.
func TestEventsResume(t *testing.T) {
	a := newTestAPI(t, withConfig(func(c *sockets.Config) { c.EventHistory = 2 }))
	var ids []string
	for range 5 {
		ids = append(ids, a.listen(t).ID)
	}
	ev := openEvents(t, a, "?after=0", "Last-Event-ID", "3")
	for i, want := range ids[3:] {
		if e := ev.next(t); e.id != strconv.Itoa(4+i) || e.data["server_id"] != want {
			t.Fatalf("got %s, want server.listening of %s", e.raw, want)
		}
	}
	ev.close()

	ev = openEvents(t, a, "?after=1")
	lost := ev.next(t)
	want := map[string]any{"id": 3.0, "type": "events.lost", "count": 2.0, "first_id": 2.0, "last_id": 3.0}
	if lost.id != "3" || lost.event != "events.lost" || fmt.Sprint(lost.fields(t)) != fmt.Sprint(want) {
		t.Fatalf("first event after=1 with 4 and 5 held: got id %q %s, want %v", lost.id, lost.raw, want)
	}
	if e := ev.next(t); e.id != "4" {
		t.Fatalf("after the loss: got %s, want event 4", e.raw)
	}
}

// TestEventsFlowInOrder: events that come faster than a stream flushes
// (past its few flushes at once, the rest wait and go together) all arrive,
// once each and in order.
func TestEventsFlowInOrder(t *testing.T) {
	a := newTestAPI(t)
	ev := openEvents(t, a, "?types=server.listening")
	var ids []string
	for range 40 {
		ids = append(ids, a.listen(t).ID)
	}
	for i, want := range ids {
		if e := ev.next(t); e.id != strconv.Itoa(1+i) || e.data["server_id"] != want {
			t.Fatalf("event %d of %d: got %s, want server.listening of %s with id %d", i+1, len(ids), e.raw, want, 1+i)
		}
	}
}

// TestEventsStalledClient: a client that reads nothing of its stream (its
// receive window closed, the server's writes blocked) does not slow
// ingest: the socket takes all the peer sends. When it reads again it gets
// what was on the way, then one events.lost for exactly what it missed:
// every id up to the last is either delivered or counted, once.
func TestEventsStalledClient(t *testing.T) {
	const history = 64
	a := newTestAPI(t,
		withConfig(func(c *sockets.Config) { c.EventHistory, c.EventHistoryBytes = history, 64<<20 }),
		withOptions(func(o *Options) { o.StreamWriteTimeout = 2 * testTimeout }))
	// A client whose receive buffer is 4 KiB: the stream stalls at once.
	small := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}).DialContext}}
	t.Cleanup(small.CloseIdleConnections)
	// Messages of at most 64 KiB: many events, each with its bytes.
	s, peer := a.pair(t, func(c *ServerCreate) { c.BufferBytes, c.Overflow = 64<<10, "drop_oldest" })
	ev := openEventsWith(t, a, small, "?data=true")
	const total = 32 << 20
	go func() {
		chunk := make([]byte, 64<<10)
		for n := 0; n < total; n += len(chunk) {
			if _, err := peer.Write(chunk); err != nil {
				return
			}
		}
	}()
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BytesReceived == total })
	last := a.reg.LastEventID()
	ev.resume()
	if last <= history {
		t.Fatalf("%d events, want more than the history of %d for the test to mean anything", last, history)
	}
	next, lostEvents, lostCount := uint64(3), 0, uint64(0) // events 1 and 2 came before the stream
	for next <= last {
		e := ev.next(t)
		id, _ := strconv.ParseUint(e.id, 10, 64)
		if e.event == "events.lost" {
			first, lastID, count := uint64(e.data["first_id"].(float64)), uint64(e.data["last_id"].(float64)), uint64(e.data["count"].(float64))
			if first != next || lastID != id || count != lastID-first+1 {
				t.Fatalf("expecting id %d: got %s", next, e.raw)
			}
			lostEvents++
			lostCount += count
			next = lastID + 1
			continue
		}
		if id != next {
			t.Fatalf("got event %d, want %d (or an events.lost from it)", id, next)
		}
		next++
	}
	if lostCount == 0 {
		t.Fatalf("no events.lost in %d events, want the stalled stream to have lost some", last)
	}
	t.Logf("%d events: %d lost in %d reports", last, lostCount, lostEvents)
}

// TestEventsHeartbeat: an idle text/event-stream gets ": ping" comments.
func TestEventsHeartbeat(t *testing.T) {
	a := newTestAPI(t, withOptions(func(o *Options) { o.EventHeartbeat = 10 * time.Millisecond }))
	ev := openEvents(t, a, "")
	for range 3 {
		select {
		case e := <-ev.events:
			if e.comment != "ping" {
				t.Fatalf("idle stream: got %+v, want : ping", e)
			}
		case <-time.After(testTimeout):
			t.Fatal("no ping on an idle stream")
		}
	}
}

// TestEventsBadInput: a malformed filter, type, flag or cursor is a 400
// problem before any event is written.
func TestEventsBadInput(t *testing.T) {
	a := newTestAPI(t)
	a.listen(t)
	for _, tc := range []struct{ query, header, detail string }{
		{"?socket_id=foo", "", "socket_id"},
		{"?socket_id=sock-1,", "", "socket_id"},
		{"?server_id=sock-1", "", "server_id"},
		{"?types=socket.recieved", "", "not an event type"},
		{"?types=sock.*", "", "not an event type"},
		{"?types=socket.received,,", "", "not an event type"},
		{"?types=", "", "no value"},
		{"?data=maybe", "", "true or false"},
		{"?encoding=utf16", "", "auto, base64 or hex"},
		{"?after=-1", "", "after"},
		{"?after=x", "", "after"},
		{"?after=2", "", "beyond the last event, 1"},
		{"?after=1&after=1", "", "given 2 times"},
		{"", "abc", "Last-Event-ID"},
		{"", "99", "beyond the last event"},
		{"?socket=sock-1", "", "unknown query parameter"},
		{"?%zz", "", "does not parse"},
	} {
		header := []string{contract.SkipRequestHeader, "bad on purpose"} // the answer is still checked
		if tc.header != "" {
			header = append(header, "Last-Event-ID", tc.header)
		}
		res := a.call(http.MethodGet, "/events"+tc.query, nil, header...).want(t, http.StatusBadRequest)
		if p := res.problem(t); !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s (Last-Event-ID %q): detail %q, want it to say %q", tc.query, tc.header, p.Detail, tc.detail)
		}
	}
}

// TestEventsSubscriberLimit: past --max-subscribers streams, a 503 problem
// naming the flag; a stream that ends gives its place back.
func TestEventsSubscriberLimit(t *testing.T) {
	a := newTestAPI(t, withConfig(func(c *sockets.Config) { c.MaxSubscribers = 1 }))
	first := openEvents(t, a, "")
	res := a.call(http.MethodGet, "/events", nil).want(t, http.StatusServiceUnavailable)
	if p := res.problem(t); !strings.Contains(p.Detail, "--max-subscribers") {
		t.Fatalf("detail %q, want it to name --max-subscribers", p.Detail)
	}
	first.close()
	waitFor(t, testTimeout, func() bool {
		ev := openEvents(t, a, "")
		defer ev.close()
		return ev.res.StatusCode == http.StatusOK
	})
}

// TestEventsEndWithRegistry: the registry's Close ends an open stream (the
// HTTP server is still up), after the events of the shutdown.
func TestEventsEndWithRegistry(t *testing.T) {
	a := newTestAPI(t)
	srv := a.listen(t)
	ev := openEvents(t, a, "?types=server.closed")
	a.reg.Close()
	if e := ev.next(t); e.data["server_id"] != srv.ID || e.data["reason"] != sockets.ServerReasonShutdown {
		t.Fatalf("got %s, want server.closed of %s", e.raw, srv.ID)
	}
	select {
	case _, ok := <-ev.events:
		if ok {
			t.Fatal("got another event, want the stream to end")
		}
	case <-time.After(testTimeout):
		t.Fatal("the stream is still open after the registry's Close")
	}
}
