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
	return &frameStage{mem: s.mem, fr: newFramer(f), max: f.MaxFrame, emit: sink.store, wake: sink.flush}
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
// message once the buffer and the total have room for it.
type frameStage struct {
	mem *memory
	fr  framer
	max int // MaxFrame
	// emit stores one frame (copied) as a message: frameSink.store.
	emit    func(p []byte, partial bool, at time.Time) (woke bool, err error)
	wake    func() // publishes what emit stored and wakes its readers: frameSink.flush
	pend    []byte // the start of the frame being read
	scanned int    // bytes of pend that the delimiter search has seen
	acct    int    // cap(pend) as counted in the total
}

func (st *frameStage) write(data []byte, blk *block, _ bool) (woke bool, err error) {
	defer blk.unref() // every frame is copied out of it
	defer st.wake()
	// Each frame reserves its own share; the read's goes back.
	st.mem.add(-int64(len(data) + entryCost))
	now := time.Now().UTC() // the frames of one read arrived together (and the clock costs)
	buf, from := data, 0
	if len(st.pend) > 0 {
		st.setPend(append(st.pend, data...))
		buf, from = st.pend, st.scanned
	}
	off := 0
	for {
		rest := buf[off:]
		n, ferr := st.fr.next(rest, from)
		if ferr != nil {
			return woke, st.stop(rest[:min(len(rest), st.fr.f.HeaderBytes)], ferr.Error(), now)
		}
		if n > st.max || (n == 0 && len(rest) >= st.max) {
			if len(rest) < st.max {
				break // a length header said so: the partial message is its first max bytes
			}
			return woke, st.stop(rest[:st.max], fmt.Sprintf("frame over max_frame (%d bytes): its first %d bytes are stored as a partial message", st.max, st.max), now)
		}
		if n == 0 {
			break
		}
		w, err := st.emit(st.fr.payload(rest[:n]), false, now)
		if err != nil {
			return woke, err
		}
		woke = woke || w
		off += n
		from = 0
	}
	rest := buf[off:]
	if len(st.pend) > 0 {
		// Keep the unfinished frame at the start of pend.
		n := copy(st.pend, rest)
		st.pend = st.pend[:n]
		if cap(st.pend) > 2*n+4096 {
			st.setPend(append([]byte(nil), st.pend...))
		}
	} else if len(rest) > 0 {
		st.setPend(append(st.pend[:0], rest...))
	}
	st.scanned = len(st.pend)
	if len(st.pend) == 0 && cap(st.pend) > 4096 {
		st.setPend(nil)
	}
	return woke, nil
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
	s      *Socket
	room   int     // what the buffer had room for when last asked
	stored bool    // frames were stored since the last flush
	events []Event // socket.received (and socket.dropped) not yet published, at most flushEvents
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
			k.flush() // the reader that makes room may wait for the frames stored so far
			select {
			case <-freed:
			case <-s.closing:
				return false, errStageClosing
			}
		}
	}
	if !s.reserve(int64(len(p)+entryCost), k.flush) {
		return false, errStageClosing
	}
	k.room -= len(p)
	kept := s.ev.bus.keep(p)
	woke := s.buf.pushFrame(p, partial, at)
	if s.ev.bus != nil {
		if d := s.buf.lastDrop; d.bytes > 0 {
			k.events = append(k.events, Event{Type: EventSocketDropped, SocketID: s.id, ServerID: s.serverID,
				Bytes: d.bytes, FirstSeq: d.first, LastSeq: d.last})
		}
		k.events = append(k.events, Event{Type: EventSocketReceived, SocketID: s.id, ServerID: s.serverID,
			Seq: s.buf.lastSeq, Size: int64(len(p)), Data: kept})
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

// flush publishes the events of the frames stored and wakes their readers.
func (k *frameSink) flush() {
	if !k.stored {
		return
	}
	k.s.ev.bus.publishAll(k.events)
	clear(k.events) // let their data go
	k.events = k.events[:0]
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
