package sockets

import (
	"context"
	"time"
)

// mock is what makes a socket answer by itself: its rules, its server's
// rules and greeting, what it retains, its schedules, and the replier
// goroutine that writes the answers. The read loop is the only caller of
// match and submit; the replier and the schedules end, and are waited
// for, before the read loop publishes socket.closed.
type mock struct {
	s      *Socket
	cfg    *Config
	rules  *Rules
	srv    *Server // the server that accepted it; nil for a client
	retain Retain
	scheds *Schedules

	queue chan *answer // created by the read loop when it first queues
	done  chan struct{}
}

// answer is one reply waiting in a socket's queue.
type answer struct {
	src   Source
	data  []byte
	at    time.Time // when the message arrived: the delay counts from here
	delay time.Duration
	then  string
	rule  string // the rule's id and owner, for the close reason
}

// init wires the mock of a new socket; register calls it.
func (m *mock) init(s *Socket, cfg *Config, tally *mockTally, srv *Server, retain Retain) {
	m.s, m.cfg, m.srv, m.retain = s, cfg, srv, retain
	m.rules = newRules("socket "+s.id, cfg, tally)
	m.scheds = newSchedules("socket "+s.id, cfg, tally, s, nil)
}

// Rules returns the socket's own reply rules (its server's come after).
func (s *Socket) Rules() *Rules { return s.m.rules }

// Schedules returns the socket's schedules.
func (s *Socket) Schedules() *Schedules { return s.m.scheds }

// answers reports whether a message may be answered by a rule or kept
// out of the buffer by retain: the frame stage then stores its frames one
// at a time, through match.
func (m *mock) answers() bool {
	return m.s != nil && (m.retain != RetainAll || m.rules.any() || (m.srv != nil && m.srv.rules.any()))
}

// match finds the rule that answers a whole message and makes its answer
// (nil: none), and says whether the message is to be stored. A partial
// frame is never answered.
func (m *mock) match(p []byte, partial bool) (*answer, bool) {
	if m.s == nil {
		return nil, true
	}
	var r *replyRule
	var sub []int
	owner := m.rules.owner
	if !partial {
		r, sub = m.rules.find(p)
		if r == nil && m.srv != nil {
			r, sub = m.srv.rules.find(p)
			owner = m.srv.rules.owner
		}
	}
	keep := m.retain == RetainAll || (m.retain == RetainUnmatched && r == nil)
	if r == nil {
		return nil, keep
	}
	a := &answer{src: SourceRule, at: time.Now(), delay: r.spec.Delay, then: r.spec.Then, rule: r.id + " of " + owner}
	if r.spec.Echo || r.spec.HasReply {
		a.data = r.reply(p, sub, m.cfg.MaxReplyBytes)
	}
	return a, keep
}

// submit queues a for the replier, once the registry-wide total has room
// for its bytes and the queue has a place: a peer that sends faster than
// the answers go out waits, as it does for a full buffer. flush publishes
// what the stage stored before it waits. It returns errStageClosing when
// the socket closes first.
func (m *mock) submit(a *answer, flush func()) error {
	if a == nil {
		return nil
	}
	s := m.s
	if !s.reserve(int64(len(a.data)), flush) {
		return errStageClosing
	}
	m.start()
	select {
	case m.queue <- a:
		return nil
	default:
	}
	flush()
	select {
	case m.queue <- a:
		return nil
	case <-s.closing:
		s.mem.add(-int64(len(a.data)))
		return errStageClosing
	}
}

// unstored accounts for a message that is not stored: its socket.received
// has no seq. flush publishes what the stage stored before it.
func (m *mock) unstored(p []byte, a *answer, flush func()) error {
	s := m.s
	if b := s.ev.bus; b != nil {
		flush()
		b.publish(Event{Type: EventSocketReceived, SocketID: s.id, ServerID: s.serverID,
			Size: int64(len(p)), Data: b.keep(p)})
	}
	return m.submit(a, flush)
}

// unstored is rawStage's side of a read that is not stored: it settles
// the read's reservation and block.
func (st rawStage) unstored(data []byte, blk *block, a *answer) error {
	st.s.mem.add(-int64(len(data) + entryCost))
	blk.unref()
	return st.s.m.unstored(data, a, noFlush)
}

func noFlush() {}

// begin runs when the read loop starts: it queues the server's greeting.
func (m *mock) begin() {
	if m.srv == nil || len(m.srv.greeting) == 0 {
		return
	}
	m.submit(&answer{src: SourceGreeting, data: m.srv.greeting, at: time.Now()}, noFlush)
}

// start starts the replier; only the read loop calls it.
func (m *mock) start() {
	if m.queue != nil {
		return
	}
	m.queue = make(chan *answer, m.cfg.MaxPendingReplies)
	m.done = make(chan struct{})
	go m.replier()
}

// end runs when the read loop has ended (the socket is closing): it waits
// for the replier and the schedules, and gives back what the answers
// still queued held.
func (m *mock) end() {
	if m.s == nil {
		return
	}
	m.scheds.stop()
	if m.queue == nil {
		return
	}
	<-m.done
	for {
		select {
		case a := <-m.queue:
			m.s.mem.add(-int64(len(a.data)))
		default:
			return
		}
	}
}

// replier writes the queued answers in order until the socket closes.
func (m *mock) replier() {
	defer close(m.done)
	s := m.s
	var t *time.Timer
	for {
		var a *answer
		select {
		case a = <-m.queue:
		case <-s.closing:
			return
		}
		if wait := time.Until(a.at.Add(a.delay)); a.delay > 0 && wait > 0 {
			if t == nil {
				t = time.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
				s.mem.add(-int64(len(a.data)))
				return
			}
		}
		if len(a.data) > 0 {
			s.sendBytes(context.Background(), a.src, a.data)
		}
		s.mem.add(-int64(len(a.data)))
		switch a.then {
		case ThenClose:
			s.finish("closed by " + a.rule)
		case ThenReset:
			s.end("reset by "+a.rule, true)
		}
	}
}

// serverMock is a server's side: the rules, greeting and schedules its
// sockets share.
type serverMock struct {
	rules    *Rules
	scheds   *Schedules
	greeting []byte
	// as the request wrote it, for Info
	greetingText, greetingEnc string
}

// Rules returns the server's reply rules: every socket it accepted, now
// and later, tries them after its own.
func (s *Server) Rules() *Rules { return s.rules }

// Schedules returns the server's schedules: each sends to every socket of
// the server connected at the time.
func (s *Server) Schedules() *Schedules { return s.scheds }

func (s *Server) initMock(o ListenOptions) {
	s.rules = newRules("server "+s.id, &s.reg.cfg, &s.reg.counters.mock)
	s.scheds = newSchedules("server "+s.id, &s.reg.cfg, &s.reg.counters.mock, nil, s)
	if len(o.Greeting) > 0 {
		s.greeting, s.greetingText, s.greetingEnc = o.Greeting, o.GreetingText, o.GreetingEncoding
	}
}
