package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/sockets"
)

// openSockets opens c.sockets sockets, half accepted by a sockman server
// from peers that dial it, half dialled by sockman to a peer listener. The
// cleanup closes the peers and the listener.
func openSockets(ctx context.Context, cl *client, c config) ([]*sock, func(), error) {
	var (
		peers []net.Conn
		ln    net.Listener
		once  sync.Once
	)
	cleanup := func() {
		once.Do(func() {
			for _, p := range peers {
				p.Close()
			}
			if ln != nil {
				ln.Close()
			}
		})
	}
	a, err := cl.do(ctx, "control", http.MethodPost, "/servers", `{"port":0}`, "")
	if err != nil || a.status != http.StatusCreated {
		return nil, cleanup, fmt.Errorf("POST /servers: %v %d %s", err, a.status, a.body)
	}
	var srv api.Server
	json.Unmarshal(a.body, &srv)

	nAccepted := c.sockets / 2
	accepted, err := parallel(nAccepted, 64, func(int) (net.Conn, error) { return net.DialTimeout("tcp", srv.Address, time.Minute) })
	peers = append(peers, accepted...)
	if err != nil {
		return nil, cleanup, err
	}
	byRemote := map[string]*net.TCPConn{}
	for _, p := range accepted {
		byRemote[p.LocalAddr().String()] = p.(*net.TCPConn)
	}
	var socks []*sock
	for deadline := time.Now().Add(time.Minute); len(socks) < nAccepted; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, cleanup, fmt.Errorf("server %s accepted %d of %d peers", srv.ID, len(socks), nAccepted)
		}
		var l api.SocketList
		a, err := cl.do(ctx, "control", http.MethodGet, "/sockets?server_id="+srv.ID, nil, "")
		if err != nil || json.Unmarshal(a.body, &l) != nil {
			return nil, cleanup, fmt.Errorf("GET /sockets: %v %d", err, a.status)
		}
		socks = socks[:0]
		for _, s := range l.Sockets {
			if p := byRemote[s.RemoteAddress]; p != nil {
				socks = append(socks, newSock(s.ID, "accepted", p, c.seed+uint64(len(socks))))
			}
		}
	}

	if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, cleanup, err
	}
	nClients := c.sockets - nAccepted
	var (
		mu       sync.Mutex
		byLocal  = map[string]*net.TCPConn{} // sockman's end -> the peer
		acceptOK = make(chan error, 1)
	)
	go func() {
		for range nClients {
			p, err := ln.Accept()
			if err != nil {
				acceptOK <- err
				return
			}
			mu.Lock()
			byLocal[p.RemoteAddr().String()] = p.(*net.TCPConn)
			peers = append(peers, p)
			mu.Unlock()
		}
		acceptOK <- nil
	}()
	body := fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, ln.Addr().(*net.TCPAddr).Port)
	clients, err := parallel(nClients, 64, func(int) (api.Socket, error) {
		a, err := cl.do(ctx, "control", http.MethodPost, "/clients", body, "")
		var s api.Socket
		if err == nil && (a.status != http.StatusCreated || json.Unmarshal(a.body, &s) != nil) {
			err = fmt.Errorf("POST /clients: %d %s", a.status, a.body)
		}
		return s, err
	})
	if err != nil {
		return nil, cleanup, err
	}
	if err := <-acceptOK; err != nil {
		return nil, cleanup, err
	}
	for _, s := range clients {
		p := byLocal[s.LocalAddress]
		if p == nil {
			return nil, cleanup, fmt.Errorf("no peer accepted %s's connection from %s", s.ID, s.LocalAddress)
		}
		socks = append(socks, newSock(s.ID, "client", p, c.seed+uint64(len(socks))))
	}
	return socks, cleanup, nil
}

// parallel runs f for 0..n-1 on width goroutines and returns the results
// in order, or the first error.
func parallel[T any](n, width int, f func(int) (T, error)) ([]T, error) {
	out := make([]T, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range width {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

// closeReasons returns each socket's close_reason ("" while connected,
// "deleted" when it was deleted through the API). A socket that closed at
// least retention ago may be forgotten: its reason is the one its reader
// noted; forgotten any sooner, it is a wrong answer.
func closeReasons(ctx context.Context, cl *client, socks []*sock, retention time.Duration, bad *problems) map[*sock]string {
	reasons, _ := parallel(len(socks), 32, func(i int) (string, error) {
		s := socks[i]
		a, err := cl.do(ctx, "control", http.MethodGet, "/sockets/"+s.id, nil, "")
		switch {
		case err != nil:
			bad.add("GET /sockets/%s: %v", s.id, err)
		case a.status == http.StatusNotFound && s.deleted.Load():
			return "deleted", nil
		case a.status == http.StatusNotFound && !s.closedAt.IsZero() && time.Since(s.closedAt) >= retention:
			return s.closeCause, nil
		case a.status != http.StatusOK:
			bad.add("GET /sockets/%s: %d %s", s.id, a.status, a.body)
		}
		var info api.Socket
		json.Unmarshal(a.body, &info)
		return info.CloseReason, nil
	})
	m := make(map[*sock]string, len(socks))
	for i, s := range socks {
		m[s] = reasons[i]
	}
	return m
}

// errorReason reports whether a close reason tells of a failure.
func errorReason(r string) bool {
	return r != "" && r != "peer closed"
}

// verifyIn judges the in streams: each arrived in full, byte for byte, or
// the API reported an error on it; otherwise it is lost.
func verifyIn(socks []*sock, reasons map[*sock]string, res *result) {
	for _, s := range socks {
		match := s.read == s.written.Load() && bytes.Equal(s.readHash.Sum(nil), s.writtenSum)
		switch {
		case match:
			res.inVerified++
			res.bytesIn += s.read
		case s.inReport != "" || errorReason(reasons[s]):
			res.inReported++
		default:
			res.inLost++
		}
		if s.fault == "" && !match {
			res.faultFree++
		}
	}
}

// verifyOut judges the out streams once the peers have read to their end.
func verifyOut(socks []*sock, reasons map[*sock]string, res *result) {
	for _, s := range socks {
		select {
		case <-s.readerDone:
		default:
			res.outLost++ // the peer never saw the end: peersClosed says so too
			continue
		}
		match := s.got.Load() == s.sent && bytes.Equal(s.gotSum, s.sentHash.Sum(nil))
		switch {
		case match:
			res.outVerified++
			res.bytesOut += s.sent
		case s.outReport != "" || errorReason(reasons[s]):
			res.outReported++
		default:
			res.outLost++
		}
		if s.fault == "" && !match {
			res.faultFree++
		}
	}
}

// pending are long polls sent before SIGTERM.
type pending struct {
	n    int
	done chan int // each poll's status (0: a transport error)
}

// longPolls starts up to n long polls on connected sockets that hold no
// message, and returns once every one waits in the engine.
func longPolls(ctx context.Context, reg *sockets.Registry, cl *client, socks []*sock, reasons map[*sock]string, n int, bad *problems) pending {
	p := pending{done: make(chan int, n)}
	for _, s := range socks {
		if p.n == n {
			break
		}
		if s.fault != "" || reasons[s] != "" {
			continue
		}
		p.n++
		path := "/sockets/" + s.id + "/messages?wait=60s&after=" + strconv.FormatUint(s.cursor, 10)
		go func() {
			a, err := cl.do(ctx, "poll", http.MethodGet, path, nil, "")
			if err != nil {
				a.status = 0
			}
			p.done <- a.status
		}()
	}
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		changed := reg.WaitingChanged()
		got := reg.Waiting()
		if got >= p.n {
			return p
		}
		select {
		case <-changed:
		case <-deadline.C:
			bad.add("only %d of %d long polls were waiting after a minute", got, p.n)
			return p
		}
	}
}

// peersClosed waits until every peer has seen its connection end and
// returns how many did, and how many of those ended other than cleanly
// among the sockets without faults.
func peersClosed(socks []*sock, limit time.Duration) (closed, unclean int) {
	deadline := time.After(limit)
	for _, s := range socks {
		select {
		case <-s.readerDone:
			closed++
			if s.fault == "" && s.readerEnd != nil {
				unclean++
			}
		case <-deadline:
			return closed, unclean
		}
	}
	return closed, unclean
}

// reportFigures are the figures report prints besides the result.
type reportFigures struct {
	lat             *latencies
	bad             *problems
	svc             *service
	started         time.Time
	polls, answered int
	peersClosed     int
	peersUnclean    int
	sockets         int
	g0, g1, gPeak   int
	f0, f1, fPeak   int
}

// report prints the run and reports whether it failed.
func report(c config, r result, f reportFigures) bool {
	var failures []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	lost := r.inLost + r.outLost
	check(lost == 0, "%d streams lost", lost)
	check(r.faultFree == 0, "%d streams without a fault did not arrive in full", r.faultFree)
	check(f.bad.n.Load() == 0, "%d wrong answers or transport errors", f.bad.n.Load())
	check(f.answered == f.polls, "%d of %d long polls answered at the shutdown", f.answered, f.polls)
	check(f.svc.cut == nil, "the shutdown timeout cut requests: %v", f.svc.cut)
	check(f.svc.serveErr == nil, "the API server failed: %v", f.svc.serveErr)
	check(f.peersClosed == f.sockets, "%d of %d peers saw their connection closed", f.peersClosed, f.sockets)
	check(f.peersUnclean == 0, "%d peers without faults saw a reset instead of a clean close", f.peersUnclean)
	check(f.g1 <= f.g0, "goroutines: %d after, %d before", f.g1, f.g0)
	check(f.f1 <= f.f0, "file descriptors: %d after, %d before", f.f1, f.f0)

	var kinds []string
	faulted := 0
	for k, n := range r.faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		faulted += n
	}
	slices.Sort(kinds)
	fmt.Printf(`
sockman load run
  sockets           %d (%d accepted, %d client), streaming for %v (run took %v)
  faults injected   %d sockets: %s
  in streams        %d verified byte for byte (%d bytes), %d ended in an error the API reported, %d lost
  out streams       %d verified byte for byte (%d bytes), %d ended in an error the API reported, %d lost
  shutdown          SIGTERM with %d live sockets and %d long polls pending: %d polls answered 200,
                    done in %v (timeout %v, cut: %v), %d/%d peers closed (%d unclean)
  goroutines        %d before, %d peak, %d after
  file descriptors  %d before, %d peak, %d after
  wrong answers     %d
API latency
%s`,
		f.sockets, f.sockets/2, f.sockets-f.sockets/2, c.duration, time.Since(f.started).Round(time.Second),
		faulted, strings.Join(kinds, ", "),
		r.inVerified, r.bytesIn, r.inReported, r.inLost,
		r.outVerified, r.bytesOut, r.outReported, r.outLost,
		f.sockets, f.polls, f.answered, f.svc.shutdownTook.Round(time.Millisecond), c.shutdownTO, f.svc.cut != nil,
		f.peersClosed, f.sockets, f.peersUnclean,
		f.g0, f.gPeak, f.g1, f.f0, f.fPeak, f.f1, f.bad.n.Load(), f.lat.table())
	for _, p := range f.bad.first {
		fmt.Printf("  e.g. %s\n", p)
	}
	if len(failures) > 0 {
		fmt.Printf("FAIL: %s\n", strings.Join(failures, "; "))
		return true
	}
	fmt.Println("PASS: nothing lost, every answer as expected, nothing leaked")
	return false
}
