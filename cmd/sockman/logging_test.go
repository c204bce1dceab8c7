package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// refusedAddr returns a loopback address nothing listens on (it was just
// closed): a connect to it is refused at once.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// floodRefused sends n connects to a port that refuses them; each is a 502.
func floodRefused(t *testing.T, s *service, n int) {
	t.Helper()
	addr := refusedAddr(t)
	for range n {
		s.connect(t, addr).want(t, 502)
	}
}

// A refused connect is the user's expected outcome, told in its 502: it is
// not logged at ERROR. At --log-level error a flood of them writes nothing.
func TestRefusedConnectsAtLogLevelErrorWriteNothing(t *testing.T) {
	s := startService(t, []string{"--log-level", "error"})
	floodRefused(t, s, 300)
	if out := s.stderr.String(); out != "" {
		t.Errorf("300 refused connects at --log-level error wrote:\n%s", tail(out, 2000))
	}
}

// At --log-level info a flood of refused connects is logged at INFO, at
// most --log-max-similar lines a second.
func TestRefusedConnectsFloodIsBounded(t *testing.T) {
	const perSecond = 5
	s := startService(t, []string{"--log-level", "info", "--log-max-similar", fmt.Sprint(perSecond)})
	start := time.Now()
	floodRefused(t, s, 300)
	elapsed := time.Since(start)
	out := s.stderr.String()
	n := strings.Count(out, `msg="answered connect-failed"`)
	// A kind's window starts with its first line after the last ran out:
	// over elapsed, at most elapsed/1s + 2 windows.
	bound := perSecond * (int(elapsed/time.Second) + 2)
	if n == 0 || n > bound {
		t.Errorf("300 refused connects in %v wrote %d lines, want 1 to %d:\n%s", elapsed, n, bound, tail(out, 2000))
	}
	if strings.Contains(out, "level=ERROR") || !strings.Contains(out, `level=INFO msg="answered connect-failed"`) {
		t.Errorf("want the refused connects at INFO and no ERROR line:\n%s", tail(out, 2000))
	}
	t.Logf("300 refused connects in %v: %d lines (bound %d)", elapsed, n, bound)
}

// --log-max-similar takes 0 (no limit) and refuses a negative count.
func TestLogMaxSimilarFlag(t *testing.T) {
	if _, err := parseWithEnv(t, "--log-max-similar", "-1"); err == nil || !strings.Contains(err.Error(), "--log-max-similar") {
		t.Errorf("--log-max-similar -1: got %v, want an error naming the flag", err)
	}
	t.Setenv("SOCKMAN_LOG_MAX_SIMILAR", "0")
	if c, err := parseWithEnv(t); err != nil || c.LogMaxSimilar != 0 {
		t.Errorf("SOCKMAN_LOG_MAX_SIMILAR=0: got %d, %v; want 0", c.LogMaxSimilar, err)
	}
}
