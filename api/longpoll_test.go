package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitParked waits until n reads are parked in a's engine, waiting for a
// message, a close or their deadline.
func waitParked(t testing.TB, a *testAPI, n int) {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for {
		changed := a.reg.WaitingChanged()
		got := a.reg.Waiting()
		if got == n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %d parked reads; %d are", testTimeout, n, got)
		}
	}
}

// poll is a long poll running in its own goroutine.
type poll struct {
	done chan struct{}
	res  response
	err  error
}

// startPoll sends req in a goroutine and returns once it is parked in the
// engine, and has not been answered.
func startPoll(t *testing.T, a *testAPI, req *http.Request) *poll {
	t.Helper()
	p := &poll{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.res, p.err = a.tryDo(req)
	}()
	waitParked(t, a, 1)
	select {
	case <-p.done:
		t.Fatalf("the poll answered before anything happened: %d %s, %v", p.res.StatusCode, p.res.body, p.err)
	default:
	}
	return p
}

// wait returns the poll's answer, failing the test if it takes longer than
// the failure guard.
func (p *poll) wait(t *testing.T) response {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(2 * testTimeout):
		t.Fatal("the poll did not answer")
	}
	if p.err != nil {
		t.Fatalf("poll: %v", p.err)
	}
	return p.res
}

func TestLongPollWakesOnData(t *testing.T) {
	a := newTestAPI(t)
	s, peer := a.pair(t)
	p := startPoll(t, a, a.newRequest(http.MethodGet, "/sockets/"+s.ID+"/messages?after=0&wait=30s", nil))

	writePeer(t, peer, []byte("wake up"))
	var l MessageList
	p.wait(t).want(t, http.StatusOK).decode(t, &l)
	if len(l.Messages) != 1 || l.Messages[0].Data != "wake up" || l.Cursor != 1 || l.State != "connected" {
		t.Fatalf("got %+v, want the message %q with cursor 1 on a connected socket", l, "wake up")
	}
}

func TestLongPollWakesOnClose(t *testing.T) {
	a := newTestAPI(t)
	s, peer := a.pair(t)
	p := startPoll(t, a, a.newRequest(http.MethodGet, "/sockets/"+s.ID+"/messages?after=0&wait=30s", nil))

	peer.Close()
	var l MessageList
	p.wait(t).want(t, http.StatusOK).decode(t, &l)
	if len(l.Messages) != 0 || l.State != "closed" || l.Cursor != 0 {
		t.Fatalf("got %+v, want no messages, state closed, cursor 0", l)
	}
}

func TestLongPollEmptyAtDeadline(t *testing.T) {
	a := newTestAPI(t)
	s, peer := a.pair(t)
	writePeer(t, peer, []byte("one"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BytesReceived == 3 })

	// Acknowledge message 1 and wait for a second that does not come.
	l := a.read(t, s.ID, "?after=1&wait=200ms")
	if len(l.Messages) != 0 || l.Cursor != 1 || l.State != "connected" {
		t.Fatalf("got %+v, want no messages, cursor 1 (the after given), connected", l)
	}
	if got := a.socket(t, s.ID); got.BufferedMessages != 0 {
		t.Errorf("got %d messages buffered, want message 1 acknowledged", got.BufferedMessages)
	}
}

func TestLongPollWaitIsCappedByMaxWait(t *testing.T) {
	a := newTestAPI(t, withOptions(func(o *Options) { o.MaxWait = 100 * time.Millisecond }))
	s, _ := a.pair(t)
	// Without the cap these would outlast the client's timeout and fail.
	// The last ones are longer than a Go duration holds: very long waits
	// all the same, cut like the others.
	for _, wait := range []string{"1h", "2562047h", "5000000h", "9223372036854775808ns", "%2B99999999999999999999h", "100000000000h30m"} {
		l := a.read(t, s.ID, "?after=0&wait="+wait)
		if len(l.Messages) != 0 || l.Cursor != 0 || l.State != "connected" {
			t.Fatalf("wait=%s: got %+v, want an empty answer once --max-wait passed", wait, l)
		}
	}
}

func TestLongPollClientGivingUpLeavesNothingBehind(t *testing.T) {
	a := newTestAPI(t)
	s, _ := a.pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := startPoll(t, a, a.newRequest(http.MethodGet, "/sockets/"+s.ID+"/messages?after=0&wait=30s", nil).WithContext(ctx))

	cancel()
	<-p.done
	if !errors.Is(p.err, context.Canceled) {
		t.Fatalf("got %v, want the client's request cancelled", p.err)
	}
	// The handler notices the closed connection and returns; the
	// package's goleak check covers the rest.
	waitParked(t, a, 0)
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 })
	if got := a.socket(t, s.ID); got.State != "connected" {
		t.Errorf("got socket state %s, want it untouched by the abandoned poll", got.State)
	}
}

func TestLongPollEndsOnDelete(t *testing.T) {
	a := newTestAPI(t)
	s, peer := a.pair(t)
	p := startPoll(t, a, a.newRequest(http.MethodGet, "/sockets/"+s.ID+"/messages?after=0&wait=30s", nil))

	a.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)
	var l MessageList
	p.wait(t).want(t, http.StatusOK).decode(t, &l)
	if len(l.Messages) != 0 || l.State != "closed" {
		t.Fatalf("got %+v, want no messages and state closed", l)
	}
	wantEOF(t, peer)
}

// TestOctetStreamReadCarriesState: octet-stream answers carry the read's
// state in Sockman-State, as JSON answers do in "state": connected while the
// peer is there, closed with an empty body once everything has been read.
func TestOctetStreamReadCarriesState(t *testing.T) {
	a := newTestAPI(t)
	s, peer := a.pair(t)
	var got []byte
	cursor := uint64(0)
	// read answers one long poll and returns its body and state.
	read := func() ([]byte, string) {
		res := a.call(http.MethodGet, fmt.Sprintf("/sockets/%s/messages?after=%d&wait=30s", s.ID, cursor), nil,
			"Accept", "application/octet-stream").want(t, http.StatusOK)
		next, err := strconv.ParseUint(res.Header.Get("Sockman-Cursor"), 10, 64)
		if err != nil {
			t.Fatalf("Sockman-Cursor %q: %v", res.Header.Get("Sockman-Cursor"), err)
		}
		cursor = next
		got = append(got, res.body...)
		return res.body, res.Header.Get("Sockman-State")
	}

	writePeer(t, peer, []byte("abc"))
	for len(got) < 3 {
		if _, state := read(); state != "connected" {
			t.Fatalf("Sockman-State %q with the peer still connected, want connected", state)
		}
	}
	writePeer(t, peer, []byte("de"))
	peer.Close()
	for {
		body, state := read()
		if len(body) == 0 {
			if state != "closed" {
				t.Fatalf("an empty answer to a 30 s poll says Sockman-State %q, want closed", state)
			}
			break
		}
		if state != "connected" && state != "closed" {
			t.Fatalf("Sockman-State %q, want connected or closed", state)
		}
	}
	if string(got) != "abcde" {
		t.Fatalf("read %q in all, want %q", got, "abcde")
	}
}

// TestParseWait: a wait is a non-negative Go duration, cut to --max-wait;
// one too long for a time.Duration is cut too, while a negative or
// malformed one is refused however long it is.
func TestParseWait(t *testing.T) {
	const maxWait = time.Minute
	for _, tt := range []struct {
		wait string
		want time.Duration // -1: refused
	}{
		{"0", 0}, {"0s", 0}, {"500ms", 500 * time.Millisecond}, {"1.5s", 1500 * time.Millisecond}, {".5s", 500 * time.Millisecond},
		{"1h", maxWait}, {"+5s", 5 * time.Second}, {"1µs", time.Microsecond}, {"1μs", time.Microsecond},
		{"5000000h", maxWait}, {"2562048h", maxWait}, {"9223372036854775808ns", maxWait}, {"99999999999999999999999h1s", maxWait},
		{"-1s", -1}, {"-5000000h", -1}, {"5000000", -1}, {"5000000x", -1}, {"h", -1}, {".h", -1}, {"1..5s", -1},
		{"1e9h", -1}, {"5000000 h", -1}, {"5000000h ", -1}, {"", -1}, {"++1s", -1},
	} {
		got, err := parseWait(tt.wait, maxWait)
		switch {
		case tt.want < 0 && err == nil:
			t.Errorf("wait=%q: got %v, want it refused", tt.wait, got)
		case tt.want < 0:
			if p := problemFor(err); p.Status != 400 || !strings.Contains(p.Detail, "non-negative Go duration") {
				t.Errorf("wait=%q: got %d %q, want a 400 that asks for a non-negative Go duration", tt.wait, p.Status, p.Detail)
			}
		case err != nil || got != tt.want:
			t.Errorf("wait=%q: got %v, %v; want %v", tt.wait, got, err, tt.want)
		}
	}
}
