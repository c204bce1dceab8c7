package sockets

import "sync"

// Where the engine publishes its events. The order the contract promises
// for one socket (socket.connected < its socket.received and socket.sent <
// socket.closed) comes from where each is published:
//
//   - socket.connected: in register, under the registry lock, before the
//     socket can be found or its read loop starts;
//   - socket.received and socket.dropped: by the read loop, after the
//     message is stored;
//   - socket.sent: when a send ends, or, for a send still writing when the
//     socket closes, just before socket.closed;
//   - socket.closed: by the read loop, once it has ended, holding the lock
//     that every write to the peer holds: the connection is closed by then,
//     so a write in progress returns at once, and none comes after.

// socketEvents is a socket's side of the bus.
type socketEvents struct {
	bus *bus

	mu     sync.Mutex // held across every write to the peer; guards the following fields
	closed bool       // socket.closed is published
	src    Source     // the send in progress (under writeMu)
	sent   int64      // bytes it wrote that no socket.sent told yet
	keep   bool       // it keeps the bytes for a subscriber
	data   []byte     // the first of them
}

func (s *Socket) publishConnected() {
	s.ev.bus.publish(Event{Type: EventSocketConnected, SocketID: s.id, ServerID: s.serverID,
		Kind: s.kind, LocalAddress: s.local, RemoteAddress: s.remote})
}

// publishReceived publishes the message of size bytes just stored (kept:
// its copy from bus.keep), after a socket.dropped for what storing it
// dropped. The read loop calls it: it is the only writer of the buffer's
// lastSeq and lastDrop, so it reads them without the buffer's lock.
func (s *Socket) publishReceived(size int, kept []byte) {
	b := s.ev.bus
	if b == nil {
		return
	}
	if d := s.buf.lastDrop; d.bytes > 0 {
		b.publish(Event{Type: EventSocketDropped, SocketID: s.id, ServerID: s.serverID,
			Bytes: d.bytes, FirstSeq: d.first, LastSeq: d.last})
	}
	b.publish(Event{Type: EventSocketReceived, SocketID: s.id, ServerID: s.serverID,
		Seq: s.buf.lastSeq, Size: int64(size), Data: kept})
}

// beginSend starts the account of a send from src; writeMu is held.
func (s *Socket) beginSend(src Source) {
	e := &s.ev
	e.mu.Lock()
	e.src, e.sent, e.data = src, 0, nil
	e.keep = e.bus != nil && e.bus.dataSubs.Load() > 0
	e.mu.Unlock()
}

// endSend publishes the socket.sent of the send that began, if it wrote
// anything the close did not already tell; writeMu is held.
func (s *Socket) endSend() {
	e := &s.ev
	e.mu.Lock()
	defer e.mu.Unlock()
	s.flushSent()
}

// flushSent publishes what the send in progress wrote so far. ev.mu must be
// held.
func (s *Socket) flushSent() {
	e := &s.ev
	if e.sent > 0 && !e.closed {
		e.bus.publish(Event{Type: EventSocketSent, SocketID: s.id, ServerID: s.serverID,
			Size: e.sent, Source: e.src, Data: e.data})
	}
	e.sent, e.data = 0, nil
}

// writeConn is one write to the peer, counted for Info and for the send's
// event.
func (s *Socket) writeConn(p []byte) (int, error) {
	e := &s.ev
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := s.conn.Write(p)
	s.bytesSent.Add(int64(n))
	e.sent += int64(n)
	if e.keep {
		if room := e.bus.dataMax - len(e.data); room > 0 {
			e.data = append(e.data, p[:min(n, room)]...)
		}
	}
	return n, err
}

// publishClosed publishes socket.closed; the read loop calls it once it has
// ended, when the connection is closed.
func (s *Socket) publishClosed() {
	e := &s.ev
	e.mu.Lock()
	defer e.mu.Unlock()
	s.flushSent()
	e.closed = true
	s.mu.Lock()
	reason := s.closeReason
	s.mu.Unlock()
	e.bus.publish(Event{Type: EventSocketClosed, SocketID: s.id, ServerID: s.serverID,
		Reason: reason, BytesReceived: s.bytesRecv.Load(), BytesSent: s.bytesSent.Load()})
}

// publishRemoved publishes socket.removed for a socket forgotten.
func (r *Registry) publishRemoved(s *Socket) {
	r.events.publish(Event{Type: EventSocketRemoved, SocketID: s.id, ServerID: s.serverID})
}

// publishListening publishes server.listening, before the accept loop starts.
func (s *Server) publishListening() {
	s.reg.events.publish(Event{Type: EventServerListening, ServerID: s.id, Address: s.addr})
}

// publishClosed publishes server.closed once, whichever of the accept
// loop's failure, the delete and the shutdown comes first.
func (s *Server) publishClosed(reason string) {
	s.closedEvent.Do(func() {
		s.reg.events.publish(Event{Type: EventServerClosed, ServerID: s.id, Reason: reason})
	})
}
