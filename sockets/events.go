package sockets

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The event bus: every lifecycle change and every message stored or sent
// becomes an Event with the next id, in one order, kept in a bounded
// history. Subscribers read the history through a cursor of their own: the
// history is their queue, bounded in events (Config.EventHistory) and in
// data bytes (Config.EventHistoryBytes), and costs nothing per subscriber.
// A subscriber that falls behind by more than the history holds is told
// what it missed (EventLost), counted through its own filter; nobody ever
// waits for a subscriber, and a subscriber never holds a socket's buffer
// memory: the bytes an event carries are a copy of its own.
//
// Publishing is a short critical section (an id, a copy of the event into
// the history's ring, a wake-up of the subscribers that wait), taken once
// per message stored, whether or not anyone subscribes: a later
// subscriber may resume from the history. The bytes of a message are
// copied only while a subscriber that asked for them is attached
// (SubscribeOptions.Data), and at most maxEventData of them per event: with
// nobody asking, the receive path copies nothing.

// EventType names a kind of event.
type EventType string

// Event types.
const (
	EventServerListening EventType = "server.listening"
	EventServerClosed    EventType = "server.closed"
	EventSocketConnected EventType = "socket.connected"
	EventSocketReceived  EventType = "socket.received"
	EventSocketSent      EventType = "socket.sent"
	EventSocketDropped   EventType = "socket.dropped"
	EventSocketClosed    EventType = "socket.closed"
	EventSocketRemoved   EventType = "socket.removed"
	// EventLost is made for one subscriber: it missed Count events with
	// ids from FirstID to LastID. Its ID is LastID.
	EventLost EventType = "events.lost"
)

// EventTypes are the event types, in the order of their documentation.
var EventTypes = []EventType{
	EventServerListening, EventServerClosed, EventSocketConnected, EventSocketReceived,
	EventSocketSent, EventSocketDropped, EventSocketClosed, EventSocketRemoved, EventLost,
}

// Source says who wrote the bytes of an EventSocketSent.
type Source string

// Sources of sent bytes.
const (
	SourceAPI       Source = "api"       // POST /sockets/{id}/messages
	SourceBroadcast Source = "broadcast" // POST /servers/{id}/messages
	SourceStream    Source = "stream"    // a consumer's Send (GET /sockets/{id}/stream)
	SourceRule      Source = "rule"      // a reply rule's answer (POST /servers/{id}/rules, /sockets/{id}/rules)
	SourceGreeting  Source = "greeting"  // a server's greeting to a socket it accepted
	SourceSchedule  Source = "schedule"  // a schedule's send (POST /sockets/{id}/schedules, /servers/{id}/schedules)
)

// Reasons a server stops listening, as EventServerClosed gives them.
const (
	ServerReasonDeleted  = "deleted through the API"
	ServerReasonShutdown = ReasonShutdown
)

// Event is one thing that happened. Which fields are set depends on Type
// (see the API's description of GET /events); the others are zero.
type Event struct {
	ID   uint64
	Type EventType
	Time time.Time // UTC

	SocketID string
	ServerID string // a server's events, and every event of a socket it accepted
	Kind     Kind   // socket.connected

	Address       string // server.listening: the bound address
	LocalAddress  string // socket.connected
	RemoteAddress string // socket.connected
	Reason        string // server.closed, socket.closed

	Seq    uint64 // socket.received: the message the bytes went into (an append to an unread message repeats its seq)
	Size   int64  // socket.received: the bytes stored; socket.sent: the bytes written
	Source Source // socket.sent

	Bytes             int64  // socket.dropped
	FirstSeq, LastSeq uint64 // socket.dropped

	BytesReceived, BytesSent int64 // socket.closed

	Count, FirstID, LastID uint64 // events.lost

	// Data is a copy of the first bytes of a socket.received or
	// socket.sent, for subscribers that asked for them; fewer than Size
	// when the history did not keep them all (see Subscribe). Never
	// modified once published.
	Data []byte
}

// Truncated reports whether Data holds fewer bytes than the message had.
func (e *Event) Truncated() bool {
	return (e.Type == EventSocketReceived || e.Type == EventSocketSent) && int64(len(e.Data)) < e.Size
}

// Defaults for the event bus's Config fields.
const (
	DefaultEventHistory      = 10000
	DefaultEventHistoryBytes = 4 << 20
	DefaultMaxSubscribers    = 64
)

// maxEventData caps the bytes one event keeps: a read's whole size, so that a
// received message is never cut by it, only a larger send.
const maxEventData = readSize

// Batch bounds of one Subscription.Next: what a slow subscriber holds at
// once beyond the history.
const (
	nextMaxEvents = 256
	nextMaxBytes  = 1 << 20
)

// bus is the registry's event bus. A nil *bus publishes nothing.
type bus struct {
	maxBytes int64
	maxSubs  int
	dataMax  int
	dataSubs atomic.Int32 // subscribers that want bytes: the receive path copies only while > 0

	mu        sync.Mutex // guards the following fields
	closed    bool
	ring      []Event // the history: the event with id i is ring[i%len(ring)]
	last      uint64  // id of the newest event; 0 before the first
	count     int     // events held: ids last-count+1 to last
	dataBytes int64   // len of Data over the events held
	dataNext  uint64  // the oldest id whose Data may not be released yet
	subs      map[*Subscription]struct{}
	wake      chan struct{} // closed at the next publish; nil until a subscriber waits
}

func newBus(history int, historyBytes int64, maxSubs int) *bus {
	return &bus{
		maxBytes: historyBytes,
		maxSubs:  maxSubs,
		dataMax:  int(min(int64(maxEventData), historyBytes)),
		ring:     make([]Event, history),
		subs:     make(map[*Subscription]struct{}),
	}
}

// keep returns the copy of p that an event keeps: nil unless a subscriber
// wants bytes. The read loop calls it before it stores the message: once
// stored, the message may be acknowledged and its block reused.
func (b *bus) keep(p []byte) []byte {
	if b == nil || b.dataSubs.Load() == 0 {
		return nil
	}
	return append([]byte(nil), p[:min(len(p), b.dataMax)]...)
}

// publish gives e the next id and the time, and appends it to the history.
func (b *bus) publish(e Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.appendEvent(e, time.Now().UTC())
}

// frameEvent is the socket.received of one frame as publishFrames takes
// it: no pointers, so that a stage keeps one per frame at the cost of a
// few words. What few frames have more (the bytes a subscriber asked for,
// or the socket.dropped that storing it made) is in a frameExtra.
type frameEvent struct {
	seq   uint64
	size  int64
	extra int32 // 1 + the index of its frameExtra; 0: none
}

// frameExtra is what a frameEvent has beyond its seq and size.
type frameExtra struct {
	data []byte // what bus.keep kept
	drop drop   // what storing the frame dropped, when drop.bytes > 0
}

// publishFrames publishes the events of the frames of socket (of server)
// in order, under one lock and one reading of the clock, each written
// straight into the history: the frames of one read are published
// together.
func (b *bus) publishFrames(socket, server string, es []frameEvent, extras []frameExtra) {
	if b == nil || len(es) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	now := time.Now().UTC()
	for i := range es {
		f := &es[i]
		var x frameExtra
		if f.extra > 0 {
			x = extras[f.extra-1]
		}
		if x.drop.bytes > 0 {
			e := b.slot()
			*e = Event{ID: b.last, Type: EventSocketDropped, Time: now, SocketID: socket, ServerID: server,
				Bytes: x.drop.bytes, FirstSeq: x.drop.first, LastSeq: x.drop.last}
		}
		e := b.slot()
		if e.Type == EventSocketReceived {
			// The slot held a socket.received, whose other fields are
			// zero too: only what differs is written (most of an Event
			// is fields that a socket.received leaves zero).
			e.ID, e.Time, e.Seq, e.Size = b.last, now, f.seq, f.size
			if e.SocketID != socket || e.ServerID != server {
				e.SocketID, e.ServerID = socket, server
			}
			if e.Data != nil || x.data != nil {
				e.Data = x.data
			}
		} else {
			*e = Event{ID: b.last, Type: EventSocketReceived, Time: now, SocketID: socket, ServerID: server,
				Seq: f.seq, Size: f.size, Data: x.data}
		}
		if len(x.data) > 0 {
			b.dataBytes += int64(len(x.data))
			b.releaseData()
		}
	}
	b.woke()
}

// appendEvent gives e the next id and the time now, and appends it to the
// history. b.mu must be held.
func (b *bus) appendEvent(e Event, now time.Time) {
	if b.closed {
		return
	}
	e.Time = now
	slot := b.slot()
	e.ID = b.last
	*slot = e
	if len(e.Data) > 0 {
		b.dataBytes += int64(len(e.Data))
		b.releaseData()
	}
	b.woke()
}

// slot takes the next id (b.last) and returns the ring's slot for its
// event, for the caller to fill in whole (with Data, to count it in
// dataBytes). b.mu must be held and the bus not closed.
func (b *bus) slot() *Event {
	b.last++
	n := uint64(len(b.ring))
	if b.count == len(b.ring) {
		b.evict(b.last - n)
	} else {
		b.count++
	}
	return &b.ring[b.last%n]
}

// woke wakes the subscribers waiting for an event. b.mu must be held.
func (b *bus) woke() {
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}

// evict forgets the event with id old, the oldest held, and tells the
// subscribers that had not read it yet. b.mu must be held.
func (b *bus) evict(old uint64) {
	e := &b.ring[old%uint64(len(b.ring))]
	b.dataBytes -= int64(len(e.Data))
	if len(b.subs) > 0 {
		for s := range b.subs {
			if s.next > old {
				continue
			}
			if s.filter.match(e) {
				s.lost(old, old, 1)
			}
			s.next = old + 1
		}
	}
	// The slot is written over by the caller (slot), whole.
	b.dataNext = max(b.dataNext, old+1)
}

// releaseData lets go of the bytes of the oldest events until the history
// is within its byte bound; the events themselves stay. b.mu must be held.
func (b *bus) releaseData() {
	n := uint64(len(b.ring))
	for b.dataBytes > b.maxBytes && b.dataNext <= b.last {
		e := &b.ring[b.dataNext%n]
		if e.ID == b.dataNext && e.Data != nil {
			b.dataBytes -= int64(len(e.Data))
			e.Data = nil
		}
		b.dataNext++
	}
}

// oldest returns the id of the oldest event held (last+1 when none is).
// b.mu must be held.
func (b *bus) oldest() uint64 { return b.last - uint64(b.count) + 1 }

// close ends every subscription. Idempotent.
func (b *bus) close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}

// EventFilter selects events; empty fields match all. SocketIDs and
// ServerIDs together select the events of those sockets and of those
// servers (a server's own and its accepted sockets'); Types narrows that
// down. EventLost always comes.
type EventFilter struct {
	SocketIDs []string
	ServerIDs []string
	// Types holds event types, or prefixes of them ending in ".*"
	// ("socket.*"), or "*" for every type.
	Types []string
}

type compiledFilter struct {
	types   map[EventType]bool // nil: every type
	sockets map[string]bool
	servers map[string]bool
}

// ValidEventType reports whether t is an event type or a prefix that
// EventFilter.Types takes.
func ValidEventType(t string) bool {
	if t == "*" {
		return true
	}
	for _, et := range EventTypes {
		if string(et) == t || strings.HasSuffix(t, ".*") && strings.HasPrefix(string(et), strings.TrimSuffix(t, "*")) {
			return true
		}
	}
	return false
}

func compileFilter(f EventFilter) (compiledFilter, error) {
	var c compiledFilter
	for _, t := range f.Types {
		if !ValidEventType(t) {
			return c, fmt.Errorf("%w: event type %q is not one of %s, a prefix such as socket.*, or *", ErrInvalid, t, eventTypeList())
		}
		if t == "*" {
			c.types = nil
			break
		}
		if c.types == nil {
			c.types = make(map[EventType]bool)
		}
		for _, et := range EventTypes {
			if string(et) == t || strings.HasSuffix(t, ".*") && strings.HasPrefix(string(et), strings.TrimSuffix(t, "*")) {
				c.types[et] = true
			}
		}
	}
	set := func(ids []string) map[string]bool {
		if len(ids) == 0 {
			return nil
		}
		m := make(map[string]bool, len(ids))
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	c.sockets, c.servers = set(f.SocketIDs), set(f.ServerIDs)
	return c, nil
}

func eventTypeList() string {
	names := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func (c *compiledFilter) match(e *Event) bool {
	if c.types != nil && !c.types[e.Type] {
		return false
	}
	if c.sockets == nil && c.servers == nil {
		return true
	}
	return e.SocketID != "" && c.sockets[e.SocketID] || e.ServerID != "" && c.servers[e.ServerID]
}

// SubscribeOptions describe a subscription.
type SubscribeOptions struct {
	Filter EventFilter
	// After, when set, starts with the events after this id that the
	// history still holds (an EventLost first when some are gone); without
	// it the subscription starts with the next event.
	After *uint64
	// Data asks for the bytes of socket.received and socket.sent. They are
	// copied only while such a subscriber is attached: events replayed from
	// before it came carry none (Event.Truncated).
	Data bool
}

// Subscription reads events. Next and Close may be called from different
// goroutines; Next from one at a time.
type Subscription struct {
	bus    *bus
	filter compiledFilter
	data   bool
	timer  *time.Timer // Next's idle wait, made at its first use

	// guarded by bus.mu
	next                uint64 // id of the next event to look at
	lostCount           uint64 // events missed since the last EventLost
	lostFirst, lostLast uint64
	ended               bool
}

// lost records that the subscriber missed count events from first to last.
// bus.mu must be held.
func (s *Subscription) lost(first, last, count uint64) {
	if s.lostCount == 0 {
		s.lostFirst = first
	}
	s.lostLast = last
	s.lostCount += count
}

// Subscribe starts a subscription. It returns ErrInvalid for a bad filter or
// an After beyond the last event, ErrLimit (a *LimitError) at
// Config.MaxSubscribers, ErrClosed after Close.
func (r *Registry) Subscribe(o SubscribeOptions) (_ *Subscription, err error) {
	defer r.countRefusal(&err)
	f, err := compileFilter(o.Filter)
	if err != nil {
		return nil, err
	}
	b := r.events
	s := &Subscription{bus: b, filter: f, data: o.Data}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, fmt.Errorf("%w: the service is shutting down", ErrClosed)
	case len(b.subs) >= b.maxSubs:
		return nil, &LimitError{Limit: LimitSubscribers, Value: int64(b.maxSubs)}
	case o.After != nil && *o.After > b.last:
		return nil, &RangeError{Arg: ArgEventID, Value: int64(min(*o.After, 1<<63-1)), Min: 0, Max: int64(b.last)}
	}
	s.next = b.last + 1
	if o.After != nil {
		s.next = *o.After + 1
		if old := b.oldest(); s.next < old {
			// What is gone cannot be filtered: every id missed counts.
			s.lost(s.next, old-1, old-s.next)
			s.next = old
		}
	}
	b.subs[s] = struct{}{}
	if s.data {
		b.dataSubs.Add(1)
	}
	return s, nil
}

// LastEventID returns the id of the newest event, 0 before the first.
func (r *Registry) LastEventID() uint64 {
	r.events.mu.Lock()
	defer r.events.mu.Unlock()
	return r.events.last
}

// Next appends to buf the events that are there and returns it: at least
// one, at most a batch (256 events or about 1 MiB of data). When none is
// there it waits until one comes, idle passes (it then returns buf with
// nothing added and no error; idle <= 0 waits without end), ctx ends
// (ctx's error) or the subscription ends: Close, or the registry's Close
// (an error wrapping ErrClosed). It never blocks a publisher.
func (s *Subscription) Next(ctx context.Context, buf []Event, idle time.Duration) ([]Event, error) {
	b := s.bus
	start := len(buf)
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if !s.ended {
			// After the registry's Close, what is left is still handed out:
			// the last events tell of the shutdown.
			buf = s.take(buf)
		}
		if len(buf) > start {
			b.mu.Unlock()
			return buf, nil
		}
		if b.closed || s.ended {
			b.mu.Unlock()
			return buf, fmt.Errorf("%w: the subscription has ended", ErrClosed)
		}
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		if timeout == nil && idle > 0 {
			if s.timer == nil {
				s.timer = time.NewTimer(idle)
			} else {
				s.timer.Reset(idle)
			}
			timeout = s.timer.C
		}
		select {
		case <-wake:
		case <-timeout:
			return buf, nil
		case <-ctx.Done():
			return buf, ctx.Err()
		}
	}
}

// More appends to buf the events that are there now, at most a batch, as
// Next does, but never waits: it appends nothing when none is there or the
// subscription has ended (the next Next then says so).
func (s *Subscription) More(buf []Event) []Event {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if !s.ended {
		buf = s.take(buf)
	}
	return buf
}

// take appends the events due to the subscriber. bus.mu must be held.
func (s *Subscription) take(buf []Event) []Event {
	b := s.bus
	if s.lostCount > 0 {
		buf = append(buf, Event{ID: s.lostLast, Type: EventLost, Time: time.Now().UTC(),
			Count: s.lostCount, FirstID: s.lostFirst, LastID: s.lostLast})
		s.lostCount = 0
	}
	n := uint64(len(b.ring))
	bytes, start := 0, len(buf)
	for ; s.next <= b.last && len(buf)-start < nextMaxEvents && bytes < nextMaxBytes; s.next++ {
		e := &b.ring[s.next%n]
		if !s.filter.match(e) {
			continue
		}
		buf = append(buf, *e)
		if s.data {
			bytes += len(e.Data)
		} else {
			buf[len(buf)-1].Data = nil
		}
	}
	return buf
}

// Close ends the subscription: a Next waiting returns. Idempotent.
func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	delete(b.subs, s)
	if s.data {
		b.dataSubs.Add(-1)
	}
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
}
