package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// chunk is what writers write, 256 KiB at a time: random, so that it is
// not valid UTF-8 and nothing can compress it.
var chunk = func() []byte {
	b := make([]byte, 256<<10)
	rand.Read(b)
	return b
}()

// writeN writes n bytes of chunk to c, 256 KiB per write.
func writeN(c net.Conn, n int64) error {
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := c.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// discardN reads n bytes from c through a 256 KiB buffer and drops them.
func discardN(c net.Conn, n int64) error {
	buf := make([]byte, 256<<10)
	for n > 0 {
		k, err := c.Read(buf[:min(n, int64(len(buf)))])
		n -= int64(k)
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// rawSession is the baseline: one loopback TCP stream between two
// goroutines of this process, 256 KiB writes and 256 KiB reads.
type rawSession struct {
	w, r net.Conn
}

func newRawSession() (*rawSession, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	r, err := ln.Accept()
	if err != nil {
		w.Close()
		return nil, err
	}
	return &rawSession{w: w, r: r}, nil
}

func (s *rawSession) close() {
	s.w.Close()
	s.r.Close()
}

// round streams n bytes and returns how long it took.
func (s *rawSession) round(n int64) (time.Duration, error) {
	werr := make(chan error, 1)
	start := time.Now()
	go func() { werr <- writeN(s.w, n) }()
	if err := discardN(s.r, n); err != nil {
		return 0, err
	}
	d := time.Since(start)
	return d, <-werr
}

// ingestSession is a peer streaming into an accepted socket while one
// client drains it with sequential GET /sockets/{id}/messages, octet-stream
// (raw) or JSON with base64.
type ingestSession struct {
	a             *api
	peer          net.Conn
	h             *httpConn
	srvID, sockID string
	target, query string
	hdrs          []string
	raw           bool
	cursor        string
	scan          jsonScan
	requests      int
}

func newIngestSession(addr string, bufBytes int, raw bool) (*ingestSession, error) {
	a, err := newAPI(addr)
	if err != nil {
		return nil, err
	}
	peer, srvID, sockID, err := a.peerPair(bufBytes)
	if err != nil {
		a.Close()
		return nil, err
	}
	h, err := dialHTTP(addr)
	if err != nil {
		peer.Close()
		a.Close()
		return nil, err
	}
	s := &ingestSession{a: a, peer: peer, h: h, srvID: srvID, sockID: sockID, raw: raw, cursor: "0",
		target: "/sockets/" + sockID + "/messages?after="}
	// Half the buffer per read: while the client takes one half, the
	// socket reads into the half the previous read acknowledged.
	s.query = "&wait=5s&max_bytes=" + strconv.Itoa(bufBytes/2)
	if raw {
		s.hdrs = []string{"Accept: application/octet-stream"}
	} else {
		s.query += "&encoding=base64"
	}
	return s, nil
}

func (s *ingestSession) close() {
	s.h.Close()
	s.peer.Close()
	s.a.release(s.srvID, s.sockID)
	s.a.Close()
}

// round has the peer write n bytes and the client read them all; it returns
// how long that took.
func (s *ingestSession) round(n int64) (time.Duration, error) {
	werr := make(chan error, 1)
	start := time.Now()
	go func() { werr <- writeN(s.peer, n) }()
	var got int64
	base := s.scan.sizes
	var sink func([]byte)
	if !s.raw {
		sink = s.scan.feed
	}
	for got < n {
		s.requests++
		r, err := s.h.roundTrip("GET", s.target+s.cursor+s.query, s.hdrs, nil, sink)
		if err != nil {
			return 0, err
		}
		if r.status != 200 {
			return 0, fmt.Errorf("read: status %d", r.status)
		}
		if s.raw {
			got += r.length
			s.cursor = r.cursor
		} else {
			got = s.scan.sizes - base
			s.cursor = strconv.FormatUint(s.scan.cursor, 10)
		}
	}
	d := time.Since(start)
	if err := <-werr; err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("read %d bytes, the peer sent %d", got, n)
	}
	return d, nil
}

// jsonScan follows a stream of MessageList JSON documents without decoding
// or copying them: it sums the "size" fields and keeps the last "cursor".
// base64 data holds no quote, so a search for quotes skips the payload at
// memchr speed, and the patterns cannot appear inside it. A field is
// counted once, when the byte that ends its number is seen; one cut in two
// by a piece boundary is found again in a small join of the two sides.
type jsonScan struct {
	tail   []byte // the last scanEdge bytes of the stream so far
	join   []byte
	sizes  int64
	cursor uint64
}

var (
	sizeKey   = []byte(`"size":`)
	cursorKey = []byte(`"cursor":`)
)

// scanEdge is more than a key and the longest number.
const scanEdge = 64

func (s *jsonScan) feed(p []byte) {
	if len(s.tail) > 0 {
		// Fields that started in the previous piece and end in this one.
		s.join = append(append(s.join[:0], s.tail...), p[:min(len(p), scanEdge)]...)
		s.scan(s.join, len(s.tail))
	}
	s.scan(p, 0)
	// The tail is of the stream, not of this piece, which may be short.
	s.tail = append(s.tail, p[max(0, len(p)-scanEdge):]...)
	s.tail = s.tail[max(0, len(s.tail)-scanEdge):]
}

// scan counts the fields in b that end in b: with startBefore > 0, only
// those that start before that index (in the previous piece) and end at
// or after it.
func (s *jsonScan) scan(b []byte, startBefore int) {
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '"')
		if i < 0 {
			return
		}
		at := off + i
		if startBefore > 0 && at >= startBefore {
			return
		}
		off = at + 1
		var key []byte
		switch {
		case bytes.HasPrefix(b[at:], sizeKey):
			key = sizeKey
		case bytes.HasPrefix(b[at:], cursorKey):
			key = cursorKey
		default:
			continue
		}
		start := at + len(key)
		end := start
		for end < len(b) && b[end] >= '0' && b[end] <= '9' {
			end++
		}
		if end == len(b) || end == start || (startBefore > 0 && end < startBefore) {
			continue // cut off here (counted later), or counted before
		}
		n, _ := strconv.ParseUint(string(b[start:end]), 10, 64)
		if key[1] == 's' {
			s.sizes += int64(n)
		} else {
			s.cursor = n
		}
		off = end
	}
}

// socketSession is an API client with one server, a peer connected to it
// and the socket it accepted, plus a second keep-alive connection for the
// measured requests.
type socketSession struct {
	a             *api
	peer          net.Conn
	h             *httpConn
	srvID, sockID string
}

func openSocketSession(addr string) (*socketSession, error) {
	a, err := newAPI(addr)
	if err != nil {
		return nil, err
	}
	peer, srvID, sockID, err := a.peerPair(0)
	if err != nil {
		a.Close()
		return nil, err
	}
	h, err := dialHTTP(addr)
	if err != nil {
		peer.Close()
		a.release(srvID, sockID)
		a.Close()
		return nil, err
	}
	return &socketSession{a: a, peer: peer, h: h, srvID: srvID, sockID: sockID}, nil
}

func (s *socketSession) close() {
	s.h.Close()
	s.peer.Close()
	s.a.release(s.srvID, s.sockID)
	s.a.Close()
}

// sendSession posts octet-stream bodies to a socket, one request after the
// other, while the peer reads and discards.
type sendSession struct {
	*socketSession
	target string
	body   []byte
}

func newSendSession(addr string, bodySize int) (*sendSession, error) {
	ss, err := openSocketSession(addr)
	if err != nil {
		return nil, err
	}
	body := make([]byte, bodySize)
	for i := 0; i < len(body); i += len(chunk) {
		copy(body[i:], chunk)
	}
	return &sendSession{socketSession: ss, target: "/sockets/" + ss.sockID + "/messages", body: body}, nil
}

// round sends n bytes and returns how long it took until the peer had them.
func (s *sendSession) round(n int64) (time.Duration, error) {
	rerr := make(chan error, 1)
	start := time.Now()
	go func() { rerr <- discardN(s.peer, n) }()
	hdrs := []string{"Content-Type: application/octet-stream"}
	for sent := int64(0); sent < n; {
		b := s.body[:min(int64(len(s.body)), n-sent)]
		r, err := s.h.roundTrip("POST", s.target, hdrs, b, nil)
		if err != nil {
			return 0, err
		}
		if r.status != 200 {
			return 0, fmt.Errorf("send: status %d", r.status)
		}
		sent += int64(len(b))
	}
	if err := <-rerr; err != nil && err != io.EOF {
		return 0, err
	}
	return time.Since(start), nil
}

// streamRounds is how many slices a throughput measurement is cut into:
// baseline and sockman take turns, slice by slice, so that a noisy moment
// of the machine falls on both alike.
const streamRounds = 4

type rounder interface {
	round(n int64) (time.Duration, error)
}

// interleave streams total bytes through each of base and subject in
// streamRounds turns and returns both MB/s, and the CPU time sockman used
// per GiB streamed through it, in milliseconds.
func interleave(total int64, base, subject rounder, p *proc) (float64, float64, float64, error) {
	n := total / streamRounds
	var tb, ts, cpu time.Duration
	for range streamRounds {
		d, err := base.round(n)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("raw stream: %w", err)
		}
		tb += d
		c0 := p.cpuTime()
		d, err = subject.round(n)
		cpu += p.cpuTime() - c0
		if err != nil {
			return 0, 0, 0, err
		}
		ts += d
	}
	perGiB := cpu.Seconds() * 1000 / (float64(n*streamRounds) / (1 << 30))
	if debug {
		fmt.Fprintf(os.Stderr, "sockman CPU: %.0f ms per GiB (%.0f%% of the wall time)\n", perGiB, 100*cpu.Seconds()/ts.Seconds())
	}
	return mbps(n*streamRounds, tb), mbps(n*streamRounds, ts), perGiB, nil
}

// benchIngest measures octet-stream ingest against the raw stream.
func benchIngest(c *config) ([]sample, error) { return benchIngestAs(c, "ingest-octet", true) }

// benchJSON measures JSON (base64) ingest against the raw stream.
func benchJSON(c *config) ([]sample, error) { return benchIngestAs(c, "ingest-json", false) }

func benchIngestAs(c *config, key string, raw bool) ([]sample, error) {
	var is *ingestSession
	samples, err := benchStream(c, key, func(addr string) (rounder, func(), error) {
		var err error
		is, err = newIngestSession(addr, c.ingestBuffer, raw)
		if err != nil {
			return nil, nil, err
		}
		return is, is.close, nil
	})
	if err == nil && debug {
		fmt.Fprintf(os.Stderr, "%s: %d requests, %.0f KiB each on average\n", key, is.requests, float64(c.streamBytes)/float64(is.requests)/1024)
	}
	return samples, err
}

// benchSend measures send against the raw stream.
func benchSend(c *config) ([]sample, error) {
	return benchStream(c, "send", func(addr string) (rounder, func(), error) {
		ss, err := newSendSession(addr, c.sendBody)
		if err != nil {
			return nil, nil, err
		}
		return ss, ss.close, nil
	})
}

// benchStream measures a stream through a fresh sockman, made by open,
// against the raw loopback stream, slice by slice in turn.
func benchStream(c *config, key string, open func(addr string) (rounder, func(), error)) ([]sample, error) {
	p, err := c.start()
	if err != nil {
		return nil, err
	}
	defer p.stop()
	rs, err := newRawSession()
	if err != nil {
		return nil, err
	}
	defer rs.close()
	subject, closeSubject, err := open(p.addr)
	if err != nil {
		return nil, err
	}
	defer closeSubject()
	base, got, cpu, err := interleave(c.streamBytes, rs, subject, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return []sample{{key, got, base}, {key + "-cpu", cpu, 0}}, nil
}

// debugCPU, with SOCKMAN_BENCH_DEBUG, prints the CPU time sockman and this
// process used between its call and the call of what it returns.
func debugCPU(p *proc) func() {
	if !debug {
		return func() {}
	}
	start, s0, b0 := time.Now(), cpuTime(p.cmd.Process.Pid), cpuTime(os.Getpid())
	return func() {
		wall := time.Since(start)
		s, b := cpuTime(p.cmd.Process.Pid)-s0, cpuTime(os.Getpid())-b0
		fmt.Fprintf(os.Stderr, "cpu: wall %v, sockman %v (%.0f%%), bench %v (%.0f%%)\n", wall.Round(time.Millisecond), s, 100*s.Seconds()/wall.Seconds(), b, 100*b.Seconds()/wall.Seconds())
	}
}
