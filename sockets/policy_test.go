package sockets

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

const defaultString = "default: all addresses except link-local and cloud metadata"

func TestParsePolicy(t *testing.T) {
	tests := map[string]struct {
		rules   []string
		wantErr error  // nil: must parse
		want    string // String() when it parses, a message substring when it does not
	}{
		"nil is default":             {nil, nil, defaultString},
		"empty string is default":    {[]string{""}, nil, defaultString},
		"only separators is default": {[]string{" ", ",, \t"}, nil, defaultString},
		"ipv4":                       {[]string{"127.0.0.1"}, nil, "127.0.0.1"},
		"ipv4 cidr with range":       {[]string{"127.0.0.0/8:1000-2000"}, nil, "127.0.0.0/8:1000-2000"},
		"star port":                  {[]string{"10.0.0.0/8:*"}, nil, "10.0.0.0/8:*"},
		"bracketed ipv6 port":        {[]string{"[::1]:8080"}, nil, "[::1]:8080"},
		"bracketed ipv6 cidr range":  {[]string{"[fd00::/8]:1-1024"}, nil, "[fd00::/8]:1-1024"},
		"bracketed ipv6 no port":     {[]string{"[::1]"}, nil, "[::1]"},
		"bare ipv6":                  {[]string{"::1"}, nil, "::1"},
		"bare ipv6 cidr":             {[]string{"fd00::/8"}, nil, "fd00::/8"},
		"bare ipv4-mapped":           {[]string{"::ffff:127.0.0.1"}, nil, "::ffff:127.0.0.1"},
		"mapped cidr with port":      {[]string{"[::ffff:10.0.0.0/104]:80"}, nil, "[::ffff:10.0.0.0/104]:80"},
		"all ipv4":                   {[]string{"0.0.0.0/0"}, nil, "0.0.0.0/0"},
		"all ipv6":                   {[]string{"[::]/0"}, nil, "[::]/0"},
		"prefix after bracket":       {[]string{"[fd00::]/8:1-1024"}, nil, "[fd00::]/8:1-1024"},
		"max port":                   {[]string{"1.2.3.4:65535"}, nil, "1.2.3.4:65535"},
		"full range":                 {[]string{"1.2.3.4:1-65535"}, nil, "1.2.3.4:1-65535"},
		"single port range":          {[]string{"1.2.3.4:80-80"}, nil, "1.2.3.4:80-80"},
		"several per element": {[]string{"127.0.0.1:80, 10.0.0.0/8", " [::1]:1-2\tfd00::/8 "}, nil,
			"127.0.0.1:80, 10.0.0.0/8, [::1]:1-2, fd00::/8"},

		"empty port":             {[]string{"127.0.0.1:"}, ErrInvalid, "empty port"},
		"port 0":                 {[]string{"127.0.0.1:0"}, ErrInvalid, "port 0 is not allowed"},
		"port 0 range":           {[]string{"127.0.0.1:0-10"}, ErrInvalid, "port 0 is not allowed"},
		"port 70000":             {[]string{"127.0.0.1:70000"}, ErrInvalid, "port 70000 out of range"},
		"huge port":              {[]string{"127.0.0.1:99999999999999999999"}, ErrInvalid, "out of range"},
		"reversed range":         {[]string{"127.0.0.1:20-10"}, ErrInvalid, "reversed port range 20-10"},
		"open range high":        {[]string{"127.0.0.1:10-"}, ErrInvalid, "empty port"},
		"open range low":         {[]string{"127.0.0.1:-10"}, ErrInvalid, "empty port"},
		"port not a number":      {[]string{"127.0.0.1:http"}, ErrInvalid, `bad port "http"`},
		"port with sign":         {[]string{"127.0.0.1:+80"}, ErrInvalid, `bad port "+80"`},
		"star in range":          {[]string{"10.0.0.0/8:*-5"}, ErrInvalid, `bad port "*"`},
		"three part range":       {[]string{"10.0.0.0/8:1-2-3"}, ErrInvalid, `bad port "2-3"`},
		"prefix too long v4":     {[]string{"10.0.0.0/33"}, ErrInvalid, `rule "10.0.0.0/33": bad prefix length "33" (want 0-32 for ipv4)`},
		"prefix too long v6":     {[]string{"[::]/129"}, ErrInvalid, "bad prefix length"},
		"two prefixes":           {[]string{"[fd00::/8]/16"}, ErrInvalid, `bad prefix length "8/16"`},
		"empty prefix":           {[]string{"10.0.0.0/"}, ErrInvalid, "bad prefix length"},
		"leading zero prefix":    {[]string{"10.0.0.0/08"}, ErrInvalid, "bad prefix length"},
		"host bits set":          {[]string{"10.1.0.0/8"}, ErrInvalid, "host bits set (did you mean 10.0.0.0/8?)"},
		"bad octet":              {[]string{"256.0.0.1"}, ErrInvalid, `bad address "256.0.0.1": use an IP or CIDR`},
		"unclosed bracket":       {[]string{"[::1"}, ErrInvalid, "missing closing ']'"},
		"no colon after bracket": {[]string{"[::1]8080"}, ErrInvalid, `unexpected "8080" after ']'`},
		"stray bracket":          {[]string{"::1]:80"}, ErrInvalid, "misplaced bracket"},
		"bracketed ipv4":         {[]string{"[127.0.0.1]:80"}, ErrInvalid, "brackets are only for ipv6"},
		"hostname":               {[]string{"example.com"}, ErrInvalid, "host names are not allowed, use an IP or CIDR"},
		"hostname with port":     {[]string{"example.com:80"}, ErrInvalid, "use an IP or CIDR"},
		"localhost":              {[]string{"localhost"}, ErrInvalid, "host names are not allowed"},
		"missing address":        {[]string{":80"}, ErrInvalid, "empty address"},
		"empty brackets":         {[]string{"[]:80"}, ErrInvalid, "empty address"},
		"star address":           {[]string{"*:80"}, ErrInvalid, "use an IP or CIDR"},
		"zone":                   {[]string{"fe80::1%eth0"}, ErrInvalid, "zones are not allowed"},
		"bracketed zone":         {[]string{"[fe80::1%eth0]:80"}, ErrInvalid, "zones are not allowed"},
		"two ports":              {[]string{"1.2.3.4:80:90"}, ErrInvalid, "use an IP or CIDR"},
		"bad rule among good":    {[]string{"127.0.0.1", "10.0.0.0/8, 10.0.0.0/33"}, ErrInvalid, `rule "10.0.0.0/33"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy("--allow-connect", tt.rules)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				if got := p.String(); got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if p != nil {
				t.Errorf("got %v, want nil policy", p)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParsePolicyMessage(t *testing.T) {
	_, err := ParsePolicy("--allow-listen", []string{"10.0.0.0/33"})
	want := `invalid argument: --allow-listen rule "10.0.0.0/33": bad prefix length "33" (want 0-32 for ipv4)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %v", err, want)
	}
	_, err = ParsePolicy("", []string{"example.com"})
	want = `invalid argument: rule "example.com": host names are not allowed, use an IP or CIDR instead of "example.com"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %v", err, want)
	}
}

func mustPolicy(t testing.TB, rules ...string) *Policy {
	t.Helper()
	p, err := ParsePolicy("--allow-connect", rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyCheck(t *testing.T) {
	policies := map[string]*Policy{
		"default":  mustPolicy(t),
		"nil":      nil,
		"loop":     mustPolicy(t, "127.0.0.0/8:1000-2000, [::1]:8080"),
		"all4":     mustPolicy(t, "0.0.0.0/0"),
		"all6":     mustPolicy(t, "[::]/0"),
		"listen":   mustPolicy(t, "0.0.0.0/32:20000-20010", "127.0.0.1"),
		"metadata": mustPolicy(t, "169.254.169.254:80"),
		"mapped":   mustPolicy(t, "::ffff:10.0.0.0/104"),
	}
	const deflt = "denied by default"
	tests := map[string]struct {
		policy, ip string
		port       uint16
		want       error
		msg        string // substring of the error message
	}{
		"metadata v4":            {"default", "169.254.169.254", 80, ErrForbidden, "169.254.169.254:80 is a link-local / cloud metadata address, denied by default"},
		"link-local v4":          {"default", "169.254.0.1", 443, ErrForbidden, deflt},
		"mapped metadata":        {"default", "::ffff:169.254.169.254", 80, ErrForbidden, "[::ffff:169.254.169.254]:80 is ipv4-mapped 169.254.169.254"},
		"mapped metadata hex":    {"default", "::ffff:a9fe:a9fe", 80, ErrForbidden, "ipv4-mapped 169.254.169.254"},
		"nat64 metadata":         {"default", "64:ff9b::a9fe:a9fe", 80, ErrForbidden, "embeds 169.254.169.254 (nat64)"},
		"nat64 dotted metadata":  {"default", "64:ff9b::169.254.169.254", 80, ErrForbidden, "(nat64)"},
		"nat64 local /96":        {"default", "64:ff9b:1::a9fe:a9fe", 80, ErrForbidden, "embeds 169.254.169.254 (nat64)"},
		"nat64 local /64":        {"default", "64:ff9b:1:0:a9:fea9:fe00:0", 80, ErrForbidden, "embeds 169.254.169.254 (nat64)"},
		"nat64 local /48":        {"default", "64:ff9b:1:a9fe:a9:fe00::", 80, ErrForbidden, "embeds 169.254.169.254 (nat64)"},
		"nat64 public":           {"default", "64:ff9b::8.8.8.8", 53, nil, ""},
		"nat64 loopback":         {"default", "64:ff9b::7f00:1", 80, nil, ""},
		"6to4 metadata":          {"default", "2002:a9fe:a9fe::1", 80, ErrForbidden, "embeds 169.254.169.254 (6to4)"},
		"6to4 public":            {"default", "2002:808:808::1", 80, nil, ""},
		"compat metadata":        {"default", "::169.254.169.254", 80, ErrForbidden, "(ipv4-compatible)"},
		"link-local v6":          {"default", "fe80::1", 22, ErrForbidden, "[fe80::1]:22 is an ipv6 link-local address, denied by default"},
		"link-local v6 zone":     {"default", "fe80::1%eth0", 22, ErrForbidden, "[fe80::1%eth0]:22 is an ipv6 link-local"},
		"link-local v6 top":      {"default", "febf:ffff::1", 22, ErrForbidden, deflt},
		"site-local v6":          {"default", "fec0::1", 22, nil, ""},
		"aws v6 metadata":        {"default", "fd00:ec2::254", 80, ErrForbidden, "aws ipv6 cloud metadata"},
		"aws v6 neighbour":       {"default", "fd00:ec2::253", 80, nil, ""},
		"alibaba metadata":       {"default", "100.100.100.200", 80, ErrForbidden, "alibaba cloud metadata"},
		"mapped alibaba":         {"default", "::ffff:100.100.100.200", 80, ErrForbidden, "alibaba"},
		"alibaba neighbour":      {"default", "100.100.100.201", 80, nil, ""},
		"default loopback":       {"default", "127.0.0.1", 80, nil, ""},
		"default v6 loopback":    {"default", "::1", 80, nil, ""},
		"default public":         {"default", "8.8.8.8", 443, nil, ""},
		"default unspecified v4": {"default", "0.0.0.0", 0, nil, ""},
		"default unspecified v6": {"default", "::", 0, nil, ""},
		"nil metadata":           {"nil", "169.254.169.254", 80, ErrForbidden, deflt},
		"nil public":             {"nil", "8.8.8.8", 80, nil, ""},
		"zero addr default":      {"default", "", 80, ErrInvalid, "invalid ip address"},
		"zero addr rules":        {"loop", "", 80, ErrInvalid, "invalid ip address"},

		"rule low port":           {"loop", "127.0.0.1", 1000, nil, ""},
		"rule high port":          {"loop", "127.0.0.1", 2000, nil, ""},
		"rule below range":        {"loop", "127.0.0.1", 999, ErrForbidden, "127.0.0.1:999 matches no --allow-connect rule (rules: 127.0.0.0/8:1000-2000, [::1]:8080)"},
		"rule above range":        {"loop", "127.0.0.1", 2001, ErrForbidden, "matches no --allow-connect rule"},
		"rule end of cidr":        {"loop", "127.255.255.255", 1500, nil, ""},
		"rule outside cidr":       {"loop", "128.0.0.1", 1500, ErrForbidden, "matches no"},
		"rule mapped in":          {"loop", "::ffff:127.0.0.1", 1500, nil, ""},
		"rule mapped port out":    {"loop", "::ffff:127.0.0.1", 80, ErrForbidden, "[::ffff:127.0.0.1]:80 (as 127.0.0.1) matches no"},
		"rule v6 loopback":        {"loop", "::1", 8080, nil, ""},
		"rule v6 loopback zone":   {"loop", "::1%lo", 8080, nil, ""},
		"rule v6 wrong port":      {"loop", "::1", 8081, ErrForbidden, "matches no"},
		"rule v6 other host":      {"loop", "::2", 8080, ErrForbidden, "matches no"},
		"rule metadata unlisted":  {"loop", "169.254.169.254", 1500, ErrForbidden, "matches no"},
		"rule unspecified":        {"loop", "0.0.0.0", 1500, ErrForbidden, "matches no"},
		"rule nat64 of loopback":  {"loop", "64:ff9b::7f00:1", 1500, ErrForbidden, "matches no"},
		"all4 allows metadata":    {"all4", "169.254.169.254", 80, nil, ""},
		"all4 mapped metadata":    {"all4", "::ffff:169.254.169.254", 80, nil, ""},
		"all4 unspecified port 0": {"all4", "0.0.0.0", 0, nil, ""},
		"all4 not v6":             {"all4", "::1", 80, ErrForbidden, "matches no"},
		"all6 not mapped":         {"all6", "::ffff:169.254.169.254", 80, ErrForbidden, "(as 169.254.169.254) matches no"},
		"all6 not mapped loop":    {"all6", "::ffff:127.0.0.1", 80, ErrForbidden, "matches no"},
		"all6 link-local":         {"all6", "fe80::1%eth0", 80, nil, ""},
		"all6 unspecified":        {"all6", "::", 0, nil, ""},
		"listen any in range":     {"listen", "0.0.0.0", 20005, nil, ""},
		"listen any port 0":       {"listen", "0.0.0.0", 0, ErrForbidden, "0.0.0.0:0 matches no"},
		"listen star port 0":      {"listen", "127.0.0.1", 0, nil, ""},
		"listen not any":          {"listen", "0.0.0.1", 20005, ErrForbidden, "matches no"},
		"listen v6 any":           {"listen", "::", 20005, ErrForbidden, "matches no"},
		"metadata rule":           {"metadata", "169.254.169.254", 80, nil, ""},
		"metadata rule neighbour": {"metadata", "169.254.169.253", 80, ErrForbidden, "matches no"},
		"mapped rule v4":          {"mapped", "10.1.2.3", 80, nil, ""},
		"mapped rule mapped":      {"mapped", "::ffff:10.1.2.3", 80, nil, ""},
		"mapped rule outside":     {"mapped", "11.0.0.0", 80, ErrForbidden, "rules: ::ffff:10.0.0.0/104"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, ok := policies[tt.policy]
			if !ok {
				t.Fatalf("no policy %q", tt.policy)
			}
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			err := p.Check(ip, tt.port)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestPolicyCheckListsFewRules(t *testing.T) {
	var rules []string
	for i := range 12 {
		rules = append(rules, fmt.Sprintf("10.0.0.%d", i))
	}
	err := mustPolicy(t, rules...).Check(netip.MustParseAddr("10.0.1.1"), 80)
	want := "10.0.0.9, ... 2 more)"
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("got %v, want suffix %v", err, want)
	}
}

func TestPolicyControl(t *testing.T) {
	loop := mustPolicy(t, "127.0.0.1:1000")
	tests := map[string]struct {
		p                *Policy
		network, address string
		want             error
	}{
		"metadata":           {mustPolicy(t), "tcp4", "169.254.169.254:80", ErrForbidden},
		"metadata nil":       {nil, "tcp4", "169.254.169.254:80", ErrForbidden},
		"mapped metadata":    {mustPolicy(t), "tcp6", "[::ffff:169.254.169.254]:80", ErrForbidden},
		"zoned link-local":   {nil, "tcp6", "[fe80::1%eth0]:80", ErrForbidden},
		"public":             {nil, "tcp4", "8.8.8.8:53", nil},
		"rule allowed":       {loop, "tcp4", "127.0.0.1:1000", nil},
		"rule ephemeral":     {loop, "tcp4", "127.0.0.1:0", ErrForbidden},
		"not an address":     {nil, "tcp", "not-an-address", ErrInvalid},
		"missing port":       {nil, "tcp4", "127.0.0.1", ErrInvalid},
		"empty":              {loop, "tcp", "", ErrInvalid},
		"host name":          {nil, "tcp", "example.com:80", ErrInvalid},
		"port out of range":  {nil, "tcp4", "127.0.0.1:65536", ErrInvalid},
		"unbracketed v6":     {nil, "tcp6", "::1:80", ErrInvalid},
		"unix path":          {nil, "unix", "/run/sock", ErrInvalid},
		"unclosed v6":        {nil, "tcp6", "[::1:80", ErrInvalid},
		"mapped rule passes": {loop, "tcp6", "[::ffff:127.0.0.1]:1000", nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.p.Control(tt.network, tt.address, nil)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPolicyStringNil(t *testing.T) {
	var p *Policy
	if got := p.String(); got != defaultString {
		t.Errorf("got %q, want %q", got, defaultString)
	}
}

func TestPolicyConcurrent(t *testing.T) {
	p := mustPolicy(t, "127.0.0.0/8:1000-2000")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				_ = p.Check(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), uint16(990+j))
				_ = p.String()
			}
		})
	}
	wg.Wait()
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"", "127.0.0.1", "127.0.0.0/8:1000-2000", "[::1]:8080", "[fd00::/8]:1-1024",
		"fd00::/8", "::ffff:10.0.0.0/104", "10.0.0.0/33", "[::1", "example.com", "1.2.3.4:20-10",
		"1.2.3.4:0", "a, b c", "[::]:*", "fe80::1%eth0", "[]:", ":", "/", "[1.2.3.4]"} {
		f.Add(s)
	}
	probes := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:1000"), netip.MustParseAddrPort("[::ffff:169.254.169.254]:80"),
		netip.MustParseAddrPort("[fe80::1%eth0]:0"), netip.MustParseAddrPort("0.0.0.0:0"),
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy("--allow-connect", []string{s})
		if err != nil {
			if !errors.Is(err, ErrInvalid) || p != nil {
				t.Fatalf("got %v, %v, want nil policy and ErrInvalid", p, err)
			}
			return
		}
		for _, ap := range probes {
			if err := p.Check(ap.Addr(), ap.Port()); err != nil && !errors.Is(err, ErrForbidden) {
				t.Fatalf("got %v, want nil or %v", err, ErrForbidden)
			}
		}
		if err := p.Control("tcp", s, nil); err != nil && !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want nil, %v or %v", err, ErrForbidden, ErrInvalid)
		}
		if p.rules == nil {
			return
		}
		again, err := ParsePolicy("--allow-connect", []string{p.String()})
		if err != nil || again.String() != p.String() {
			t.Fatalf("got %v, %v, want %q to parse again", again, err, p.String())
		}
	})
}
