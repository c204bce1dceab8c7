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
// and once with Go's net/http client. Everything is interleaved in rounds
// of 100 so that a noisy moment hits all of them alike.
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

	// Short rounds, so that a noisy second hits every sequence alike.
	const n = 100
	rounds := max(1, c.controlN/n)
	ms := []*controlSet{newControlSet(ss.h, ss.sockID), newControlSet(std, ss.sockID)}
	for _, m := range ms {
		if err := m.warmUp(); err != nil {
			return nil, err
		}
	}
	for range rounds {
		for _, m := range ms {
			if err := m.round(n, p.cmd.Process.Pid); err != nil {
				return nil, err
			}
		}
	}
	total := n * rounds
	if debug {
		for i, m := range ms {
			per := func(d time.Duration) time.Duration { return d / time.Duration(total) }
			fmt.Fprintf(os.Stderr, "control (client %d): sockman CPU per healthz pair %v, per create+delete %v, per healthz %v, per GET socket %v\n",
				i, per(m.cpu[0]), per(m.cpu[1]), per(m.cpu[2]), per(m.cpu[3]))
			fmt.Fprintf(os.Stderr, "control (client %d): wall per healthz pair %v, per create+delete %v\n", i, per(m.wall[0]), per(m.wall[1]))
		}
	}
	rate := func(d time.Duration) float64 { return float64(total) / d.Seconds() }
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(total) }
	m, s := ms[0], ms[1]
	return []sample{
		{"control-pairs", rate(m.wall[1]), rate(m.wall[0])},
		{"control-get", rate(m.wall[3]), rate(m.wall[2])},
		{"control-pairs-std", rate(s.wall[1]), rate(s.wall[0])},
		{"control-get-std", rate(s.wall[3]), rate(s.wall[2])},
		{"control-pairs-cpu", us(m.cpu[1]), us(m.cpu[0])},
		{"control-get-cpu", us(m.cpu[3]), us(m.cpu[2])},
	}, nil
}

// controlSet is the four measured request sequences of one client, with the
// wall time and sockman CPU time each took, summed over the rounds.
type controlSet struct {
	kinds [4]func() error // healthz pair, create+delete, healthz, GET socket
	wall  [4]time.Duration
	cpu   [4]time.Duration
}

func newControlSet(cl controlClient, sockID string) *controlSet {
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
	return &controlSet{kinds: [4]func() error{
		healthPair,
		pair,
		func() error { return get("/healthz") },
		func() error { return get("/sockets/" + sockID) },
	}}
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

// round runs each sequence n times, adding its wall and sockman CPU time.
func (s *controlSet) round(n, pid int) error {
	for i, f := range s.kinds {
		c0 := cpuTime(pid)
		d, err := timed(n, f)
		if err != nil {
			return err
		}
		s.wall[i] += d
		s.cpu[i] += cpuTime(pid) - c0
	}
	return nil
}
