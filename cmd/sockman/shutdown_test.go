package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/internal/contract"
)

// shutdownChildEnv, set to 1, makes TestShutdownChild run: the test binary
// run again by TestShutdownUnderSIGTERM as the process to signal. (Not a
// SOCKMAN_ name: TestMain clears those.)
const shutdownChildEnv = "GO_WANT_SOCKMAN_SHUTDOWN_CHILD"

// childFilesEnv, when set, is the open files limit (soft and hard) the child
// sets itself before it runs.
const childFilesEnv = "GO_WANT_SOCKMAN_CHILD_NOFILE"

// stressScaleEnv is SOCKMAN_STRESS_SCALE, read when the package is
// initialised: TestMain clears SOCKMAN_* variables before any test runs.
var stressScaleEnv = os.Getenv("SOCKMAN_STRESS_SCALE")

// TestShutdownChild is no test of its own. Run by TestShutdownUnderSIGTERM
// as a child process, it is main with the arguments after "--": the real
// signal handling, flags and serve. Once run has returned it says so on
// stdout and waits for stdin to close, so that the parent checks the peers
// while this process is still alive (a process that exits closes its
// sockets anyway); then it exits with run's code, or 3 if a goroutine is
// left behind.
func TestShutdownChild(t *testing.T) {
	if os.Getenv(shutdownChildEnv) != "1" {
		t.Skip("runs only as the child process of TestShutdownUnderSIGTERM")
	}
	if v := os.Getenv(childFilesEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "setting the open files limit to %q: %v\n", v, err)
			os.Exit(3)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, flag.Args(), os.Stdout, os.Stderr)
	stop()
	fmt.Printf("run returned %d\n", code)
	io.Copy(io.Discard, os.Stdin)
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goroutines left after serve returned: %v\n", err)
		os.Exit(3)
	}
	os.Exit(code)
}

// stressScale is SOCKMAN_STRESS_SCALE (default 1): the size multiplier of
// the stress tests. Under -race, keep it small: the race detector allows
// 8128 live goroutines, and each socket has one.
func stressScale(t testing.TB) int {
	v := stressScaleEnv
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SOCKMAN_STRESS_SCALE=%q: want a whole number from 1", v)
	}
	return n
}

// child is the sockman process under test.
type child struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	addr   string
	logs   *syncBuffer
	lines  chan string   // stderr, line by line, for waitLog
	ran    chan int      // run's exit code, from stdout
	exited chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's answer, once exited is closed
}

var servingAddrRE = regexp.MustCompile(`msg="sockman serving".* addr=(\S+)`)

// startChild runs `sockman serve args...` in a child process and waits
// until it serves.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := spawnChild(t, nil, args...)
	line := c.waitLog(t, "sockman serving")
	m := servingAddrRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("serving line %q has no addr", line)
	}
	c.addr = m[1]
	return c
}

// spawnChild runs `sockman serve args...` in a child process with env
// added to its environment, and returns at once.
func spawnChild(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary to run again: %v", err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^TestShutdownChild$", "-test.timeout=10m", "--", "serve"}, args...)...)
	cmd.Env = append(append(os.Environ(), shutdownChildEnv+"=1"), env...)
	c := &child{cmd: cmd, logs: &syncBuffer{}, lines: make(chan string, 1024), ran: make(chan int, 1), exited: make(chan struct{})}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pipes sync.WaitGroup
	pipes.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.logs.Write([]byte(sc.Text() + "\n"))
			select {
			case c.lines <- sc.Text():
			default: // nobody waits for lines this far on
			}
		}
	})
	pipes.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var code int
			if _, err := fmt.Sscanf(sc.Text(), "run returned %d", &code); err == nil {
				c.ran <- code
			}
		}
	})
	go func() {
		pipes.Wait() // Wait closes the pipes: read them to the end first
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(guard):
			cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// waitLog waits for a stderr line holding s and returns it.
func (c *child) waitLog(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case line := <-c.lines:
			if strings.Contains(line, s) {
				return line
			}
		case <-c.exited:
			t.Fatalf("sockman exited (%v) before logging %q; its log:\n%s", c.err, s, c.logs)
		case <-timeout:
			t.Fatalf("sockman did not log %q within %v; its log:\n%s", s, guard, c.logs)
		}
	}
}

// apiClient calls the child's API.
type apiClient struct {
	base string
	http *http.Client
}

func (a apiClient) do(ctx context.Context, method, path, contentType string, body io.Reader) (int, []byte, error) {
	status, _, b, err := a.doHeader(ctx, method, path, contentType, body)
	return status, b, err
}

// doHeader is do that returns the answer's header too.
func (a apiClient) doHeader(ctx context.Context, method, path, contentType string, body io.Reader) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := a.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

// must calls the API from the test's goroutine and decodes a JSON answer
// of status want into v (when v is not nil).
func (a apiClient) must(t *testing.T, method, path, jsonBody string, want int, v any) {
	t.Helper()
	var body io.Reader
	if jsonBody != "" {
		body = strings.NewReader(jsonBody)
	}
	status, b, err := a.do(context.Background(), method, path, "application/json", body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		t.Fatalf("%s %s: got status %d, want %d; body: %.300s", method, path, status, want, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v; body: %.300s", method, path, err, b)
		}
	}
}

type shutdownSocket struct {
	ID               string `json:"id"`
	RemoteAddress    string `json:"remote_address"`
	BufferedMessages int    `json:"buffered_messages"`
	BytesReceived    int64  `json:"bytes_received"`
}

type pollResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// TestShutdownUnderSIGTERM sends SIGTERM to a sockman process holding
// thousands of live sockets, long polls waiting on some, and a send still
// streaming its body. The process must end every long poll with an answer,
// finish the shutdown before --shutdown-timeout, close every peer while it
// is still alive, leave no goroutine, and exit 0.
func TestShutdownUnderSIGTERM(t *testing.T) {
	scale := stressScale(t)
	nAccepted, nClients, nPolls := 2000*scale, 100*scale, 50*scale
	c := startChild(t, "--addr", "127.0.0.1:0", "--shutdown-timeout", "60s", "--max-wait", "2m",
		"--max-sockets", strconv.Itoa(nAccepted+nClients+16))
	tr := &http.Transport{MaxIdleConnsPerHost: nPolls + 8}
	t.Cleanup(tr.CloseIdleConnections)
	a := apiClient{base: "http://" + c.addr, http: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}

	// Thousands of live sockets: peers that connected to a server, and
	// peers that sockman connected to. Each peer has sent a message.
	var srv struct {
		ID, Address string
		Sockets     []string
		Accepted    int
	}
	a.must(t, http.MethodPost, "/servers", `{"port":0}`, http.StatusCreated, &srv)
	var peers []net.Conn
	t.Cleanup(func() {
		for _, p := range peers {
			p.Close()
		}
	})
	for range nAccepted {
		p, err := net.DialTimeout("tcp", srv.Address, guard)
		if err != nil {
			t.Fatalf("peer %d dialling %s: %v", len(peers), srv.Address, err)
		}
		peers = append(peers, p)
		p.Write([]byte("hello"))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	connect := fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, ln.Addr().(*net.TCPAddr).Port)
	var clientIDs []string
	for range nClients {
		var s shutdownSocket
		a.must(t, http.MethodPost, "/clients", connect, http.StatusCreated, &s)
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(guard))
		p, err := ln.Accept()
		if err != nil {
			t.Fatalf("accepting sockman's connection: %v", err)
		}
		peers = append(peers, p)
		clientIDs = append(clientIDs, s.ID)
	}
	waitFor(t, guard, func() bool {
		a.must(t, http.MethodGet, "/servers/"+srv.ID, "", http.StatusOK, &srv)
		return srv.Accepted == nAccepted
	})

	// Long polls waiting on sockets whose one message they acknowledged:
	// once a socket holds no message, its poll is waiting in the engine.
	polled := make(chan pollResult, nPolls)
	for _, id := range srv.Sockets[:nPolls] {
		waitFor(t, guard, func() bool {
			var s shutdownSocket
			a.must(t, http.MethodGet, "/sockets/"+id, "", http.StatusOK, &s)
			return s.BufferedMessages == 1
		})
		go func() {
			status, b, err := a.do(context.Background(), http.MethodGet, "/sockets/"+id+"/messages?after=1&wait=2m", "", nil)
			polled <- pollResult{status: status, body: b, err: err}
		}()
	}
	for _, id := range srv.Sockets[:nPolls] {
		waitFor(t, guard, func() bool {
			var s shutdownSocket
			a.must(t, http.MethodGet, "/sockets/"+id, "", http.StatusOK, &s)
			return s.BufferedMessages == 0
		})
	}

	// A raw send whose body is still streaming, its first KiB delivered.
	streamPeer := peers[nAccepted] // the peer of the first client socket
	pr, pw := io.Pipe()
	sent := make(chan pollResult, 1)
	sendPath := "/sockets/" + clientIDs[0] + "/messages"
	go func() {
		status, header, b, err := a.doHeader(context.Background(), http.MethodPost, sendPath, "application/octet-stream", pr)
		sent <- pollResult{status, header, b, err}
	}()
	go pw.Write(make([]byte, 1024))
	streamPeer.SetReadDeadline(time.Now().Add(guard))
	if _, err := io.ReadFull(streamPeer, make([]byte, 1024)); err != nil {
		t.Fatalf("the streaming send's first KiB: %v", err)
	}

	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitLog(t, "shutting down")
	// The body keeps coming; the send must end with the shutdown, as a
	// problem, not as an internal error.
	var send pollResult
	tick := time.NewTicker(10 * time.Millisecond)
	for done := false; !done; {
		select {
		case send = <-sent:
			done = true
		case <-tick.C:
			go pw.Write([]byte("more")) // ends when the pipe closes
		case <-time.After(guard):
			t.Fatalf("the streaming send still runs %v after SIGTERM", guard)
		}
	}
	tick.Stop()
	pw.CloseWithError(errors.New("test over"))
	var p struct {
		Type   string
		Status int
	}
	if send.err != nil || send.status != http.StatusServiceUnavailable || json.Unmarshal(send.body, &p) != nil || p.Status != http.StatusServiceUnavailable {
		t.Errorf("send streaming at the shutdown: got %d %s (%v), want a 503 problem", send.status, send.body, send.err)
	} else {
		v, err := contract.New(sockman.OpenAPI)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, a.base+sendPath, nil)
		req.Header.Set("Content-Type", "application/octet-stream")
		if err := v.Check(req, []byte("streamed"), send.status, send.header, send.body); err != nil {
			t.Errorf("the 503 of a send cut by the shutdown: %v", err)
		}
	}

	var code int
	select {
	case code = <-c.ran:
	case <-c.exited:
		t.Fatalf("sockman exited (%v) without returning from run; its log:\n%s", c.err, c.logs)
	case <-time.After(60*time.Second + guard):
		t.Fatalf("sockman still shutting down %v after SIGTERM; its log:\n%s", 60*time.Second+guard, c.logs)
	}
	t.Logf("%d sockets, %d long polls: run returned %d %v after SIGTERM", nAccepted+nClients, nPolls, code, time.Since(start))
	if code != 0 {
		t.Errorf("run: got exit code %d, want 0; log:\n%s", code, c.logs)
	}
	if strings.Contains(c.logs.String(), "requests still running at the shutdown timeout were cut") {
		t.Errorf("the shutdown timeout cut requests, want every request finished before it; log:\n%s", c.logs)
	}

	// Every long poll was answered.
	for range nPolls {
		r := <-polled
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("long poll at the shutdown: got %d %s (%v), want 200", r.status, r.body, r.err)
		}
	}
	// Every peer was closed by sockman, while its process still runs.
	for i, p := range peers {
		p.SetReadDeadline(time.Now().Add(guard))
		if _, err := io.Copy(io.Discard, p); err != nil {
			t.Fatalf("peer %d: got %v, want the clean close of a shutdown", i, err)
		}
	}

	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(guard):
		t.Fatalf("sockman did not exit after run returned")
	}
	if c.err != nil {
		t.Fatalf("sockman exit: got %v, want 0 (3 means goroutines were left); log tail:\n%s", c.err, tail(c.logs.String(), 40))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
