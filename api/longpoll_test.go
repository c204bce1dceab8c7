package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/sockman/sockman/sockets"
)

// The long-poll tests do not run in parallel: they wait until a poll is
// parked in the engine by looking at every goroutine's stack, which only
// tells their own polls apart when nothing else runs.

// parkedReads counts the reads parked in the engine, waiting for a message,
// a close or their deadline.
func parkedReads() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	parked := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(" [select")) && bytes.Contains(g, []byte("sockets.(*Socket).Read(")) {
			parked++
		}
	}
	return parked
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
	waitFor(t, testTimeout, func() bool { return parkedReads() == 1 })
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
	// Without the cap this would outlast the client's timeout and fail.
	l := a.read(t, s.ID, "?after=0&wait=1h")
	if len(l.Messages) != 0 || l.Cursor != 0 || l.State != "connected" {
		t.Fatalf("got %+v, want an empty answer once --max-wait passed", l)
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
	waitFor(t, testTimeout, func() bool { return a.active.Load() == 0 && parkedReads() == 0 })
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

// TestReadStateSaysClosedOnlyAtTheEnd: a read answers "closed" with no
// messages only when the selection reached the end of the stream; a socket
// that closed after the selection was made, with its last bytes stored
// since, reads as connected so that the client asks again.
func TestReadStateSaysClosedOnlyAtTheEnd(t *testing.T) {
	one := []sockets.Message{{Seq: 1, Data: []byte("x")}}
	for _, tc := range []struct {
		state string
		sel   sockets.Selection
		want  string
	}{
		{"connected", sockets.Selection{}, "connected"},
		{"connected", sockets.Selection{Messages: one}, "connected"},
		{"closed", sockets.Selection{EOF: true}, "closed"},
		{"closed", sockets.Selection{Messages: one, EOF: true}, "closed"},
		{"closed", sockets.Selection{Messages: one}, "closed"}, // more to read, and the client will
		{"closed", sockets.Selection{}, "connected"},           // closed after the selection
	} {
		if got := readState(tc.state, tc.sel); got != tc.want {
			t.Errorf("readState(%s, %d messages, EOF %v) = %s, want %s", tc.state, len(tc.sel.Messages), tc.sel.EOF, got, tc.want)
		}
	}
}
