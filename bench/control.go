package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// benchControl measures, from one sequential client on one keep-alive
// connection: server create+delete pairs against pairs of GET /healthz,
// and GET /sockets/{id} against GET /healthz. The four are interleaved in
// four rounds so that a noisy moment hits all of them alike.
func benchControl(c *config) ([]sample, error) {
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
	peer, srvID, sockID, err := a.peerPair(0)
	if err != nil {
		return nil, err
	}
	defer a.release(srvID, sockID)
	defer peer.Close()
	h, err := dialHTTP(p.addr)
	if err != nil {
		return nil, err
	}
	defer h.Close()

	get := func(target string) error {
		r, err := h.roundTrip("GET", target, nil, nil, nil)
		if err == nil && r.status != 200 {
			err = fmt.Errorf("GET %s: status %d", target, r.status)
		}
		return err
	}
	createBody := []byte(`{"port":0}`)
	jsonHdr := []string{"Content-Type: application/json"}
	pair := func() error {
		r, err := h.roundTrip("POST", "/servers", jsonHdr, createBody, nil)
		if err != nil {
			return err
		}
		if r.status != 201 || !strings.HasPrefix(r.location, "/servers/") {
			return fmt.Errorf("POST /servers: status %d, Location %q", r.status, r.location)
		}
		r, err = h.roundTrip("DELETE", r.location, nil, nil, nil)
		if err == nil && r.status != 204 {
			err = fmt.Errorf("DELETE %s: status %d", r.location, r.status)
		}
		return err
	}
	healthPair := func() error {
		if err := get("/healthz"); err != nil {
			return err
		}
		return get("/healthz")
	}
	health := func() error { return get("/healthz") }
	socket := func() error { return get("/sockets/" + sockID) }

	timed := func(n int, f func() error) (time.Duration, error) {
		start := time.Now()
		for range n {
			if err := f(); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	// Warm up every path.
	for _, f := range []func() error{healthPair, pair, health, socket} {
		if _, err := timed(100, f); err != nil {
			return nil, err
		}
	}
	const rounds = 4
	n := max(1, c.controlN/rounds)
	var tHP, tPair, tH, tS time.Duration
	var cpu [4]time.Duration // sockman's, per kind, for -v
	for range rounds {
		for i, m := range []struct {
			f func() error
			t *time.Duration
		}{{healthPair, &tHP}, {pair, &tPair}, {health, &tH}, {socket, &tS}} {
			c0 := cpuTime(p.cmd.Process.Pid)
			d, err := timed(n, m.f)
			if err != nil {
				return nil, err
			}
			*m.t += d
			cpu[i] += cpuTime(p.cmd.Process.Pid) - c0
		}
	}
	if debug {
		per := func(d time.Duration) time.Duration { return d / time.Duration(n*rounds) }
		fmt.Fprintf(os.Stderr, "control: sockman CPU per healthz pair %v, per create+delete %v, per healthz %v, per GET socket %v\n",
			per(cpu[0]), per(cpu[1]), per(cpu[2]), per(cpu[3]))
		fmt.Fprintf(os.Stderr, "control: wall per healthz pair %v, per create+delete %v\n", per(tHP), per(tPair))
	}
	rate := func(d time.Duration) float64 { return float64(n*rounds) / d.Seconds() }
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(n*rounds) }
	return []sample{
		{"control-pairs", rate(tPair), rate(tHP)},
		{"control-get", rate(tS), rate(tH)},
		{"control-pairs-cpu", us(cpu[1]), us(cpu[0])},
		{"control-get-cpu", us(cpu[3]), us(cpu[2])},
	}, nil
}
