package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"
)

// benchWake measures the long-poll wake-up: from just before the peer
// writes one byte to the moment the waiting client has read the whole
// answer. sockman: the client's GET /sockets/{id}/messages?wait= is parked
// when the peer writes. Baseline: a bare one-hop relay, a goroutine that
// reads the peer's byte and writes it to a TCP client blocked in a read.
// The relay runs in a process of its own (this program, re-run), as sockman
// does: each hop then wakes another process, as it must for any service.
// The same relay inside this process is measured too, for context: there
// the hand-offs can stay on one thread. The event stream is measured the
// same way against the long poll of the same run: a GET /events of one
// socket's socket.received, open on a connection of its own; the time from
// just before its peer writes one byte until the stream's client has read
// the whole event. All are measured sample by sample in turn, with the same
// pause before each write. Two more show what the stream's flush allowance
// costs (a few flushes at once, then one a millisecond while events keep
// coming): an event sample right after the first, with no pause, and the
// last of eight in a row with no pause.
func benchWake(c *config) ([]sample, error) {
	p, err := c.start()
	if err != nil {
		return nil, err
	}
	defer p.stop()
	sm, err := newWakeSockman(p.addr)
	if err != nil {
		return nil, err
	}
	defer sm.close()
	rp, err := newWakeRelayProcess()
	if err != nil {
		return nil, err
	}
	defer rp.close()
	rl, err := newWakeRelay()
	if err != nil {
		return nil, err
	}
	defer rl.close()
	ev, err := newWakeEvents(p.addr)
	if err != nil {
		return nil, err
	}
	defer ev.close()

	sides := []func(time.Duration) (time.Duration, error){sm.sample, rp.sample, rl.sample, ev.sample,
		func(time.Duration) (time.Duration, error) { return ev.sample(0) }, ev.flow}
	for range 50 { // warm up
		for _, f := range sides {
			if _, err := f(c.wakePause / 10); err != nil {
				return nil, err
			}
		}
	}
	got := make([][]time.Duration, len(sides))
	var cpu time.Duration // sockman's, for SOCKMAN_BENCH_DEBUG
	for range c.wakeSamples {
		for i, f := range sides {
			c0 := cpuTime(p.cmd.Process.Pid)
			d, err := f(c.wakePause)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				cpu += cpuTime(p.cmd.Process.Pid) - c0
			}
			got[i] = append(got[i], d)
		}
	}
	if debug {
		fmt.Fprintf(os.Stderr, "wake: sockman CPU %v per sample\n", cpu/time.Duration(c.wakeSamples))
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	ds, dp, dl, de, df, dr := got[0], got[1], got[2], got[3], got[4], got[5]
	return []sample{
		{"events-wake-p50", us(percentile(de, 50)), us(percentile(ds, 50))},
		{"events-wake-p99", us(percentile(de, 99)), us(percentile(ds, 99))},
		{"events-flow-p50", us(percentile(df, 50)), us(percentile(ds, 50))},
		{"events-flow-p99", us(percentile(df, 99)), us(percentile(ds, 99))},
		{"events-steady-p50", us(percentile(dr, 50)), us(percentile(ds, 50))},
		{"events-steady-p99", us(percentile(dr, 99)), us(percentile(ds, 99))},
		{"wake-p50", us(percentile(ds, 50)), us(percentile(dp, 50))},
		{"wake-p99", us(percentile(ds, 99)), us(percentile(dp, 99))},
		{"wake-inproc-p50", us(percentile(ds, 50)), us(percentile(dl, 50))},
		{"wake-inproc-p99", us(percentile(ds, 99)), us(percentile(dl, 99))},
		{"wake-cpu", us(cpu / time.Duration(c.wakeSamples)), 0},
	}, nil
}

// wakeSockman is a socket with a peer, and a client connection for polls.
type wakeSockman struct {
	*socketSession
	cursor string
	target string
	one    []byte
}

func newWakeSockman(addr string) (*wakeSockman, error) {
	ss, err := openSocketSession(addr)
	if err != nil {
		return nil, err
	}
	return &wakeSockman{socketSession: ss, cursor: "0",
		target: "/sockets/" + ss.sockID + "/messages?wait=10s&after=", one: []byte{'x'}}, nil
}

// sample sends the poll, pauses so that it is parked, then times the
// peer's write to the end of the answer.
func (w *wakeSockman) sample(pause time.Duration) (time.Duration, error) {
	if err := w.h.writeRequest("GET", w.target+w.cursor, []string{"Accept: application/octet-stream"}, nil); err != nil {
		return 0, err
	}
	time.Sleep(pause)
	start := time.Now()
	if _, err := w.peer.Write(w.one); err != nil {
		return 0, err
	}
	r, err := w.h.readResponse(nil)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if r.status != 200 || r.length != 1 {
		return 0, fmt.Errorf("poll: status %d with %d bytes, want 200 with 1 byte", r.status, r.length)
	}
	w.cursor = r.cursor
	return d, nil
}

// wakeEvents is a socket with a peer, and an event stream of that socket's
// socket.received on a connection of its own.
type wakeEvents struct {
	*socketSession
	c   net.Conn
	br  *bufio.Reader
	one []byte
}

func newWakeEvents(addr string) (*wakeEvents, error) {
	ss, err := openSocketSession(addr)
	if err != nil {
		return nil, err
	}
	w := &wakeEvents{socketSession: ss, one: []byte{'x'}}
	if w.c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
		ss.close()
		return nil, err
	}
	w.br = bufio.NewReaderSize(w.c, 64<<10)
	req := "GET /events?types=socket.received&socket_id=" + ss.sockID + " HTTP/1.1\r\nHost: " + addr +
		"\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := w.c.Write([]byte(req)); err != nil {
		w.close()
		return nil, err
	}
	// The head comes at once; the stream's events follow it.
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for first := true; ; first = false {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			w.close()
			return nil, fmt.Errorf("GET /events: %w", err)
		}
		if first && !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			w.close()
			return nil, fmt.Errorf("GET /events: %q, want 200", bytes.TrimSpace(line))
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	_ = w.c.SetReadDeadline(time.Time{})
	return w, nil
}

// sample pauses, then times the peer's write to the stream's client
// having read the whole socket.received (its blank line).
func (w *wakeEvents) sample(pause time.Duration) (time.Duration, error) {
	time.Sleep(pause)
	start := time.Now()
	if _, err := w.peer.Write(w.one); err != nil {
		return 0, err
	}
	// Lines of the chunked framing end in \r\n; the event's in \n alone.
	seen := false
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("GET /events: %w", err)
		}
		switch {
		case string(line) == "event: socket.received\n":
			seen = true
		case seen && len(line) == 1:
			return time.Since(start), nil
		}
	}
}

// flow pauses, then takes eight samples in a row with no pause, and returns
// the last: an event of a steady flow.
func (w *wakeEvents) flow(pause time.Duration) (time.Duration, error) {
	time.Sleep(pause)
	var d time.Duration
	for range 8 {
		var err error
		if d, err = w.sample(0); err != nil {
			return 0, err
		}
	}
	return d, nil
}

func (w *wakeEvents) close() {
	if w.c != nil {
		w.c.Close()
	}
	w.socketSession.close()
}

// wakeRelay is peer -> relay goroutine -> client, all on loopback, with
// the relay goroutine in this process.
type wakeRelay struct {
	relayEnds
	conns []net.Conn
	done  chan struct{}
}

// relayEnds are the two sides of a relay under test: the peer writes one
// byte, the client reads it.
type relayEnds struct {
	peer, client net.Conn
	one, buf     []byte
}

// sample pauses so that the client is parked in its read, then times the
// peer's write to the client having the byte.
func (r *relayEnds) sample(pause time.Duration) (time.Duration, error) {
	time.Sleep(pause)
	start := time.Now()
	if _, err := r.peer.Write(r.one); err != nil {
		return 0, err
	}
	if _, err := r.client.Read(r.buf); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func newWakeRelay() (*wakeRelay, error) {
	pair := func() (net.Conn, net.Conn, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		defer ln.Close()
		a, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, err
		}
		b, err := ln.Accept()
		if err != nil {
			a.Close()
			return nil, nil, err
		}
		return a, b, nil
	}
	peer, relayIn, err := pair()
	if err != nil {
		return nil, err
	}
	relayOut, client, err := pair()
	if err != nil {
		peer.Close()
		relayIn.Close()
		return nil, err
	}
	r := &wakeRelay{relayEnds: relayEnds{peer: peer, client: client, one: []byte{'x'}, buf: make([]byte, 64)},
		conns: []net.Conn{peer, relayIn, relayOut, client}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := relayIn.Read(buf)
			if err != nil {
				return
			}
			if _, err := relayOut.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	return r, nil
}

func (r *wakeRelay) close() {
	for _, c := range r.conns {
		c.Close()
	}
	<-r.done
}

// wakeRelayProcess is peer -> relay process -> client.
type wakeRelayProcess struct {
	relayEnds
	cmd *exec.Cmd
}

const relayChildEnv = "SOCKMAN_BENCH_RELAY_CHILD"

func newWakeRelayProcess() (*wakeRelayProcess, error) {
	cmd, out, err := startChild(relayChildEnv + "=1")
	if err != nil {
		return nil, err
	}
	r := &wakeRelayProcess{cmd: cmd, relayEnds: relayEnds{one: []byte{'x'}, buf: make([]byte, 64)}}
	var in, outAddr string
	if _, err := fmt.Fscanln(out, &in, &outAddr); err != nil {
		r.close()
		return nil, fmt.Errorf("relay process: %w", err)
	}
	if r.peer, err = net.Dial("tcp", in); err == nil {
		r.client, err = net.Dial("tcp", outAddr)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *wakeRelayProcess) close() {
	if r.peer != nil {
		r.peer.Close()
	}
	if r.client != nil {
		r.client.Close()
	}
	killChild(r.cmd)
}

// runRelayChild is the relay process: it prints two loopback addresses,
// accepts the peer on the first and the client on the second, and relays
// from the peer to the client in one goroutine until either closes.
func runRelayChild() error {
	lnIn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	lnOut, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(lnIn.Addr(), lnOut.Addr())
	in, err := lnIn.Accept()
	if err != nil {
		return err
	}
	out, err := lnOut.Accept()
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Read(buf)
		if err != nil {
			return nil
		}
		if _, err := out.Write(buf[:n]); err != nil {
			return nil
		}
	}
}
