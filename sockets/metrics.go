package sockets

import (
	"errors"
	"sync/atomic"
)

// Metrics is a snapshot of the engine's running totals and of what is under
// way, for an exporter to read at scrape time (api.Metrics). Nothing on the
// receive path is added for it: the totals are the counters each socket
// already keeps (bytes received and sent, the sequence of its last message,
// the bytes its buffer dropped), summed over the sockets the registry holds
// plus what the sockets it forgot had at that moment; the refusals and
// denials are counted where a request is refused, off the data path.
//
// The counters only grow. Bytes a socket receives while it is being deleted,
// after it left the registry's map and before its connection is closed, are
// not counted.
type Metrics struct {
	SocketsOpen   map[Kind]int // connected sockets by kind
	SocketsClosed map[Kind]int // closed sockets still kept for reading (--closed-retention)
	Servers       int          // listening servers

	BytesReceived    int64 // since start, every socket
	BytesSent        int64
	MessagesReceived int64 // messages (reads, or frames with a framing) stored
	MessagesSent     int64 // sends that wrote at least their first byte
	BytesDropped     int64 // dropped by overflow drop-oldest

	// Refused counts requests and connections refused because a limit was
	// reached, by limit (the Limit values).
	Refused map[Limit]int64
	// Denied counts connects and listens the address policy refused
	// (--allow-connect, --allow-listen).
	Denied int64

	BufferedBytes  int64 // what counts against MaxBufferTotal now (MemoryInUse)
	MaxBufferTotal int64 // Config.MaxBufferTotal
	Waiting        int   // long polls parked (Waiting)
	Sending        int   // sends under way (Sending)
	Subscribers    int   // event subscriptions open

	RuleHits      int64 // messages a reply rule answered, every socket and server
	ScheduleSends int64 // sends of schedules that reached a socket
}

// mockTally counts what the mocks did, for Metrics: rules and schedules
// outlive nothing, so their own counts would go when they are deleted.
type mockTally struct{ ruleHits, scheduleSends atomic.Int64 }

// Limits lists every Limit, in a fixed order: the label values an exporter
// may see in Metrics.Refused.
var Limits = []Limit{LimitSockets, LimitServers, LimitBufferTotal, LimitFiles, LimitSubscribers}

// counters are the registry's totals that no socket keeps.
type counters struct {
	refused [5]atomic.Int64 // by index in Limits
	denied  atomic.Int64
	mock    mockTally

	// forgotten holds the totals of the sockets removed from the map:
	// guarded by Registry.mu, so that a snapshot (under the read lock) sees
	// a socket either in the map or here, never in both or neither.
	forgotten struct{ recv, sent, msgsRecv, msgsSent, dropped int64 }
}

// countRefusal counts *err when it is a limit reached or a policy denial.
// Deferred by the entry points that can refuse (Dial, Listen, Subscribe).
func (r *Registry) countRefusal(err *error) {
	if *err == nil {
		return
	}
	var le *LimitError
	switch {
	case errors.As(*err, &le):
		r.countLimit(le.Limit)
	case errors.Is(*err, ErrForbidden):
		r.counters.denied.Add(1)
	}
}

func (r *Registry) countLimit(l Limit) {
	for i, x := range Limits {
		if x == l {
			r.counters.refused[i].Add(1)
			return
		}
	}
}

// retire adds s's totals to the forgotten ones. r.mu must be held for
// writing, and s just removed from r.sockets.
func (r *Registry) retire(s *Socket) {
	t := s.totals()
	f := &r.counters.forgotten
	f.recv += t.recv
	f.sent += t.sent
	f.msgsRecv += t.msgsRecv
	f.msgsSent += t.msgsSent
	f.dropped += t.dropped
}

type socketTotals struct{ recv, sent, msgsRecv, msgsSent, dropped int64 }

// totals reads the socket's counters: atomics, and under the buffer's lock
// (held for as long as two loads) the last sequence and the dropped bytes.
func (s *Socket) totals() socketTotals {
	s.buf.mu.Lock()
	seq, dropped := s.buf.lastSeq, s.buf.dropped
	s.buf.mu.Unlock()
	return socketTotals{recv: s.bytesRecv.Load(), sent: s.bytesSent.Load(), msgsRecv: int64(seq), msgsSent: s.msgsSent.Load(), dropped: dropped}
}

// Metrics returns a snapshot of the engine's figures. It takes the
// registry's read lock, and each socket's buffer lock in turn for a moment;
// it does not block on I/O.
func (r *Registry) Metrics() Metrics {
	m := Metrics{
		SocketsOpen:    map[Kind]int{KindAccepted: 0, KindClient: 0},
		SocketsClosed:  map[Kind]int{KindAccepted: 0, KindClient: 0},
		Refused:        make(map[Limit]int64, len(Limits)),
		Denied:         r.counters.denied.Load(),
		BufferedBytes:  r.MemoryInUse(),
		MaxBufferTotal: r.cfg.MaxBufferTotal,
		Waiting:        r.Waiting(),
		Sending:        r.Sending(),
		RuleHits:       r.counters.mock.ruleHits.Load(),
		ScheduleSends:  r.counters.mock.scheduleSends.Load(),
	}
	for i, l := range Limits {
		m.Refused[l] = r.counters.refused[i].Load()
	}
	r.mu.RLock()
	f := r.counters.forgotten
	m.BytesReceived, m.BytesSent, m.MessagesReceived, m.MessagesSent, m.BytesDropped = f.recv, f.sent, f.msgsRecv, f.msgsSent, f.dropped
	m.Servers = len(r.servers)
	for _, s := range r.sockets {
		t := s.totals()
		m.BytesReceived += t.recv
		m.BytesSent += t.sent
		m.MessagesReceived += t.msgsRecv
		m.MessagesSent += t.msgsSent
		m.BytesDropped += t.dropped
		if s.Closed() {
			m.SocketsClosed[s.kind]++
		} else {
			m.SocketsOpen[s.kind]++
		}
	}
	r.mu.RUnlock()
	if b := r.events; b != nil {
		b.mu.Lock()
		m.Subscribers = len(b.subs)
		b.mu.Unlock()
	}
	return m
}
