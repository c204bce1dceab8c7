package service

import (
	"container/list"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
)

// apiConns holds the API to Config.MaxAPIConns connections at once (sockman's
// --max-api-conns), so that clients who only open connections cannot take
// every file descriptor. Without a cap it only tracks the connections, so
// that a shutdown cut short can say how many it cut.
//
// netutil.LimitListener does the counting: at the cap, Accept waits until a
// connection closes, and newcomers wait in the kernel's listen backlog.
// Alone, that would let connections that send nothing keep every slot until
// --read-header-timeout (or the idle timeout, for kept-alive ones), with an
// authorized client queued behind them. So the server's ConnState hook
// (track) keeps, oldest first, the connections that hold a slot with no
// request in progress: new ones that have not sent a request yet, and idle
// kept-alive ones. While every slot is taken, the oldest of them that is
// quiet is closed, and the slot it frees goes to the next connection in the
// backlog. Quiet is: accepted, and last read from by net/http, more than
// quietFor ago, and no byte waiting to be read. When none is quiet yet, a
// timer looks again once the oldest can be.
//
// Under a flood the accept loop runs far ahead of the connections it
// started: net/http may not yet have read a request that has arrived, or
// not yet marked active a connection it has read from, and a client may
// not have written its request yet when it is accepted. Quiet leaves all of
// these their time, so a client that sends its request within quietFor of
// being accepted is served, and a request in progress is never cut. A
// connection that sends its headers a byte at a time, faster than one per
// quietFor, keeps its slot until --read-header-timeout cuts it.
//
// A connection closed to make room may have sent its first byte just after
// the hook looked: that client sees its connection closed, as after the
// idle timeout, and one that retries on a fresh connection is served.
type apiConns struct {
	max int
	log *slog.Logger

	mu      sync.Mutex        // guards the following fields
	open    map[net.Conn]bool // accepted, and not yet closed or hijacked
	waiting *list.List        // net.Conn with no request in progress, oldest first
	elems   map[net.Conn]*list.Element
	retry   *time.Timer // armed while every slot is taken and none is quiet yet
	stopped bool        // stop was called: arm no timer
	made    int         // connections closed to make room since the last warning
	warned  time.Time   // when the last warning was logged
}

const (
	// quietFor is how long a connection must have been accepted, and have
	// sent nothing net/http read, before it may be closed to make room.
	quietFor = 50 * time.Millisecond
	// victimLook bounds how many of the oldest waiting connections are
	// looked at for a quiet one, so that making room takes a bounded time.
	victimLook = 64
	// capWarnEvery bounds how often a full API is logged.
	capWarnEvery = time.Minute
)

func newAPIConns(max int, log *slog.Logger) *apiConns {
	return &apiConns{max: max, log: log, open: map[net.Conn]bool{}, waiting: list.New(), elems: map[net.Conn]*list.Element{}}
}

// listener returns ln limited to the cap (ln itself without a cap). Serve
// the http.Server whose ConnState is track on it.
func (a *apiConns) listener(ln net.Listener) net.Listener {
	if a.max <= 0 {
		return ln
	}
	raw := &rawListener{Listener: ln}
	return &limitedListener{Listener: netutil.LimitListener(raw, a.max), raw: raw}
}

// track is the http.Server's ConnState hook.
func (a *apiConns) track(c net.Conn, s http.ConnState) {
	a.mu.Lock()
	switch s {
	case http.StateNew:
		a.open[c] = true
		a.push(c)
	case http.StateIdle:
		a.push(c)
	case http.StateActive:
		a.remove(c)
	case http.StateHijacked, http.StateClosed:
		a.remove(c)
		delete(a.open, c)
	}
	victim := a.makeRoom()
	a.mu.Unlock()
	a.closeVictim(victim)
}

// makeRoom returns the connection to close when every slot is taken, and
// counts it out; when no connection is quiet yet, it arms the timer that
// looks again. a.mu must be held.
func (a *apiConns) makeRoom() net.Conn {
	if a.max <= 0 || len(a.open) < a.max || a.waiting.Len() == 0 {
		return nil
	}
	now := time.Now()
	e := a.waiting.Front()
	for range victimLook {
		if e == nil {
			break
		}
		c := e.Value.(net.Conn)
		if ac, ok := c.(*apiConn); !ok || ac.quiet(now) {
			a.remove(c)
			// Its slot is free once Close returns, before net/http sees
			// it closed: count it out now, or a fast flood would be
			// judged by connections that are already gone.
			delete(a.open, c)
			return c
		}
		e = e.Next()
	}
	if a.retry == nil && !a.stopped {
		a.retry = time.AfterFunc(quietFor, func() {
			a.mu.Lock()
			a.retry = nil
			victim := a.makeRoom()
			a.mu.Unlock()
			a.closeVictim(victim)
		})
	}
	return nil
}

// closeVictim closes a connection makeRoom chose, if any, and logs at most
// once per capWarnEvery that the API is full. a.mu must not be held.
func (a *apiConns) closeVictim(c net.Conn) {
	if c == nil {
		return
	}
	c.Close()
	a.mu.Lock()
	a.made++
	made, now := a.made, time.Now()
	warn := now.Sub(a.warned) >= capWarnEvery
	if warn {
		a.warned, a.made = now, 0
	}
	a.mu.Unlock()
	if warn {
		a.log.Warn("the API holds --max-api-conns connections: closing the oldest that are idle or have sent no request yet, to make room; raise --max-api-conns if these are your clients",
			"max_api_conns", a.max, "closed", made, "per", capWarnEvery)
	}
}

// openConns returns how many connections are open (hijacked ones are no
// longer counted).
func (a *apiConns) openConns() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.open)
}

// stop disarms the timer. Call it once the http.Server has shut down.
func (a *apiConns) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.retry != nil {
		a.retry.Stop()
		a.retry = nil
	}
}

// push puts c last in the waiting list. a.mu must be held.
func (a *apiConns) push(c net.Conn) {
	a.remove(c)
	a.elems[c] = a.waiting.PushBack(c)
}

// remove takes c out of the waiting list, if it is there. a.mu must be held.
func (a *apiConns) remove(c net.Conn) {
	if e, ok := a.elems[c]; ok {
		a.waiting.Remove(e)
		delete(a.elems, c)
	}
}

// limitedListener is netutil.LimitListener with each connection it accepts
// kept with the socket under it (which LimitListener's connection hides),
// so that track can look at what is waiting on it.
type limitedListener struct {
	net.Listener // netutil.LimitListener over raw
	raw          *rawListener

	mu sync.Mutex // held through Accept, so that raw.last is what it returned
}

func (l *limitedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ac := &apiConn{Conn: c, raw: l.raw.last}
	ac.heard.Store(time.Now().UnixNano())
	return ac, nil
}

// rawListener remembers the connection it accepted last.
type rawListener struct {
	net.Listener
	last syscall.Conn // guarded by limitedListener.mu
}

func (l *rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	l.last, _ = c.(syscall.Conn)
	return c, err
}

// apiConn is an API connection: LimitListener's (whose Close frees its
// slot), the socket under it, and when it was last heard from.
type apiConn struct {
	net.Conn
	raw   syscall.Conn // nil if the listener gave something else than a socket
	heard atomic.Int64 // UnixNano of the accept, or of the last Read that returned data
}

func (c *apiConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.heard.Store(time.Now().UnixNano())
	}
	return n, err
}

// quiet reports whether c was last heard from more than quietFor before
// now, and no byte waits to be read on it. It looks at the socket without
// reading, without waiting, and without the lock a Read holds (net/http is
// usually blocked in a Read of c).
func (c *apiConn) quiet(now time.Time) bool {
	if now.UnixNano()-c.heard.Load() < int64(quietFor) {
		return false
	}
	if c.raw == nil {
		return true
	}
	rc, err := c.raw.SyscallConn()
	if err != nil {
		return true
	}
	waiting := false
	rc.Control(func(fd uintptr) { waiting = bytesWaiting(int(fd)) })
	return !waiting
}
