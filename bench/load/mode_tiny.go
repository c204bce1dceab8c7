package main

// -mode tiny-messages: peers that each send one byte at a time with
// TCP_NODELAY (a 0.2 ms pause every 50 sends, so that sockman keeps up and
// reads them one by one), nobody reading, under --max-buffer-total. Each
// byte used to become a message of ~155 bytes counted as one: 4 peers for
// 50 s took RSS from 13 MB to 573 MB under a 32 MiB total.
//
//	go run ./bench/load -mode tiny-messages -duration 20s

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

var tinyPeers = flag.Int("tiny-peers", 4, "-mode tiny-messages: peers sending a byte at a time")

func init() { modes["tiny-messages"] = runTiny }

func runTiny(c config) int {
	total := c.maxTotal
	if total <= 0 {
		total = memDefaultTotal
	}
	p, err := startMemProc("--max-buffer-total", strconv.FormatInt(total, 10))
	if err != nil {
		fmt.Fprintf(os.Stderr, "tiny-messages: %v\n", err)
		return 1
	}
	defer p.stop()
	before, err := p.rss()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tiny-messages: %v\n", err)
		return 1
	}
	fmt.Printf("tiny-messages: %d peers sending 1 byte at a time for %v, nobody reading, --max-buffer-total %s\n", *tinyPeers, c.duration, mib(total))
	var srv struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	}
	if err := p.call("POST", "/servers", map[string]any{"port": 0}, 201, &srv); err != nil {
		fmt.Fprintf(os.Stderr, "tiny-messages: %v\n", err)
		return 1
	}
	peak := p.watchPeak()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		sent  int64
		conns []net.Conn
	)
	end := time.Now().Add(c.duration)
	for range *tinyPeers {
		conn, err := net.Dial("tcp", srv.Address)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tiny-messages: peer: %v\n", err)
			return 1
		}
		conn.(*net.TCPConn).SetNoDelay(true)
		conns = append(conns, conn)
		wg.Go(func() {
			one := []byte{'a'}
			var n int64
			for i := 0; time.Now().Before(end); i++ {
				conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				if k, _ := conn.Write(one); k == 1 {
					n++
				}
				if i%50 == 49 {
					time.Sleep(200 * time.Microsecond)
				}
			}
			mu.Lock()
			sent += n
			mu.Unlock()
		})
	}
	wg.Wait()
	socks, err := p.sockets(srv.ID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tiny-messages: %v\n", err)
		return 1
	}
	var held, msgs int64
	for _, s := range socks {
		held += s.BufferedBytes
		msgs += s.BufferedMessages
	}
	top := peak()
	fmt.Printf("tiny-messages: %d bytes sent; the sockets hold %d bytes in %d messages\n", sent, held, msgs)

	// Let everything go: RSS comes back.
	ok := true
	if err := p.call("DELETE", "/servers/"+srv.ID+"?close_sockets=true", nil, 204, nil); err != nil {
		fmt.Fprintf(os.Stderr, "tiny-messages: %v\n", err)
		ok = false
	}
	for _, s := range socks {
		if err := p.call("DELETE", "/sockets/"+s.ID, nil, 204, nil); err != nil {
			fmt.Fprintf(os.Stderr, "tiny-messages: %v\n", err)
			ok = false
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
	after := p.waitBack(before)
	return memVerdict("tiny-messages", total, before, top, after, ok)
}
