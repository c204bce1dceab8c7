package sockets

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sockman/sockman/internal/quote"
)

// Connection control: the TCP options of a socket, half-closes both ways,
// a close that keeps what the socket holds, resets, labels, and the id of
// the other end when both ends are the registry's.

// Close reasons of connection control, as shown in SocketInfo.CloseReason.
const (
	ReasonAPIReset = "reset through the API"
	// ReasonBothShut: a half-close socket whose peer sent its FIN and that
	// was shut down for writing too: nothing can pass either way any more.
	ReasonBothShut = "closed both ways: the peer's FIN and a shutdown through the API"
)

// Defaults and bounds of the TCP options.
const (
	DefaultKeepAlive = 30 * time.Second // keepalive idle time and probe interval when a request names none
	MinKeepAlive     = time.Second      // the kernel counts keepalive in whole seconds
	MaxKeepAlive     = 32767 * time.Second
	// DefaultMaxNameBytes is the longest name label (Config.MaxNameBytes).
	DefaultMaxNameBytes = 128
)

// connOptions checks the connection options of o and fills in defaults.
func (r *Registry) connOptions(o RecvOptions, out *recvOptions) error {
	out.halfClose = o.HalfClose
	out.noDelay = o.NoDelay == nil || *o.NoDelay
	out.keepAlive = DefaultKeepAlive
	if o.KeepAlive != nil {
		ka := *o.KeepAlive
		if ka != 0 && (ka < MinKeepAlive || ka > MaxKeepAlive || ka%time.Second != 0) {
			return &RangeError{Arg: ArgKeepAlive, Value: int64(ka), Min: int64(MinKeepAlive), Max: int64(MaxKeepAlive)}
		}
		out.keepAlive = ka
	}
	if err := r.checkName(o.Name); err != nil {
		return err
	}
	out.name = o.Name
	return nil
}

// checkName checks a name label (or a filter by one): at most
// Config.MaxNameBytes of UTF-8 text without control characters.
func (r *Registry) checkName(name string) error {
	if len(name) > r.cfg.MaxNameBytes {
		return &RangeError{Arg: ArgName, Value: int64(len(name)), Min: 0, Max: int64(r.cfg.MaxNameBytes), Bound: "MaxNameBytes"}
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: name %s is not valid UTF-8", ErrInvalid, quote.String(name))
	}
	for i, c := range name {
		if unicode.IsControl(c) {
			return fmt.Errorf("%w: name %s has a control character at byte %d; use printable text", ErrInvalid, quote.String(name), i)
		}
	}
	return nil
}

// CheckName reports whether name is a name label the registry takes, as a
// filter by name must be: ErrInvalid (a *RangeError when too long) if not.
func (r *Registry) CheckName(name string) error { return r.checkName(name) }

// applyTCP sets the TCP options of o on conn. A failure is logged: the
// connection still works, with the kernel's settings.
func (r *Registry) applyTCP(conn *net.TCPConn, o recvOptions) {
	err := conn.SetNoDelay(o.noDelay)
	if o.keepAlive > 0 {
		err = errors.Join(err, conn.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: o.keepAlive, Interval: o.keepAlive}))
	} else {
		err = errors.Join(err, conn.SetKeepAlive(false))
	}
	if err != nil {
		r.logf("setting TCP options on %s: %v", conn.RemoteAddr(), err)
	}
}

// CloseOptions say how a socket is closed.
type CloseOptions struct {
	// Reset aborts the connection with an RST (SO_LINGER 0) instead of a
	// FIN; what is unsent in the kernel is thrown away.
	Reset bool
}

func (o CloseOptions) reason() string {
	if o.Reset {
		return ReasonAPIReset
	}
	return ReasonAPI
}

// CloseSocket closes the socket's connection and waits for its read loop,
// but keeps the socket and what it holds readable until it is deleted or
// its retention runs out. Closing a closed socket changes nothing (its
// first reason stays). ErrSocketNotFound if there is none.
func (r *Registry) CloseSocket(id string, o CloseOptions) (*Socket, error) {
	s, err := r.Socket(id)
	if err != nil {
		return nil, err
	}
	s.closeWith(o)
	return s, nil
}

// closeWith is Close, with a reset when o says so.
func (s *Socket) closeWith(o CloseOptions) {
	s.end(o.reason(), o.Reset)
	<-s.done
}

// Shutdown sends our FIN (a half-close): the peer reads the end of the
// stream, and the socket reads on until the peer closes. It waits for a
// send in progress to end first. Later sends give ErrWriteClosed. It is
// idempotent; ErrSocketClosed once the socket is closed. A half-close
// socket whose peer's FIN came already is closed by it (ReasonBothShut).
func (s *Socket) Shutdown() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.Closed() {
		return s.closedError()
	}
	s.mu.Lock()
	done := s.writeClosed
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := s.conn.CloseWrite(); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return s.closedError()
		}
		return fmt.Errorf("%w: shutting down socket %s for writing: %v", ErrSocketClosed, s.id, err)
	}
	s.mu.Lock()
	s.writeClosed = true
	both := s.readClosed
	s.mu.Unlock()
	if both {
		s.finish(ReasonBothShut)
	}
	return nil
}

// writeShutError is the error of a send after Shutdown.
func (s *Socket) writeShutError() error {
	return fmt.Errorf("%w: socket %s sent its FIN (it was shut down for writing); it still reads what the peer sends, but takes no more sends", ErrWriteClosed, s.id)
}

// readEnded records the peer's FIN on a half-close socket (the read loop
// calls it instead of endStream): the socket stays open for sends. note is
// what the stage's end said became of a frame the FIN cut short (empty:
// none); the close reason will tell it. It reports false when the
// socket must not wait for a close: it is closed, or this FIN closed it (it
// was shut down for writing already).
func (s *Socket) readEnded(note string) bool {
	s.mu.Lock()
	if s.closed {
		// Closed on our side first: the reason tells what became of
		// the frame, as endStream does.
		if note != "" {
			s.closeReason += " " + note
		}
		s.mu.Unlock()
		return false
	}
	s.readClosed, s.readNote = true, note
	both := s.writeClosed
	s.mu.Unlock()
	if both {
		s.finish(ReasonBothShut)
		return false
	}
	return true
}

// lostPeer closes a half-close socket whose peer's FIN came and whose send
// then failed because the peer has gone: its read loop no longer reads, so
// nothing else would see that the connection ended.
func (s *Socket) lostPeer(err error) {
	s.mu.Lock()
	rc := s.readClosed
	s.mu.Unlock()
	if !rc {
		return
	}
	if errors.Is(err, syscall.ECONNRESET) {
		s.finish(ReasonPeerReset)
	} else {
		s.finish(ReasonPeerClosed)
	}
}

// connKey names a connection by its two ends, ours first.
func connKey(local, remote string) string { return local + " " + remote }

// linkPeer records s in the index of connections and, when the other end
// of its connection is a socket of the registry too, names each in the
// other's PeerSocketID. r.mu must be held.
func (r *Registry) linkPeer(s *Socket) {
	r.conns[connKey(s.local, s.remote)] = s
	p, ok := r.conns[connKey(s.remote, s.local)]
	if !ok || p == s || p.peerID.Load() != nil {
		return
	}
	pid, sid := p.id, s.id
	s.peerID.Store(&pid)
	p.peerID.Store(&sid)
}

// unlinkPeer drops s from the index of connections; r.mu must be held.
func (r *Registry) unlinkPeer(s *Socket) {
	k := connKey(s.local, s.remote)
	if r.conns[k] == s {
		delete(r.conns, k)
	}
}
