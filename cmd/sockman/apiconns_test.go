package main

import (
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
