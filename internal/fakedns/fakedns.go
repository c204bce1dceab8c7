// Package fakedns is a DNS server on 127.0.0.1 for tests, and the
// *net.Resolver that asks it and nothing else.
//
// A test that passes a name to code resolving with the default resolver
// sends a query to the machine's name servers, off the box. Tests that need
// names give that code Server.Resolver instead: a pure-Go resolver whose
// every query, whatever name server /etc/resolv.conf lists, is dialled to
// this server. Names that /etc/hosts lists (localhost) are still answered
// from it, as by any Go resolver; names that Go does not consider domain
// names (all-numeric ones such as "127.1" or "2130706433") are refused by the
// resolver before any query is sent.
//
// The server answers A and AAAA queries from a table the test fills (Set,
// SetSequence), can leave queries unanswered (Drop), answers NXDOMAIN for
// every other name, and counts the queries it got. Answers have TTL 0.
package fakedns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Server is a DNS server listening on 127.0.0.1 over UDP and TCP. Its
// methods are safe for concurrent use.
type Server struct {
	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup // the UDP loop, the TCP accept loop and each TCP connection

	mu      sync.Mutex // guards the following fields
	closed  bool
	names   map[string]*entry // by canonical name: lower case, final dot
	queries map[string]int    // queries received per canonical name, all types
	conns   map[net.Conn]struct{}
}

// entry is what the server answers for one name.
type entry struct {
	drop  bool
	steps [][]netip.Addr
	seen  map[dnsmessage.Type]int // queries answered so far, per type
}

// New starts a server on 127.0.0.1 with ephemeral ports. Call Close to stop it.
func New() (*Server, error) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakedns: %w", err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("fakedns: %w", err)
	}
	s := &Server{
		udp:     udp,
		tcp:     tcp,
		names:   make(map[string]*entry),
		queries: make(map[string]int),
		conns:   make(map[net.Conn]struct{}),
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

// Start is New for a test: it fails the test when the server cannot start
// and closes it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Close stops the server, closes its connections and waits for its
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.udp.Close()
	s.tcp.Close()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return nil
}

// UDPAddr and TCPAddr are where the server listens.
func (s *Server) UDPAddr() string { return s.udp.LocalAddr().String() }

// TCPAddr is where the server accepts DNS over TCP.
func (s *Server) TCPAddr() string { return s.tcp.Addr().String() }

// Resolver returns a pure-Go resolver that sends every query to this server,
// never to the name servers of the machine. A lookup whose context ends
// closes its connection, so that no resolver goroutine outlives it by more
// than a moment (Go's own resolver would wait for its per-query timeout).
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			// The address Go asks for (from /etc/resolv.conf) is ignored.
			var d net.Dialer
			if strings.HasPrefix(network, "tcp") {
				c, err := d.DialContext(ctx, "tcp4", s.TCPAddr())
				if err != nil {
					return nil, err
				}
				return &tcpConn{c.(*net.TCPConn), context.AfterFunc(ctx, func() { c.Close() })}, nil
			}
			c, err := d.DialContext(ctx, "udp4", s.UDPAddr())
			if err != nil {
				return nil, err
			}
			// Go's resolver frames a query by whether the conn is a
			// net.PacketConn: the wrapper must stay one.
			return &udpConn{c.(*net.UDPConn), context.AfterFunc(ctx, func() { c.Close() })}, nil
		},
	}
}

type udpConn struct {
	*net.UDPConn
	stop func() bool
}

func (c *udpConn) Close() error {
	c.stop()
	return c.UDPConn.Close()
}

type tcpConn struct {
	*net.TCPConn
	stop func() bool
}

func (c *tcpConn) Close() error {
	c.stop()
	return c.TCPConn.Close()
}

// Set makes the server answer name with addrs on every query: IPv4
// addresses as A records, the others (IPv4-mapped IPv6 included) as AAAA.
// With no addrs the name exists but has no address (an empty answer).
func (s *Server) Set(name string, addrs ...netip.Addr) {
	s.SetSequence(name, addrs)
}

// SetSequence makes the server answer the first query of each type (A,
// AAAA) for name from steps[0], the second from steps[1], and so on; past
// the end, from the last step. This is DNS rebinding: a name that resolves
// first to one address and then to another.
func (s *Server) SetSequence(name string, steps ...[]netip.Addr) {
	if len(steps) == 0 {
		steps = [][]netip.Addr{nil}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[canonical(name)] = &entry{steps: steps, seen: make(map[dnsmessage.Type]int)}
}

// Drop makes the server read and never answer queries for name, so that a
// lookup of it lasts until its context ends.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[canonical(name)] = &entry{drop: true}
}

// Queries returns how many queries (of any type) the server got for name.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonical(name)]
}

// TotalQueries returns how many queries the server got in all.
func (s *Server) TotalQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if resp := s.answer(buf[:n], 512); resp != nil {
			s.udp.WriteTo(resp, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers length-prefixed queries on one TCP connection.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	for {
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp := s.answer(msg, 65535)
		if resp == nil {
			continue
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// answer builds the response to one query, or nil when there is none to
// send (unparsable, or the name is dropped).
func (s *Server) answer(msg []byte, maxSize int) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())

	s.mu.Lock()
	s.queries[name]++
	e := s.names[name]
	var addrs []netip.Addr
	if e != nil && !e.drop {
		i := min(e.seen[q.Type], len(e.steps)-1)
		e.seen[q.Type]++
		addrs = e.steps[i]
	}
	s.mu.Unlock()
	if e != nil && e.drop {
		return nil
	}

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if e == nil {
		rh.RCode = dnsmessage.RCodeNameError
	}
	resp, err := build(rh, q, addrs)
	if err != nil || len(resp) > maxSize {
		rh.RCode, rh.Truncated = dnsmessage.RCodeSuccess, len(resp) > maxSize
		if resp, err = build(rh, q, nil); err != nil {
			return nil
		}
	}
	return resp
}

func build(h dnsmessage.Header, q dnsmessage.Question, addrs []netip.Addr) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, h)
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	for _, a := range addrs {
		var err error
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			rh.Type = dnsmessage.TypeA
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && !a.Is4():
			rh.Type = dnsmessage.TypeAAAA
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, errors.Join(errors.New("fakedns: building a response"), err)
	}
	return msg, nil
}
