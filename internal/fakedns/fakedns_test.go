package fakedns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	loop4  = netip.MustParseAddr("127.0.0.1")
	loop4b = netip.MustParseAddr("127.0.0.2")
	loop6  = netip.MustParseAddr("::1")
)

func lookup(t *testing.T, r *net.Resolver, name string) ([]netip.Addr, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", name)
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	return ips, err
}

func TestSetAnswersAAndAAAA(t *testing.T) {
	s := Start(t)
	s.Set("both.test", loop4, loop6)
	got, err := lookup(t, s.Resolver(), "Both.Test")
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{loop4, loop6}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if n := s.Queries("both.test."); n < 2 {
		t.Errorf("got %d queries for both.test, want at least 2 (A and AAAA)", n)
	}
}

func TestUnknownNameIsNXDOMAIN(t *testing.T) {
	s := Start(t)
	_, err := lookup(t, s.Resolver(), "nosuch.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("got %v, want a not-found *net.DNSError", err)
	}
	if s.Queries("nosuch.test") == 0 {
		t.Error("the server got no query for nosuch.test: the resolver did not ask it")
	}
}

func TestSequenceRebinds(t *testing.T) {
	s := Start(t)
	s.SetSequence("rebind.test", []netip.Addr{loop4b}, []netip.Addr{loop4})
	for i, want := range []netip.Addr{loop4b, loop4, loop4} {
		got, err := lookup(t, s.Resolver(), "rebind.test")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []netip.Addr{want}) {
			t.Errorf("lookup %d: got %v, want [%v]", i+1, got, want)
		}
	}
}

func TestMappedAddressIsAAAA(t *testing.T) {
	s := Start(t)
	s.Set("mapped.test", netip.MustParseAddr("::ffff:127.0.0.1"))
	got, err := lookup(t, s.Resolver(), "mapped.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Unmap() != loop4 {
		t.Errorf("got %v, want [::ffff:127.0.0.1]", got)
	}
}

func TestDropNeverAnswers(t *testing.T) {
	s := Start(t)
	s.Drop("slow.test")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Resolver().LookupNetIP(ctx, "ip", "slow.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsTimeout {
		t.Fatalf("got %v, want a timeout *net.DNSError", err)
	}
}

func TestTCP(t *testing.T) {
	s := Start(t)
	s.Set("tcp.test", loop4)
	r := s.Resolver()
	dial := r.Dial
	r.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) }
	got, err := lookup(t, r, "tcp.test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []netip.Addr{loop4}) {
		t.Errorf("got %v, want [%v]", got, loop4)
	}
}

// Go's resolver refuses all-numeric names before asking any server: with
// this resolver "127.1" is not resolved at all (with a C library resolver it
// would be read as 127.0.0.1 by inet_aton).
func TestNumericNamesAreNotQueried(t *testing.T) {
	s := Start(t)
	for _, name := range []string{"127.1", "2130706433", "0177.0.0.1", "127.0.0.01"} {
		s.Set(name, loop4)
		if got, err := lookup(t, s.Resolver(), name); err == nil {
			t.Errorf("%s: got %v, want an error", name, got)
		}
	}
	if n := s.TotalQueries(); n != 0 {
		t.Errorf("got %d queries, want 0", n)
	}
	s.Set("0x7f.0.0.1", loop4) // a letter makes it a name
	if got, err := lookup(t, s.Resolver(), "0x7f.0.0.1"); err != nil || !slices.Equal(got, []netip.Addr{loop4}) {
		t.Errorf("0x7f.0.0.1: got %v, %v, want [%v]", got, err, loop4)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	s.Set("a.test", loop4)
	if _, err := lookup(t, s.Resolver(), "a.test"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
}
