package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// benchLoad measures API latency while c.loadSockets sockets stream: each
// peer writes c.loadChunk bytes every c.loadInterval, drainers read every
// socket with a cursor (octet-stream), and a probe client sends one request
// every 2 ms, cycling through GET /healthz, GET /sockets/{id} of a
// streaming socket, GET /sockets/{id}/messages of a quiet socket and a
// 64-byte POST /sockets/{id}/messages. The peers and drainers run in a
// child process (this program, re-run as a load generator), so that their
// goroutines never delay the probe's. The baseline is the same probe with
// the same sockets connected and idle, measured just before.
func benchLoad(c *config) ([]sample, error) {
	n := c.loadSockets
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
	quietPeer, quietSrv, quietID, err := a.peerPair(0)
	if err != nil {
		return nil, err
	}
	defer a.release(quietSrv, quietID)
	defer quietPeer.Close()
	go discardAll(quietPeer)
	srv, err := a.listen(256 << 10)
	if err != nil {
		return nil, err
	}

	child, err := startLoadChild(p.addr, srv, c)
	if err != nil {
		return nil, err
	}
	defer child.kill()
	ids, err := a.waitAccepted(srv.ID, n, 30*time.Second)
	if err != nil {
		return nil, err
	}
	probe, err := newProbe(p.addr, ids[0], quietID)
	if err != nil {
		return nil, err
	}
	defer probe.h.Close()
	idle, err := probe.run(c.loadDuration / 2)
	if err != nil {
		return nil, fmt.Errorf("probe, idle: %w", err)
	}
	if err := child.command("go"); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // reach a steady state
	if err := child.command("mark"); err != nil {
		return nil, err
	}
	c0, t0 := cpuTime(p.cmd.Process.Pid), time.Now()
	busy, perr := probe.run(c.loadDuration)
	cores := (cpuTime(p.cmd.Process.Pid) - c0).Seconds() / time.Since(t0).Seconds()
	rate, err := child.stop()
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, fmt.Errorf("probe, streaming: %w", perr)
	}
	offered := 0.0
	if c.loadInterval > 0 {
		offered = float64(n) * float64(c.loadChunk) / c.loadInterval.Seconds() / 1e6
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if debug {
		fmt.Fprintf(os.Stderr, "load: %d probes idle, %d streaming; p99 %v idle, %v streaming; max %v streaming; drained %.0f MB/s\n",
			len(idle), len(busy), percentile(idle, 99), percentile(busy, 99), percentile(busy, 100), rate)
	}
	return []sample{
		{"load-p99", ms(percentile(busy, 99)), ms(percentile(idle, 99))},
		{"load-p50", ms(percentile(busy, 50)), ms(percentile(idle, 50))},
		{"load-rate", rate, offered},
		{"load-cpu", 100 * cores, 0},
	}, nil
}

// loadChild is the load generator process.
type loadChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

const loadChildEnv = "SOCKMAN_BENCH_LOAD_CHILD"

// startLoadChild re-runs this program as the load generator and waits until
// its peers are connected.
func startLoadChild(apiAddr string, srv serverInfo, c *config) (*loadChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d %d %d", loadChildEnv,
		apiAddr, srv.Address, srv.ID, c.loadSockets, c.loadChunk, c.loadInterval))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	l := &loadChild{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if line, err := l.line(); err != nil || line != "ready" {
		l.kill()
		return nil, fmt.Errorf("load generator: got %q, %v; want ready", line, err)
	}
	return l, nil
}

func (l *loadChild) line() (string, error) {
	if !l.out.Scan() {
		if err := l.out.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return l.out.Text(), nil
}

func (l *loadChild) command(cmd string) error {
	_, err := fmt.Fprintln(l.in, cmd)
	return err
}

// stop ends the streaming and returns the MB/s drained since "mark".
func (l *loadChild) stop() (float64, error) {
	if err := l.command("stop"); err != nil {
		return 0, err
	}
	line, err := l.line()
	if err != nil {
		return 0, fmt.Errorf("load generator: %w", err)
	}
	var rate float64
	if _, err := fmt.Sscanf(line, "drained %f", &rate); err != nil {
		return 0, fmt.Errorf("load generator: %q", line)
	}
	return rate, nil
}

func (l *loadChild) kill() {
	l.in.Close()
	done := make(chan struct{})
	go func() { l.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		l.cmd.Process.Kill()
		<-done
	}
}

// runLoadChild is the load generator: it connects the peers, says "ready",
// streams and drains from "go" until "stop", says "drained MB/s" (since
// "mark"), and exits.
func runLoadChild(spec string) error {
	var (
		apiAddr, srvAddr, srvID string
		n, chunkSize            int
		interval                time.Duration
	)
	if _, err := fmt.Sscanf(spec, "%s %s %s %d %d %d", &apiAddr, &srvAddr, &srvID, &n, &chunkSize, &interval); err != nil {
		return fmt.Errorf("bad %s %q: %v", loadChildEnv, spec, err)
	}
	peers := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range peers {
			c.Close()
		}
	}()
	for range n {
		pc, err := net.DialTimeout("tcp", srvAddr, 10*time.Second)
		if err != nil {
			return err
		}
		peers = append(peers, pc)
	}
	a, err := newAPI(apiAddr)
	if err != nil {
		return err
	}
	defer a.Close()
	ids, err := a.waitAccepted(srvID, n, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		return fmt.Errorf("want go on stdin")
	}

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		drained atomic.Int64
		errMu   sync.Mutex
		werr    error
	)
	fail := func(err error) {
		errMu.Lock()
		if werr == nil {
			werr = err
		}
		errMu.Unlock()
		stop.Store(true)
	}
	for i, pc := range peers {
		wg.Go(func() {
			buf := chunk[:chunkSize]
			if interval > 0 {
				time.Sleep(interval * time.Duration(i) / time.Duration(n)) // spread the writers
			}
			for !stop.Load() {
				if _, err := pc.Write(buf); err != nil {
					if !stop.Load() {
						fail(fmt.Errorf("peer write: %w", err))
					}
					return
				}
				if interval > 0 {
					time.Sleep(interval)
				}
			}
		})
	}
	const drainers = 4
	for d := range drainers {
		wg.Go(func() {
			h, err := dialHTTP(apiAddr)
			if err != nil {
				fail(err)
				return
			}
			defer h.Close()
			var mine, cursors []string
			for i := d; i < len(ids); i += drainers {
				mine = append(mine, ids[i])
				cursors = append(cursors, "0")
			}
			hdrs := []string{"Accept: application/octet-stream"}
			for !stop.Load() {
				var pass int64
				for i, id := range mine {
					r, err := h.roundTrip("GET", "/sockets/"+id+"/messages?max_bytes=1048576&after="+cursors[i], hdrs, nil, nil)
					if err != nil || r.status != 200 {
						fail(fmt.Errorf("drain %s: status %d, %v", id, r.status, err))
						return
					}
					cursors[i] = r.cursor
					pass += r.length
					drained.Add(r.length)
				}
				if pass == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	var d0 int64
	var t0 time.Time
	for in.Scan() && in.Text() != "stop" {
		if in.Text() == "mark" {
			d0, t0 = drained.Load(), time.Now()
		}
	}
	rate := float64(drained.Load()-d0) / 1e6 / time.Since(t0).Seconds()
	stop.Store(true)
	for _, pc := range peers {
		pc.SetWriteDeadline(time.Now()) // unblock writers stalled by backpressure
	}
	wg.Wait()
	if werr != nil {
		return werr
	}
	fmt.Printf("drained %.3f\n", rate)
	return nil
}

// probe times a cycle of API requests on one keep-alive connection.
type probe struct {
	h        *httpConn
	streamID string
	quietID  string
}

func newProbe(addr, streamID, quietID string) (*probe, error) {
	h, err := dialHTTP(addr)
	if err != nil {
		return nil, err
	}
	return &probe{h: h, streamID: streamID, quietID: quietID}, nil
}

// run sends one request every 2 ms for d and returns their latencies.
func (p *probe) run(d time.Duration) ([]time.Duration, error) {
	var out []time.Duration
	small := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	reqs := []struct {
		method, target string
		hdrs           []string
		body           []byte
		want           int
	}{
		{"GET", "/healthz", nil, nil, 200},
		{"GET", "/sockets/" + p.streamID, nil, nil, 200},
		{"GET", "/sockets/" + p.quietID + "/messages", nil, nil, 200},
		{"POST", "/sockets/" + p.quietID + "/messages", []string{"Content-Type: application/octet-stream"}, small, 200},
	}
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		q := reqs[i%len(reqs)]
		start := time.Now()
		r, err := p.h.roundTrip(q.method, q.target, q.hdrs, q.body, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if r.status != q.want {
			return nil, fmt.Errorf("%s %s: status %d", q.method, q.target, r.status)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return out, nil
}

func discardAll(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}
