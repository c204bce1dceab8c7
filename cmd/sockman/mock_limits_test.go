package main

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The bounds of mock devices, each through its flag and the real serve:
// at the bound a request is taken, one past it is a problem naming the
// flag.

// --max-rules: per server and per socket.
func TestMaxRules(t *testing.T) {
	s := startService(t, []string{"--max-rules", "2"})
	var srv serverInfo
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	for range 2 {
		s.do("POST", "/servers/"+srv.ID+"/rules", `{"echo":true}`).want(t, 201)
	}
	s.do("POST", "/servers/"+srv.ID+"/rules", `{"echo":true}`).want(t, 503).problem(t, "--max-rules", "2 reply rules")
	var sock socketInfo
	s.connect(t, srv.Address).want(t, 201).decode(t, &sock)
	for range 2 {
		s.do("POST", "/sockets/"+sock.ID+"/rules", `{"echo":true}`).want(t, 201)
	}
	s.do("POST", "/sockets/"+sock.ID+"/rules", `{"echo":true}`).want(t, 503).problem(t, "--max-rules")
	s.do("DELETE", "/sockets/"+sock.ID+"/rules/rule-1", nil).want(t, 204)
	s.do("POST", "/sockets/"+sock.ID+"/rules", `{"echo":true}`).want(t, 201)
}

// --max-schedules: per server and per socket.
func TestMaxSchedules(t *testing.T) {
	s := startService(t, []string{"--max-schedules", "1"})
	var srv serverInfo
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	body := `{"data":"x","interval_ms":60000}`
	s.do("POST", "/servers/"+srv.ID+"/schedules", body).want(t, 201)
	s.do("POST", "/servers/"+srv.ID+"/schedules", body).want(t, 503).problem(t, "--max-schedules", "1 schedules")
	var sock socketInfo
	s.connect(t, srv.Address).want(t, 201).decode(t, &sock)
	s.do("POST", "/sockets/"+sock.ID+"/schedules", body).want(t, 201)
	s.do("POST", "/sockets/"+sock.ID+"/schedules", body).want(t, 503).problem(t, "--max-schedules")
}

// --max-rule-pattern-bytes counts the decoded bytes; --max-reply-bytes
// bounds replies, greetings and scheduled data.
func TestMaxPatternAndReplyBytes(t *testing.T) {
	s := startService(t, []string{"--max-rule-pattern-bytes", "4", "--max-reply-bytes", "3"})
	var srv serverInfo
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	rules := "/servers/" + srv.ID + "/rules"
	s.do("POST", rules, `{"match":{"equals":"41 42 43 44","encoding":"hex"},"reply":{"data":"abc"}}`).want(t, 201)
	s.do("POST", rules, `{"match":{"equals":"41 42 43 44 45","encoding":"hex"},"reply":{"data":"abc"}}`).want(t, 400).problem(t, "--max-rule-pattern-bytes", "5")
	s.do("POST", rules, `{"match":{"prefix":"a"},"reply":{"data":"abcd"}}`).want(t, 400).problem(t, "--max-reply-bytes", "4")
	s.do("POST", "/servers", `{"port":0,"greeting":{"data":"abc"}}`).want(t, 201)
	s.do("POST", "/servers", `{"port":0,"greeting":{"data":"abcd"}}`).want(t, 400).problem(t, "--max-reply-bytes")
	s.do("POST", "/servers/"+srv.ID+"/schedules", `{"data":"abc","interval_ms":60000}`).want(t, 201)
	s.do("POST", "/servers/"+srv.ID+"/schedules", `{"data":"abcd","interval_ms":60000}`).want(t, 400).problem(t, "--max-reply-bytes")
}

// --min-schedule-interval: the floor itself is taken.
func TestMinScheduleInterval(t *testing.T) {
	s := startService(t, []string{"--min-schedule-interval", "50ms"})
	var srv serverInfo
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	s.do("POST", "/servers/"+srv.ID+"/schedules", `{"data":"x","interval_ms":49}`).want(t, 400).problem(t, "--min-schedule-interval", "50ms")
	s.do("POST", "/servers/"+srv.ID+"/schedules", `{"data":"x","interval_ms":50,"count":1}`).want(t, 201)
}

// --max-pending-replies: a peer that sends faster than delayed answers go
// out fills the queue, and then the socket stops reading: what it sent
// stays in the kernel, and the API stays responsive.
func TestMaxPendingReplies(t *testing.T) {
	s := startService(t, []string{"--max-pending-replies", "1"})
	var srv serverInfo
	s.do("POST", "/servers", `{"port":0,"framing":{"type":"lines"}}`).want(t, 201).decode(t, &srv)
	s.do("POST", "/servers/"+srv.ID+"/rules", `{"match":{"prefix":""},"reply":{"data":"r"},"delay_ms":3600000}`).want(t, 201)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := io.WriteString(peer, strings.Repeat("m\n", 10)); err != nil {
		t.Fatal(err)
	}
	// One waits in the replier, one in the queue, the read loop holds the
	// third: three messages stored, seven unread.
	var socks struct {
		Sockets []struct {
			ID               string `json:"id"`
			BufferedMessages int64  `json:"buffered_messages"`
		} `json:"sockets"`
	}
	waitFor(t, guard, func() bool {
		s.do("GET", "/sockets?server_id="+srv.ID, nil).want(t, 200).decode(t, &socks)
		return len(socks.Sockets) == 1 && socks.Sockets[0].BufferedMessages == 3
	})
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) { // it stays there: nothing more is read
		s.do("GET", "/sockets?server_id="+srv.ID, nil).want(t, 200).decode(t, &socks)
		if n := socks.Sockets[0].BufferedMessages; n != 3 {
			t.Fatalf("%d messages stored, want 3", n)
		}
	}
	s.do("DELETE", "/sockets/"+socks.Sockets[0].ID, nil).want(t, 204)
}
