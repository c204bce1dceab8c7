package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockman/sockman/api"
)

// Faults injected into some sockets while they stream.
const (
	faultReset     = "peer reset"         // the peer closes with RST
	faultHalfClose = "peer half-close"    // the peer stops writing and sends FIN
	faultDelete    = "deleted mid-stream" // the API deletes the socket
	faultPause     = "peer stops reading" // the peer reads nothing for a while, then goes on
	faultPauseFor  = 10 * time.Second     // how long faultPause lasts
	faultsAllKinds = "reset, half-close, delete, pause"
)

var faultKinds = []string{faultReset, faultHalfClose, faultDelete, faultPause}

// sock is one socket and its two streams: in (its peer writes, an API
// reader reads) and out (an API sender sends, its peer reads). Each field
// group has one owner goroutine, named in its comment.
type sock struct {
	id    string
	kind  string // accepted or client
	peer  *net.TCPConn
	fault string     // "" or one of the faults, applied at faultAt
	rng   *rand.Rand // the sender's
	seed  uint64     // the writer's

	// The peer's writer.
	written     atomic.Int64
	writtenHash hash.Hash
	writerDone  chan struct{} // closed when the writer has stopped; writtenSum is then set
	writtenSum  []byte
	halfClose   atomic.Bool // the fault goroutine asks the writer to half-close
	reset       atomic.Bool // ... to reset

	// The API reader of its shard.
	read       int64
	readHash   hash.Hash
	cursor     uint64
	inClosed   bool      // the API said closed and nothing more is held
	inReport   string    // an error the API reported on the in stream
	closeCause string    // close_reason, fetched once the reader saw the end
	closedAt   time.Time // closed_at, likewise: the API forgets the socket closed-retention later
	ackedAll   bool      // a read after the stream was complete acknowledged its last bytes

	// The API sender of its shard.
	sent       int64
	sentHash   hash.Hash
	outReport  string // an error the API reported on the out stream
	sendClosed bool   // the socket is closed or gone: no more sends

	// The peer's reader.
	got        atomic.Int64
	gotHash    hash.Hash
	readerDone chan struct{} // closed when the peer's read ended; gotSum and readerEnd are then set
	gotSum     []byte
	readerEnd  error       // nil: a clean EOF
	paused     atomic.Bool // faultPause: the reader stops for faultPauseFor

	deleted atomic.Bool // faultDelete happened
}

func newSock(id, kind string, peer *net.TCPConn, seed uint64) *sock {
	return &sock{
		id: id, kind: kind, peer: peer, rng: rand.New(rand.NewPCG(seed, seed+1)), seed: seed,
		writtenHash: sha256.New(), readHash: sha256.New(), sentHash: sha256.New(), gotHash: sha256.New(),
		writerDone: make(chan struct{}), readerDone: make(chan struct{}),
	}
}

// runWriter writes random chunks to the peer's end every interval (with
// jitter) until stop, then stops; it resets or half-closes when asked.
func (s *sock) runWriter(stop <-chan struct{}, interval time.Duration, maxChunk int) {
	defer func() {
		s.writtenSum = s.writtenHash.Sum(nil)
		close(s.writerDone)
	}()
	rng := rand.New(rand.NewPCG(s.seed, 7))
	buf := make([]byte, maxChunk)
	t := time.NewTimer(time.Duration(rng.Int64N(int64(interval))))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		switch {
		case s.reset.Load():
			s.peer.SetLinger(0)
			s.peer.Close()
			return
		case s.halfClose.Load():
			s.peer.CloseWrite()
			return
		}
		n := 1 + rng.IntN(maxChunk)
		for i := range buf[:n] {
			buf[i] = byte(rng.Uint32())
		}
		s.peer.SetWriteDeadline(time.Now().Add(time.Minute))
		w, err := s.peer.Write(buf[:n])
		s.writtenHash.Write(buf[:w])
		s.written.Add(int64(w))
		if err != nil {
			return // the socket is gone (a fault); the stream says so
		}
		t.Reset(interval/2 + time.Duration(rng.Int64N(int64(interval))))
	}
}

// runReader reads what sockman sends until sockman closes the connection.
func (s *sock) runReader() {
	defer close(s.readerDone)
	buf := make([]byte, 64<<10)
	for {
		if s.paused.Load() {
			time.Sleep(faultPauseFor) // the fault: read nothing for a while
			s.paused.Store(false)
		}
		n, err := s.peer.Read(buf)
		s.gotHash.Write(buf[:n])
		s.got.Add(int64(n))
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.readerEnd = err
			}
			s.gotSum = s.gotHash.Sum(nil)
			return
		}
	}
}

// readOnce reads what the socket holds past its cursor, once, and reports
// whether anything came. The bytes go into readHash in order: one reader
// owns a socket.
func (s *sock) readOnce(ctx context.Context, c *client, raw bool, bad *problems) bool {
	if s.inClosed || s.inReport != "" {
		return false
	}
	path := "/sockets/" + s.id + "/messages?max_bytes=1048576&after=" + strconv.FormatUint(s.cursor, 10)
	var header []string
	if raw {
		header = []string{"Accept", "application/octet-stream"}
	}
	a, err := c.do(ctx, "read", http.MethodGet, path, nil, "", header...)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			bad.add("read %s: %v", s.id, err)
		}
		return false
	case a.status == http.StatusNotFound && s.deleted.Load():
		s.inReport = "socket deleted through the API"
		return false
	case a.status != http.StatusOK:
		bad.add("read %s: got %d %s", s.id, a.status, a.body)
		s.inReport = fmt.Sprintf("read answered %d", a.status)
		return false
	}
	if raw {
		s.readHash.Write(a.body)
		s.read += int64(len(a.body))
		s.cursor, _ = strconv.ParseUint(a.header.Get("Sockman-Cursor"), 10, 64)
		if a.header.Get("Sockman-State") == "closed" && len(a.body) == 0 {
			s.inClosed = true
			s.noteClose(ctx, c, bad)
		}
		return len(a.body) > 0
	}
	var l api.MessageList
	if err := json.Unmarshal(a.body, &l); err != nil {
		bad.add("read %s: %v", s.id, err)
		return false
	}
	for _, m := range l.Messages {
		b := []byte(m.Data)
		if m.Encoding == "base64" {
			if b, err = base64.StdEncoding.DecodeString(m.Data); err != nil {
				bad.add("read %s: message %d: %v", s.id, m.Seq, err)
			}
		}
		s.readHash.Write(b)
		s.read += int64(len(b))
	}
	s.cursor = l.Cursor
	if l.State == "closed" && len(l.Messages) == 0 {
		s.inClosed = true
		s.noteClose(ctx, c, bad)
	}
	return len(l.Messages) > 0
}

// noteClose records the close reason and time of a socket whose in stream
// has ended, while the API still knows it: it forgets a closed socket
// --closed-retention after the close, and a long run outlives that.
func (s *sock) noteClose(ctx context.Context, c *client, bad *problems) {
	a, err := c.do(ctx, "control", http.MethodGet, "/sockets/"+s.id, nil, "")
	switch {
	case err != nil:
		if ctx.Err() == nil {
			bad.add("GET /sockets/%s: %v", s.id, err)
		}
		return
	case a.status == http.StatusNotFound && s.deleted.Load():
		return
	case a.status != http.StatusOK:
		bad.add("GET /sockets/%s: %d %s", s.id, a.status, a.body)
		return
	}
	var info api.Socket
	if err := json.Unmarshal(a.body, &info); err != nil {
		bad.add("GET /sockets/%s: %v", s.id, err)
		return
	}
	s.closeCause = info.CloseReason
	if info.ClosedAt != nil {
		s.closedAt = *info.ClosedAt
	}
}

// sendOnce sends one random chunk, raw or as base64 JSON, and accounts it
// when the API says it went out.
func (s *sock) sendOnce(ctx context.Context, c *client, maxChunk int, bad *problems) {
	if s.sendClosed {
		return
	}
	n := 1 + s.rng.IntN(maxChunk)
	chunk := make([]byte, n)
	for i := range chunk {
		chunk[i] = byte(s.rng.Uint32())
	}
	path := "/sockets/" + s.id + "/messages"
	var (
		a   answer
		err error
	)
	if s.rng.IntN(2) == 0 {
		a, err = c.do(ctx, "send", http.MethodPost, path, chunk, "application/octet-stream")
	} else {
		a, err = c.do(ctx, "send", http.MethodPost, path, `{"encoding":"base64","data":"`+base64.StdEncoding.EncodeToString(chunk)+`"}`, "")
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			bad.add("send %s: %v", s.id, err)
		}
	case a.status == http.StatusOK:
		var r api.SendResult
		if json.Unmarshal(a.body, &r) != nil || r.Bytes != int64(n) {
			bad.add("send %s: got %s, want bytes %d", s.id, a.body, n)
		}
		s.sentHash.Write(chunk)
		s.sent += int64(n)
	case a.status == http.StatusConflict, a.status == http.StatusNotFound && s.deleted.Load():
		s.sendClosed = true // the API says why; the stream is reported
		if s.outReport == "" {
			s.outReport = fmt.Sprintf("send answered %d", a.status)
		}
	default:
		bad.add("send %s: got %d %s", s.id, a.status, a.body)
		s.sendClosed = true
		if s.outReport == "" {
			s.outReport = fmt.Sprintf("send answered %d", a.status)
		}
	}
}

// applyFault does what s.fault says.
func (s *sock) applyFault(ctx context.Context, c *client, bad *problems) {
	switch s.fault {
	case faultReset:
		s.reset.Store(true)
	case faultHalfClose:
		s.halfClose.Store(true)
	case faultPause:
		s.paused.Store(true)
	case faultDelete:
		s.deleted.Store(true)
		a, err := c.do(ctx, "control", http.MethodDelete, "/sockets/"+s.id, nil, "")
		if err != nil || a.status != http.StatusNoContent {
			bad.add("fault: DELETE %s: %v %d", s.id, err, a.status)
		}
	}
}

// shard is the sockets one API worker reads from and sends to.
type shard []*sock

// work reads every socket of the shard, then sends to some, every period,
// until stop; then it reads until every in stream is complete or drainBy.
func (sh shard) work(ctx context.Context, c *client, period time.Duration, sendEvery int, maxChunk int, stop <-chan struct{}, bad *problems, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for round := 0; ; round++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for i, s := range sh {
			s.readOnce(ctx, c, (i+round)%3 == 0, bad)
			if (i+round)%sendEvery == 0 {
				s.sendOnce(ctx, c, maxChunk, bad)
			}
		}
	}
}

// drain reads until every in stream of the shard holds all its peer wrote
// (or is closed, or reported), or until the deadline.
func (sh shard) drain(ctx context.Context, c *client, deadline time.Time, bad *problems) {
	for time.Now().Before(deadline) {
		pending := 0
		for _, s := range sh {
			if s.inClosed || s.inReport != "" {
				continue
			}
			if s.read >= s.written.Load() {
				// Complete: one more read acknowledges what the last one
				// returned. Left unacknowledged it would stay counted in
				// --max-buffer-total, and with a small total the sockets
				// still draining would wait for memory that never comes.
				if !s.ackedAll {
					s.readOnce(ctx, c, false, bad)
					s.ackedAll = true
				}
				continue
			}
			pending++
			s.readOnce(ctx, c, false, bad)
		}
		if pending == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
