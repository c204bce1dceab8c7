package sockets

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Server states.
const (
	StateListening = "listening"
	StateFailed    = "failed"
)

// Accept backoff after a temporary error (out of file descriptors, say), as
// net/http does it: 5 ms doubling to 1 s, reset by a good accept.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Server is one listener. Its accept loop turns each connection into an
// accepted Socket registered with the registry.
type Server struct {
	id      string
	ln      net.Listener
	addr    string
	created time.Time
	recv    recvOptions // for every socket it accepts
	reg     *Registry

	serverMock // rules, greeting and schedules for its sockets (mock.go)

	done        chan struct{} // closed when the accept loop has returned
	stop        chan struct{} // closed when close starts; interrupts a backoff wait
	closedEvent sync.Once     // server.closed is published once

	mu       sync.Mutex // guards the following fields
	closing  bool
	failure  string   // why the accept loop died, when it did
	sockets  []string // ids of accepted sockets still registered, oldest first
	accepted int64
	rejected int64 // connections closed at once because a limit was reached
}

// acceptLoop accepts until the listener is closed or fails.
func (s *Server) acceptLoop() {
	defer close(s.done)
	var delay time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if s.isClosing() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // the same test net/http's Serve makes
				delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
				s.reg.logf("server %s: accept: %v; retrying in %v", s.id, err, delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.stop:
					t.Stop()
					return
				}
				continue
			}
			s.mu.Lock()
			s.failure = err.Error()
			s.mu.Unlock()
			s.reg.logf("server %s: accept loop stopped: %v", s.id, err)
			s.publishClosed("accept failed: " + err.Error())
			return
		}
		delay = 0
		s.reg.adopt(s, conn.(*net.TCPConn))
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// close stops accepting and waits for the accept loop. Idempotent.
func (s *Server) close() {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.ln.Close()
	<-s.done
	s.scheds.stop()
}

// addSocket records an accepted socket; it reports false when the server is
// closing (the caller then closes the connection).
func (s *Server) addSocket(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sockets = append(s.sockets, id)
	s.accepted++
	return true
}

func (s *Server) reject() {
	s.mu.Lock()
	s.rejected++
	s.mu.Unlock()
}

func (s *Server) removeSocket(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sid := range s.sockets {
		if sid == id {
			s.sockets = append(s.sockets[:i], s.sockets[i+1:]...)
			return
		}
	}
}

func (s *Server) socketIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sockets...)
}

// ServerInfo is a snapshot of a server.
type ServerInfo struct {
	ID          string
	Address     string
	State       string
	Error       string
	CreatedAt   time.Time
	Sockets     []string
	Accepted    int64
	Rejected    int64
	BufferBytes int
	Overflow    Overflow
	Framing     Framing
	Name        string
	HalfClose   bool
	NoDelay     bool
	KeepAlive   time.Duration // 0: off

	Retain                         Retain
	Greeting                       []byte // nil: none
	GreetingText, GreetingEncoding string // as the request wrote it
}

// Info returns a snapshot of the server.
func (s *Server) Info() ServerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := ServerInfo{
		ID:          s.id,
		Address:     s.addr,
		State:       StateListening,
		Error:       s.failure,
		CreatedAt:   s.created,
		Sockets:     append([]string{}, s.sockets...),
		Accepted:    s.accepted,
		Rejected:    s.rejected,
		BufferBytes: s.recv.bufBytes,
		Overflow:    s.recv.overflow,
		Framing:     s.recv.framing,
		Name:        s.recv.name,
		HalfClose:   s.recv.halfClose,
		NoDelay:     s.recv.noDelay,
		KeepAlive:   s.recv.keepAlive,
	}
	if s.failure != "" {
		info.State = StateFailed
	}
	info.Retain = s.recv.retain
	info.Greeting, info.GreetingText, info.GreetingEncoding = s.greeting, s.greetingText, s.greetingEnc
	return info
}
