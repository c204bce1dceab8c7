package sockets

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/sockman/sockman/internal/quote"
)

// Policy decides which IP:port pairs may be dialled or listened on. It is
// built by ParsePolicy, immutable afterwards and safe for concurrent use. A
// nil *Policy behaves as the default policy.
//
// Semantics:
//   - With no rules (the default policy) every address is allowed except the
//     default denied set: 169.254.0.0/16 (IPv4 link-local, incl. the
//     169.254.169.254 cloud metadata address), 100.100.100.200 (Alibaba
//     metadata), fe80::/10 (IPv6 link-local) and fd00:ec2::254 (AWS IPv6
//     metadata), also when reached through an IPv6 address that carries an
//     IPv4 address (see below).
//   - With rules, only the rules apply (allow-list): an address is allowed
//     iff some rule matches it, and the default denied set is not consulted,
//     so a rule such as 169.254.0.0/16 or 0.0.0.0/0 does allow metadata
//     addresses. IPv4-mapped addresses (::ffff:a.b.c.d) are the IPv4 address
//     they carry (the kernel connects or binds it as IPv4) and match IPv4
//     rules only.
//   - IPv6 addresses that carry an IPv4 address, which a translator, relay
//     or tunnel may deliver to it: SIIT ::ffff:0:a.b.c.d (RFC 7915),
//     IPv4-compatible ::a.b.c.d (RFC 4291, deprecated; :: and ::1 excepted),
//     NAT64 64:ff9b::/96 (RFC 6052) and 64:ff9b:1::/48 (RFC 8215, every RFC
//     6052 layout), 6to4 2002::/16 (RFC 3056) and Teredo 2001::/32 (RFC
//     4380: the server and the obfuscated client address). By default such
//     an address is denied when any IPv4 address it carries is. With rules
//     it is allowed only when a rule matches the IPv6 address and, for each
//     IPv4 address it carries, a rule matches that address (same port): an
//     IPv6 rule such as [::]/0 never opens a way to IPv4 addresses no rule
//     allows.
//   - Zones are stripped before matching (fe80::1%eth0 is fe80::1).
//   - Unspecified addresses (0.0.0.0, ::) are allowed by default; with rules
//     they match only a rule covering them (0.0.0.0/32, 0.0.0.0/0, [::]/128,
//     [::]/0...). Control checks a dual-stack wildcard socket (network tcp6,
//     address 0.0.0.0, Go's "tcp" listen on 0.0.0.0) as both 0.0.0.0 and ::.
//     On Linux, dialling 0.0.0.0 or :: reaches the local host.
//   - Port 0 (an ephemeral listen port) matches only rules whose port part
//     is * or missing.
type Policy struct {
	name  string // flag name used in messages, e.g. "--allow-connect"
	rules []rule // nil: default policy
}

type rule struct {
	text   string       // as given, for messages and String
	prefix netip.Prefix // canonical (masked, IPv4-mapped converted to IPv4)
	lo, hi uint16       // inclusive port range; 0-65535 for *
}

type denial struct {
	prefix netip.Prefix
	reason string
}

var (
	defaultDeny = []denial{
		{netip.MustParsePrefix("169.254.0.0/16"), "a link-local / cloud metadata address"},
		{netip.MustParsePrefix("100.100.100.200/32"), "the alibaba cloud metadata address"},
		{netip.MustParsePrefix("fe80::/10"), "an ipv6 link-local address"},
		{netip.MustParsePrefix("fd00:ec2::254/128"), "the aws ipv6 cloud metadata address"},
	}
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
	nat64LocalUse  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	ipv4Compatible = netip.MustParsePrefix("::/96")
	siitPrefix     = netip.MustParsePrefix("::ffff:0:0:0/96")
	teredoPrefix   = netip.MustParsePrefix("2001::/32")
)

// maxListedRules caps how many rules a forbidden message lists.
const maxListedRules = 10

// ParsePolicy parses rules of the form ADDR[:PORTS] for the flag flagName
// (e.g. "--allow-connect", used in messages; may be empty). ADDR is an IP or
// a CIDR; IPv6 goes in brackets when a port part follows ("[::1]:8080",
// "[fd00::/8]:1-1024", also written "[fd00::]/8:1-1024"), and may be bare
// without a port ("fd00::/8"); "::1:80" is an IPv6 address, not a port. Host
// names and zones are refused, as are CIDRs with host bits set. PORTS is N,
// N-M (1 <= N <= M <= 65535) or *; missing means *. Each element of rules
// may hold several rules separated by commas and/or white space. With no
// rules at all (nil, or only empty strings) it returns the default policy;
// see Policy for what each mode allows. Errors wrap ErrInvalid and name the
// bad rule and the reason.
func ParsePolicy(flagName string, rules []string) (*Policy, error) {
	p := &Policy{name: flagName}
	for _, elem := range rules {
		for _, tok := range strings.FieldsFunc(elem, isRuleSep) {
			r, err := parseRule(tok)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, p.ruleWord(tok), err)
			}
			p.rules = append(p.rules, r)
		}
	}
	return p, nil
}

func isRuleSep(r rune) bool { return r == ',' || unicode.IsSpace(r) }

func (p *Policy) ruleWord(tok string) string {
	if p.name == "" {
		return fmt.Sprintf("rule %q", tok)
	}
	return fmt.Sprintf("%s rule %q", p.name, tok)
}

func parseRule(s string) (rule, error) {
	addr, ports, hasPorts, bracketed := s, "", false, false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return rule{}, errors.New("missing closing ']'")
		}
		addr, bracketed = s[1:end], true
		rest := s[end+1:]
		if strings.HasPrefix(rest, "/") { // "[::]/0" is read as "[::/0]"
			bits, _, _ := strings.Cut(rest, ":")
			addr, rest = addr+bits, rest[len(bits):]
		}
		if rest != "" {
			if rest[0] != ':' {
				return rule{}, fmt.Errorf("unexpected %q after ']' (want :PORTS)", rest)
			}
			ports, hasPorts = rest[1:], true
		}
	} else if strings.ContainsAny(s, "[]") {
		return rule{}, errors.New("misplaced bracket (write ipv6 as [ADDR]:PORTS)")
	} else if strings.Count(s, ":") == 1 {
		i := strings.IndexByte(s, ':')
		addr, ports, hasPorts = s[:i], s[i+1:], true
	} // two or more colons and no brackets: a bare IPv6 address or CIDR
	prefix, err := parseAddr(addr)
	if err != nil {
		return rule{}, err
	}
	if bracketed && prefix.Addr().Is4() && !strings.Contains(addr, ":") {
		return rule{}, errors.New("brackets are only for ipv6 addresses")
	}
	r := rule{text: s, prefix: prefix, lo: 0, hi: 65535}
	if hasPorts {
		if r.lo, r.hi, err = parsePorts(ports); err != nil {
			return rule{}, err
		}
	}
	return r, nil
}

// parseAddr parses an IP or CIDR into a canonical prefix.
func parseAddr(s string) (netip.Prefix, error) {
	switch {
	case s == "":
		return netip.Prefix{}, errors.New("empty address (use 0.0.0.0/0 or [::]/0 for any address)")
	case s == "*":
		return netip.Prefix{}, errors.New("bad address \"*\": use an IP or CIDR (0.0.0.0/0 or [::]/0 for any address)")
	case strings.Contains(s, "%"):
		return netip.Prefix{}, errors.New("zones are not allowed in rules")
	}
	ipText, bitsText, isCIDR := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(ipText)
	if err != nil {
		if looksLikeName(ipText) {
			return netip.Prefix{}, fmt.Errorf("host names are not allowed, use an IP or CIDR instead of %q", ipText)
		}
		return netip.Prefix{}, fmt.Errorf("bad address %q: use an IP or CIDR", ipText)
	}
	bits := ip.BitLen()
	if isCIDR {
		n, err := strconv.ParseUint(bitsText, 10, 8)
		if err != nil || n > uint64(ip.BitLen()) || (len(bitsText) > 1 && bitsText[0] == '0') {
			return netip.Prefix{}, fmt.Errorf("bad prefix length %q (want 0-%d for %s)", bitsText, ip.BitLen(), family(ip))
		}
		bits = int(n)
	}
	p := netip.PrefixFrom(ip, bits)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("host bits set (did you mean %s?)", m)
	}
	if ip.Is4In6() && bits >= 96 { // ::ffff:a.b.c.d/N is the IPv4 prefix a.b.c.d/N-96
		p = netip.PrefixFrom(ip.Unmap(), bits-96)
	}
	return p, nil
}

func family(ip netip.Addr) string {
	if ip.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// looksLikeName reports whether s has the shape of a DNS name.
func looksLikeName(s string) bool {
	letter := false
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return letter
}

func parsePorts(s string) (lo, hi uint16, err error) {
	if s == "*" {
		return 0, 65535, nil
	}
	loText, hiText, isRange := strings.Cut(s, "-")
	if lo, err = parsePort(loText); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePort(hiText); err != nil {
			return 0, 0, err
		}
		if lo > hi {
			return 0, 0, fmt.Errorf("reversed port range %d-%d (want low-high)", lo, hi)
		}
	}
	return lo, hi, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("empty port (use N, N-M or * for any port)")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("port %s out of range (want 1-65535)", s)
	case err != nil:
		return 0, fmt.Errorf("bad port %q (want N, N-M or *)", s)
	case n == 0:
		return 0, errors.New("port 0 is not allowed (use * for any port)")
	}
	return uint16(n), nil
}

// Check returns nil when ip:port is allowed. Otherwise it returns an error
// wrapping ErrForbidden whose message names the address and the reason
// (the rules it did not match, or why it is denied by default); an invalid
// (zero) ip yields an error wrapping ErrInvalid. See Policy for the
// normalisation applied to ip before matching.
func (p *Policy) Check(ip netip.Addr, port uint16) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid ip address", ErrInvalid)
	}
	where := netip.AddrPortFrom(ip, port).String()
	a := ip.WithZone("")
	v4 := a.Unmap()
	if p == nil || p.rules == nil {
		if reason := denyReason(v4); reason != "" {
			if a.Is4In6() {
				return fmt.Errorf("%w: %s is ipv4-mapped %s, %s, denied by default", ErrForbidden, where, v4, reason)
			}
			return fmt.Errorf("%w: %s is %s, denied by default", ErrForbidden, where, reason)
		}
		for _, e := range embeddedIPv4(a) {
			if reason := denyReason(e.addr); reason != "" {
				return fmt.Errorf("%w: %s embeds %s (%s), %s, denied by default", ErrForbidden, where, e.addr, e.form, reason)
			}
		}
		return nil
	}
	if !p.matches(v4, port) {
		if a.Is4In6() {
			where += " (as " + v4.String() + ")"
		}
		return fmt.Errorf("%w: %s matches no %s (rules: %s)", ErrForbidden, where, p.ruleName(), p.listRules())
	}
	for _, e := range embeddedIPv4(a) {
		if !p.matches(e.addr, port) {
			return fmt.Errorf("%w: %s embeds %s (%s), and %s matches no %s (rules: %s)", ErrForbidden, where, e.addr, e.form,
				netip.AddrPortFrom(e.addr, port), p.ruleName(), p.listRules())
		}
	}
	return nil
}

// matches reports whether some rule matches a (unzoned, unmapped) and port.
func (p *Policy) matches(a netip.Addr, port uint16) bool {
	for _, r := range p.rules {
		if r.prefix.Contains(a) && port >= r.lo && port <= r.hi {
			return true
		}
	}
	return false
}

func (p *Policy) ruleName() string {
	if p.name == "" {
		return "rule"
	}
	return p.name + " rule"
}

func denyReason(a netip.Addr) string {
	for _, d := range defaultDeny {
		if d.prefix.Contains(a) {
			return d.reason
		}
	}
	return ""
}

type embedding struct {
	form string
	addr netip.Addr
}

// embeddedIPv4 returns the IPv4 addresses an unzoned, unmapped IPv6 address
// may stand for (RFC 7915 SIIT, RFC 6052 NAT64, RFC 3056 6to4, RFC 4380
// Teredo, RFC 4291 IPv4-compatible). For the local-use NAT64 prefix every RFC
// 6052 layout within /48 is tried. :: and ::1 are not IPv4-compatible
// addresses (RFC 4291 2.5.5.1).
func embeddedIPv4(a netip.Addr) []embedding {
	if !a.Is6() || a.Is4In6() {
		return nil
	}
	b := a.As16()
	at := func(i, j, k, l int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[j], b[k], b[l]}) }
	switch {
	case siitPrefix.Contains(a):
		return []embedding{{"siit", at(12, 13, 14, 15)}}
	case nat64WellKnown.Contains(a):
		return []embedding{{"nat64", at(12, 13, 14, 15)}}
	case nat64LocalUse.Contains(a):
		return []embedding{{"nat64", at(6, 7, 9, 10)}, {"nat64", at(7, 9, 10, 11)},
			{"nat64", at(9, 10, 11, 12)}, {"nat64", at(12, 13, 14, 15)}}
	case sixToFour.Contains(a):
		return []embedding{{"6to4", at(2, 3, 4, 5)}}
	case teredoPrefix.Contains(a):
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []embedding{{"teredo server", at(4, 5, 6, 7)}, {"teredo client", client}}
	case ipv4Compatible.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback():
		return []embedding{{"ipv4-compatible", at(12, 13, 14, 15)}}
	}
	return nil
}

func (p *Policy) listRules() string {
	var texts []string
	for i, r := range p.rules {
		if i == maxListedRules {
			texts = append(texts, fmt.Sprintf("... %d more", len(p.rules)-i))
			break
		}
		texts = append(texts, r.text)
	}
	return strings.Join(texts, ", ")
}

// Control has the signature of net.Dialer.Control and
// net.ListenConfig.Control. It parses address, which Go passes as a resolved
// IP literal with port ("1.2.3.4:80", "[fe80::1%eth0]:80"), and returns
// Check's verdict; an address that is not IP:port yields an error wrapping
// ErrInvalid. network and c are not used (c may be nil). A nil *Policy acts
// as the default policy.
func (p *Policy) Control(network, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if i, j := strings.IndexByte(address, '%'), strings.LastIndexByte(address, ':'); err != nil && !strings.HasPrefix(address, "[") && 0 < i && i < j {
		// Go passes an IPv4-mapped address with a zone (::ffff:127.0.0.1%lo)
		// as "127.0.0.1%lo:80", which netip refuses; the zone means nothing
		// to IPv4, so the address is checked without it.
		ap, err = netip.ParseAddrPort(address[:i] + address[j:])
	}
	if err != nil {
		return fmt.Errorf("%w: %s address %s is not an ip:port", ErrInvalid, network, quote.String(address))
	}
	if strings.HasSuffix(network, "6") && ap.Addr() == netip.IPv4Unspecified() {
		// An AF_INET6 socket given the IPv4 wildcard (Go's "tcp" listen on
		// 0.0.0.0) binds [::] without IPV6_V6ONLY and takes both families:
		// the policy must allow both.
		if err := p.Check(ap.Addr(), ap.Port()); err != nil {
			return err
		}
		return p.Check(netip.IPv6Unspecified(), ap.Port())
	}
	return p.Check(ap.Addr(), ap.Port())
}

// String lists the rules as given, separated by ", ", for logs and docs. For
// the default policy (and a nil *Policy) it returns a description starting
// with "default:" instead.
func (p *Policy) String() string {
	if p == nil || p.rules == nil {
		return "default: all addresses except link-local and cloud metadata"
	}
	texts := make([]string, len(p.rules))
	for i, r := range p.rules {
		texts[i] = r.text
	}
	return strings.Join(texts, ", ")
}
