package sockets

import (
	"bytes"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// expect reads len(want) bytes from peer and compares them.
func expect(t testing.TB, peer net.Conn, want string) {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(guard))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("reading %q from the mock: got %q and %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("the mock answered %q, want %q", got, want)
	}
}

// expectEnd reads until the connection ends and returns its error (nil for
// a FIN), failing on any byte.
func expectEnd(t testing.TB, peer net.Conn) error {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(guard))
	b := make([]byte, 64)
	n, err := peer.Read(b)
	if n > 0 {
		t.Fatalf("got %q, want the connection to end", b[:n])
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func addRule(t testing.TB, rs *Rules, spec RuleSpec) RuleInfo {
	t.Helper()
	info, err := rs.Add(spec)
	if err != nil {
		t.Fatalf("Add(%+v): got %v, want nil", spec, err)
	}
	return info
}

func reply(s string) RuleSpec { return RuleSpec{Reply: []byte(s), HasReply: true} }

func matching(kind, pattern string, r RuleSpec) RuleSpec {
	r.Kind, r.Pattern = kind, []byte(pattern)
	return r
}

// Each match kind answers what it matches and lets the rest through, on a
// raw socket (a message is what one read returned: the peer waits for each
// answer) and on a framed one (a message is a line).
func TestRuleMatchKinds(t *testing.T) {
	cases := []struct {
		kind, pattern, reply string
		hit, miss            string
		want                 string
	}{
		{MatchEquals, "AT", "OK", "AT", "ATI", "OK"},
		{MatchPrefix, "GET ", "200", "GET /x", "PUT /x", "200"},
		{MatchSuffix, "?", "yes", "ready?", "ready!", "yes"},
		{MatchContains, "ping", "pong", "a ping b", "pin g", "pong"},
		{MatchRegex, `^SET (?P<key>\w+)=(\d+)$`, "${key} is $2", "SET a=42", "SET a=x", "a is 42"},
		{MatchRegex, `(?i)^hello`, "hi", "HeLLo there", "say hello", "hi"},
	}
	for _, framed := range []bool{false, true} {
		for _, c := range cases {
			name := c.kind + "/" + map[bool]string{false: "raw", true: "lines"}[framed]
			t.Run(name, func(t *testing.T) {
				r := newTestRegistry(t, Config{})
				o := ListenOptions{}
				end := ""
				if framed {
					o.Recv.Framing = Framing{Type: FrameLines}
					end = "\n"
				}
				srv, peer, s := connectPair(t, r, o)
				addRule(t, srv.Rules(), matching(c.kind, c.pattern, reply(c.want)))
				addRule(t, srv.Rules(), RuleSpec{Echo: true}) // what the first does not take comes back as it was
				writeAll(t, peer, []byte(c.hit+end))
				expect(t, peer, c.want)
				writeAll(t, peer, []byte(c.miss+end))
				expect(t, peer, c.miss)
				rules := srv.Rules().List()
				if rules[0].Hits != 1 || rules[1].Hits != 1 {
					t.Fatalf("hits %d and %d, want 1 and 1", rules[0].Hits, rules[1].Hits)
				}
				// Retain all keeps both (a raw socket may join small reads
				// into one message).
				if got, want := s.Info().BufferedBytes, int64(len(c.hit+c.miss)); got != want { // lines drop the \n
					t.Fatalf("retain all: %d bytes buffered, want %d", got, want)
				}
			})
		}
	}
}

// A match in another encoding is bytes: a binary frame of a length-prefix
// protocol answered with binary.
func TestRuleBinaryFrames(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, peer, _ := connectPair(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLengthPrefix, HeaderBytes: 1}}})
	addRule(t, srv.Rules(), RuleSpec{Kind: MatchPrefix, Pattern: []byte{0x01, 0x00}, Reply: []byte{0x02, 0xff, 0x00}, HasReply: true})
	writeAll(t, peer, []byte{3, 0x01, 0x00, 0x7f})
	expect(t, peer, "\x02\xff\x00")
}

func TestRuleThenCloseAndReset(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLines}}})
	addRule(t, srv.Rules(), matching(MatchEquals, "QUIT", RuleSpec{Reply: []byte("BYE\n"), HasReply: true, Then: ThenClose}))
	addRule(t, srv.Rules(), matching(MatchEquals, "KILL", RuleSpec{Then: ThenReset}))

	peer := dialPeer(t, srv.addr)
	s := acceptedSocket(t, r, srv, peer)
	writeAll(t, peer, []byte("QUIT\n"))
	expect(t, peer, "BYE\n")
	if err := expectEnd(t, peer); err != nil {
		t.Fatalf("after then close: got %v, want a FIN", err)
	}
	waitReadLoopDone(t, s)
	if got, want := s.Info().CloseReason, "closed by rule-1 of server "+srv.id; got != want {
		t.Fatalf("close reason %q, want %q", got, want)
	}

	peer = dialPeer(t, srv.addr)
	s = acceptedSocket(t, r, srv, peer)
	writeAll(t, peer, []byte("KILL\n"))
	if err := expectEnd(t, peer); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after then reset: got %v, want ECONNRESET", err)
	}
	waitReadLoopDone(t, s)
	if got, want := s.Info().CloseReason, "reset by rule-2 of server "+srv.id; got != want {
		t.Fatalf("close reason %q, want %q", got, want)
	}
}

// A delayed answer holds neither the socket's read loop nor its order: the
// messages after it are still stored at once, and the answers go out in
// the order of the messages.
func TestRuleDelayKeepsOrderAndReading(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLines}}})
	addRule(t, srv.Rules(), matching(MatchEquals, "slow", RuleSpec{Reply: []byte("1"), HasReply: true, Delay: 200 * time.Millisecond}))
	addRule(t, srv.Rules(), matching(MatchEquals, "fast", reply("2")))
	writeAll(t, peer, []byte("slow\nfast\n"))
	waitFor(t, guard, func() bool { return s.Info().BufferedMessages == 2 })
	expect(t, peer, "12")
}

func TestRuleTimes(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, peer, _ := connectPair(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLines}}})
	addRule(t, srv.Rules(), RuleSpec{Kind: MatchPrefix, Reply: []byte("a"), HasReply: true, Times: 2})
	addRule(t, srv.Rules(), RuleSpec{Kind: MatchPrefix, Reply: []byte("b"), HasReply: true})
	writeAll(t, peer, []byte("x\nx\nx\nx\n"))
	expect(t, peer, "aabb")
	list := srv.Rules().List()
	if list[0].Hits != 2 || list[1].Hits != 2 {
		t.Fatalf("hits %d and %d, want 2 and 2", list[0].Hits, list[1].Hits)
	}
}

// Socket rules come before server rules; within each, the first that
// matches wins; a rule deleted answers no more.
func TestRuleOrder(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLines}}})
	addRule(t, srv.Rules(), matching(MatchPrefix, "", reply("server1 ")))
	addRule(t, srv.Rules(), matching(MatchPrefix, "", reply("server2 ")))
	writeAll(t, peer, []byte("m\n"))
	expect(t, peer, "server1 ")
	own := addRule(t, s.Rules(), matching(MatchEquals, "m", reply("socket ")))
	writeAll(t, peer, []byte("m\nn\n"))
	expect(t, peer, "socket server1 ")
	if err := s.Rules().Delete(own.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Rules().Delete(own.ID); !errors.Is(err, ErrRuleNotFound) {
		t.Fatalf("second delete: got %v, want ErrRuleNotFound", err)
	}
	first := srv.Rules().List()[0]
	if err := srv.Rules().Delete(first.ID); err != nil {
		t.Fatal(err)
	}
	writeAll(t, peer, []byte("m\n"))
	expect(t, peer, "server2 ")
}

// A rule added to a server reaches the sockets it accepted before.
func TestServerRuleReachesEarlierSockets(t *testing.T) {
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{})
	var peers []*net.TCPConn
	for range 3 {
		p := dialPeer(t, srv.addr)
		acceptedSocket(t, r, srv, p)
		peers = append(peers, p)
	}
	addRule(t, srv.Rules(), RuleSpec{Echo: true})
	later := dialPeer(t, srv.addr)
	acceptedSocket(t, r, srv, later)
	for i, p := range append(peers, later) {
		msg := strings.Repeat("x", i+1)
		writeAll(t, p, []byte(msg))
		expect(t, p, msg)
	}
}

func TestRetain(t *testing.T) {
	for _, c := range []struct {
		retain Retain
		want   int64 // messages buffered of 2, one answered
	}{{RetainAll, 2}, {RetainUnmatched, 1}, {RetainNone, 0}} {
		t.Run(string(c.retain), func(t *testing.T) {
			r := newTestRegistry(t, Config{})
			sub := subscribe(t, r, SubscribeOptions{})
			srv, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Retain: string(c.retain), Framing: Framing{Type: FrameLines}}})
			addRule(t, srv.Rules(), matching(MatchEquals, "AT", reply("OK")))
			writeAll(t, peer, []byte("AT\nother\n"))
			expect(t, peer, "OK")
			waitFor(t, guard, func() bool { return s.Info().BytesReceived == 9 })
			evs := nextEvents(t, sub, 5)
			if got := eventSummary(evs); !strings.Contains(got, "socket.received") || !strings.Contains(got, "socket.sent") {
				t.Fatalf("events %s, want socket.received and socket.sent", got)
			}
			for _, e := range evs {
				if e.Type == EventSocketSent && e.Source != SourceRule {
					t.Fatalf("socket.sent source %q, want rule", e.Source)
				}
			}
			waitFor(t, guard, func() bool { return s.Info().BufferedMessages == c.want })
		})
	}
	r := newTestRegistry(t, Config{})
	if _, err := r.Listen(t.Context(), ListenOptions{Host: "127.0.0.1", Recv: RecvOptions{Retain: "some"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("retain some: got %v, want ErrInvalid", err)
	}
}

// A mock that nobody reads, with retain none and an echo rule, takes a
// long stream with the total flat and its buffer empty.
func TestRetainNoneEchoStaysFlat(t *testing.T) {
	size := int64(64 << 20)
	if testing.Short() {
		size = 8 << 20
	}
	const pending = 8
	// At most: the answers queued and the one being written, and a read.
	limit := int64((pending + 2) * (readSize + entryCost))
	echoStream(t, Config{MaxPendingReplies: pending}, size, func(used int64) {
		if used > limit {
			t.Errorf("the registry holds %d bytes during the stream, want at most %d", used, limit)
		}
	})
}

// echoStream sends size bytes through a retain-none echo mock and reads
// them back, calling check with the registry's memory in use as it goes.
func echoStream(t testing.TB, cfg Config, size int64, check func(int64)) {
	r := newTestRegistry(t, cfg)
	srv, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Retain: string(RetainNone)}})
	addRule(t, srv.Rules(), RuleSpec{Echo: true})
	werr := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		var sent int64
		for sent < size {
			n, err := peer.Write(chunk[:min(int64(len(chunk)), size-sent)])
			if err != nil {
				werr <- err
				return
			}
			sent += int64(n)
		}
		werr <- nil
	}()
	buf := make([]byte, 256<<10)
	var got int64
	for got < size {
		peer.SetReadDeadline(time.Now().Add(guard))
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes echoed: %v", got, err)
		}
		got += int64(n)
		if got%(4<<20) < int64(n) {
			check(r.MemoryInUse())
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	// The peer may read the last bytes before the write that sent them
	// has counted them.
	waitFor(t, guard, func() bool { return s.Info().BytesSent == size })
	info := s.Info()
	if info.BufferedBytes != 0 || info.BufferedMessages != 0 {
		t.Fatalf("buffer holds %d bytes in %d messages, want none", info.BufferedBytes, info.BufferedMessages)
	}
	if info.BytesReceived != size || info.BytesSent != size {
		t.Fatalf("received %d, sent %d, want %d each", info.BytesReceived, info.BytesSent, size)
	}
	waitFor(t, guard, func() bool { return r.MemoryInUse() == 0 })
}

func TestGreeting(t *testing.T) {
	r := newTestRegistry(t, Config{})
	sub := subscribe(t, r, SubscribeOptions{})
	srv := listen(t, r, ListenOptions{Greeting: []byte("220 mock ready\r\n")})
	addRule(t, srv.Rules(), RuleSpec{Echo: true})
	peer := dialPeer(t, srv.addr)
	expect(t, peer, "220 mock ready\r\n")
	writeAll(t, peer, []byte("x"))
	expect(t, peer, "x")
	var sources []Source
	for _, e := range nextEvents(t, sub, 5) {
		if e.Type == EventSocketSent {
			sources = append(sources, e.Source)
		}
	}
	if len(sources) != 2 || sources[0] != SourceGreeting || sources[1] != SourceRule {
		t.Fatalf("socket.sent sources %v, want [greeting rule]", sources)
	}
	if _, err := r.Listen(t.Context(), ListenOptions{Host: "127.0.0.1", Greeting: make([]byte, DefaultMaxReplyBytes+1)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a greeting over the bound: got %v, want ErrInvalid", err)
	}
}

// The answers queued for a socket are bounded: a peer that sends faster
// than delayed answers go out makes the read loop wait, and the socket
// still closes at once.
func TestPendingRepliesBounded(t *testing.T) {
	r := newTestRegistry(t, Config{MaxPendingReplies: 2})
	srv, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLines}}})
	addRule(t, srv.Rules(), RuleSpec{Kind: MatchPrefix, Reply: []byte("r"), HasReply: true, Delay: time.Hour})
	writeAll(t, peer, []byte("1\n2\n3\n4\n5\n"))
	// The replier holds one, the queue two, the read loop waits with the
	// fourth stored: the fifth stays unread.
	waitFor(t, guard, func() bool { return s.Info().BufferedMessages == 4 })
	done := make(chan struct{})
	go func() { s.Close(ReasonAPI); close(done) }()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatal("Close waited for the delayed answers")
	}
	if got := s.Info().BufferedMessages; got != 4 {
		t.Fatalf("%d messages stored, want 4", got)
	}
}

func TestRuleBadInput(t *testing.T) {
	cfg := Config{MaxPatternBytes: 8, MaxReplyBytes: 8}.withDefaults()
	cases := []struct {
		name string
		spec RuleSpec
		want string
	}{
		{"bad regex", RuleSpec{Kind: MatchRegex, Pattern: []byte("(a"), Reply: []byte("x"), HasReply: true}, "does not compile"},
		{"unknown kind", RuleSpec{Kind: "glob", Pattern: []byte("a"), Reply: []byte("x"), HasReply: true}, "not one of equals"},
		{"no match", RuleSpec{Reply: []byte("x"), HasReply: true}, "needs a match"},
		{"nothing to do", RuleSpec{Kind: MatchEquals, Pattern: []byte("a")}, "needs a reply"},
		{"echo and reply", RuleSpec{Echo: true, Reply: []byte("x"), HasReply: true}, "not both"},
		{"missing group number", RuleSpec{Kind: MatchRegex, Pattern: []byte("(a)"), Reply: []byte("$2"), HasReply: true}, "group 2"},
		{"missing group name", RuleSpec{Kind: MatchRegex, Pattern: []byte("(?P<k>a)"), Reply: []byte("${v}"), HasReply: true}, `group "v"`},
		{"digits then text", RuleSpec{Kind: MatchRegex, Pattern: []byte("(a)"), Reply: []byte("$1x"), HasReply: true}, "${1}x"},
		{"lone dollar", RuleSpec{Kind: MatchRegex, Pattern: []byte("a"), Reply: []byte("5$"), HasReply: true}, "$$"},
		{"pattern over the bound", RuleSpec{Kind: MatchEquals, Pattern: []byte("123456789"), Echo: true}, "out of range 0 to 8"},
		{"reply over the bound", RuleSpec{Kind: MatchEquals, Reply: []byte("123456789"), HasReply: true}, "out of range 0 to 8"},
		{"delay over an hour", RuleSpec{Echo: true, Delay: 2 * time.Hour}, "delay_ms"},
		{"negative times", RuleSpec{Echo: true, Times: -1}, "times"},
		{"then what", RuleSpec{Echo: true, Then: "hang"}, "close or reset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := compileRule(c.spec, &cfg)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrInvalid saying %q", err, c.want)
			}
		})
	}
	// At the edges of the bounds it is taken.
	for _, spec := range []RuleSpec{
		{Kind: MatchEquals, Pattern: []byte("12345678"), Reply: []byte("12345678"), HasReply: true},
		{Kind: MatchRegex, Pattern: []byte("(a)"), Reply: []byte("$$${1}$0"), HasReply: true},
		{Echo: true, Delay: time.Hour},
	} {
		if _, err := compileRule(spec, &cfg); err != nil {
			t.Errorf("%+v: got %v, want nil", spec, err)
		}
	}
}

func TestRulesPerOwnerBound(t *testing.T) {
	r := newTestRegistry(t, Config{MaxRules: 2})
	srv := listen(t, r, ListenOptions{})
	addRule(t, srv.Rules(), RuleSpec{Echo: true})
	addRule(t, srv.Rules(), RuleSpec{Echo: true})
	if _, err := srv.Rules().Add(RuleSpec{Echo: true}); !errors.Is(err, ErrLimit) {
		t.Fatalf("a third rule: got %v, want ErrLimit", err)
	}
}

// The template is expanded as Regexp.Expand does it.
func TestTemplateLikeExpand(t *testing.T) {
	re := regexp.MustCompile(`(?P<cmd>[A-Z]+)(\d*)(x)?`)
	cfg := Config{}.withDefaults()
	for _, tmpl := range []string{"$1", "${cmd}-$2", "$$$1$$", "[$3]", "${2}0", "$0$0", "plain", "$cmd_"} {
		r, err := compileRule(RuleSpec{Kind: MatchRegex, Pattern: []byte(re.String()), Reply: []byte(tmpl), HasReply: true}, &cfg)
		if tmpl == "$cmd_" {
			if err == nil {
				t.Errorf("%s: got nil, want a missing group (Expand reads ${cmd_})", tmpl)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		for _, msg := range []string{"ATI", "AT42", "AT9x", "--"} {
			m := re.FindSubmatchIndex([]byte(msg))
			if m == nil {
				continue
			}
			want := re.Expand(nil, []byte(tmpl), []byte(msg), m)
			if got := r.reply([]byte(msg), m, 1<<20); !bytes.Equal(got, want) {
				t.Errorf("%s on %s: got %q, want %q", tmpl, msg, got, want)
			}
		}
	}
}

// A socket whose answers wait (a delay, a full queue) holds up no other
// socket of the same server.
func TestDelayHoldsNoOtherSocket(t *testing.T) {
	r := newTestRegistry(t, Config{MaxPendingReplies: 1})
	srv := listen(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLines}}})
	addRule(t, srv.Rules(), RuleSpec{Echo: true})
	slowPeer := dialPeer(t, srv.addr)
	slow := acceptedSocket(t, r, srv, slowPeer)
	addRule(t, slow.Rules(), RuleSpec{Kind: MatchPrefix, Reply: []byte("late"), HasReply: true, Delay: time.Hour})
	writeAll(t, slowPeer, []byte(strings.Repeat("x\n", 100)))
	waitFor(t, guard, func() bool { return slow.Info().BufferedMessages == 3 }) // replier, queue, read loop
	fast := dialPeer(t, srv.addr)
	for i := range 10 {
		msg := strings.Repeat("y", i+1)
		writeAll(t, fast, []byte(msg+"\n"))
		expect(t, fast, msg)
	}
}
