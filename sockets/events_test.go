package sockets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// subscribe starts a subscription closed at the end of the test.
func subscribe(t testing.TB, r *Registry, o SubscribeOptions) *Subscription {
	t.Helper()
	sub, err := r.Subscribe(o)
	if err != nil {
		t.Fatalf("Subscribe(%+v): got %v, want nil", o, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// nextEvents reads events from sub until n came, failing after guard.
func nextEvents(t testing.TB, sub *Subscription, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var got []Event
	for len(got) < n {
		var err error
		got, err = sub.Next(ctx, got, 0)
		if err != nil {
			t.Fatalf("after %d of %d events (%s): Next: got %v, want nil", len(got), n, eventSummary(got), err)
		}
	}
	return got
}

// eventSummary writes events as "type(socket) ..." for failure messages.
func eventSummary(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%d:%s(%s%s) ", e.ID, e.Type, e.SocketID, e.ServerID)
	}
	return b.String()
}

// noMoreEvents checks that sub has nothing to hand out now.
func noMoreEvents(t testing.TB, sub *Subscription) {
	t.Helper()
	got, err := sub.Next(context.Background(), nil, time.Millisecond)
	if err != nil || len(got) != 0 {
		t.Fatalf("Next: got %s, %v, want no event", eventSummary(got), err)
	}
}

// TestEventsLifecycle follows a server and one accepted socket from listen
// to delete: every event, in order, with its fields, and the bytes both
// ways when they are asked for.
func TestEventsLifecycle(t *testing.T) {
	for _, data := range []bool{false, true} {
		t.Run(fmt.Sprintf("data=%v", data), func(t *testing.T) {
			r := newTestRegistry(t, Config{})
			sub := subscribe(t, r, SubscribeOptions{Data: data})
			srv, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 8, Overflow: "drop_oldest"}})

			write := func(p string, total int64) {
				t.Helper()
				if _, err := peer.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
				waitFor(t, guard, func() bool { return s.Info().BytesReceived == total })
			}
			write("hello", 5)
			if _, err := s.Send(context.Background(), strings.NewReader("world")); err != nil {
				t.Fatal(err)
			}
			if n, _, err := r.Broadcast(context.Background(), srv.id, []byte("bc")); err != nil || n != 1 {
				t.Fatalf("Broadcast: got %d, %v, want 1, nil", n, err)
			}
			write("abcdef", 11) // 5 + 6 > 8: drops "hello"
			got := make([]byte, 7)
			peer.SetReadDeadline(time.Now().Add(guard))
			if _, err := io.ReadFull(peer, got); err != nil || string(got) != "worldbc" {
				t.Fatalf("peer read: got %q, %v, want worldbc", got, err)
			}
			if err := r.DeleteSocket(s.id); err != nil {
				t.Fatal(err)
			}
			if err := r.DeleteServer(srv.id, false); err != nil {
				t.Fatal(err)
			}

			sock, sv := s.id, srv.id
			want := []Event{
				{Type: EventServerListening, ServerID: sv, Address: srv.addr},
				{Type: EventSocketConnected, SocketID: sock, ServerID: sv, Kind: KindAccepted, LocalAddress: s.local, RemoteAddress: s.remote},
				{Type: EventSocketReceived, SocketID: sock, ServerID: sv, Seq: 1, Size: 5, Data: []byte("hello")},
				{Type: EventSocketSent, SocketID: sock, ServerID: sv, Size: 5, Source: SourceAPI, Data: []byte("world")},
				{Type: EventSocketSent, SocketID: sock, ServerID: sv, Size: 2, Source: SourceBroadcast, Data: []byte("bc")},
				{Type: EventSocketDropped, SocketID: sock, ServerID: sv, Bytes: 5, FirstSeq: 1, LastSeq: 1},
				{Type: EventSocketReceived, SocketID: sock, ServerID: sv, Seq: 2, Size: 6, Data: []byte("abcdef")},
				{Type: EventSocketClosed, SocketID: sock, ServerID: sv, Reason: ReasonAPI, BytesReceived: 11, BytesSent: 7},
				{Type: EventSocketRemoved, SocketID: sock, ServerID: sv},
				{Type: EventServerClosed, ServerID: sv, Reason: ServerReasonDeleted},
			}
			evs := nextEvents(t, sub, len(want))
			for i, w := range want {
				e := evs[i]
				if e.ID != uint64(i+1) || e.Time.IsZero() || e.Time.Location() != time.UTC {
					t.Errorf("event %d: id %d time %v, want id %d and a UTC time", i, e.ID, e.Time, i+1)
				}
				if !data {
					w.Data = nil
				}
				w.ID, w.Time = e.ID, e.Time
				if fmt.Sprint(e) != fmt.Sprint(w) {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, e, w)
				}
			}
			noMoreEvents(t, sub)
		})
	}
}

// TestEventsOrderPerSocket checks the promised order on many sockets at
// once, sends racing with closes: for each socket, socket.connected comes
// first, socket.closed after its every socket.received and socket.sent.
func TestEventsOrderPerSocket(t *testing.T) {
	r := newTestRegistry(t, Config{})
	sub := subscribe(t, r, SubscribeOptions{Filter: EventFilter{Types: []string{"socket.*"}}})
	srv := listen(t, r, ListenOptions{})
	const n = 20
	done := make(chan error, n)
	for range n {
		peer := dialPeer(t, srv.addr)
		s := acceptedSocket(t, r, srv, peer)
		go func() {
			for range 10 {
				if _, err := s.Send(context.Background(), strings.NewReader("x")); err != nil {
					break // closed under the send: what it wrote is told before socket.closed
				}
			}
			done <- nil
		}()
		go func() { peer.Write([]byte("ping")); s.Close(ReasonAPI) }()
	}
	for range n {
		<-done
	}
	state := map[string]string{}
	var closed int
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	for closed < n {
		evs, err := sub.Next(ctx, nil, 0)
		if err != nil {
			t.Fatalf("Next after %d closes: %v", closed, err)
		}
		for _, e := range evs {
			switch st := state[e.SocketID]; {
			case e.Type == EventSocketConnected && st == "":
				state[e.SocketID] = "open"
			case (e.Type == EventSocketReceived || e.Type == EventSocketSent) && st == "open":
			case e.Type == EventSocketClosed && st == "open":
				state[e.SocketID] = "closed"
				closed++
			default:
				t.Fatalf("event %d %s of %s in state %q: out of order", e.ID, e.Type, e.SocketID, st)
			}
		}
	}
}

// TestEventsResume: a subscription after an id replays what follows it.
func TestEventsResume(t *testing.T) {
	r := newTestRegistry(t, Config{})
	for range 5 {
		listen(t, r, ListenOptions{})
	}
	sub := subscribe(t, r, SubscribeOptions{After: ptr(uint64(3))})
	evs := nextEvents(t, sub, 2)
	if evs[0].ID != 4 || evs[1].ID != 5 || evs[0].Type != EventServerListening {
		t.Fatalf("got %s, want events 4 and 5", eventSummary(evs))
	}
	noMoreEvents(t, sub)

	_, err := r.Subscribe(SubscribeOptions{After: ptr(uint64(6))})
	var rng *RangeError
	if !errors.As(err, &rng) || rng.Arg != ArgEventID || rng.Max != 5 || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Subscribe(after 6 of 5): got %v, want a RangeError with max 5", err)
	}
}

// TestEventsLostOnResume: a resume from before the history's oldest event
// begins with events.lost for exactly what is gone.
func TestEventsLostOnResume(t *testing.T) {
	r := newTestRegistry(t, Config{EventHistory: 4})
	for range 10 {
		listen(t, r, ListenOptions{})
	}
	sub := subscribe(t, r, SubscribeOptions{After: ptr(uint64(2))})
	evs := nextEvents(t, sub, 5)
	lost := evs[0]
	if lost.Type != EventLost || lost.Count != 4 || lost.FirstID != 3 || lost.LastID != 6 || lost.ID != 6 {
		t.Fatalf("first event: got %+v, want events.lost of 3 to 6 (count 4, id 6)", lost)
	}
	for i, e := range evs[1:] {
		if e.ID != uint64(7+i) {
			t.Fatalf("got %s, want 7 to 10 after the loss", eventSummary(evs))
		}
	}
}

// TestEventsSlowSubscriber: a subscriber that reads nothing does not hold
// up ingest, holds no more than the history's bounds, and is told exactly
// how many of its events it missed.
func TestEventsSlowSubscriber(t *testing.T) {
	const history, historyBytes = 16, 1 << 10
	r := newTestRegistry(t, Config{EventHistory: history, EventHistoryBytes: historyBytes})
	// A buffer that takes the whole stream: nothing is dropped, and the
	// only events while the peer writes are the socket.received ones.
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 2 << 20}})
	// Only received events: the filter applies to the loss count.
	sub := subscribe(t, r, SubscribeOptions{Data: true, Filter: EventFilter{SocketIDs: []string{s.id}, Types: []string{"socket.received"}}})
	const chunks, size = 200, 1000
	const total = chunks * size
	chunk := bytes.Repeat([]byte("z"), size)
	r.events.mu.Lock()
	before := r.events.last
	r.events.mu.Unlock()
	// The socket takes it all while the subscriber sleeps: a chunk at a
	// time, each stored before the next is written, so that there are many
	// more events than the history holds.
	for i := 1; i <= chunks; i++ {
		if _, err := peer.Write(chunk); err != nil {
			t.Fatalf("peer write %d: got %v, want nil", i, err)
		}
		waitFor(t, guard, func() bool { return s.Info().BytesReceived == int64(i*size) })
	}
	// One socket.received a read from the kernel (bytes appended to an
	// unread message repeat its seq), so they are counted by their ids.
	r.events.mu.Lock()
	published := r.events.last - before
	r.events.mu.Unlock()
	if published <= history {
		t.Fatalf("%d events published, want more than the history of %d for this test to mean anything", published, history)
	}

	b := r.events
	b.mu.Lock()
	held, dataBytes := b.count, b.dataBytes
	b.mu.Unlock()
	if held > history || dataBytes > historyBytes {
		t.Fatalf("history holds %d events and %d data bytes, want at most %d and %d", held, dataBytes, history, historyBytes)
	}

	evs := nextEvents(t, sub, 1)
	evs, _ = sub.Next(context.Background(), evs, time.Millisecond)
	lost := evs[0]
	if lost.Type != EventLost {
		t.Fatalf("first event: got %+v, want events.lost", lost)
	}
	delivered := uint64(len(evs) - 1)
	if delivered > history || lost.Count+delivered != published {
		t.Fatalf("lost %d and delivered %d of %d published, want them to add up, at most %d delivered", lost.Count, delivered, published, history)
	}
	var kept int
	for _, e := range evs[1:] {
		if e.Type != EventSocketReceived || e.ID <= lost.LastID {
			t.Fatalf("got %+v after the loss report up to %d, want a later socket.received", e, lost.LastID)
		}
		kept += len(e.Data)
	}
	if kept > historyBytes {
		t.Fatalf("the events carry %d data bytes, want at most --event-history-bytes %d", kept, historyBytes)
	}
	if !evs[1].Truncated() {
		t.Fatalf("oldest event kept: %d of %d bytes, want its data let go within the byte bound", len(evs[1].Data), evs[1].Size)
	}
}

// TestEventsFilter: socket, server and type filters, and their errors.
func TestEventsFilter(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv1, _, s1 := connectPair(t, r, ListenOptions{})
	srv2 := listen(t, r, ListenOptions{})
	start := r.LastEventID()
	bySrv := subscribe(t, r, SubscribeOptions{After: ptr(uint64(0)), Filter: EventFilter{ServerIDs: []string{srv1.id}}})
	bySock := subscribe(t, r, SubscribeOptions{After: ptr(uint64(0)), Filter: EventFilter{SocketIDs: []string{s1.id}}})
	byType := subscribe(t, r, SubscribeOptions{After: ptr(uint64(0)), Filter: EventFilter{Types: []string{"server.*"}}})
	if start != 3 {
		t.Fatalf("%d events before the subscriptions, want 3", start)
	}
	if evs := nextEvents(t, bySrv, 2); evs[0].Type != EventServerListening || evs[1].SocketID != s1.id {
		t.Errorf("server filter: got %s, want the server and its socket", eventSummary(evs))
	}
	if evs := nextEvents(t, bySock, 1); evs[0].Type != EventSocketConnected || evs[0].SocketID != s1.id {
		t.Errorf("socket filter: got %s, want its socket.connected", eventSummary(evs))
	}
	if evs := nextEvents(t, byType, 2); evs[0].ServerID != srv1.id || evs[1].ServerID != srv2.id {
		t.Errorf("type filter: got %s, want both server.listening", eventSummary(evs))
	}
	for _, sub := range []*Subscription{bySrv, bySock, byType} {
		noMoreEvents(t, sub)
	}
	for _, bad := range []string{"socket", "sock.*", "socket.receive", "", "socket.*x"} {
		if _, err := r.Subscribe(SubscribeOptions{Filter: EventFilter{Types: []string{bad}}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("type %q: got %v, want ErrInvalid", bad, err)
		}
	}
}

// TestEventsSubscriberLimit: MaxSubscribers at once, a LimitError past it.
func TestEventsSubscriberLimit(t *testing.T) {
	r := newTestRegistry(t, Config{MaxSubscribers: 2})
	a := subscribe(t, r, SubscribeOptions{})
	subscribe(t, r, SubscribeOptions{})
	_, err := r.Subscribe(SubscribeOptions{})
	var lim *LimitError
	if !errors.As(err, &lim) || lim.Limit != LimitSubscribers || lim.Value != 2 || !errors.Is(err, ErrLimit) {
		t.Fatalf("third subscription: got %v, want a LimitError for 2 subscribers", err)
	}
	a.Close()
	a.Close()
	subscribe(t, r, SubscribeOptions{})
}

// TestEventsCloseEndsSubscriptions: the registry's Close wakes a waiting
// Next, which hands out the shutdown's events and then ends.
func TestEventsCloseEndsSubscriptions(t *testing.T) {
	r := New(Config{})
	srv, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := r.Subscribe(SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	var got []Event
	go func() {
		var err error
		for err == nil {
			got, err = sub.Next(context.Background(), got, 0)
		}
		errc <- err
	}()
	r.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: got %v, want ErrClosed", err)
		}
	case <-time.After(guard):
		t.Fatal("Next still waiting after the registry's Close")
	}
	if len(got) != 1 || got[0].Type != EventServerClosed || got[0].ServerID != srv.id || got[0].Reason != ServerReasonShutdown {
		t.Fatalf("events at the shutdown: got %s, want server.closed", eventSummary(got))
	}
	if _, err := r.Subscribe(SubscribeOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: got %v, want ErrClosed", err)
	}
}

// TestEventsNextIdle: Next returns with nothing once idle passes, and with
// ctx's error when ctx ends.
func TestEventsNextIdle(t *testing.T) {
	r := newTestRegistry(t, Config{})
	sub := subscribe(t, r, SubscribeOptions{})
	noMoreEvents(t, sub)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sub.Next(ctx, nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: got %v, want context.Canceled", err)
	}
}

// TestEventsMore: More hands out what is there without waiting, after
// what the buffer holds, and nothing once the subscription has ended.
func TestEventsMore(t *testing.T) {
	r := newTestRegistry(t, Config{})
	sub := subscribe(t, r, SubscribeOptions{})
	if got := sub.More(nil); len(got) != 0 {
		t.Fatalf("More with nothing there: got %s, want none", eventSummary(got))
	}
	listen(t, r, ListenOptions{})
	listen(t, r, ListenOptions{})
	head := []Event{{ID: 99}}
	got := sub.More(head)
	if len(got) != 3 || got[0].ID != 99 || got[1].ID != 1 || got[2].ID != 2 {
		t.Fatalf("More after two events: got %s, want 99 then 1 and 2", eventSummary(got))
	}
	noMoreEvents(t, sub)
	listen(t, r, ListenOptions{})
	sub.Close()
	if got := sub.More(nil); len(got) != 0 {
		t.Fatalf("More after Close: got %s, want none", eventSummary(got))
	}
}

// TestEventSize pins the size of one history slot, which the
// --event-history documentation gives (about 280 bytes).
func TestEventSize(t *testing.T) {
	if n := unsafe.Sizeof(Event{}); n > 288 {
		t.Fatalf("an Event is %d bytes, want at most 288 as documented", n)
	}
}
