package main

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// benchIdle reads the RSS of a fresh sockman, opens c.idleSockets idle
// connections to one of its servers (the peers live in this process), waits
// until all are registered and reads the RSS again. The figure is the RSS
// delta per socket. sockman runs with the default GOGC: garbage made while
// accepting is in the figure until a GC returns it, as it would be in use.
func benchIdle(c *config) ([]sample, error) {
	n := c.idleSockets
	p, err := c.start("--max-sockets", fmt.Sprint(n+100))
	if err != nil {
		return nil, err
	}
	defer p.stop()
	a, err := newAPI(p.addr)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	srv, err := a.listen(0)
	if err != nil {
		return nil, err
	}
	// Settle: let the start-up garbage go before the first reading.
	time.Sleep(500 * time.Millisecond)
	before, err := p.rssBytes()
	if err != nil {
		return nil, err
	}

	peers := make([]net.Conn, n)
	defer func() {
		for _, c := range peers {
			if c != nil {
				c.Close()
			}
		}
	}()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		derr error
	)
	const dialers = 8
	for w := range dialers {
		wg.Go(func() {
			for i := w; i < n; i += dialers {
				c, err := net.DialTimeout("tcp", srv.Address, 10*time.Second)
				if err != nil {
					mu.Lock()
					derr = err
					mu.Unlock()
					return
				}
				peers[i] = c
			}
		})
	}
	wg.Wait()
	if derr != nil {
		return nil, fmt.Errorf("dial: %w", derr)
	}
	if err := a.waitAccepted2(srv.ID, n, 30*time.Second); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond)
	after, err := p.rssBytes()
	if err != nil {
		return nil, err
	}
	if debug {
		fmt.Fprintf(os.Stderr, "idle: RSS %d KiB before, %d KiB after %d sockets\n", before>>10, after>>10, n)
	}
	perSocket := float64(after-before) / 1024 / float64(n)
	return []sample{
		{"idle", perSocket, 0},
		{"idle-rss", float64(after) / (1 << 20), float64(before) / (1 << 20)},
	}, nil
}

// waitAccepted2 waits until the server has accepted n connections, reading
// only its counters (the id list of 10,000 sockets is large).
func (a *api) waitAccepted2(id string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		s, err := a.server(id)
		if err != nil {
			return err
		}
		if s.Accepted >= n {
			if len(s.Sockets) != n {
				return fmt.Errorf("server %s: %d sockets registered, want %d", id, len(s.Sockets), n)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server %s accepted %d of %d connections within %v", id, s.Accepted, n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
