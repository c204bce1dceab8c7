package main

// -mode stalled-readers: readers that ask for a large answer and never read
// it, with a 4 KiB receive buffer, while the socket they read keeps
// receiving (drop_oldest, so every reader holds different data). Answers
// were outside every bound and held until the server's write timeout
// (2m30s): 20 such readers of a 16 MiB buffer took RSS from 13 MB to 744 MB
// under a 32 MiB total. Then, many small messages and readers asking for
// 100,000 of them as JSON, also never read (150 such: 22 MB to 222 MB).
//
//	go run ./bench/load -mode stalled-readers

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var (
	stalledRaw   = flag.Int("stalled-raw", 20, "-mode stalled-readers: readers asking for 16 MiB as octet-stream")
	stalledJSON  = flag.Int("stalled-json", 150, "-mode stalled-readers: readers asking for 100,000 small messages as JSON")
	stalledSmall = flag.Int("stalled-small", 3000, "-mode stalled-readers: small messages held for the JSON readers")
	stalledAfter = flag.Duration("stall-timeout", 5*time.Second, "-mode stalled-readers: sockman's --answer-stall-timeout")
)

func init() { modes["stalled-readers"] = runStalled }

func runStalled(c config) int {
	total := c.maxTotal
	if total <= 0 {
		total = memDefaultTotal
	}
	p, err := startMemProc("--max-buffer-total", strconv.FormatInt(total, 10), "--answer-stall-timeout", stalledAfter.String())
	if err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	defer p.stop()
	before, err := p.rss()
	if err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	fmt.Printf("stalled-readers: --max-buffer-total %s, --answer-stall-timeout %v; %d octet-stream readers of a 16 MiB drop_oldest buffer, then %d JSON readers of %d small messages\n",
		mib(total), *stalledAfter, *stalledRaw, *stalledJSON, *stalledSmall)
	peak := p.watchPeak()
	ok := true
	fail := func(format string, args ...any) {
		fmt.Printf("stalled-readers: "+format+"\n", args...)
		ok = false
	}

	// Phase 1: a peer streams into a 16 MiB drop_oldest buffer; readers
	// ask for all of it, one after another, and read nothing.
	var srv struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	}
	if err := p.call("POST", "/servers", map[string]any{"port": 0, "buffer_bytes": 16 << 20, "overflow": "drop_oldest"}, 201, &srv); err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	peer, err := net.Dial("tcp", srv.Address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	stop := make(chan struct{})
	var pw sync.WaitGroup
	pw.Go(func() {
		chunk := make([]byte, 256<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			peer.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			peer.Write(chunk)
		}
	})
	sock, err := waitSocket(p, srv.ID, func(s memSocket) bool { return s.BufferedBytes >= 15<<20 })
	if err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	start := time.Now()
	var readers []*stalledReader
	for range *stalledRaw {
		r, err := startStalledReader(p.addr, "/sockets/"+sock.ID+"/messages?max_bytes=16777216", "application/octet-stream")
		if err != nil {
			fail("reader: %v", err)
			break
		}
		readers = append(readers, r)
		time.Sleep(50 * time.Millisecond) // new data for the next one
	}
	fmt.Printf("stalled-readers: phase 1: %d readers holding answers after %v\n", len(readers), time.Since(start).Round(time.Millisecond))
	checkCut(readers, *stalledAfter, "phase 1", fail)
	close(stop)
	pw.Wait()
	peer.Close()
	if s, err := waitSocket(p, srv.ID, func(memSocket) bool { return true }); err == nil {
		fmt.Printf("stalled-readers: phase 1: the socket received %s and dropped %s\n", mib(s.BytesReceived), mib(s.DroppedBytes))
	}
	if err := p.call("DELETE", "/servers/"+srv.ID+"?close_sockets=true", nil, 204, nil); err != nil {
		fail("%v", err)
	}
	p.call("DELETE", "/sockets/"+sock.ID, nil, 204, nil)

	// Phase 2: many small messages, kept apart by a reader that peeks
	// after each; then readers ask for 100,000 of them as JSON and read
	// nothing.
	if err := p.call("POST", "/servers", map[string]any{"port": 0}, 201, &srv); err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	if peer, err = net.Dial("tcp", srv.Address); err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	sock, err = waitSocket(p, srv.ID, func(memSocket) bool { return true })
	if err != nil {
		fmt.Fprintf(os.Stderr, "stalled-readers: %v\n", err)
		return 1
	}
	// Each message must be whole before the next comes, or the bytes
	// would join it: peek (a read without after returns every message
	// held, so the newest can no longer grow) until it is there.
	var want int64
small:
	for i := range *stalledSmall {
		msg := fmt.Sprintf("message %d\n", i)
		want += int64(len(msg))
		peer.Write([]byte(msg))
		for {
			n, err := peekLen(p, sock.ID)
			if err != nil {
				fail("peek: %v", err)
				break small
			}
			if n == want {
				break
			}
		}
	}
	s2, _ := waitSocket(p, srv.ID, func(memSocket) bool { return true })
	fmt.Printf("stalled-readers: phase 2: %d small messages held (%d bytes)\n", s2.BufferedMessages, s2.BufferedBytes)
	readers = readers[:0]
	for range *stalledJSON {
		r, err := startStalledReader(p.addr, "/sockets/"+sock.ID+"/messages?limit=100000", "application/json")
		if err != nil {
			fail("reader: %v", err)
			break
		}
		readers = append(readers, r)
	}
	fmt.Printf("stalled-readers: phase 2: %d JSON readers holding answers\n", len(readers))
	checkCut(readers, *stalledAfter, "phase 2", fail)
	peer.Close()
	if err := p.call("DELETE", "/servers/"+srv.ID+"?close_sockets=true", nil, 204, nil); err != nil {
		fail("%v", err)
	}
	p.call("DELETE", "/sockets/"+sock.ID, nil, 204, nil)

	top := peak()
	after := p.waitBack(before)
	return memVerdict("stalled-readers", total, before, top, after, ok)
}

// peekLen reads every message held by socket id as octet-stream, without
// acknowledging, and returns their length.
func peekLen(p *memProc, id string) (int64, error) {
	req, err := http.NewRequest("GET", "http://"+p.addr+"/sockets/"+id+"/messages?limit=100000", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/octet-stream")
	res, err := p.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("GET %s: %d", req.URL.Path, res.StatusCode)
	}
	return n, err
}

// waitSocket waits up to 30s for the first socket of server srvID to meet cond.
func waitSocket(p *memProc, srvID string, cond func(memSocket) bool) (memSocket, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		socks, err := p.sockets(srvID)
		if err != nil {
			return memSocket{}, err
		}
		if len(socks) > 0 && cond(socks[0]) {
			return socks[0], nil
		}
		if time.Now().After(deadline) {
			return memSocket{}, fmt.Errorf("server %s: no socket as wanted within 30s (%+v)", srvID, socks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stalledReader is an API client with a 4 KiB receive buffer that sent a
// read and takes none of its answer.
type stalledReader struct {
	conn net.Conn
	sent time.Time
}

func startStalledReader(addr, target, accept string) (*stalledReader, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: %s\r\n\r\n", target, addr, accept); err != nil {
		conn.Close()
		return nil, err
	}
	return &stalledReader{conn: conn, sent: time.Now()}, nil
}

// checkCut waits out the stall timeout, then reads each reader's answer.
// An answer larger than the kernel's buffers can take (over 8 MiB) must
// have been cut by sockman (the body ends before its length, or the
// connection resets); a smaller one may have been written in full into
// them (the total trims a read to fewer messages when it is reached), and
// then holds nothing of sockman's. An answer still coming in after the
// stall timeout fails.
func checkCut(readers []*stalledReader, stall time.Duration, phase string, fail func(string, ...any)) {
	if len(readers) == 0 {
		return
	}
	time.Sleep(time.Until(readers[len(readers)-1].sent.Add(stall + stall/2)))
	cut, whole := 0, 0
	for _, r := range readers {
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(r.conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			cut++ // cut before the head came through
			r.conn.Close()
			continue
		}
		n, err := io.Copy(io.Discard, res.Body)
		var ne net.Error
		switch {
		case res.StatusCode != http.StatusOK:
			fail("%s: a reader got %d", phase, res.StatusCode)
		case errors.As(err, &ne) && ne.Timeout():
			fail("%s: an answer was still coming %v after the stall timeout", phase, stall/2)
		case err != nil || (res.ContentLength >= 0 && n < res.ContentLength):
			cut++
		case n > 8<<20:
			fail("%s: an answer of %s came whole after the stall timeout: it was not cut", phase, mib(n))
		default:
			whole++
		}
		r.conn.Close()
	}
	fmt.Printf("stalled-readers: %s: of %d answers, %d cut by sockman at the stall timeout, %d small enough to sit whole in the kernel's buffers\n", phase, len(readers), cut, whole)
}
