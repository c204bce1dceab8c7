package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sockman/sockman/internal/contract"
)

// Rules through the API, from a real peer: each encoding of a pattern and
// a reply is the bytes it says.
func TestRuleEncodings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, rule string
		send, want string
	}{
		{"utf8", `{"match":{"equals":"AT"},"reply":{"data":"OK\r\n"}}`, "AT\n", "OK\r\n"},
		{"hex with separators", `{"match":{"prefix":"01:02","encoding":"hex"},"reply":{"data":"0x7f 0x00","encoding":"hex"}}`, "\x01\x02\x03\n", "\x7f\x00"},
		{"escaped", `{"match":{"suffix":"\\t?","encoding":"escaped"},"reply":{"data":"\\x00yes\\r\\n","encoding":"escaped"}}`, "ready\t?\n", "\x00yes\r\n"},
		{"base64", `{"match":{"contains":"cGluZw==","encoding":"base64"},"reply":{"data":"cG9uZw==","encoding":"base64"}}`, "a ping\n", "pong"},
		{"regex groups", `{"match":{"regex":"^SET (?P<k>\\w+)=(\\d+)$"},"reply":{"data":"${k} is $2, $$1"}}`, "SET a=42\n", "a is 42, $1"},
		{"regex in escaped", `{"match":{"regex":"^\\x41(T)","encoding":"escaped"},"reply":{"data":"$1"}}`, "AT\n", "T"},
		{"echo", `{"echo":true}`, "anything\n", "anything"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(t)
			srv := a.listen(t, func(r *ServerCreate) { r.Framing = &Framing{Type: "lines"} })
			var rule Rule
			a.call(http.MethodPost, "/servers/"+srv.ID+"/rules", c.rule).want(t, http.StatusCreated).decode(t, &rule)
			_, peer := a.connect(t, srv)
			writePeer(t, peer, []byte(c.send))
			if got := string(readPeer(t, peer, len(c.want))); got != c.want {
				t.Fatalf("answered %q, want %q", got, c.want)
			}
			var list RuleList
			a.call(http.MethodGet, "/servers/"+srv.ID+"/rules", nil).want(t, http.StatusOK).decode(t, &list)
			if len(list.Rules) != 1 || list.Rules[0].Hits != 1 {
				t.Fatalf("rules %+v, want the one with 1 hit", list.Rules)
			}
		})
	}
}

// A socket's rule answers before its server's, through the API; deleting
// it hands the messages back to the server's.
func TestSocketRuleBeforeServerRule(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	srv := a.listen(t, func(r *ServerCreate) { r.Framing = &Framing{Type: "lines"} })
	a.call(http.MethodPost, "/servers/"+srv.ID+"/rules", `{"match":{"prefix":""},"reply":{"data":"server"}}`).want(t, http.StatusCreated)
	s, peer := a.connect(t, srv)
	var own Rule
	a.call(http.MethodPost, "/sockets/"+s.ID+"/rules", `{"match":{"prefix":""},"reply":{"data":"socket"}}`).want(t, http.StatusCreated).decode(t, &own)
	writePeer(t, peer, []byte("x\n"))
	if got := string(readPeer(t, peer, 6)); got != "socket" {
		t.Fatalf("answered %q, want socket", got)
	}
	a.call(http.MethodDelete, "/sockets/"+s.ID+"/rules/"+own.ID, nil).want(t, http.StatusNoContent)
	writePeer(t, peer, []byte("x\n"))
	if got := string(readPeer(t, peer, 6)); got != "server" {
		t.Fatalf("answered %q, want server", got)
	}
}

// Every bad rule and schedule is a 400 whose detail says what to change.
func TestRuleBadInputOverHTTP(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	srv := a.listen(t)
	cases := []struct {
		name, path, body string
		want             []string
	}{
		{"bad regex", "rules", `{"match":{"regex":"a(b"},"reply":{"data":"x"}}`, []string{"does not compile", "missing closing )"}},
		{"unknown match kind", "rules", `{"match":{"glob":"a*"},"reply":{"data":"x"}}`, []string{`unknown field "glob"`}},
		{"no match kind", "rules", `{"match":{"encoding":"hex"},"reply":{"data":"x"}}`, []string{"equals, prefix, suffix, contains or regex"}},
		{"two match kinds", "rules", `{"match":{"equals":"a","prefix":"b"},"reply":{"data":"x"}}`, []string{"equals and prefix", "one kind"}},
		{"missing group", "rules", `{"match":{"regex":"(a)"},"reply":{"data":"$2"}}`, []string{"group 2", "$0 to $1"}},
		{"missing named group", "rules", `{"match":{"regex":"(?P<x>a)"},"reply":{"data":"${y}"}}`, []string{`group "y"`, "${x}"}},
		{"digits then text", "rules", `{"match":{"regex":"(a)"},"reply":{"data":"$1st"}}`, []string{"${1}st"}},
		{"bad hex pattern", "rules", `{"match":{"equals":"4g","encoding":"hex"},"reply":{"data":"x"}}`, []string{"match equals is not valid hex"}},
		{"bad escaped reply", "rules", `{"match":{"equals":"a"},"reply":{"data":"\\q","encoding":"escaped"}}`, []string{"reply data is not valid escaped text"}},
		{"unknown encoding", "rules", `{"match":{"equals":"a","encoding":"rot13"},"reply":{"data":"x"}}`, []string{"utf8, base64, hex or escaped"}},
		{"nothing to do", "rules", `{"match":{"equals":"a"}}`, []string{"needs a reply"}},
		{"then what", "rules", `{"echo":true,"then":"hang"}`, []string{"close or reset"}},
		{"delay too long", "rules", `{"echo":true,"delay_ms":3600001}`, []string{"delay_ms 3600001", "0 to 3600000"}},
		{"negative times", "rules", `{"echo":true,"times":-1}`, []string{"times -1"}},
		{"interval below the floor", "schedules", `{"data":"x","interval_ms":9}`, []string{"interval_ms 9", "--min-schedule-interval"}},
		{"interval huge", "schedules", `{"data":"x","interval_ms":9223372036854775807}`, []string{"out of range"}},
		{"no interval", "schedules", `{"data":"x"}`, []string{"interval_ms are required"}},
		{"empty data", "schedules", `{"data":"","interval_ms":1000}`, []string{"at least one byte"}},
		{"negative count", "schedules", `{"data":"x","interval_ms":1000,"count":-1}`, []string{"count -1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := a.call(http.MethodPost, "/servers/"+srv.ID+"/"+c.path, c.body, contract.SkipRequestHeader, "bad on purpose").want(t, http.StatusBadRequest).problem(t)
			for _, w := range c.want {
				if !strings.Contains(p.Detail, w) {
					t.Errorf("detail %q does not say %q", p.Detail, w)
				}
			}
		})
	}
	p := a.call(http.MethodPost, "/servers", `{"port":0,"retain":"some"}`, contract.SkipRequestHeader, "bad on purpose").want(t, http.StatusBadRequest).problem(t)
	if !strings.Contains(p.Detail, "all, unmatched or none") {
		t.Errorf("retain some: detail %q", p.Detail)
	}
}

// Retain none on a client: what the peer sends is counted, not stored.
func TestClientRetainNone(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ln := listenPeer(t)
	s := a.dial(t, ln.Addr().String(), func(r *ClientCreate) { r.Retain = "none" })
	if s.Retain != "none" {
		t.Fatalf("retain %q, want none", s.Retain)
	}
	peer := acceptPeer(t, ln)
	writePeer(t, peer, []byte("hello"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BytesReceived == 5 })
	if got := a.socket(t, s.ID); got.BufferedMessages != 0 {
		t.Fatalf("%d messages stored, want none", got.BufferedMessages)
	}
}

// A greeting is shown back as the request wrote it.
func TestGreetingShownBack(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	var srv Server
	a.call(http.MethodPost, "/servers", `{"port":0,"greeting":{"data":"220 hi\\r\\n","encoding":"escaped"}}`).want(t, http.StatusCreated).decode(t, &srv)
	if srv.Greeting == nil || srv.Greeting.Data != `220 hi\r\n` || srv.Greeting.Encoding != "escaped" {
		t.Fatalf("greeting %+v", srv.Greeting)
	}
	_, peer := a.connect(t, srv)
	if got := string(readPeer(t, peer, 8)); got != "220 hi\r\n" {
		t.Fatalf("greeting %q", got)
	}
}
