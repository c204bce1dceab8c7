package sockets

import (
	"errors"
	"fmt"
	"time"
)

// stage is the receive stage between a socket's byte source (its read loop)
// and its buffer: what each read returned goes through it, and it decides
// what messages the buffer stores. Raw hands reads over as they are;
// framing cuts them into frames. The read loop is its only caller.
type stage interface {
	// write takes the bytes of one read. The read's reservation of the
	// registry-wide total (len(data)+entryCost) and blk's reference (nil:
	// none) are the stage's to settle; owned says data is the caller's to
	// keep (see buffer.push), else it is only valid until write returns. It
	// reports whether a reader may be waiting for what it stored, and
	// returns errStageClosing when the socket began closing meanwhile, or a
	// *frameError when the stream cannot go on (a frame over max_frame).
	write(data []byte, blk *block, owned bool) (woke bool, err error)
	// end is called once when reading ends (see Socket.endStream). It
	// stores what is left as a partial message, and says what became of
	// it for the close reason ("" when nothing was left).
	end() string
}

// errStageClosing: the socket began closing while a stage waited for room.
var errStageClosing = errors.New("the socket is closing")

// frameError ends a framed stream: reason is the socket's close reason.
type frameError struct{ reason string }

func (e *frameError) Error() string { return e.reason }

// newStage returns the receive stage of a socket with framing f.
func newStage(s *Socket, f Framing) stage {
	if !f.Framed() {
		return rawStage{s}
	}
	sink := &frameSink{s: s}
	sink.eachFn = sink.each
	st := &frameStage{mem: s.mem, fr: newFramer(f), max: f.MaxFrame, emit: sink.store, emitAll: sink.storeAll, wake: sink.flush}
	sink.giveBack = st.giveBack
	return st
}

// rawStage stores each read as it came: the fast path, where a pooled
// block becomes the message without a copy and small reads are appended to
// the newest unread message (see buffer.push).
type rawStage struct{ s *Socket }

func (st rawStage) write(data []byte, blk *block, owned bool) (bool, error) {
	s := st.s
	a, keep := s.m.match(data, false)
	if !keep {
		return false, st.unstored(data, blk, a)
	}
	kept := s.ev.bus.keep(data) // before the message can be acknowledged, and before the read's memory is let go
	woke := s.buf.push(data, blk, owned, time.Now().UTC())
	s.publishReceived(len(data), kept)
	return woke, s.m.submit(a, noFlush)
}

func (rawStage) end() string { return "" }

// endStream ends the socket's stream: err is what ended the read (io.EOF
// for the peer's close), nil when the socket is closing on our side. The
// stage stores what it has left, and the close reason says what became of
// an unfinished frame, also when our own close came first.
func (s *Socket) endStream(err error) {
	what := s.stage.end()
	if err != nil {
		reason := closeReason(err)
		if what != "" {
			reason += " " + what
		}
		if s.finish(reason) {
			return
		}
	}
	if what != "" {
		s.amendReason(what)
	}
}

// frameStage cuts the stream into frames. The bytes of the frame being read
// stay in pend, counted against the registry-wide total (at most max of
// them, and the slack of their slice); each whole frame is stored as one
// message once the buffer and the total have room for it. The whole frames
// of a read are stored as views into the read's memory (a block, or one
// copy of the read's scratch), frameBatch at a time: a frame costs its
// entry and its share of that memory, not an allocation of its own.
type frameStage struct {
	mem *memory
	fr  framer
	max int // MaxFrame
	// emit stores one frame (copied) as a message: frameSink.store.
	emit func(p []byte, partial bool, at time.Time) (woke bool, err error)
	// emitAll stores the frames at spans of base, views into chunk
	// (see frameChunk), as messages: frameSink.storeAll.
	emitAll func(chunk *block, base []byte, spans []span, at time.Time) (woke bool, err error)
	wake    func() // publishes what emit stored and wakes its readers: frameSink.flush
	pend    []byte // the start of the frame being read
	scanned int    // bytes of pend that the delimiter search has seen
	acct    int    // cap(pend) as counted in the total
	spans   []span // the frames of the batch being stored, reused
	// resv is what is left of the read's reservation of the total: the
	// memory of the frames takes its place, so that no other socket
	// takes that room meanwhile; it goes back before anything waits
	// (giveBack) and at the end of the read.
	resv int64
}

// giveBack gives back what is left of the read's reservation.
func (st *frameStage) giveBack() {
	if st.resv != 0 {
		st.mem.add(-st.resv)
		st.resv = 0
	}
}

// chunk makes data (blk) the memory of frames (frameChunk), in place of as
// much of the read's reservation.
func (st *frameStage) chunk(data []byte, blk *block) *block {
	c := frameChunk(data, blk, st.mem)
	take := min(st.resv, c.cost)
	st.resv -= take
	st.mem.add(-take)
	return c
}

// frameBatch bounds the frames stored in one step (one buffer lock, one
// copy out of the read's scratch, the spans held): a read of empty lines
// makes a frame of every byte.
const frameBatch = 256

func (st *frameStage) write(data []byte, blk *block, owned bool) (woke bool, err error) {
	defer st.wake()
	// Each frame reserves its own entry, and the memory the frames are
	// views into is counted once (frameChunk) in place of the read's
	// reservation; what is left of it goes back.
	st.mem.add(-int64(entryCost))
	st.resv = int64(len(data))
	defer st.giveBack()
	now := time.Now().UTC() // the frames of one read arrived together (and the clock costs)
	var chunk *block        // data made the frames' memory, at its first frame (owned only)
	defer func() {
		if chunk != nil {
			chunk.unref()
		} else {
			blk.unref()
		}
	}()
	off := 0
	if len(st.pend) > 0 {
		used, w, err := st.finishPend(data, now)
		if err != nil || used == len(data) {
			return w, err
		}
		woke, off = w, used
	}
	for {
		spans := st.spans[:0]
		start := off
		var stopAt []byte // what a frame that ends the stream leaves as its partial message
		var reason string
		for len(spans) < frameBatch {
			rest := data[off:]
			n, ferr := st.fr.next(rest, 0)
			if ferr != nil {
				stopAt, reason = rest[:min(len(rest), st.fr.f.HeaderBytes)], ferr.Error()
				break
			}
			if n > st.max || (n == 0 && len(rest) >= st.max) {
				if len(rest) >= st.max {
					stopAt, reason = rest[:st.max], overMax(st.max)
				}
				break // else a length header said so: the partial message is its first max bytes
			}
			if n == 0 {
				break
			}
			lo, hi := st.fr.bounds(rest[:n])
			spans = append(spans, span{off + lo, off + hi})
			off += n
		}
		st.spans = spans
		if len(spans) > 0 {
			var w bool
			// Views into the read's own memory, unless a few frames are
			// the lesser part of it: they would keep a whole block from
			// its pool.
			if owned && (chunk != nil || len(spans) == frameBatch || 2*(off-start) >= len(data)) {
				if chunk == nil {
					chunk = st.chunk(data, blk)
				}
				w, err = st.emitAll(chunk, data, spans, now)
			} else {
				// The scratch is the reader's again after write: the frames
				// are copied out of it together, into one allocation.
				c := append([]byte(nil), data[start:off]...)
				for i := range spans {
					spans[i].lo -= start
					spans[i].hi -= start
				}
				ch := st.chunk(c, nil)
				w, err = st.emitAll(ch, c, spans, now)
				ch.unref()
			}
			woke = woke || w
			if err != nil {
				return woke, err
			}
		}
		if stopAt != nil || reason != "" {
			return woke, st.stop(stopAt, reason, now)
		}
		if len(spans) < frameBatch {
			break
		}
	}
	// Keep the unfinished frame at the start of pend (empty here).
	if rest := data[off:]; len(rest) > 0 {
		st.setPend(append(st.pend[:0], rest...))
	}
	st.scanned = len(st.pend)
	if len(st.pend) == 0 && cap(st.pend) > 4096 {
		st.setPend(nil)
	}
	return woke, nil
}

func overMax(max int) string {
	return fmt.Sprintf("frame over max_frame (%d bytes): its first %d bytes are stored as a partial message", max, max)
}

// finishPend adds the bytes of data to the frame begun in pend until that
// frame is whole, then stores it (copied) and returns how many bytes of
// data it took: all of them when the frame goes on. It adds them in
// growing steps, so that a frame that ends early in a large read does not
// copy all of it.
func (st *frameStage) finishPend(data []byte, now time.Time) (used int, woke bool, err error) {
	old := len(st.pend)
	added := 0
	step := max(256, old)
	for {
		take := min(len(data)-added, step)
		st.setPend(append(st.pend, data[added:added+take]...))
		added += take
		step *= 2
		rest := st.pend
		n, ferr := st.fr.next(rest, st.scanned)
		if ferr != nil {
			return added, false, st.stop(rest[:min(len(rest), st.fr.f.HeaderBytes)], ferr.Error(), now)
		}
		if n > st.max || (n == 0 && len(rest) >= st.max) {
			if len(rest) >= st.max {
				return added, false, st.stop(rest[:st.max], overMax(st.max), now)
			}
			n = 0 // a length header said so: the partial message will be its first max bytes
		}
		if n == 0 {
			st.scanned = len(rest)
			if added == len(data) {
				return added, false, nil
			}
			continue
		}
		woke, err = st.emit(st.fr.payload(rest[:n]), false, now)
		st.pend, st.scanned = st.pend[:0], 0
		if cap(st.pend) > 4096 {
			st.setPend(nil)
		}
		return n - old, woke, err
	}
}

// stop stores what was read of a frame that ends the stream as a partial
// message and returns the error that closes the socket with reason.
func (st *frameStage) stop(partial []byte, reason string, now time.Time) error {
	if _, err := st.emit(partial, true, now); err != nil {
		return err
	}
	st.wake()
	st.setPend(nil)
	return &frameError{reason: reason}
}

// frameSink stores a frame stage's frames in its socket's buffer. Their
// events wait in events until flush, which publishes them together and
// wakes the readers; it runs at the end of each read and before any wait,
// so that neither a reader nor an observer waits for frames already
// stored. The read loop is its only user.
type frameSink struct {
	s        *Socket
	giveBack func()                             // frameStage.giveBack: before anything waits
	room     int                                // what the buffer had room for when last asked
	stored   bool                               // frames were stored since the last flush
	events   []frameEvent                       // socket.received (and socket.dropped) not yet published, about flushEvents at most
	extras   []frameExtra                       // what events have beyond seq and size
	eachFn   func(seq uint64, p []byte, d drop) // each, made once
}

// flushEvents bounds the events a sink holds: a read of empty lines makes
// a frame of every byte.
const flushEvents = 256

// store stores one frame as a message once the buffer (with overflow
// block) and the registry-wide total have room for it. It returns
// errStageClosing when the socket closes first.
func (k *frameSink) store(p []byte, partial bool, at time.Time) (bool, error) {
	s := k.s
	a, keep := s.m.match(p, partial)
	if !keep {
		return false, s.m.unstored(p, a, k.flush)
	}
	if s.buf.overflow == OverflowBlock && len(p) > k.room {
		for {
			n, freed := s.buf.space()
			if k.room = n; n >= len(p) {
				break
			}
			k.beforeWait() // the reader that makes room may wait for the frames stored so far
			select {
			case <-freed:
			case <-s.closing:
				return false, errStageClosing
			}
		}
	}
	if !s.reserve(int64(len(p)+entryCost), k.beforeWait) {
		return false, errStageClosing
	}
	k.room -= len(p)
	kept := s.ev.bus.keep(p)
	woke := s.buf.pushFrame(p, partial, at)
	if s.ev.bus != nil {
		k.event(s.buf.lastSeq, len(p), kept, s.buf.lastDrop)
	}
	k.stored = true
	if a != nil {
		k.flush() // the message's socket.received before its reply's socket.sent
		return woke, s.m.submit(a, k.flush)
	}
	if len(k.events) >= flushEvents {
		k.flush()
	}
	return woke, nil
}

// storeAll stores the frames at spans of base, views into chunk, as
// messages, as many at once as the buffer (with overflow block) and the
// registry-wide total have room for, waiting as store does for the rest.
func (k *frameSink) storeAll(chunk *block, base []byte, spans []span, at time.Time) (bool, error) {
	s := k.s
	woke := false
	if s.m.answers() {
		// Rules see each frame, and retain may keep it out of the
		// buffer: one at a time, each copied (store), as a read that
		// is not a batch's. The chunk goes back with the read.
		for _, sp := range spans {
			w, err := k.store(base[sp.lo:sp.hi], false, at)
			woke = woke || w
			if err != nil {
				return woke, err
			}
		}
		return woke, nil
	}
	for len(spans) > 0 {
		m := len(spans)
		if s.buf.overflow == OverflowBlock {
			if n := spans[0].hi - spans[0].lo; n > k.room {
				for {
					room, freed := s.buf.space()
					if k.room = room; room >= n {
						break
					}
					k.beforeWait() // the reader that makes room may wait for the frames stored so far
					select {
					case <-freed:
					case <-s.closing:
						return woke, errStageClosing
					}
				}
			}
			room := k.room
			m = 0
			for m < len(spans) && spans[m].hi-spans[m].lo <= room {
				room -= spans[m].hi - spans[m].lo
				m++
			}
		}
		// An entry each; as many as the total gives, at least one.
		took := s.mem.reserve(int64(m) * int64(entryCost))
		m = int(took / int64(entryCost))
		s.mem.add(int64(m*entryCost) - took)
		if m == 0 {
			if !s.reserve(int64(entryCost), k.beforeWait) {
				return woke, errStageClosing
			}
			m = 1
		}
		for _, sp := range spans[:m] {
			k.room -= sp.hi - sp.lo
		}
		if s.buf.pushFrames(chunk, base, spans[:m], at, k.eachFn) {
			woke = true
		}
		k.stored = true
		if len(k.events) >= flushEvents {
			k.flush()
		}
		spans = spans[m:]
	}
	return woke, nil
}

// each makes the events of a frame that pushFrames stored (seq, payload p,
// and what storing it dropped). The buffer's lock is held.
func (k *frameSink) each(seq uint64, p []byte, d drop) {
	s := k.s
	if s.ev.bus == nil {
		return
	}
	k.event(seq, len(p), s.ev.bus.keep(p), d)
}

// event keeps the events of a frame stored until flush.
func (k *frameSink) event(seq uint64, size int, kept []byte, d drop) {
	e := frameEvent{seq: seq, size: int64(size)}
	if kept != nil || d.bytes > 0 {
		k.extras = append(k.extras, frameExtra{data: kept, drop: d})
		e.extra = int32(len(k.extras))
	}
	k.events = append(k.events, e)
}

// beforeWait runs before the sink waits for room or memory: the frames
// stored so far are published, and the read's reservation goes back.
func (k *frameSink) beforeWait() {
	k.flush()
	if k.giveBack != nil {
		k.giveBack()
	}
}

// flush publishes the events of the frames stored and wakes their readers.
func (k *frameSink) flush() {
	if !k.stored {
		return
	}
	k.s.ev.bus.publishFrames(k.s.id, k.s.serverID, k.events, k.extras)
	clear(k.extras) // let their data go
	k.events, k.extras = k.events[:0], k.extras[:0]
	k.stored = false
	k.s.buf.wakeFrames()
}

// setPend makes p the pending bytes and settles the change of its
// capacity with the total. The bytes were read already: this takes no
// share that has to be waited for.
func (st *frameStage) setPend(p []byte) {
	st.mem.add(int64(cap(p) - st.acct))
	st.pend, st.acct = p, cap(p)
}

func (st *frameStage) end() string {
	n := len(st.pend)
	if n == 0 {
		st.setPend(nil)
		return ""
	}
	// While the socket closes on our side this waits for nothing: with no
	// room for the frame it is discarded, and the reason says so.
	_, serr := st.emit(st.pend, true, time.Now().UTC())
	st.wake()
	st.setPend(nil)
	if serr != nil {
		return fmt.Sprintf("in the middle of a frame: its first %d bytes were discarded (the buffer had no room for them)", n)
	}
	return fmt.Sprintf("in the middle of a frame: its first %d bytes are stored as a partial message", n)
}

// reserve takes n bytes of the registry-wide total, waiting until it has
// them; before it waits it calls wake. It returns false when the socket
// closes first.
func (s *Socket) reserve(n int64, wake func()) bool {
	for {
		took := s.mem.reserve(n)
		if took == n {
			return true
		}
		s.mem.add(-took)
		wake()
		freed := s.mem.freedChan()
		if s.mem.avail() >= n {
			continue
		}
		select {
		case <-freed:
		case <-s.closing:
			return false
		}
	}
}

// amendReason adds to the close reason of a socket closed on our side
// what became of an unfinished frame.
func (s *Socket) amendReason(what string) {
	s.mu.Lock()
	s.closeReason += " " + what
	s.mu.Unlock()
}
