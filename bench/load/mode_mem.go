package main

// What the memory modes (-mode tiny-messages, -mode stalled-readers) share:
// a `sockman serve` child process whose RSS is read from /proc, a JSON
// client for its API, and the check of RSS against the bound DESIGN.md
// promises: "the memory the sockets take stays within about twice
// --max-buffer-total plus a fixed base".

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// modes are the -mode values other than the default streams run.
var modes = map[string]func(config) int{}

// Bounds of the memory modes.
const (
	memDefaultTotal = 32 << 20 // --max-buffer-total when -max-buffer-total is not given
	memBase         = 24 << 20 // the fixed base over the RSS before: runtime, goroutines, HTTP buffers
	memBackMargin   = 12 << 20 // "back to baseline": within this of the RSS before
	memBackWait     = 15 * time.Second
)

// memProc is a `sockman serve` child process.
type memProc struct {
	cmd  *exec.Cmd
	addr string
	pid  int
	dir  string
	http *http.Client
	// stopped: stop ran (it is called once by the mode, again by a defer)
	stopped bool

	mu   sync.Mutex
	tail []string // last lines of its stderr
}

var memServingRE = regexp.MustCompile(`msg="sockman serving".* addr=(\S+)`)

// startMemProc builds sockman and starts `sockman serve` on an ephemeral
// loopback port with the given flags.
func startMemProc(flags ...string) (*memProc, error) { return startProc(nil, flags...) }

// startProc is startMemProc that also hands every line sockman logs to
// onLine (nil: none), from the goroutine that reads them.
func startProc(onLine func(string), flags ...string) (*memProc, error) {
	dir, err := os.MkdirTemp("", "sockman-load-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "sockman")
	build := exec.Command("go", "build", "-o", bin, "github.com/sockman/sockman/cmd/sockman")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build ./cmd/sockman: %w", err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, flags...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &memProc{cmd: cmd, pid: cmd.Process.Pid, dir: dir, http: &http.Client{Timeout: 30 * time.Second}}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if onLine != nil {
				onLine(line)
			}
			if m := memServingRE.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
	}()
	select {
	case p.addr = <-ready:
		return p, nil
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("sockman did not start within 30s: %s", p.stderrTail())
	}
}

func (p *memProc) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// stop ends the child with SIGTERM (SIGKILL after 15s), removes its
// binary, and returns how the child exited (nil: status 0). A second call
// returns nil.
func (p *memProc) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
		err = errors.New("sockman did not stop within 15s of SIGTERM")
	}
	os.RemoveAll(p.dir)
	return err
}

// rss reads the child's VmRSS.
func (p *memProc) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// watchPeak samples the child's RSS every 20ms until stop is called, which
// returns the highest sample.
func (p *memProc) watchPeak() (stop func() int64) {
	var peak atomic.Int64
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if n, err := p.rss(); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(quit); <-done; return peak.Load() }
}

// waitBack waits, at most memBackWait, until the child's RSS is within
// 4 MiB of before (serve gives memory back every 2s at most), and returns
// the last sample.
func (p *memProc) waitBack(before int64) int64 {
	deadline := time.Now().Add(memBackWait)
	for {
		n, err := p.rss()
		if err != nil || n <= before+4<<20 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// call makes a JSON request to the child's API; out may be nil.
func (p *memProc) call(method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+p.addr+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: got %d %s, want %d", method, path, res.StatusCode, bytes.TrimSpace(b), want)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// memSocket is what the modes read of a socket.
type memSocket struct {
	ID               string `json:"id"`
	BufferedBytes    int64  `json:"buffered_bytes"`
	BufferedMessages int64  `json:"buffered_messages"`
	DroppedBytes     int64  `json:"dropped_bytes"`
	BytesReceived    int64  `json:"bytes_received"`
}

// sockets lists the sockets of server srvID.
func (p *memProc) sockets(srvID string) ([]memSocket, error) {
	var l struct {
		Sockets []memSocket `json:"sockets"`
	}
	err := p.call("GET", "/sockets?server_id="+srvID, nil, 200, &l)
	return l.Sockets, err
}

// memVerdict prints the figures of a memory mode and checks them: the peak
// within twice the total plus the base, and the RSS back to where it was.
// It returns the exit status.
func memVerdict(name string, total, before, peak, after int64, ok bool) int {
	bound := before + 2*total + memBase
	fmt.Printf("%s: RSS before %s, peak %s, after %s; bound %s (before + 2 x --max-buffer-total %s + base %s); back to baseline: within %s of before\n",
		name, mib(before), mib(peak), mib(after), mib(bound), mib(total), mib(memBase), mib(memBackMargin))
	switch {
	case peak > bound:
		fmt.Printf("%s: FAIL: the peak RSS %s is over the bound %s\n", name, mib(peak), mib(bound))
		return 1
	case after > before+memBackMargin:
		fmt.Printf("%s: FAIL: RSS %s did not come back to within %s of %s in %v\n", name, mib(after), mib(memBackMargin), mib(before), memBackWait)
		return 1
	case !ok:
		fmt.Printf("%s: FAIL (see above)\n", name)
		return 1
	}
	fmt.Printf("%s: ok\n", name)
	return 0
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
