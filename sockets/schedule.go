package sockets

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ScheduleSpec describes a schedule: Data sent every Interval, Count times
// (0: until it is deleted). DataText and Encoding keep what the request
// wrote, to show it back the same way.
type ScheduleSpec struct {
	Data     []byte
	DataText string
	Encoding string
	Interval time.Duration
	Count    int64
}

// ScheduleInfo is a snapshot of a schedule.
type ScheduleInfo struct {
	ID string
	ScheduleSpec
	Sent int64 // intervals it sent at (to every socket, for a server's)
	Done bool  // it sent Count times and stopped
}

// Schedules are the schedules of one socket or server. Each runs in a
// goroutine of its own, which the set owns: Delete and stop end it and
// wait for it.
type Schedules struct {
	owner string
	cfg   *Config
	tally *mockTally // the registry's, for Metrics
	sock  *Socket    // the socket it sends to, or nil for a server's
	srv   *Server    // the server whose sockets it sends to

	mu     sync.Mutex // guards the following fields
	closed bool
	last   uint64
	list   []*schedule
	wg     sync.WaitGroup // the schedules' goroutines; Add only under mu while !closed
}

type schedule struct {
	id     string
	spec   ScheduleSpec
	sent   atomic.Int64
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newSchedules(owner string, cfg *Config, tally *mockTally, sock *Socket, srv *Server) *Schedules {
	return &Schedules{owner: owner, cfg: cfg, tally: tally, sock: sock, srv: srv}
}

// Add checks spec and starts it.
func (ss *Schedules) Add(spec ScheduleSpec) (ScheduleInfo, error) {
	if spec.Interval < ss.cfg.MinInterval || spec.Interval > MaxRuleDelay*24 {
		return ScheduleInfo{}, &RangeError{Arg: ArgInterval, Value: spec.Interval.Milliseconds(),
			Min: ss.cfg.MinInterval.Milliseconds(), Max: (MaxRuleDelay * 24).Milliseconds(), Bound: "MinInterval"}
	}
	if len(spec.Data) == 0 {
		return ScheduleInfo{}, fmt.Errorf("%w: a schedule needs data of at least one byte", ErrInvalid)
	}
	if len(spec.Data) > ss.cfg.MaxReplyBytes {
		return ScheduleInfo{}, &RangeError{Arg: ArgReplyBytes, Value: int64(len(spec.Data)), Min: 1, Max: int64(ss.cfg.MaxReplyBytes), Bound: "MaxReplyBytes"}
	}
	if spec.Count < 0 {
		return ScheduleInfo{}, &RangeError{Arg: ArgCount, Value: spec.Count, Min: 0, Max: 1<<63 - 1}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	switch {
	case ss.closed && ss.sock != nil:
		return ScheduleInfo{}, ss.sock.closedError()
	case ss.closed:
		return ScheduleInfo{}, &NotFoundError{Server: true, ID: ss.srv.id, Closing: true}
	case len(ss.list) >= ss.cfg.MaxSchedules:
		return ScheduleInfo{}, &LimitError{Limit: LimitSchedules, Value: int64(ss.cfg.MaxSchedules)}
	}
	ss.last++
	sc := &schedule{id: "sched-" + strconv.FormatUint(ss.last, 10), spec: spec, done: make(chan struct{})}
	sc.ctx, sc.cancel = context.WithCancel(context.Background())
	ss.list = append(ss.list, sc)
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		defer close(sc.done)
		ss.run(sc)
	}()
	return sc.info(), nil
}

// List returns the schedules, oldest first.
func (ss *Schedules) List() []ScheduleInfo {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]ScheduleInfo, 0, len(ss.list))
	for _, sc := range ss.list {
		out = append(out, sc.info())
	}
	return out
}

// Get returns the schedule with that id.
func (ss *Schedules) Get(id string) (ScheduleInfo, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, sc := range ss.list {
		if sc.id == id {
			return sc.info(), nil
		}
	}
	return ScheduleInfo{}, &ItemNotFoundError{Schedule: true, Owner: ss.owner, ID: id}
}

// Delete stops the schedule with that id and waits until it sends no
// more; a send under way is cut short.
func (ss *Schedules) Delete(id string) error {
	ss.mu.Lock()
	var found *schedule
	for i, sc := range ss.list {
		if sc.id == id {
			found = sc
			ss.list = append(ss.list[:i:i], ss.list[i+1:]...)
			break
		}
	}
	ss.mu.Unlock()
	if found == nil {
		return &ItemNotFoundError{Schedule: true, Owner: ss.owner, ID: id}
	}
	found.cancel()
	<-found.done
	return nil
}

// stop stops every schedule and waits for them; Add fails afterwards.
// Idempotent.
func (ss *Schedules) stop() {
	ss.mu.Lock()
	ss.closed = true
	list := ss.list
	ss.mu.Unlock()
	for _, sc := range list {
		sc.cancel()
	}
	ss.wg.Wait()
}

func (sc *schedule) info() ScheduleInfo {
	n := sc.sent.Load()
	return ScheduleInfo{ID: sc.id, ScheduleSpec: sc.spec, Sent: n, Done: sc.spec.Count > 0 && n >= sc.spec.Count}
}

// run sends at every interval until the count is reached or the schedule
// stops. A server's schedule sends to each socket in a goroutine of its
// own, and skips a socket whose last send is still under way: a peer that
// reads nothing holds up no other.
func (ss *Schedules) run(sc *schedule) {
	tick := time.NewTicker(sc.spec.Interval)
	defer tick.Stop()
	var (
		sends    sync.WaitGroup
		mu       sync.Mutex
		inflight = map[*Socket]bool{}
	)
	defer sends.Wait()
	defer sc.cancel() // cuts short the sends under way
	var closing <-chan struct{}
	if ss.sock != nil {
		closing = ss.sock.closing
	}
	for sc.spec.Count == 0 || sc.sent.Load() < sc.spec.Count {
		select {
		case <-tick.C:
		case <-sc.ctx.Done():
			return
		case <-closing:
			return
		}
		if ss.sock != nil {
			_, err := ss.sock.sendBytes(sc.ctx, SourceSchedule, sc.spec.Data)
			if errors.Is(err, ErrSocketClosed) || errors.Is(err, ErrWriteClosed) {
				return // it can send no more
			}
			ss.count(err)
			sc.sent.Add(1)
			continue
		}
		for _, id := range ss.srv.socketIDs() {
			s, err := ss.srv.reg.Socket(id)
			if err != nil || s.Closed() {
				continue
			}
			mu.Lock()
			busy := inflight[s]
			inflight[s] = true
			mu.Unlock()
			if busy {
				continue
			}
			sends.Go(func() {
				_, err := s.sendBytes(sc.ctx, SourceSchedule, sc.spec.Data)
				ss.count(err)
				mu.Lock()
				delete(inflight, s)
				mu.Unlock()
			})
		}
		sc.sent.Add(1)
	}
}

// count counts a send that went out whole, for Metrics.
func (ss *Schedules) count(err error) {
	if err == nil && ss.tally != nil {
		ss.tally.scheduleSends.Add(1)
	}
}
