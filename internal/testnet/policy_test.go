package testnet

import (
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does, without failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// untouchedFails runs c.Untouched on a recorder and returns its Fatalf
// message, "" when it passed.
func untouchedFails(t *testing.T, c *Canary) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Untouched(r)
	}()
	<-done
	return r.msg
}

// The target and the canaries listen on their addresses, on one port, and
// a canary nothing dialled passes Untouched.
func TestPolicyNet(t *testing.T) {
	n := NewPolicyNet(t)
	bound := func(ln net.Listener, host string) {
		t.Helper()
		if got, want := ln.Addr().String(), net.JoinHostPort(host, strconv.Itoa(n.Port)); got != want {
			t.Errorf("listener: got %s, want %s", got, want)
		}
	}
	bound(n.Target, "127.0.0.2")
	bound(n.Canary4.ln, "127.0.0.1")
	canaries := []*Canary{n.Canary4}
	if n.Canary6 != nil {
		bound(n.Canary6.ln, "::1")
		canaries = append(canaries, n.Canary6)
	}
	for _, c := range canaries {
		if msg := untouchedFails(t, c); msg != "" {
			t.Errorf("Untouched on a canary nothing dialled: %s", msg)
		}
	}
}

// A connection that reached a canary before the marker fails Untouched.
func TestCanaryTouched(t *testing.T) {
	n := NewPolicyNet(t)
	c, err := net.Dial("tcp", n.Canary4.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := untouchedFails(t, n.Canary4)
	if want := "from " + c.LocalAddr().String() + " before the marker"; !strings.Contains(msg, want) {
		t.Errorf("Untouched after a connect: got %q, want a failure naming the connection (%q)", msg, want)
	}
}
