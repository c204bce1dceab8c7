package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/testnet"
)

// startLimitedChild runs `sockman serve args...` in a child process whose
// open files limit is nofile. With serving set, it waits until the child
// serves.
func startLimitedChild(t *testing.T, nofile int, serving bool, args ...string) *child {
	t.Helper()
	env := []string{fmt.Sprintf("%s=%d", childFilesEnv, nofile)}
	if serving {
		c := spawnChild(t, env, args...)
		line := c.waitLog(t, "sockman serving")
		m := servingAddrRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("serving line %q has no addr", line)
		}
		c.addr = m[1]
		return c
	}
	return spawnChild(t, env, args...)
}

// returned waits for run to return in the child and gives its exit code.
func (c *child) returned(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.ran:
		return code
	case <-c.exited:
		t.Fatalf("sockman exited (%v) without returning from run; its log:\n%s", c.err, c.logs)
	case <-time.After(guard):
		t.Fatalf("sockman still runs after %v; its log:\n%s", guard, c.logs)
	}
	return -1
}

// terminate sends SIGTERM to the child and gives run's exit code.
func (c *child) terminate(t *testing.T) int {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return c.returned(t)
}

// files counts the child's open descriptors, or returns -1 when it cannot.
func (c *child) files() int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	return len(entries)
}

// sampleFiles polls the child's descriptor count until stop is called, and
// returns the highest.
func sampleFiles(c *child) (stop func() int) {
	var peak atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			peak.Store(max(peak.Load(), int64(c.files())))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() int {
		close(done)
		wg.Wait()
		return int(peak.Load())
	}
}

// Thousands of idle connections, reconnecting as soon as they are closed,
// cannot take the API's descriptors: --max-api-conns holds them to the cap,
// the oldest are closed to make room, and an authorized request on a fresh
// connection is served, as is /healthz. The child runs with a low
// RLIMIT_NOFILE, which the flood would exhaust without the cap.
func TestIdleConnsDoNotStarveTheAPI(t *testing.T) {
	const (
		flood  = 2500
		cap    = 128
		nofile = 512
	)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startLimitedChild(t, nofile, true, "--addr", "127.0.0.1:0", "--token-file", tokenFile,
		"--max-sockets", "100", "--max-servers", "10", "--max-api-conns", fmt.Sprint(cap), "--read-header-timeout", "1m")
	base := c.files()
	if base < 0 {
		t.Skip("cannot count the child's descriptors in /proc")
	}
	target := listenLoopback(t, "127.0.0.1:0")
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: guard}
	call := func(method, path, body string) response {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+c.addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		start := time.Now()
		var local string
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { local = i.Conn.LocalAddr().String() }}))
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s during the flood, from %s: %v; want an answer", method, path, local, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		t.Logf("%s %s: %d after %v", method, path, res.StatusCode, time.Since(start).Round(time.Millisecond))
		return response{status: res.StatusCode, header: res.Header, body: b}
	}

	peakFiles := sampleFiles(c)
	f := testnet.StartIdleFlood(c.addr, flood)
	waitFor(t, guard, func() bool { return f.Dials.Load() >= flood && f.Closed.Load() >= flood-cap })

	var ids []string
	for range 3 {
		call("GET", "/healthz", "").want(t, 200)
		var s socketInfo
		call("POST", "/clients", fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, target.Addr().(*net.TCPAddr).Port)).want(t, 201).decode(t, &s)
		acceptOne(t, target)
		ids = append(ids, s.ID)
	}
	f.Stop()
	peak := peakFiles()
	t.Logf("%d idle connections opened, %d closed by the server; child descriptors: %d before, %d at the peak (limit %d)",
		f.Dials.Load(), f.Closed.Load(), base, peak, nofile)
	if peak > base+cap+len(ids)+2 {
		t.Errorf("the child held %d descriptors at the peak, want at most %d (%d before, the cap %d, %d sockets, 2 in flight)", peak, base+cap+len(ids)+2, base, cap, len(ids))
	}
	for _, id := range ids {
		call("DELETE", "/sockets/"+id, "").want(t, 204)
	}
	waitFor(t, guard, func() bool { return c.files() <= base })
	if strings.Contains(c.logs.String(), "too many open files") {
		t.Errorf("the child ran out of descriptors:\n%s", c.logs)
	}
	if !strings.Contains(c.logs.String(), "the API holds --max-api-conns connections") {
		t.Errorf("the child did not warn that the API was full; its log:\n%s", c.logs)
	}
	if code := c.terminate(t); code != 0 {
		t.Errorf("run returned %d after SIGTERM, want 0; its log:\n%s", code, c.logs)
	}
}

// exchange writes one request on c and reads its answer.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, host, path string) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(guard))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: reading the answer to GET %s: %v", c.LocalAddr(), path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// At the cap's edge: below --max-api-conns nothing is closed; once the
// last slot is taken, the oldest connection that has sent nothing is
// closed, and the newcomer is served; a connection idle at the cap is
// closed; a request in progress is never cut.
func TestMaxAPIConnsEdge(t *testing.T) {
	t.Run("below the cap nothing is closed", func(t *testing.T) {
		s := startService(t, []string{"--max-api-conns", "3"})
		a := s.rawConn(t)
		b := s.rawConn(t)
		bb := bufio.NewReader(b)
		if got := exchange(t, b, bb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("got %d, want 200", got)
		}
		if got := exchange(t, a, bufio.NewReader(a), s.addr, "/healthz"); got != 200 {
			t.Fatalf("the first connection, after another was served below the cap: got %d, want 200", got)
		}
		if got := exchange(t, b, bb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("the kept-alive connection below the cap: got %d, want 200", got)
		}
	})
	t.Run("the last slot closes the oldest waiting connection", func(t *testing.T) {
		s := startService(t, []string{"--max-api-conns", "3"})
		a := s.rawConn(t) // sends nothing
		b := s.rawConn(t) // sends nothing
		c := s.rawConn(t) // takes the last slot: a is closed
		cb := bufio.NewReader(c)
		if got := exchange(t, c, cb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("the connection at the cap: got %d, want 200", got)
		}
		if got := waitClosed(t, a); len(got) != 0 {
			t.Errorf("the oldest connection got %q, want it closed without an answer", got)
		}
		// That made room: below the cap again, b and c are served.
		if got := exchange(t, b, bufio.NewReader(b), s.addr, "/healthz"); got != 200 {
			t.Fatalf("the second connection: got %d, want 200", got)
		}
		if got := exchange(t, c, cb, s.addr, "/healthz"); got != 200 {
			t.Fatalf("the connection that was served, again: got %d, want 200", got)
		}
	})
	t.Run("a request in progress is not cut", func(t *testing.T) {
		s := startService(t, []string{"--max-api-conns", "2"})
		a := s.rawConn(t)
		a.SetDeadline(time.Now().Add(guard))
		const body = `{"port":0}`
		fmt.Fprintf(a, "POST /servers HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", s.addr, len(body))
		// The handler reads the body: sockman is working on a's request.
		ab := bufio.NewReader(a)
		if line, err := ab.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("got %q (%v), want 100 Continue", line, err)
		}
		ab.ReadString('\n') // the empty line after it
		// b takes the last slot while a's request is in progress; a is not
		// closed for it. b is served, then closed once it has been idle for
		// quietFor at the cap.
		b := s.rawConn(t)
		if got := exchange(t, b, bufio.NewReader(b), s.addr, "/healthz"); got != 200 {
			t.Fatalf("the connection at the cap: got %d, want 200", got)
		}
		waitClosed(t, b)
		if _, err := io.WriteString(a, body); err != nil {
			t.Fatalf("finishing the request in progress: %v", err)
		}
		res, err := http.ReadResponse(ab, nil)
		if err != nil {
			t.Fatalf("the request in progress: %v, want its answer", err)
		}
		res.Body.Close()
		if res.StatusCode != 201 {
			t.Errorf("the request in progress: got %d, want 201", res.StatusCode)
		}
	})
}

// The descriptor limits must fit RLIMIT_NOFILE: limits given as flags are
// kept or refused with an error that says what to change; defaults are
// scaled down to fit, with a warning.
func TestFitFiles(t *testing.T) {
	defaults := filesNeeded(mustParse(t))
	for _, tt := range []struct {
		name              string
		args              []string
		limit             uint64
		wantErr, wantWarn []string
		check             func(t *testing.T, c serveConfig)
	}{
		{name: "defaults fit", limit: defaults},
		{name: "given limits fit to the descriptor", args: []string{"--max-sockets", "100", "--max-servers", "10", "--max-api-conns", "16"}, limit: 100 + 20 + 16 + fdReserve},
		{name: "given limits one descriptor over", args: []string{"--max-sockets", "100", "--max-servers", "10", "--max-api-conns", "16"}, limit: 100 + 20 + 16 + fdReserve - 1,
			wantErr: []string{"need 200 file descriptors", "ulimit -n) is 199", "--max-sockets 100", "--max-servers 10 (2 descriptors each", "--max-api-conns 16", "raise it", "LimitNOFILE=200", "or lower"}},
		{name: "defaults scaled to 4096", limit: 4096,
			wantWarn: []string{"ulimit -n) is 4096", fmt.Sprintf("the %d descriptors", defaults), "--max-sockets", "--max-servers", "--max-api-conns", "raise the limit"},
			check: func(t *testing.T, c serveConfig) {
				if n := filesNeeded(c); n > 4096 || n < 4000 {
					t.Errorf("scaled limits need %d descriptors, want at most 4096 and not much less", n)
				}
			}},
		{name: "a given limit stays, the defaults make room", args: []string{"--max-api-conns", "100"}, limit: 1024,
			wantWarn: []string{"--max-sockets", "--max-servers"},
			check: func(t *testing.T, c serveConfig) {
				if c.MaxAPIConns != 100 || filesNeeded(c) > 1024 || c.MaxSockets < 600 {
					t.Errorf("got --max-api-conns %d, --max-sockets %d, need %d; want 100, most of what is left, at most 1024", c.MaxAPIConns, c.MaxSockets, filesNeeded(c))
				}
			}},
		{name: "given by env", limit: 1024, wantErr: []string{"--max-sockets 5000"}},
		{name: "no room left for the defaults", args: []string{"--max-sockets", "1000"}, limit: 1024, wantErr: []string{"--max-sockets 1000", "raise it"}},
		{name: "a limit below the reserve", limit: fdReserve, wantErr: []string{"raise it"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "given by env" {
				t.Setenv("SOCKMAN_MAX_SOCKETS", "5000")
			}
			c := mustParse(t, tt.args...)
			got, warn, err := fitFiles(c, tt.limit, tt.limit)
			switch {
			case len(tt.wantErr) > 0 && err == nil:
				t.Fatalf("got no error (limits %d/%d/%d), want one", got.MaxSockets, got.MaxServers, got.MaxAPIConns)
			case len(tt.wantErr) == 0 && err != nil:
				t.Fatalf("got %v, want no error", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want it to contain %q", err, w)
				}
			}
			if len(tt.wantWarn) == 0 && warn != "" {
				t.Errorf("got warning %q, want none", warn)
			}
			for _, w := range tt.wantWarn {
				if !strings.Contains(warn, w) {
					t.Errorf("warning %q: want it to contain %q", warn, w)
				}
			}
			if len(tt.wantErr) == 0 && len(tt.wantWarn) == 0 && got.MaxSockets != c.MaxSockets {
				t.Errorf("got --max-sockets %d, want it unchanged at %d", got.MaxSockets, c.MaxSockets)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func mustParse(t *testing.T, args ...string) serveConfig {
	t.Helper()
	c, err := parseServeFlags(args, os.LookupEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A real process with a small hard limit: with the defaults, serve scales
// them down and says so; with flags that do not fit, it refuses to start
// and says what to raise.
func TestServeChecksOpenFilesLimit(t *testing.T) {
	c := startLimitedChild(t, 1024, true, "--addr", "127.0.0.1:0")
	for _, w := range []string{"level=WARN", "ulimit -n) is 1024", "serving with --max-sockets"} {
		if !strings.Contains(c.logs.String(), w) {
			t.Errorf("log: want it to contain %q; got:\n%s", w, c.logs)
		}
	}
	if code := c.terminate(t); code != 0 {
		t.Errorf("run returned %d after SIGTERM, want 0", code)
	}

	c = startLimitedChild(t, 1024, false, "--addr", "127.0.0.1:0", "--max-sockets", "2000")
	if code := c.returned(t); code != 1 {
		t.Errorf("serve --max-sockets 2000 with a limit of 1024: run returned %d, want 1", code)
	}
	c.waitLog(t, "file descriptors") // stderr may come after stdout
	if strings.Contains(c.logs.String(), "sockman serving") {
		t.Errorf("serve --max-sockets 2000 with a limit of 1024 served, want a refusal before; log:\n%s", c.logs)
	}
	for _, w := range []string{"--max-sockets 2000", "ulimit -n) is 1024", "raise it", "or lower"} {
		if !strings.Contains(c.logs.String(), w) {
			t.Errorf("log: want it to contain %q; got:\n%s", w, c.logs)
		}
	}
}
