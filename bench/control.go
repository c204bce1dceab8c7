package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// controlClient is one sequential HTTP/1.1 client on one keep-alive
// connection.
type controlClient interface {
	// do sends a request and reads the whole answer, discarding the body.
	do(method, target string, hdrs []string, body []byte) (status int, location string, err error)
	Close() error
}

// do makes the minimal client of httpc.go a controlClient.
func (h *httpConn) do(method, target string, hdrs []string, body []byte) (int, string, error) {
	r, err := h.roundTrip(method, target, hdrs, body, nil)
	return r.status, r.location, err
}

// stdClient is Go's net/http client, as a script or a test suite would use
// it: the ceiling for a sequential client (2,200 to 2,800 /healthz
// pairs per second here) is what such a client reaches; the minimal client
// reaches about twice that.
type stdClient struct {
	base string
	c    *http.Client
	tr   *http.Transport
}

func newStdClient(addr string) *stdClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	return &stdClient{base: "http://" + addr, c: &http.Client{Transport: tr}, tr: tr}
}

func (s *stdClient) do(method, target string, hdrs []string, body []byte) (int, string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+target, rd)
	if err != nil {
		return 0, "", err
	}
	for _, kv := range hdrs {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Set(k, v)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), err
}

func (s *stdClient) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// benchControl measures, from one sequential client on one keep-alive
// connection: server create+delete pairs against pairs of GET /healthz,
// and GET /sockets/{id} against GET /healthz; once with the minimal client
// and once with Go's net/http client. The floor server (floor.go) is
// measured the same way for its create+delete pairs. Everything is
// interleaved in rounds of 100 so that a noisy moment hits all of them
// alike.
func benchControl(c *config) ([]sample, error) {
	p, err := c.start()
	if err != nil {
		return nil, err
	}
	defer p.stop()
	ss, err := openSocketSession(p.addr) // its h is the minimal client
	if err != nil {
		return nil, err
	}
	defer ss.close()
	std := newStdClient(p.addr)
	defer std.Close()
	floor, err := startFloor()
	if err != nil {
		return nil, err
	}
	defer floor.stop()
	floorMin, err := dialHTTP(floor.addr)
	if err != nil {
		return nil, err
	}
	defer floorMin.Close()
	floorStd := newStdClient(floor.addr)
	defer floorStd.Close()

	// Short rounds, so that a noisy second hits every sequence alike.
	const n = 100
	rounds := max(1, c.controlN/n)
	sockmanPid, floorPid := p.cmd.Process.Pid, floor.cmd.Process.Pid
	ms := []*controlSet{
		newControlSet(ss.h, ss.sockID, sockmanPid),
		newControlSet(std, ss.sockID, sockmanPid),
		newControlSet(floorMin, "", floorPid),
		newControlSet(floorStd, "", floorPid),
	}
	for _, m := range ms {
		if err := m.warmUp(); err != nil {
			return nil, err
		}
	}
	for range rounds {
		for _, m := range ms {
			if err := m.round(n); err != nil {
				return nil, err
			}
		}
	}
	total := n * rounds
	if debug {
		for i, m := range ms {
			per := func(d time.Duration) time.Duration { return d / time.Duration(total) }
			fmt.Fprintf(os.Stderr, "control (set %d): server CPU per healthz pair %v, per create+delete %v\n", i, per(m.cpu[0]), per(m.cpu[1]))
			fmt.Fprintf(os.Stderr, "control (set %d): wall per healthz pair %v, per create+delete %v\n", i, per(m.wall[0]), per(m.wall[1]))
		}
	}
	rate := func(d time.Duration) float64 { return float64(total) / d.Seconds() }
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(total) }
	m, s, fm, fs := ms[0], ms[1], ms[2], ms[3]
	return []sample{
		{"control-pairs", rate(m.wall[1]), rate(m.wall[0])},
		{"control-get", rate(m.wall[3]), rate(m.wall[2])},
		{"control-pairs-std", rate(s.wall[1]), rate(s.wall[0])},
		{"control-get-std", rate(s.wall[3]), rate(s.wall[2])},
		{"control-pairs-cpu", us(m.cpu[1]), us(m.cpu[0])},
		{"control-get-cpu", us(m.cpu[3]), us(m.cpu[2])},
		{"control-floor-std", rate(fs.wall[1]), rate(fs.wall[0])},
		{"control-floor", rate(fm.wall[1]), rate(fm.wall[0])},
		{"control-floor-cpu", us(fm.cpu[1]), us(fm.cpu[0])},
	}, nil
}

// controlSet is the measured request sequences of one client, with the wall
// time and server CPU time each took, summed over the rounds.
type controlSet struct {
	kinds []func() error // healthz pair, create+delete; with a socket, healthz and GET socket
	wall  []time.Duration
	cpu   []time.Duration
	pid   int // the server's
}

// newControlSet measures the server of pid through cl; without a socket id
// it measures only the two pair sequences.
func newControlSet(cl controlClient, sockID string, pid int) *controlSet {
	get := func(target string) error {
		status, _, err := cl.do("GET", target, nil, nil)
		if err == nil && status != 200 {
			err = fmt.Errorf("GET %s: status %d", target, status)
		}
		return err
	}
	createBody := []byte(`{"port":0}`)
	jsonHdr := []string{"Content-Type: application/json"}
	pair := func() error {
		status, loc, err := cl.do("POST", "/servers", jsonHdr, createBody)
		if err != nil {
			return err
		}
		if status != 201 || !strings.HasPrefix(loc, "/servers/") {
			return fmt.Errorf("POST /servers: status %d, Location %q", status, loc)
		}
		status, _, err = cl.do("DELETE", loc, nil, nil)
		if err == nil && status != 204 {
			err = fmt.Errorf("DELETE %s: status %d", loc, status)
		}
		return err
	}
	healthPair := func() error {
		if err := get("/healthz"); err != nil {
			return err
		}
		return get("/healthz")
	}
	kinds := []func() error{healthPair, pair}
	if sockID != "" {
		kinds = append(kinds,
			func() error { return get("/healthz") },
			func() error { return get("/sockets/" + sockID) })
	}
	return &controlSet{kinds: kinds, wall: make([]time.Duration, len(kinds)), cpu: make([]time.Duration, len(kinds)), pid: pid}
}

func timed(n int, f func() error) (time.Duration, error) {
	start := time.Now()
	for range n {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// warmUp runs every sequence a little, unmeasured.
func (s *controlSet) warmUp() error {
	for _, f := range s.kinds {
		if _, err := timed(100, f); err != nil {
			return err
		}
	}
	return nil
}

// round runs each sequence n times, adding its wall and server CPU time.
func (s *controlSet) round(n int) error {
	for i, f := range s.kinds {
		c0 := cpuTime(s.pid)
		d, err := timed(n, f)
		if err != nil {
			return err
		}
		s.wall[i] += d
		s.cpu[i] += cpuTime(s.pid) - c0
	}
	return nil
}
