package sockets

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sockman/sockman/internal/fakedns"
)

// These tests pin what the policies see: the address a listener really
// binds (one family, never a dual-stack socket behind an IPv4 rule), every
// IPv6 spelling that carries an IPv4 address, and names with a final dot.
// Nothing here sends a packet off the machine: denied addresses are refused
// in Control, before connect or bind, and only loopback is ever dialled.

// listenRegistry is a registry whose listen policy is rules, resolving with
// a fake DNS server so that no lookup leaves the machine.
func listenRegistry(t testing.TB, rules ...string) *Registry {
	t.Helper()
	p, err := ParsePolicy("--allow-listen", rules)
	if err != nil {
		t.Fatal(err)
	}
	return newTestRegistry(t, Config{ListenPolicy: p, Resolver: fakedns.Start(t).Resolver()})
}

// needIPv6 skips the test where the machine has no IPv6 loopback.
func needIPv6(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
}

// refused requires a connect to addr to be refused: nothing listens there.
func refused(t testing.TB, addr, why string) {
	t.Helper()
	c, err := (&net.Dialer{Timeout: guard}).Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("connect to %s: got a connection, want it refused (%s)", addr, why)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to %s: got %v, want %v (%s)", addr, err, syscall.ECONNREFUSED, why)
	}
}

// An IPv4 host listens on IPv4 only: a rule for 0.0.0.0 allows a listener
// that reports 0.0.0.0:PORT and that an IPv6 peer cannot reach.
func TestListenIPv4AnyIsIPv4Only(t *testing.T) {
	needIPv6(t)
	r := listenRegistry(t, "0.0.0.0")
	srv, err := r.Listen(context.Background(), ListenOptions{Host: "0.0.0.0"})
	if err != nil {
		t.Fatalf("Listen(0.0.0.0) under --allow-listen 0.0.0.0: got %v, want a server", err)
	}
	defer r.DeleteServer(srv.Info().ID, true)
	addr := srv.Info().Address
	host, port, _ := net.SplitHostPort(addr)
	if host != "0.0.0.0" {
		t.Fatalf("Listen(0.0.0.0): address got %s, want 0.0.0.0:PORT (the address really bound)", addr)
	}
	refused(t, net.JoinHostPort("::1", port), "a listener on 0.0.0.0 is IPv4 only")
	dialPeer(t, net.JoinHostPort("127.0.0.1", port)).Close()
}

// An IPv6 host listens on IPv6 only (IPV6_V6ONLY): a [::] rule matches a
// listen on ::, which reports [::]:PORT and refuses IPv4 peers.
func TestListenIPv6AnyIsIPv6Only(t *testing.T) {
	needIPv6(t)
	r := listenRegistry(t, "[::]")
	srv, err := r.Listen(context.Background(), ListenOptions{Host: "::"})
	if err != nil {
		t.Fatalf("Listen(::) under --allow-listen [::]: got %v, want a server", err)
	}
	defer r.DeleteServer(srv.Info().ID, true)
	addr := srv.Info().Address
	host, port, _ := net.SplitHostPort(addr)
	if host != "::" {
		t.Fatalf("Listen(::): address got %s, want [::]:PORT", addr)
	}
	refused(t, net.JoinHostPort("127.0.0.1", port), "a listener on :: is IPv6 only")
	dialPeer(t, net.JoinHostPort("::1", port)).Close()
}

// A denial names the address that would have been bound, in its family.
func TestListenDenialNamesTheRealAddress(t *testing.T) {
	needIPv6(t)
	tests := []struct {
		rule, host, want, not string
	}{
		{"0.0.0.0", "::", "[::]:0 matches no", "0.0.0.0:0"},
		{"[::]", "0.0.0.0", "0.0.0.0:0 matches no", "[::]:0"},
		{"0.0.0.0", "[::]", "[::]:0 matches no", "0.0.0.0:0"},
	}
	for _, tt := range tests {
		t.Run(tt.rule+" "+tt.host, func(t *testing.T) {
			r := listenRegistry(t, tt.rule)
			_, err := r.Listen(context.Background(), ListenOptions{Host: tt.host})
			if !errors.Is(err, ErrForbidden) {
				t.Fatalf("Listen(%q) under --allow-listen %s: got %v, want %v", tt.host, tt.rule, err, ErrForbidden)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, tt.not) {
				t.Fatalf("Listen(%q): got %q, want it to name %q and not %q", tt.host, msg, tt.want, tt.not)
			}
		})
	}
}

// A dual-stack wildcard socket (Go's "tcp" on 0.0.0.0: an AF_INET6 socket
// passed to Control as network tcp6, address 0.0.0.0) binds [::] and takes
// both families: Control requires both 0.0.0.0 and :: to be allowed.
func TestControlDualStackWildcard(t *testing.T) {
	tests := []struct {
		rules []string
		want  error
	}{
		{[]string{"0.0.0.0"}, ErrForbidden},
		{[]string{"[::]"}, ErrForbidden},
		{[]string{"0.0.0.0", "[::]"}, nil},
	}
	for _, tt := range tests {
		err := mustPolicy(t, tt.rules...).Control("tcp6", "0.0.0.0:20055", nil)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("rules %v: Control(tcp6, 0.0.0.0:20055): got %v, want %v", tt.rules, err, tt.want)
		}
	}
	if err := mustPolicy(t, "0.0.0.0").Control("tcp4", "0.0.0.0:20055", nil); err != nil {
		t.Errorf("rules 0.0.0.0: Control(tcp4, 0.0.0.0:20055): got %v, want nil", err)
	}
}

// A dial of an IPv6 literal stays IPv6: a dial of :: is checked as [::]
// only, never retried as 0.0.0.0 (which an IPv4 rule would let reach the
// IPv4 loopback), and a v4-mapped literal is checked as the IPv4 address it
// carries.
func TestDialLiteralKeepsItsFamily(t *testing.T) {
	needIPv6(t)
	n := newPolicyNet(t)
	r := newTestRegistry(t, Config{ConnectPolicy: mustPolicy(t, "0.0.0.0, 127.0.0.2"), Resolver: n.dns.Resolver(), DialTimeout: guard})
	s, err := r.Dial(context.Background(), DialOptions{Host: "::", Port: n.Port})
	if err == nil {
		r.DeleteSocket(s.ID())
		t.Fatalf("Dial(::) under --allow-connect 0.0.0.0: connected to %s, want %v naming [::]", s.Info().RemoteAddress, ErrForbidden)
	}
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "[::]:"+strconv.Itoa(n.Port)) {
		t.Fatalf("Dial(::): got %v, want %v naming [::]:%d", err, ErrForbidden, n.Port)
	}
	s, err = r.Dial(context.Background(), DialOptions{Host: "::ffff:127.0.0.2", Port: n.Port})
	if err != nil {
		t.Fatalf("Dial(::ffff:127.0.0.2): got %v, want a connection to 127.0.0.2", err)
	}
	if got, want := s.Info().RemoteAddress, net.JoinHostPort("127.0.0.2", strconv.Itoa(n.Port)); got != want {
		t.Errorf("Dial(::ffff:127.0.0.2): remote got %s, want %s", got, want)
	}
	acceptPolicyPeer(t, n.Target).Close()
	r.DeleteSocket(s.ID())
	n.Canary4.Untouched(t)
	n.Canary6.Untouched(t)
}

// teredo builds a Teredo address (RFC 4380): 2001:0:SERVER:flags:port:CLIENT
// with the client address obfuscated (every bit inverted).
func teredo(server, client netip.Addr) netip.Addr {
	s, c := server.As4(), client.As4()
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0, 0, s[0], s[1], s[2], s[3], 0x80, 0, 0xff, 0xff,
		^c[0], ^c[1], ^c[2], ^c[3]})
}

// embeddedForm is one IPv6 spelling that carries an IPv4 address.
type embeddedForm struct {
	name   string
	mapped bool // matched as the IPv4 address alone (the same socket)
	local  bool // the local-use NAT64 prefix, whose layout is not known
	build  func(v4 netip.Addr) netip.Addr
}

// teredoPeer is the other end of a Teredo address in the table: a
// documentation address (TEST-NET-1), never dialled.
var teredoPeer = netip.MustParseAddr("192.0.2.1")

var embeddedForms = []embeddedForm{
	{"mapped ::ffff:0:0/96", true, false, func(v netip.Addr) netip.Addr { return netip.AddrFrom16(v.As16()) }},
	{"siit ::ffff:0:0:0/96", false, false, func(v netip.Addr) netip.Addr { return with4(v, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0) }},
	{"compatible ::/96", false, false, func(v netip.Addr) netip.Addr { return with4(v) }},
	{"nat64 64:ff9b::/96", false, false, func(v netip.Addr) netip.Addr { return with4(v, 0, 0x64, 0xff, 0x9b) }},
	{"nat64 local 64:ff9b:1::/48", false, true, func(v netip.Addr) netip.Addr { return with4(v, 0, 0x64, 0xff, 0x9b, 0, 1) }},
	{"6to4 2002::/16", false, false, func(v netip.Addr) netip.Addr {
		b := v.As4()
		return netip.AddrFrom16([16]byte{0x20, 0x02, b[0], b[1], b[2], b[3], 15: 1})
	}},
	{"teredo server", false, false, func(v netip.Addr) netip.Addr { return teredo(v, teredoPeer) }},
	{"teredo client", false, false, func(v netip.Addr) netip.Addr { return teredo(teredoPeer, v) }},
}

// with4 puts v in the last 32 bits after the prefix bytes given.
func with4(v netip.Addr, prefix ...byte) netip.Addr {
	var b [16]byte
	copy(b[:], prefix)
	a := v.As4()
	copy(b[12:], a[:])
	return netip.AddrFrom16(b)
}

// Every IPv6 form that carries an IPv4 address is checked as that address
// too: denied by default when it carries a metadata address, and allowed by
// rules only when the rules allow the IPv4 address it carries (and, but for
// the mapped form, the IPv6 address it is written as).
func TestPolicyEmbeddedIPv4Forms(t *testing.T) {
	metadata, loopback := netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("127.0.0.1")
	policies := []struct {
		name           string
		p              *Policy
		metadata, loop bool // whether each form of that address is allowed
		mappedLoop     bool // the mapped form of loopback
	}{
		{"default", mustPolicy(t), false, true, true},
		{"all ipv6 and loopback", mustPolicy(t, "[::]/0, 127.0.0.0/8, 192.0.2.0/24"), false, true, true},
		{"all ipv6", mustPolicy(t, "[::]/0, 192.0.2.0/24"), false, false, false},
		{"ipv4 only", mustPolicy(t, "127.0.0.0/8, 169.254.0.0/16, 192.0.2.0/24"), false, false, true},
		{"everything", mustPolicy(t, "0.0.0.0/0, [::]/0"), true, true, true},
	}
	for _, pol := range policies {
		for _, f := range embeddedForms {
			for _, v4 := range []netip.Addr{metadata, loopback} {
				a := f.build(v4)
				want := pol.loop
				switch {
				case v4 == metadata && pol.name == "ipv4 only" && f.mapped:
					want = true // 169.254.0.0/16 is allowed, and the mapped form is that address
				case v4 == metadata:
					want = pol.metadata
				case f.mapped:
					want = pol.mappedLoop
				case f.local && pol.name != "default":
					// 64:ff9b:1::7f00:1 also reads as 0.0.0.0 and 0.0.0.127
					// (the /48 to /64 layouts of RFC 6052): rules must allow
					// every address it may carry.
					want = pol.name == "everything"
				}
				t.Run(pol.name+"/"+f.name+"/"+v4.String(), func(t *testing.T) {
					err := pol.p.Check(a, 80)
					if want {
						if err != nil {
							t.Fatalf("Check(%s): got %v, want nil", a, err)
						}
						return
					}
					if !errors.Is(err, ErrForbidden) {
						t.Fatalf("Check(%s): got %v, want %v", a, err, ErrForbidden)
					}
					// The mapped form's message names the IPv4 address; an
					// allow-list's refusal of a form whose IPv6 address no
					// rule covers needs not (the IPv6 address is the reason).
					if pol.name == "default" && !strings.Contains(err.Error(), v4.String()) {
						t.Errorf("Check(%s): got %q, want it to name %s", a, err, v4)
					}
					// Control, as the dialer calls it, comes to the same verdict.
					cerr := pol.p.Control("tcp6", netip.AddrPortFrom(a, 80).String(), nil)
					if !errors.Is(cerr, ErrForbidden) {
						t.Errorf("Control(tcp6, %s): got %v, want %v", netip.AddrPortFrom(a, 80), cerr, ErrForbidden)
					}
				})
			}
		}
	}
}

// A dial or listen of the metadata address in any embedded form is refused
// with the default policies before any packet is sent or anything bound.
func TestEmbeddedMetadataRefusedByDefault(t *testing.T) {
	r := newTestRegistry(t, Config{Resolver: fakedns.Start(t).Resolver()})
	metadata := netip.MustParseAddr("169.254.169.254")
	for _, f := range embeddedForms {
		host := f.build(metadata).String()
		_, err := r.Dial(context.Background(), DialOptions{Host: host, Port: 80})
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "169.254.169.254") {
			t.Errorf("Dial(%s) [%s]: got %v, want %v naming 169.254.169.254", host, f.name, err, ErrForbidden)
		}
		_, err = r.Listen(context.Background(), ListenOptions{Host: host})
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "169.254.169.254") {
			t.Errorf("Listen(%s) [%s]: got %v, want %v naming 169.254.169.254", host, f.name, err, ErrForbidden)
		}
	}
}

// "localhost." is localhost: a name with a final dot is the same name, and
// localhost in any case is answered by the hosts file, never by DNS.
func TestTrailingDotLocalhostAsksNoDNS(t *testing.T) {
	dns := fakedns.Start(t)
	r := newTestRegistry(t, Config{Resolver: dns.Resolver()})
	ln := testListener(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	for _, host := range []string{"localhost.", "LocalHost.", "LOCALHOST."} {
		s, err := r.Dial(context.Background(), DialOptions{Host: host, Port: p})
		if err != nil {
			t.Fatalf("Dial(%q): got %v, want a connection to 127.0.0.1", host, err)
		}
		if got, want := s.Info().RemoteAddress, ln.Addr().String(); got != want {
			t.Errorf("Dial(%q): remote got %s, want %s", host, got, want)
		}
		acceptPolicyPeer(t, ln).Close()
		r.DeleteSocket(s.ID())
		srv, err := r.Listen(context.Background(), ListenOptions{Host: host})
		if err != nil {
			t.Fatalf("Listen(%q): got %v, want a server on 127.0.0.1", host, err)
		}
		if got := srv.Info().Address; !strings.HasPrefix(got, "127.0.0.1:") {
			t.Errorf("Listen(%q): bound %s, want 127.0.0.1:PORT", host, got)
		}
		r.DeleteServer(srv.Info().ID, true)
	}
	if q := dns.TotalQueries(); q != 0 {
		t.Fatalf("DNS queries: got %d, want 0 (localhost. is in the hosts file as localhost)", q)
	}
	// Other names with a final dot resolve as the name without it, through
	// the same resolver.
	dns.Set("named.test", netip.MustParseAddr("127.0.0.1"))
	for _, host := range []string{"named.test.", "Named.Test."} {
		s, err := r.Dial(context.Background(), DialOptions{Host: host, Port: p})
		if err != nil {
			t.Fatalf("Dial(%q): got %v, want a connection to 127.0.0.1", host, err)
		}
		acceptPolicyPeer(t, ln).Close()
		r.DeleteSocket(s.ID())
	}
	if q := dns.Queries("named.test"); q == 0 {
		t.Errorf("DNS queries for named.test: got 0, want the lookups of named.test. to reach the resolver")
	}
	for _, host := range []string{"localhost..", ".localhost", "."} {
		if _, err := r.Dial(context.Background(), DialOptions{Host: host, Port: p}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Dial(%q): got %v, want %v", host, err, ErrInvalid)
		}
	}
}

// errWouldConnect is what sweepVerdict's Control returns for an address the
// policy allows, so that no connect is ever made.
var errWouldConnect = errors.New("allowed: would connect")

// sweepVerdict runs host through what Dial does before it connects:
// normalHost, the network of dialNetwork, Go's parsing and resolution (with
// res) and the policy p in Control. It never connects: an address that p
// allows stops in Control with errWouldConnect. It returns "invalid",
// "forbidden", "allowed" or the error of another outcome.
func sweepVerdict(p *Policy, res *net.Resolver, host string) string {
	h, err := normalHost(host)
	if err != nil {
		return "invalid"
	}
	d := net.Dialer{Resolver: res, Timeout: guard, Control: func(network, address string, c syscall.RawConn) error {
		if err := p.Control(network, address, c); err != nil {
			return err
		}
		return errWouldConnect
	}}
	_, err = d.DialContext(context.Background(), dialNetwork(h), net.JoinHostPort(h, "80"))
	switch {
	case errors.Is(err, errWouldConnect):
		return "allowed"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	}
	return err.Error()
}

// metadataSpellings are ways to write a default-denied address (cloud
// metadata, link-local): none may be allowed by the default policy. Names
// resolve with the fake DNS server of the test.
var metadataSpellings = []string{
	// IPv4, and the legacy spellings that a C resolver would read as it.
	"169.254.169.254", "169.254.0.1", "169.254.255.255", "100.100.100.200",
	"169.254.169.254.", "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe", "0xa9fea9fe", "2852039166",
	"169.254.43518", "169.16689662", "169.254.169.0254", "0169.254.169.254", "169.254.169.254 ",
	"169.254.169.254%eth0", "169.254.169.254:80", "[169.254.169.254]", "１６９.２５４.１６９.２５４",
	// IPv4-mapped, with zones and brackets.
	"::ffff:169.254.169.254", "::FFFF:A9FE:A9FE", "0:0:0:0:0:ffff:a9fe:a9fe",
	"0000:0000:0000:0000:0000:ffff:a9fe:a9fe", "::ffff:169.254.169.254%lo", "::ffff:169.254.169.254%1",
	"[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe%lo]", "::ffff:0169.254.169.254", "::ffff:a9fe:a9fe%25lo",
	"::ffff:100.100.100.200",
	// SIIT, IPv4-compatible, NAT64, 6to4, Teredo.
	"::ffff:0:169.254.169.254", "::ffff:0:a9fe:a9fe", "0:0:0:0:ffff:0:a9fe:a9fe", "::ffff:0:a9fe:a9fe%lo",
	"::169.254.169.254", "::a9fe:a9fe", "::a9fe:a9fe%lo", "::a9fe:1",
	"64:ff9b::169.254.169.254", "64:FF9B::A9FE:A9FE", "64:ff9b:0:0:0:0:a9fe:a9fe", "64:ff9b::6464:64c8",
	"64:ff9b:1::a9fe:a9fe", "64:ff9b:1:a9fe:a9:fe00::", "64:ff9b:1:a9:fe:a9fe::", "64:ff9b:1:0:a9:fea9:fe00:0",
	"2002:a9fe:a9fe::", "2002:a9fe:a9fe:1::1", "2002:a9fe:1::",
	"2001:0:a9fe:a9fe::", "2001::5601:5601", "2001:0:4136:e378:8000:63bf:5601:5601",
	// IPv6 link-local and AWS metadata.
	"fe80::1", "FE80::1", "fe80::1%lo", "fe80::1%1", "fe80:0:0:0:0:0:0:1", "febf:ffff::1", "[fe80::1%lo]",
	"fe80::1%25lo", "fe80::a9fe:a9fe", "fe80::%lo", "fd00:ec2::254", "FD00:EC2:0:0:0:0:0:254",
	"fd00:ec2::254%lo", "[fd00:ec2::254]",
	// Names.
	"metadata.test", "METADATA.test.", "siit.test", "teredo.test", "nat64.test", "mixed.test",
}

// Every spelling of a default-denied address is refused (403) or is not a
// host sockman takes (400); none would be dialled.
func TestDefaultPolicyRefusesEverySpelling(t *testing.T) {
	dns := fakedns.Start(t)
	dns.Set("metadata.test", netip.MustParseAddr("169.254.169.254"))
	dns.Set("siit.test", netip.MustParseAddr("::ffff:0:a9fe:a9fe"))
	dns.Set("teredo.test", netip.MustParseAddr("2001:0:a9fe:a9fe::"))
	dns.Set("nat64.test", netip.MustParseAddr("64:ff9b::a9fe:a9fe"))
	dns.Set("mixed.test", netip.MustParseAddr("fe80::1"), netip.MustParseAddr("169.254.169.254"))
	refusedAs := map[string]int{}
	for _, host := range metadataSpellings {
		v := sweepVerdict(nil, dns.Resolver(), host)
		refusedAs[v]++
		if v != "forbidden" && v != "invalid" {
			t.Errorf("host %q: got %s, want it refused (forbidden or invalid) by the default policy", host, v)
		}
	}
	t.Logf("%d spellings: %v", len(metadataSpellings), refusedAs)
	if refusedAs["forbidden"] == 0 || refusedAs["invalid"] == 0 {
		t.Errorf("verdicts %v: want both forbidden and invalid spellings in the table", refusedAs)
	}
}

// loopbackSpellings are ways to write a loopback or local address other than
// the allowed 127.0.0.2: a policy allowing 127.0.0.2 only refuses them all.
var loopbackSpellings = []string{
	"127.0.0.1", "127.0.0.1.", "127.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.0.0.01", "127.0.0.1%lo",
	"0.0.0.0", "0", "0.0.0.0.", "::", "[::]", "::0", "::ffff:0.0.0.0", "::ffff:0:0.0.0.0",
	"::1", "::1%lo", "::1%1", "[::1%lo]", "::1%25lo", "0:0:0:0:0:0:0:1", "::0.0.0.1", "::0:1",
	"::ffff:127.0.0.1", "::ffff:7f00:1%lo", "::ffff:0:127.0.0.1", "::ffff:0:127.0.0.2", "::127.0.0.1", "::127.0.0.2",
	"64:ff9b::127.0.0.2", "64:ff9b:1::7f00:2", "2002:7f00:2::", "2001:0:7f00:2::", "2001::80ff:fffd",
	"fe80::1%lo", "fe80::1", "localhost", "LOCALHOST", "localhost.", "LocalHost.", "loopback.test", "loopback.test.",
}

// Under a policy that allows 127.0.0.2 only, every other spelling of a local
// address is refused, and those that carry 127.0.0.2 inside an IPv6 address
// (which a translator or tunnel would deliver off the machine) are too.
func TestRulePolicyRefusesLoopbackSpellings(t *testing.T) {
	dns := fakedns.Start(t)
	dns.Set("loopback.test", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))
	p := mustPolicy(t, "127.0.0.2")
	refusedAs := map[string]int{}
	for _, host := range loopbackSpellings {
		v := sweepVerdict(p, dns.Resolver(), host)
		refusedAs[v]++
		if v != "forbidden" && v != "invalid" {
			t.Errorf("host %q: got %s, want it refused (forbidden or invalid) under --allow-connect 127.0.0.2", host, v)
		}
	}
	t.Logf("%d spellings: %v", len(loopbackSpellings), refusedAs)
	for _, host := range []string{"127.0.0.2", "::ffff:127.0.0.2", "::ffff:7f00:2%lo"} {
		if v := sweepVerdict(p, dns.Resolver(), host); v != "allowed" {
			t.Errorf("host %q: got %s, want allowed under --allow-connect 127.0.0.2", host, v)
		}
	}
	if q := dns.Queries("localhost"); q != 0 {
		t.Errorf("DNS queries for localhost: got %d, want 0", q)
	}
}
