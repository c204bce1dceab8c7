package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildSockman builds the sockman binary once into dir.
func buildSockman(dir string) (string, error) {
	bin := filepath.Join(dir, "sockman")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/sockman/sockman/cmd/sockman")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sockman: %w", err)
	}
	return bin, nil
}

// proc is one running `sockman serve`.
type proc struct {
	cmd  *exec.Cmd
	perf *exec.Cmd // perf record attached to it, with -perf
	addr string
	done chan struct{} // closed when stderr is drained

	mu   sync.Mutex // guards tail
	tail []string   // last lines of stderr, for error messages
}

var servingRE = regexp.MustCompile(`msg="sockman serving".* addr=(\S+)`)

// startSockman runs bin serve on an ephemeral loopback port with extra
// flags, and returns once it logs that it is serving.
func startSockman(bin string, extra ...string) (*proc, error) {
	args := append([]string{"serve", "--addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ() // GOGC and GOMAXPROCS as the user has them (default)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := servingRE.FindStringSubmatch(line); m != nil {
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
		io.Copy(io.Discard, stderr)
	}()
	select {
	case p.addr = <-ready:
		return p, nil
	case <-p.done:
		cmd.Wait()
		return nil, fmt.Errorf("sockman exited before serving: %s", p.stderrTail())
	case <-time.After(15 * time.Second):
		p.stop()
		return nil, fmt.Errorf("sockman did not log that it is serving within 15s: %s", p.stderrTail())
	}
}

func (p *proc) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// stop sends SIGTERM and waits; after 15 s it kills.
func (p *proc) stop() {
	if p.perf != nil {
		p.perf.Process.Signal(os.Interrupt)
		p.perf.Wait()
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-exited
	}
}

// cpuTime is the CPU time the process has used; 0 for a nil proc.
func (p *proc) cpuTime() time.Duration {
	if p == nil {
		return 0
	}
	return cpuTime(p.cmd.Process.Pid)
}

// rssBytes reads VmRSS of the process from /proc.
func (p *proc) rssBytes() (int64, error) {
	return readRSS(p.cmd.Process.Pid)
}

func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// api is a setup client: JSON requests whose speed does not matter.
type api struct {
	h *httpConn
}

func newAPI(addr string) (*api, error) {
	h, err := dialHTTP(addr)
	if err != nil {
		return nil, err
	}
	return &api{h: h}, nil
}

func (a *api) Close() { a.h.Close() }

// call sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil). A status other than want is an error.
func (a *api) call(method, target string, in any, want int, out any) error {
	var body []byte
	hdrs := []string{}
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
		hdrs = append(hdrs, "Content-Type: application/json")
	}
	var got []byte
	r, err := a.h.roundTrip(method, target, hdrs, body, collect(&got))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, target, err)
	}
	if r.status != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, target, r.status, want, got)
	}
	if out != nil {
		return json.Unmarshal(got, out)
	}
	return nil
}

type serverInfo struct {
	ID       string   `json:"id"`
	Address  string   `json:"address"`
	Sockets  []string `json:"sockets"`
	Accepted int      `json:"accepted"`
}

// listen creates a server on an ephemeral port with the given buffer size
// (0: the default) and returns it.
func (a *api) listen(bufBytes int) (serverInfo, error) {
	req := map[string]any{"port": 0}
	if bufBytes > 0 {
		req["buffer_bytes"] = bufBytes
	}
	var s serverInfo
	err := a.call("POST", "/servers", req, 201, &s)
	return s, err
}

func (a *api) server(id string) (serverInfo, error) {
	var s serverInfo
	err := a.call("GET", "/servers/"+id, nil, 200, &s)
	return s, err
}

// waitAccepted polls the server until it has accepted n connections and
// returns the ids of its sockets.
func (a *api) waitAccepted(id string, n int, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := a.server(id)
		if err != nil {
			return nil, err
		}
		if s.Accepted >= n && len(s.Sockets) >= n {
			return s.Sockets, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("server %s accepted %d of %d connections within %v", id, s.Accepted, n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// peerPair opens a server with bufBytes and connects one peer to it; it
// returns the peer's connection and the id of the accepted socket.
func (a *api) peerPair(bufBytes int) (net.Conn, string, string, error) {
	srv, err := a.listen(bufBytes)
	if err != nil {
		return nil, "", "", err
	}
	peer, err := net.Dial("tcp", srv.Address)
	if err != nil {
		return nil, "", "", err
	}
	ids, err := a.waitAccepted(srv.ID, 1, 5*time.Second)
	if err != nil {
		peer.Close()
		return nil, "", "", err
	}
	return peer, srv.ID, ids[0], nil
}

// release deletes a socket and a server, ignoring errors (cleanup).
func (a *api) release(serverID, socketID string) {
	if socketID != "" {
		a.call("DELETE", "/sockets/"+socketID, nil, 204, nil)
	}
	if serverID != "" {
		a.call("DELETE", "/servers/"+serverID, nil, 204, nil)
	}
}

// cpuTime returns the CPU time the process has used: the sum of its
// threads' run times from /proc/PID/task/*/schedstat, in nanoseconds (the
// tick-sampled utime and stime are too coarse for short bursts). Threads
// that have exited are not counted; Go keeps its threads.
func cpuTime(pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(n)
		}
	}
	return sum
}

// startChild re-runs this program with env (NAME=value) added, its stderr
// going to ours, and returns it started, with its stdout to read: the relay
// and floor processes are the bench binary run again.
func startChild(env string) (*exec.Cmd, io.Reader, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, out, nil
}

// killChild ends a child process that holds nothing worth a graceful end.
func killChild(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}
