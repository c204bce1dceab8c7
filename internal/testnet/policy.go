package testnet

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// portTries bounds the ports NewPolicyNet tries before it gives up finding
// one free on every address at once.
const portTries = 20

// canaryWait bounds the marker connect and the accept of Canary.Untouched:
// a guard against a stall, never reached on a working loopback.
const canaryWait = 10 * time.Second

// PolicyNet is the loopback network of the connect and listen policy tests.
// Their policies allow 127.0.0.2 only, which leaves 127.0.0.1 and ::1 as
// denied addresses that can be dialled without leaving the machine. A
// target listens on the allowed address and canaries on the denied ones,
// all on the same port, so that a connect the policy should have refused,
// whatever spelling of the address led it there, lands on a canary.
type PolicyNet struct {
	Port    int
	Target  *net.TCPListener // 127.0.0.2:Port
	Canary4 *Canary          // 127.0.0.1:Port
	Canary6 *Canary          // [::1]:Port; nil when the machine has no IPv6 loopback
}

// NewPolicyNet binds the target and the canaries, retrying with another
// port until one is free on all of their addresses. It skips the test where
// 127.0.0.2 cannot be bound. The listeners are closed when the test ends.
func NewPolicyNet(t testing.TB) *PolicyNet {
	t.Helper()
	v6 := ipv6Loopback()
	for range portTries {
		target, err := net.Listen("tcp4", "127.0.0.2:0")
		if err != nil {
			t.Skipf("cannot listen on 127.0.0.2 (only Linux routes all of 127/8 to loopback): %v", err)
		}
		port := target.Addr().(*net.TCPAddr).Port
		c4, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			target.Close()
			continue
		}
		var c6 net.Listener
		if v6 {
			if c6, err = net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port))); err != nil {
				target.Close()
				c4.Close()
				continue
			}
		}
		n := &PolicyNet{Port: port, Target: target.(*net.TCPListener), Canary4: &Canary{c4.(*net.TCPListener)}}
		t.Cleanup(func() { target.Close(); c4.Close() })
		if c6 != nil {
			n.Canary6 = &Canary{c6.(*net.TCPListener)}
			t.Cleanup(func() { c6.Close() })
		}
		return n
	}
	t.Fatalf("no port free on 127.0.0.2, 127.0.0.1 and ::1 at once after %d tries", portTries)
	return nil
}

// ipv6Loopback reports whether the machine can listen on ::1.
func ipv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// Canary is a loopback listener that nothing may connect to. It never
// accepts until Untouched is called, so whatever reached it waits in its
// backlog, in order of arrival.
type Canary struct {
	ln *net.TCPListener
}

// Untouched fails the test unless no connection reached the canary: it
// connects a marker of its own and requires the first connection the canary
// accepts to be the marker.
func (c *Canary) Untouched(t testing.TB) {
	t.Helper()
	marker, err := net.DialTimeout("tcp", c.ln.Addr().String(), canaryWait)
	if err != nil {
		t.Fatalf("canary %s: marker connect: %v", c.ln.Addr(), err)
	}
	defer marker.Close()
	c.ln.SetDeadline(time.Now().Add(canaryWait))
	first, err := c.ln.Accept()
	if err != nil {
		t.Fatalf("canary %s: accept: %v", c.ln.Addr(), err)
	}
	defer first.Close()
	if got, want := first.RemoteAddr().String(), marker.LocalAddr().String(); got != want {
		t.Fatalf("canary %s: got a connection from %s before the marker %s, want none: a denied connect reached it", c.ln.Addr(), got, want)
	}
}
