package main

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/sockets"
)

// The event flags have env twins and defaults, and refuse values that
// cannot work.
func TestEventFlags(t *testing.T) {
	c, err := parseWithEnv(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.EventHistory != sockets.DefaultEventHistory || c.EventHistoryBytes != sockets.DefaultEventHistoryBytes ||
		c.MaxSubscribers != sockets.DefaultMaxSubscribers || c.EventHeartbeat != api.DefaultEventHeartbeat {
		t.Errorf("defaults: got %d %d %d %v", c.EventHistory, c.EventHistoryBytes, c.MaxSubscribers, c.EventHeartbeat)
	}
	t.Setenv("SOCKMAN_EVENT_HISTORY", "7")
	t.Setenv("SOCKMAN_EVENT_HISTORY_BYTES", "2MiB")
	t.Setenv("SOCKMAN_MAX_SUBSCRIBERS", "3")
	t.Setenv("SOCKMAN_EVENT_HEARTBEAT", "2s")
	if c, err = parseWithEnv(t); err != nil {
		t.Fatal(err)
	}
	if c.EventHistory != 7 || c.EventHistoryBytes != 2<<20 || c.MaxSubscribers != 3 || c.EventHeartbeat != 2*time.Second {
		t.Errorf("env twins: got %d %d %d %v, want 7 2MiB 3 2s", c.EventHistory, c.EventHistoryBytes, c.MaxSubscribers, c.EventHeartbeat)
	}
	for _, args := range [][]string{
		{"--event-history", "0"}, {"--event-history", "1048577"}, {"--max-subscribers", "-1"}, {"--max-streams", "0"}, {"--event-heartbeat", "0s"}, {"--event-history-bytes", "0"},
	} {
		if _, err := parseWithEnv(t, args...); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(args[0], "-")) && !strings.Contains(err.Error(), "positive") {
			t.Errorf("%v: got %v, want an error naming the flag", args, err)
		}
	}
}

// openStream starts GET /events on base with client and returns the
// answer once its header came.
func openStream(t *testing.T, client *http.Client, base, query string) *http.Response {
	t.Helper()
	res, err := client.Get(base + "/events" + query)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: status %d, want 200", res.StatusCode)
	}
	return res
}

// TestEventStreamOutlivesRequestTimeout: an event stream is not cut by the
// HTTP server's read and write timeouts (here 400ms in all), only by the
// client; its heartbeats keep coming.
func TestEventStreamOutlivesRequestTimeout(t *testing.T) {
	s := startService(t, []string{"--read-header-timeout", "100ms", "--max-wait", "100ms", "--connect-timeout", "100ms",
		"--max-connect-timeout", "100ms", "--write-timeout", "100ms", "--event-heartbeat", "50ms"})
	client := &http.Client{Transport: s.tr}
	res := openStream(t, client, s.url, "")
	start := time.Now()
	br := bufio.NewReader(res.Body)
	pings := 0
	for time.Since(start) < time.Second {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %v and %d pings: %v, want the stream open", time.Since(start), pings, err)
		}
		if line == ": ping\n" {
			pings++
		}
	}
	if pings < 2 {
		t.Fatalf("%d pings in a second at a 50ms heartbeat", pings)
	}
}

// TestShutdownWithEventStreams sends SIGTERM to a sockman process with
// event streams open (one of them with a client that reads nothing): every
// stream ends, the process finishes within --shutdown-timeout, leaves no
// goroutine and exits 0.
func TestShutdownWithEventStreams(t *testing.T) {
	c := startChild(t, "--addr", "127.0.0.1:0", "--shutdown-timeout", "5s", "--event-heartbeat", "20ms")
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	a := apiClient{base: "http://" + c.addr, http: &http.Client{Transport: tr, Timeout: guard}}
	a.must(t, http.MethodPost, "/servers", `{"port":0}`, http.StatusCreated, nil)

	ended := make(chan error, 4)
	for _, q := range []string{"", "?data=true", "?types=server.*&after=0"} {
		res := openStream(t, client, a.base, q)
		go func() {
			_, err := io.Copy(io.Discard, res.Body)
			ended <- err
		}()
	}
	openStream(t, client, a.base, "?after=0") // never read

	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("stream at the shutdown: %v, want its clean end", err)
			}
		case <-time.After(guard):
			t.Fatal("a stream is still open after SIGTERM")
		}
	}
	var code int
	select {
	case code = <-c.ran:
	case <-c.exited:
		t.Fatalf("sockman exited (%v) without returning from run; its log:\n%s", c.err, c.logs)
	case <-time.After(guard):
		t.Fatalf("sockman still shutting down %v after SIGTERM; its log:\n%s", guard, c.logs)
	}
	if took := time.Since(start); code != 0 || took > 5*time.Second {
		t.Errorf("run returned %d after %v, want 0 within the 5s shutdown timeout; log:\n%s", code, took, c.logs)
	}
	if strings.Contains(c.logs.String(), "requests still running at the shutdown timeout were cut") {
		t.Errorf("the shutdown timeout cut requests, want every stream ended before it; log:\n%s", c.logs)
	}
	c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(guard):
		t.Fatal("sockman did not exit after run returned")
	}
	if c.err != nil {
		t.Fatalf("sockman exit: got %v, want 0 (3 means goroutines were left); log tail:\n%s", c.err, tail(c.logs.String(), 40))
	}
}
