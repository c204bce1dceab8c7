package sockets

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/fakedns"
	"github.com/sockman/sockman/internal/testnet"
)

// These tests run the connect and listen policies end to end, through
// Registry.Dial and Registry.Listen, with real sockets. Every address is a
// loopback address: the policy allows 127.0.0.2 only, so that 127.0.0.1 and
// ::1 are "denied addresses" that can be dialled without leaving the
// machine. Canary listeners on the denied addresses prove that a denied
// connect sent nothing: not even a SYN reaches them. Names are resolved by a
// fake DNS server on 127.0.0.1 (internal/fakedns), never by the machine's.

var (
	allowedIP = netip.MustParseAddr("127.0.0.2")
	deniedIP4 = netip.MustParseAddr("127.0.0.1")
	deniedIP6 = netip.MustParseAddr("::1")
)

// policyNet is testnet.PolicyNet, a target on the allowed address and
// canaries on the denied ones, with a fake DNS server that setNames fills.
type policyNet struct {
	*testnet.PolicyNet
	dns *fakedns.Server
}

func newPolicyNet(t testing.TB) *policyNet {
	t.Helper()
	n := &policyNet{PolicyNet: testnet.NewPolicyNet(t), dns: fakedns.Start(t)}
	n.setNames()
	return n
}

// setNames fills the fake DNS server. Odd spellings of 127.0.0.1 are names
// to Go (it does not parse them as IPs): here they resolve to a denied
// address, as a C library's inet_aton would read them.
func (n *policyNet) setNames() {
	n.dns.Set("allowed.test", allowedIP)
	n.dns.Set("denied4.test", deniedIP4)
	n.dns.Set("denied6.test", deniedIP6)
	n.dns.Set("denied-both.test", deniedIP4, deniedIP6)
	n.dns.Set("mapped.test", netip.MustParseAddr("::ffff:127.0.0.1"))
	n.dns.Set("one-allowed.test", allowedIP, deniedIP6) // the allowed one is used
	n.dns.Set("empty.test")
	for _, odd := range oddSpellings {
		n.dns.Set(odd, deniedIP4)
	}
}

// oddSpellings of 127.0.0.1 that Go does not parse as an IP address.
var oddSpellings = []string{
	"127.1", "127.0.1", "2130706433", "0x7f.0.0.1", "0x7f.1", "0x7f000001", "0177.0.0.1",
	"0177.0.0.01", "127.0.0.01", "127.000.000.001", "017700000001", "127.0.0.1.",
}

// policyRegistry is a registry whose connect and listen policies allow
// 127.0.0.2 only, resolving with the fake DNS server.
func policyRegistry(t testing.TB, n *policyNet) *Registry {
	t.Helper()
	connect, err := ParsePolicy("--allow-connect", []string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	listen, err := ParsePolicy("--allow-listen", []string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	return newTestRegistry(t, Config{
		ConnectPolicy: connect,
		ListenPolicy:  listen,
		Resolver:      n.dns.Resolver(),
		DialTimeout:   guard,
	})
}

// dialOutcome is what a Dial must come to.
type dialOutcome int

const (
	connects   dialOutcome = iota + 1 // connected to the target on 127.0.0.2
	forbidden                         // ErrForbidden naming the rules
	unresolved                        // ErrConnectFailed or ErrInvalid: no address to dial
	invalid                           // ErrInvalid: not a host sockman accepts
)

func (o dialOutcome) String() string {
	return [...]string{"", "connects", "forbidden", "unresolved", "invalid"}[o]
}

// dialTable is every spelling of an address the connect policy must see
// through. v6 marks rows that need an IPv6 loopback.
var dialTable = []struct {
	host string
	want dialOutcome
	v6   bool
}{
	// IPv4 literals.
	{"127.0.0.2", connects, false},
	{"127.0.0.1", forbidden, false},
	// IPv4-mapped IPv6 literals: matched as the IPv4 address they carry.
	{"::ffff:127.0.0.2", connects, false},
	{"::FFFF:127.0.0.2", connects, false},
	{"::ffff:7f00:2", connects, false},
	{"0:0:0:0:0:ffff:7f00:0002", connects, false},
	{"::ffff:127.0.0.1", forbidden, false},
	{"::ffff:7f00:1", forbidden, false},
	{"0:0:0:0:0:ffff:127.0.0.1", forbidden, false},
	{"0000:0000:0000:0000:0000:ffff:7f00:0001", forbidden, false},
	{"::ffff:127.0.0.1%lo", forbidden, false},
	// IPv6 literals of ::1, zones included.
	{"::1", forbidden, true},
	{"0:0:0:0:0:0:0:1", forbidden, true},
	{"0000:0000:0000:0000:0000:0000:0000:0001", forbidden, true},
	{"::0:1", forbidden, true},
	{"0::1", forbidden, true},
	{"0:0::1", forbidden, true},
	{"::0.0.0.1", forbidden, true},
	{"::1%lo", forbidden, true},
	{"::1%1", forbidden, true},
	// Names from /etc/hosts (localhost) and from the fake DNS server.
	{"localhost", forbidden, false},
	{"LOCALHOST", forbidden, false},
	{"localhost.", forbidden, false}, // from the hosts file too, never DNS
	{"LocalHost.", forbidden, false},
	// IPv6 forms that carry the allowed address reach it through a
	// translator or tunnel off the machine: the IPv4 rule does not allow them.
	{"::ffff:0:127.0.0.2", forbidden, false},
	{"::127.0.0.2", forbidden, false},
	{"64:ff9b::127.0.0.2", forbidden, false},
	{"2002:7f00:2::1", forbidden, false},
	{"allowed.test", connects, false},
	{"ALLOWED.test.", connects, false},
	{"denied4.test", forbidden, false},
	{"denied6.test", forbidden, true},
	{"denied-both.test", forbidden, false},
	{"mapped.test", forbidden, false},
	{"one-allowed.test", connects, false},
	{"empty.test", unresolved, false},
	{"nosuch.test", unresolved, false},
	// Legacy numeric spellings of 127.0.0.1 (inet_aton's) are refused
	// before any lookup, even those with a letter that DNS would be asked for.
	{"0x7f.0.0.1", invalid, false},
	{"0x7f.1", invalid, false},
	{"0x7f000001", invalid, false},
	{"127.1", invalid, false},
	{"127.0.1", invalid, false},
	{"2130706433", invalid, false},
	{"017700000001", invalid, false},
	{"0177.0.0.1", invalid, false},
	{"0177.0.0.01", invalid, false},
	{"127.0.0.01", invalid, false},
	{"127.000.000.001", invalid, false},
	{"127.0.0.1.", invalid, false},
	// Malformed hosts.
	{"127.0.0.1%lo", invalid, false},
	{"127.0.0.1:80", invalid, false},
	{" 127.0.0.1", invalid, false},
	{"[127.0.0.1]", invalid, false},
	{"[::1]", forbidden, true},
}

func TestDialPolicyTable(t *testing.T) {
	n := newPolicyNet(t)
	r := policyRegistry(t, n)
	for _, tt := range dialTable {
		t.Run(tt.host, func(t *testing.T) {
			if tt.v6 && n.Canary6 == nil {
				t.Skip("no IPv6 loopback")
			}
			s, err := r.Dial(context.Background(), DialOptions{Host: tt.host, Port: n.Port})
			switch tt.want {
			case connects:
				if err != nil {
					t.Fatalf("Dial(%q): got %v, want a connection to 127.0.0.2", tt.host, err)
				}
				defer r.DeleteSocket(s.ID())
				if got, want := s.Info().RemoteAddress, net.JoinHostPort("127.0.0.2", strconv.Itoa(n.Port)); got != want {
					t.Fatalf("Dial(%q): remote address got %s, want %s", tt.host, got, want)
				}
				peer := acceptPolicyPeer(t, n.Target)
				peer.Close()
			case forbidden:
				if !errors.Is(err, ErrForbidden) {
					t.Fatalf("Dial(%q): got %v, want %v", tt.host, err, ErrForbidden)
				}
				if msg := err.Error(); !strings.HasPrefix(msg, ErrForbidden.Error()+": ") || !strings.Contains(msg, "--allow-connect") || !strings.Contains(msg, "127.0.0.2") {
					t.Fatalf("Dial(%q): got %q, want the policy's own message (no Go prefix) naming --allow-connect and its rule 127.0.0.2", tt.host, msg)
				}
			case invalid:
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Dial(%q): got %v, want %v", tt.host, err, ErrInvalid)
				}
			case unresolved:
				if !errors.Is(err, ErrConnectFailed) && !errors.Is(err, ErrInvalid) {
					t.Fatalf("Dial(%q): got %v, want %v or %v", tt.host, err, ErrConnectFailed, ErrInvalid)
				}
			}
		})
	}
	n.Canary4.Untouched(t)
	if n.Canary6 != nil {
		n.Canary6.Untouched(t)
	}
	if got := len(r.Sockets(SocketFilter{})); got != 0 {
		t.Errorf("sockets left: got %d, want 0", got)
	}
	for _, odd := range []string{"127.1", "2130706433", "0177.0.0.1", "127.0.0.01"} {
		if q := n.dns.Queries(odd); q != 0 {
			t.Errorf("DNS queries for %q: got %d, want 0 (Go's resolver does not ask for all-numeric names)", odd, q)
		}
	}
}

func acceptPolicyPeer(t testing.TB, ln *net.TCPListener) net.Conn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(guard))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("target %s: accept: %v", ln.Addr(), err)
	}
	return c
}

// A name that first resolves to an allowed address and then to a denied one
// (DNS rebinding) is checked on each resolution: the second connect is
// refused and reaches nothing.
func TestDialPolicyRebinding(t *testing.T) {
	n := newPolicyNet(t)
	r := policyRegistry(t, n)
	n.dns.SetSequence("rebind.test", []netip.Addr{allowedIP}, []netip.Addr{deniedIP4})

	s, err := r.Dial(context.Background(), DialOptions{Host: "rebind.test", Port: n.Port})
	if err != nil {
		t.Fatalf("first Dial(rebind.test): got %v, want a connection to 127.0.0.2", err)
	}
	acceptPolicyPeer(t, n.Target).Close()
	r.DeleteSocket(s.ID())

	_, err = r.Dial(context.Background(), DialOptions{Host: "rebind.test", Port: n.Port})
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("second Dial(rebind.test): got %v, want %v naming 127.0.0.1", err, ErrForbidden)
	}
	n.Canary4.Untouched(t)
}

// Without rules the connect policy allows loopback: the default denies only
// link-local and metadata addresses (tested on Policy.Check, never dialled).
func TestDialDefaultPolicyAllowsLoopback(t *testing.T) {
	n := newPolicyNet(t)
	r := newTestRegistry(t, Config{Resolver: n.dns.Resolver()})
	for _, host := range []string{"127.0.0.1", "::ffff:127.0.0.1", "denied4.test"} {
		s, err := r.Dial(context.Background(), DialOptions{Host: host, Port: n.Port})
		if err != nil {
			t.Fatalf("Dial(%q) with the default policy: got %v, want a connection", host, err)
		}
		r.DeleteSocket(s.ID())
	}
}

// A name whose lookup never ends is bounded by the connect timeout.
func TestDialTimeoutBoundsTheLookup(t *testing.T) {
	n := newPolicyNet(t)
	r := policyRegistry(t, n)
	n.dns.Drop("blackhole.test")
	_, err := r.Dial(context.Background(), DialOptions{Host: "blackhole.test", Port: n.Port, Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("Dial(blackhole.test): got %v, want %v", err, ErrConnectTimeout)
	}
}

var listenTable = []struct {
	host string
	want dialOutcome // connects here means "binds"
	v6   bool
}{
	{"127.0.0.2", connects, false},
	{"::ffff:127.0.0.2", connects, false},
	{"::ffff:7f00:2", connects, false},
	{"allowed.test", connects, false},
	{"", forbidden, false}, // the default host, 127.0.0.1
	{"127.0.0.1", forbidden, false},
	{"::ffff:127.0.0.1", forbidden, false},
	{"::1", forbidden, true},
	{"0:0:0:0:0:0:0:1", forbidden, true},
	{"::1%lo", forbidden, true},
	{"0.0.0.0", forbidden, false},
	{"::", forbidden, true},
	{"localhost", forbidden, false},
	{"localhost.", forbidden, false},
	{"::ffff:0:127.0.0.2", forbidden, false},
	{"denied4.test", forbidden, false},
	{"denied6.test", forbidden, true},
	{"0x7f.0.0.1", invalid, false},
	{"127.1", invalid, false},
	{"2130706433", invalid, false},
	{"nosuch.test", unresolved, false},
}

func TestListenPolicyTable(t *testing.T) {
	n := newPolicyNet(t)
	r := policyRegistry(t, n)
	for _, tt := range listenTable {
		t.Run(tt.host, func(t *testing.T) {
			if tt.v6 && n.Canary6 == nil {
				t.Skip("no IPv6 loopback")
			}
			srv, err := r.Listen(context.Background(), ListenOptions{Host: tt.host})
			switch tt.want {
			case connects:
				if err != nil {
					t.Fatalf("Listen(%q): got %v, want a server on 127.0.0.2", tt.host, err)
				}
				defer r.DeleteServer(srv.Info().ID, true)
				if got := srv.Info().Address; !strings.HasPrefix(got, "127.0.0.2:") {
					t.Fatalf("Listen(%q): bound %s, want 127.0.0.2:port", tt.host, got)
				}
			case forbidden:
				if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "--allow-listen") {
					t.Fatalf("Listen(%q): got %v, want %v naming --allow-listen", tt.host, err, ErrForbidden)
				}
			case unresolved, invalid:
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Listen(%q): got %v, want %v", tt.host, err, ErrInvalid)
				}
			}
		})
	}
	if got := len(r.Servers()); got != 0 {
		t.Errorf("servers left: got %d, want 0", got)
	}
}

// A denied listen never binds: the port it asked for is still free.
func TestListenDeniedDoesNotBind(t *testing.T) {
	n := newPolicyNet(t)
	r := policyRegistry(t, n)
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	_, err = r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1", Port: port})
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("Listen(127.0.0.1:%d): got %v, want %v", port, err, ErrForbidden)
	}
	again, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("binding 127.0.0.1:%d after the denied listen: got %v, want nil (the port is free)", port, err)
	}
	again.Close()
}
