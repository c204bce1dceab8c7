package main

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// benchMock measures a mock device: a server with retain none and an echo
// rule, against a bare Go echo server (a goroutine per connection, read
// then write) running in a process of its own, as sockman does. Round
// trip: one connection to each, a 64-byte write and the read of its echo,
// sample by sample in turn. Rate: mockSockets connections to each, every
// one echoing 64-byte messages one at a time for mockDuration; the bare
// server's run and sockman's alternate.
func benchMock(c *config) ([]sample, error) {
	p, err := c.start()
	if err != nil {
		return nil, err
	}
	defer p.stop()
	a, err := newAPI(p.addr)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	var srv serverInfo
	if err := a.call("POST", "/servers", map[string]any{"port": 0, "retain": "none"}, 201, &srv); err != nil {
		return nil, err
	}
	if err := a.call("POST", "/servers/"+srv.ID+"/rules", map[string]any{"echo": true}, 201, nil); err != nil {
		return nil, err
	}
	cmd, out, err := startChild(echoChildEnv + "=1")
	if err != nil {
		return nil, err
	}
	defer killChild(cmd)
	var bare string
	if _, err := fmt.Fscanln(out, &bare); err != nil {
		return nil, fmt.Errorf("echo process: %w", err)
	}

	sm, err := net.Dial("tcp", srv.Address)
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	be, err := net.Dial("tcp", bare)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	msg, buf := make([]byte, 64), make([]byte, 64)
	rtt := func(c net.Conn) (time.Duration, error) {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	for range 200 { // warm up
		if _, err := rtt(sm); err != nil {
			return nil, err
		}
		if _, err := rtt(be); err != nil {
			return nil, err
		}
	}
	var ds, db []time.Duration
	for range c.mockSamples {
		d, err := rtt(sm)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
		if d, err = rtt(be); err != nil {
			return nil, err
		}
		db = append(db, d)
	}

	rs, err := echoRate(srv.Address, c.mockSockets, c.mockDuration, func(n int) error {
		_, err := a.waitAccepted(srv.ID, n+1, 30*time.Second) // and the round-trip connection
		return err
	})
	if err != nil {
		return nil, err
	}
	rb, err := echoRate(bare, c.mockSockets, c.mockDuration, nil)
	if err != nil {
		return nil, err
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return []sample{
		{"mock-rtt-p50", us(percentile(ds, 50)), us(percentile(db, 50))},
		{"mock-rtt-p99", us(percentile(ds, 99)), us(percentile(db, 99))},
		{"mock-rate", rs, rb},
	}, nil
}

// echoRate opens n connections to addr (ready, when not nil, waits until
// the server has them all), then has each echo 64-byte messages one at a
// time for d, and returns the messages per second of all together.
func echoRate(addr string, n int, d time.Duration, ready func(int) error) (float64, error) {
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
	}
	if ready != nil {
		if err := ready(n); err != nil {
			return 0, err
		}
	}
	var (
		total atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
		errs  = make(chan error, n)
	)
	start := time.Now()
	for _, c := range conns {
		wg.Go(func() {
			msg, buf := make([]byte, 64), make([]byte, 64)
			for !stop.Load() {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- err
					return
				}
				total.Add(1)
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}

const echoChildEnv = "SOCKMAN_BENCH_ECHO_CHILD"

// runEchoChild is the bare echo server: it prints its loopback address and
// echoes every connection, a goroutine each, until it is killed.
func runEchoChild() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}
