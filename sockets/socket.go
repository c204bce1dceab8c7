package sockets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Kind says how a socket came to be.
type Kind string

const (
	// KindAccepted: a server accepted it.
	KindAccepted Kind = "accepted"
	// KindClient: the registry dialled it.
	KindClient Kind = "client"
)

// Socket states.
const (
	StateConnected = "connected"
	StateClosed    = "closed"
)

// Close reasons, as shown in SocketInfo.CloseReason.
const (
	ReasonPeerClosed   = "peer closed"
	ReasonPeerReset    = "reset by peer"
	ReasonAPI          = "closed through the API"
	ReasonServerClosed = "server deleted with close_sockets"
	ReasonShutdown     = "service shutting down"
)

// readSize is the most one read takes from the kernel: large reads are what
// make the receive path fast (about 1.4x io.Copy's 32 KiB on loopback).
const readSize = 256 << 10

// Socket is one TCP connection: its read loop fills a bounded buffer that the
// API reads with a cursor; Send writes to the peer. The connection, id and
// kind are fixed at construction; the read loop is the connection's only reader.
type Socket struct {
	id       string
	kind     Kind
	serverID string
	conn     *net.TCPConn
	local    string
	remote   string
	created  time.Time
	buf      *buffer
	stage    stage       // between the read loop and buf (stage.go)
	framing  Framing     // as checked, for Info and framed sends
	copts    recvOptions // its connection options (halfClose, noDelay, keepAlive, name), for Info
	mem      *memory
	gauges   *gauges // the registry's counts of parked reads and sends under way
	writeTO  time.Duration
	onClosed func(*Socket) // called once by the read loop after the close
	ev       socketEvents  // its side of the event bus (events_hooks.go)
	m        mock          // its rules, retain, schedules and replier (mock.go)

	done    chan struct{} // closed when the read loop has returned
	closing chan struct{} // closed when close starts; wakes a loop waiting for space

	bytesRecv atomic.Int64
	bytesSent atomic.Int64
	peerID    atomic.Pointer[string] // the socket at the other end, when it is the registry's (Registry.linkPeer)

	writeMu sync.Mutex // serialises Send so that messages never interleave

	consMu   sync.Mutex // guards consumer; taken before buffer.mu (consumer.go)
	consumer *Consumer  // the attached stream; nil: the cursor reads consume

	mu          sync.Mutex // guards the following fields
	closed      bool
	closeReason string
	closedAt    time.Time // UTC, for display
	closedMono  time.Time // with the monotonic reading, for the retention
	readClosed  bool      // a half-close socket had the peer's FIN
	readNote    string    // what became of a frame the FIN cut short, for the close reason
	writeClosed bool      // Shutdown sent our FIN

	// Last, so that the fields above keep the layout the read loop was
	// measured with: only senders touch it.
	msgsSent atomic.Int64 // sends that wrote a byte (Registry.Metrics)
}

func newSocket(id string, kind Kind, serverID string, conn *net.TCPConn, o recvOptions, mem *memory, g *gauges, writeTO time.Duration) *Socket {
	s := &Socket{
		id:       id,
		kind:     kind,
		serverID: serverID,
		conn:     conn,
		local:    conn.LocalAddr().String(),
		remote:   conn.RemoteAddr().String(),
		created:  time.Now().UTC(),
		buf:      newBuffer(o.bufBytes, o.overflow, mem),
		framing:  o.framing,
		copts:    o,
		mem:      mem,
		gauges:   g,
		writeTO:  writeTO,
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
	}
	s.stage = newStage(s, o.framing)
	return s
}

// ID returns the socket's id.
func (s *Socket) ID() string { return s.id }

// readLoop reads the connection into the buffer until the connection ends.
// It is the connection's only reader; it closes done when it returns.
func (s *Socket) readLoop() {
	defer close(s.done)
	s.m.begin()
	if rc, err := s.conn.SyscallConn(); err != nil {
		s.finish(fmt.Sprintf("I/O error: %v", err))
	} else {
		s.readInto(newQueuedReader(rc, s.mem))
	}
	s.m.end()
	s.buf.setEOF()
	s.publishClosed()
	if s.onClosed != nil {
		s.onClosed(s)
	}
}

// readInto is the read loop's body: it hands what rd reads to the
// socket's receive stage until the connection ends or the socket closes.
func (s *Socket) readInto(rd *queuedReader) {
	for {
		n, ok := s.waitSpace()
		if !ok {
			s.endStream(nil)
			return
		}
		data, blk, owned, err := rd.read(n)
		if len(data) == 0 && err == nil {
			// Data is queued, but the registry-wide total is reached.
			if !s.waitMemory() {
				s.endStream(nil)
				return
			}
			continue
		}
		if len(data) > 0 {
			s.bytesRecv.Add(int64(len(data)))
			woke, serr := s.stage.write(data, blk, owned)
			rd.done() // after the stage: data may be the reader's scratch
			if serr != nil {
				if fe, ok := serr.(*frameError); ok {
					s.finish(fe.reason)
				} else {
					s.endStream(nil)
				}
				return
			}
			if woke && err == nil {
				// A reader waits for this message: let it run (and answer)
				// before this loop's next read polls the socket again.
				runtime.Gosched()
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && s.copts.halfClose {
				if s.readEnded(s.stage.end()) {
					// The peer's FIN leaves us open for sends: the
					// loop has nothing more to read, and waits for
					// the close.
					<-s.closing
				}
				return
			}
			s.endStream(err)
			return
		}
	}
}

// waitSpace blocks until the socket's buffer has room, and returns how many
// bytes the next read may take. The registry-wide total is not waited for
// here: the read reserves its share when data is there (so sockets that
// wake together cannot all take the same room), and with none left it
// still sees the peer's close. It returns false when the socket is closing.
func (s *Socket) waitSpace() (int, bool) {
	for {
		n, freed := s.buf.space()
		if n > 0 {
			return min(n, readSize), true
		}
		select {
		case <-freed:
		case <-s.closing:
			return 0, false
		}
	}
}

// waitMemory blocks until some of the registry-wide total is given back. It
// returns false when the socket is closing.
func (s *Socket) waitMemory() bool {
	for {
		freed := s.mem.freedChan()
		if s.mem.avail() > int64(entryCost) { // room for a message and at least a byte
			return true
		}
		select {
		case <-freed:
		case <-s.closing:
			return false
		}
	}
}

// closeReason turns the error that ended a read into a close reason.
func closeReason(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return ReasonPeerClosed
	case errors.Is(err, syscall.ECONNRESET):
		return ReasonPeerReset
	case errors.Is(err, syscall.ETIMEDOUT):
		return "connection timed out (no answer to keepalive or retransmission)"
	case errors.Is(err, net.ErrClosed):
		return ReasonAPI // only our own Close closes the conn under the loop
	}
	return fmt.Sprintf("I/O error: %v", err)
}

// finish marks the socket closed with reason, unless it already is, and
// closes the connection. It reports whether this call closed it.
func (s *Socket) finish(reason string) bool { return s.end(reason, false) }

// end is finish, aborting the connection with an RST when reset is set.
func (s *Socket) end(reason string, reset bool) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.closed = true
	s.closeReason = reason
	if s.readNote != "" {
		s.closeReason += "; the peer's FIN came " + s.readNote
	}
	s.closedMono = time.Now()
	s.closedAt = s.closedMono.UTC() // UTC drops the monotonic reading
	close(s.closing)
	s.mu.Unlock()
	if reset {
		s.conn.SetLinger(0) // close then sends an RST
	}
	s.conn.Close()
	return true
}

// Close closes the connection with reason and waits for the read loop to
// end. It is idempotent: a later call keeps the first reason. What was
// received stays readable.
func (s *Socket) Close(reason string) {
	s.finish(reason)
	<-s.done
}

// Closed reports whether the socket is closed.
func (s *Socket) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Send writes everything r yields to the peer, in order, and returns the
// number of bytes written. Concurrent sends are serialised and never
// interleave. A peer that takes no data for the write timeout gives
// ErrWriteTimeout (the bytes counted were sent); a slow one that keeps
// taking data does not. A closed socket or a peer
// that reset gives ErrSocketClosed; an error from r is returned wrapped.
func (s *Socket) Send(ctx context.Context, r io.Reader) (int64, error) {
	return s.sending(ctx, SourceAPI, func() (int64, error) {
		bp := sendBufs.Get().(*[]byte)
		defer sendBufs.Put(bp)
		buf := *bp
		var total int64
		for {
			n, rerr := r.Read(buf)
			if n > 0 {
				w, err := s.sendChunk(ctx, buf[:n], total)
				total += w
				if err != nil {
					return total, err
				}
			}
			if rerr == io.EOF {
				return total, nil
			}
			if rerr != nil {
				return total, fmt.Errorf("reading the request body after %d bytes were sent: %w", total, rerr)
			}
		}
	})
}

// SendBytes is Send of p, written straight from p: Broadcast hands the same
// bytes to every socket at once, and a copy buffer each would cost 256 KiB
// per socket for as long as its peer is slow.
func (s *Socket) SendBytes(ctx context.Context, p []byte) (int64, error) {
	return s.sendBytes(ctx, SourceAPI, p)
}

// sendBytes is SendBytes with the source its socket.sent event names.
func (s *Socket) sendBytes(ctx context.Context, src Source, p []byte) (int64, error) {
	return s.sending(ctx, src, func() (int64, error) { return s.sendChunk(ctx, p, 0) })
}

// sending runs send with the socket's write lock held, unless the socket is
// closed. A cancelled send (the client went away, the service shuts down)
// must not hold the lock for a write timeout: a deadline in the past ends a
// write that is blocked on the peer at once. AfterFunc runs that in a
// goroutine of its own; once it has started, sending waits for it before
// letting go of the lock, or its past deadline could land in the next send.
func (s *Socket) sending(ctx context.Context, src Source, send func() (int64, error)) (int64, error) {
	if s.Closed() {
		return 0, s.closedError()
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	shut := s.writeClosed
	s.mu.Unlock()
	if shut {
		return 0, s.writeShutError()
	}
	s.gauges.sending.add(1)
	defer s.gauges.sending.add(-1)
	s.beginSend(src)
	defer s.endSend()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		s.conn.SetWriteDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()
	n, err := send()
	if n > 0 {
		s.msgsSent.Add(1)
	}
	return n, err
}

// sendChunk writes p, after before bytes of the same send went out, and
// turns a failure into the error Send returns.
func (s *Socket) sendChunk(ctx context.Context, p []byte, before int64) (int64, error) {
	w, err := s.write(ctx, p)
	total := before + int64(w)
	if cerr := ctx.Err(); cerr != nil {
		return int64(w), fmt.Errorf("the send was cancelled after %d bytes were sent: %w", total, cerr)
	}
	if err != nil {
		return int64(w), s.writeError(err, total)
	}
	return int64(w), nil
}

// write writes all of p. Each write gets the write timeout anew as long as
// the one before it made progress: a slow peer that keeps taking data is
// not a timeout, only one that takes nothing for the whole timeout is.
// (One deadline for all of p would fail a peer reading 1 KiB/s at the
// first full kernel buffer, with an error saying it took no data.)
//
// It stops when ctx ends; the deadline is checked after it is set, so a
// cancellation that came just before cannot be overwritten.
func (s *Socket) write(ctx context.Context, p []byte) (int, error) {
	var total int
	for {
		s.conn.SetWriteDeadline(time.Now().Add(s.writeTO))
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.writeConn(p[total:])
		total += n
		if err == nil || n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return total, err
		}
	}
}

var sendBufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

func (s *Socket) closedError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Errorf("%w: socket %s closed (%s); open a new connection", ErrSocketClosed, s.id, s.closeReason)
}

func (s *Socket) writeError(err error, sent int64) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: the peer of socket %s took no data for %v; %d bytes were sent before the timeout", ErrWriteTimeout, s.id, s.writeTO, sent)
	case errors.Is(err, net.ErrClosed):
		return s.closedError()
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		// The socket is not closed here: what the peer sent before it went
		// may still be queued in the kernel, and the read loop, the only
		// reader, stores it and then ends with the peer's close or reset
		// (once the buffer has room, if it is full). Later sends get the
		// same error from the kernel. A half-close socket that had the
		// peer's FIN reads no more: it closes here.
		s.lostPeer(err)
		return fmt.Errorf("%w: the peer of socket %s closed the connection after %d bytes were sent: %v; what it sent before stays readable", ErrSocketClosed, s.id, sent, err)
	}
	return fmt.Errorf("%w: writing to socket %s after %d bytes: %v", ErrSocketClosed, s.id, sent, err)
}

// Read acknowledges and selects messages as o says: the cursor reads. With
// o.After it acknowledges first, as Ack does (so it fails with
// ErrSocketBusy while a consumer is attached); without, it only peeks. With o.Wait it blocks
// until a message is there, the socket closes, the wait ends or ctx ends
// (then it returns what it has, not an error). The selection's State is
// StateClosed with no messages only when the reader has everything: a socket
// that closes between the selection and the look at its state, with its
// last bytes stored in between, reads as StateConnected, so that the reader
// asks once more.
func (s *Socket) Read(ctx context.Context, o ReadOptions) (Selection, error) {
	var after uint64
	if o.After != nil {
		if err := s.Ack(*o.After); err != nil {
			return Selection{}, err
		}
		after = *o.After
	} else {
		after = s.buf.firstUnacked() - 1
	}
	return s.selectWait(ctx, after, o.Limit, o.MaxBytes, o.Wait), nil
}

// selectWait selects the messages after the given seq within the caps. With
// a positive wait (or a negative one: without end) it blocks until one is
// there, the stream ends, the wait passes or ctx ends, and returns what it
// has then.
func (s *Socket) selectWait(ctx context.Context, after uint64, limit, maxBytes int, wait time.Duration) Selection {
	var timeout <-chan time.Time
	forever := wait < 0
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	parked := false
	defer func() {
		if parked {
			s.gauges.waiting.add(-1)
		}
	}()
	for {
		sel, changed := s.buf.selectAfter(after, limit, maxBytes)
		if len(sel.Messages) > 0 || sel.EOF || (timeout == nil && !forever) {
			return s.withState(sel)
		}
		// Counted once changed is taken: a push after this wakes the read.
		if !parked {
			parked = true
			s.gauges.waiting.add(1)
		}
		select {
		case <-changed:
		case <-timeout:
			timeout = nil
		case <-ctx.Done():
			return s.withState(sel)
		}
	}
}

// withState sets sel.State as Read describes it.
func (s *Socket) withState(sel Selection) Selection {
	sel.State = readState(s.State(), sel)
	return sel
}

// readState is the state a selection reports, given the socket's.
func readState(state string, sel Selection) string {
	if state == StateClosed && len(sel.Messages) == 0 && !sel.EOF {
		return StateConnected
	}
	return state
}

// SocketInfo is a snapshot of a socket.
type SocketInfo struct {
	ID               string
	Kind             Kind
	ServerID         string
	LocalAddress     string
	RemoteAddress    string
	State            string
	CloseReason      string
	CreatedAt        time.Time
	ClosedAt         time.Time // zero while connected
	BytesReceived    int64
	BytesSent        int64
	BufferedBytes    int64
	BufferedMessages int64
	DroppedBytes     int64
	BufferBytes      int
	Overflow         Overflow
	Framing          Framing
	Retain           Retain

	// Connection control.
	Name         string
	HalfClose    bool
	NoDelay      bool
	KeepAlive    time.Duration // 0: off
	ReadClosed   bool          // a half-close socket had the peer's FIN
	WriteClosed  bool          // shut down for writing
	PeerSocketID string        // the socket at the other end, when it is the registry's
}

// Info returns a snapshot of the socket.
func (s *Socket) Info() SocketInfo {
	size, count, dropped := s.buf.stats()
	info := SocketInfo{
		ID:               s.id,
		Kind:             s.kind,
		ServerID:         s.serverID,
		LocalAddress:     s.local,
		RemoteAddress:    s.remote,
		State:            StateConnected,
		CreatedAt:        s.created,
		BytesReceived:    s.bytesRecv.Load(),
		BytesSent:        s.bytesSent.Load(),
		BufferedBytes:    int64(size),
		BufferedMessages: int64(count),
		DroppedBytes:     dropped,
		BufferBytes:      s.buf.limit,
		Overflow:         s.buf.overflow,
		Framing:          s.framing,
		Retain:           s.copts.retain,
		Name:             s.copts.name,
		HalfClose:        s.copts.halfClose,
		NoDelay:          s.copts.noDelay,
		KeepAlive:        s.copts.keepAlive,
	}
	if p := s.peerID.Load(); p != nil {
		info.PeerSocketID = *p
	}
	s.mu.Lock()
	info.ReadClosed, info.WriteClosed = s.readClosed, s.writeClosed
	if s.closed {
		info.State = StateClosed
		info.CloseReason = s.closeReason
		info.ClosedAt = s.closedAt
	}
	s.mu.Unlock()
	return info
}

// State returns StateConnected or StateClosed.
func (s *Socket) State() string {
	if s.Closed() {
		return StateClosed
	}
	return StateConnected
}

// closedSince returns when the socket closed, and false while it is open.
// The time keeps its monotonic reading: a step of the wall clock (NTP, a
// resumed VM) does not make the retention end early or late.
func (s *Socket) closedSince() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closedMono, s.closed
}
