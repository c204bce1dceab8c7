package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sockman/sockman/internal/fakedns"
)

// One test per limit, each through its flag and the real serve: hitting a
// bound is a clear 4xx/503 naming it, never a crash or a queue.

type socketInfo struct {
	ID            string `json:"id"`
	BufferedBytes int64  `json:"buffered_bytes"`
}

type serverInfo struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Accepted int64  `json:"accepted"`
	Rejected int64  `json:"rejected"`
}

func (s *service) connect(t testing.TB, addr string) response {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	return s.do("POST", "/clients", fmt.Sprintf(`{"host":%q,"port":%s}`, host, port))
}

func (s *service) server(t testing.TB, id string) serverInfo {
	t.Helper()
	var info serverInfo
	s.do("GET", "/servers/"+id, nil).want(t, 200).decode(t, &info)
	return info
}

// --max-sockets: a connect past it is 503; a server at it closes new
// connections at once and counts them as rejected.
func TestMaxSockets(t *testing.T) {
	s := startService(t, []string{"--max-sockets", "1"})
	target := listenLoopback(t, "127.0.0.1:0")
	var first socketInfo
	s.connect(t, target.Addr().String()).want(t, 201).decode(t, &first)
	acceptOne(t, target)
	s.connect(t, target.Addr().String()).want(t, 503).problem(t, "--max-sockets", "1 sockets")

	var srv serverInfo
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	waitClosed(t, peer)
	waitFor(t, guard, func() bool { return s.server(t, srv.ID).Rejected == 1 })
	if got := s.server(t, srv.ID); got.Accepted != 0 {
		t.Errorf("accepted: got %d, want 0", got.Accepted)
	}

	s.do("DELETE", "/sockets/"+first.ID, nil).want(t, 204)
	s.connect(t, target.Addr().String()).want(t, 201) // the slot is free again
}

// --max-servers: a listen past it is 503.
func TestMaxServers(t *testing.T) {
	s := startService(t, []string{"--max-servers", "1"})
	var srv serverInfo
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	s.do("POST", "/servers", `{"port":0}`).want(t, 503).problem(t, "--max-servers")
	s.do("DELETE", "/servers/"+srv.ID, nil).want(t, 204)
	s.do("POST", "/servers", `{"port":0}`).want(t, 201)
}

// --max-name-bytes: a name of that many bytes is taken, one more is a 400
// that names the flag, in a body and in a filter.
func TestMaxNameBytes(t *testing.T) {
	s := startService(t, []string{"--max-name-bytes", "4"})
	s.do("POST", "/servers", `{"port":0,"name":"abcd"}`).want(t, 201)
	s.do("POST", "/servers", `{"port":0,"name":"abcde"}`).want(t, 400).problem(t, "--max-name-bytes", "5 bytes")
	s.do("GET", "/sockets?name=abcde", nil).want(t, 400).problem(t, "--max-name-bytes")
	s.do("GET", "/servers?name=abcd", nil).want(t, 200)
}

// --max-buffer-total: once every socket together holds that much, reads
// pause (nothing is dropped), connects get 503 and servers turn new
// connections away.
func TestMaxBufferTotal(t *testing.T) {
	s := startService(t, []string{"--max-buffer-total", "64KiB"})
	target := listenLoopback(t, "127.0.0.1:0")
	var sock socketInfo
	s.connect(t, target.Addr().String()).want(t, 201).decode(t, &sock)
	peer := acceptOne(t, target)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer peer.Close()
	wg.Go(func() { peer.Write(make([]byte, 128<<10)) })
	waitFor(t, guard, func() bool {
		var got socketInfo
		s.do("GET", "/sockets/"+sock.ID, nil).want(t, 200).decode(t, &got)
		return got.BufferedBytes >= 60<<10 // the total counts what messages cost, payload and more
	})
	s.connect(t, target.Addr().String()).want(t, 503).problem(t, "--max-buffer-total")

	var srv serverInfo
	s.do("POST", "/servers", `{"port":0}`).want(t, 201).decode(t, &srv)
	c, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitClosed(t, c)
	waitFor(t, guard, func() bool { return s.server(t, srv.ID).Rejected == 1 })
}

// --max-body: a body over it is 413 naming the flag, whether its length is
// declared or not (chunked), JSON or raw. A raw send stops at the limit.
func TestMaxBody(t *testing.T) {
	s := startService(t, []string{"--max-body", "1KiB"})
	big := fmt.Sprintf(`{"port":0,"host":"127.0.0.1"%s}`, strings.Repeat(" ", 2<<10))
	s.do("POST", "/servers", big).want(t, 413).problem(t, "--max-body", "1024")

	req := s.request("POST", "/servers", io.MultiReader(strings.NewReader(big)), "Content-Type", "application/json")
	s.send(req).want(t, 413).problem(t, "--max-body")

	id := s.acceptedSocket(t)
	raw := s.request("POST", "/sockets/"+id+"/messages", io.MultiReader(strings.NewReader(strings.Repeat("x", 4<<10))), "Content-Type", "application/octet-stream")
	s.send(raw).want(t, 413).problem(t, "--max-body")
	var info struct {
		BytesSent int64 `json:"bytes_sent"`
	}
	s.do("GET", "/sockets/"+id, nil).want(t, 200).decode(t, &info)
	if info.BytesSent > 1<<10 {
		t.Errorf("bytes_sent: got %d, want at most the 1024-byte limit", info.BytesSent)
	}
	s.do("POST", "/sockets/"+id+"/messages", `{"data":"small"}`).want(t, 200)
}

// --max-wait: a long poll asking for an hour answers after --max-wait.
func TestMaxWaitCutsLongPolls(t *testing.T) {
	s := startService(t, []string{"--max-wait", "100ms"})
	id := s.acceptedSocket(t)
	var list struct{ Messages []any }
	s.do("GET", "/sockets/"+id+"/messages?wait=1h", nil).want(t, 200).decode(t, &list)
	if len(list.Messages) != 0 {
		t.Errorf("got %d messages, want none", len(list.Messages))
	}
}

// --connect-timeout bounds a connect, name lookup included: 504. A request
// may not ask for more than --max-connect-timeout.
func TestConnectTimeout(t *testing.T) {
	dns := fakedns.Start(t)
	dns.Drop("blackhole.test")
	s := startService(t, []string{"--connect-timeout", "100ms", "--max-connect-timeout", "1s"},
		func(c *serveConfig) { c.resolver = dns.Resolver() })
	s.do("POST", "/clients", `{"host":"blackhole.test","port":80}`).want(t, 504).problem(t, "100ms")
	s.do("POST", "/clients", `{"host":"blackhole.test","port":80,"timeout_ms":50}`).want(t, 504).problem(t, "50ms")
	s.do("POST", "/clients", `{"host":"127.0.0.1","port":80,"timeout_ms":2000}`).want(t, 400).problem(t, "1s")
}

// --write-timeout: a send to a peer that takes no data fails with 504
// naming the timeout, and the API goes on.
func TestWriteTimeout(t *testing.T) {
	s := startService(t, []string{"--write-timeout", "200ms", "--max-body", "1GiB"})
	id := s.acceptedSocket(t) // its peer never reads

	c := s.rawConn(t)
	const size = 1 << 30
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close()
	wg.Go(func() {
		fmt.Fprintf(c, "POST /sockets/%s/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", id, s.addr, size)
		chunk := make([]byte, 256<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return // the service answered and closed
			}
		}
	})
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	r := response{status: res.StatusCode, header: res.Header, body: body}
	r.want(t, 504).problem(t, "200ms")
	c.Close()
	s.do("GET", "/healthz", nil).want(t, 200)
}

// JSON bodies are decoded strictly: unknown fields, trailing data and wrong
// types are 400.
func TestStrictJSON(t *testing.T) {
	s := startService(t, nil)
	for _, body := range []string{
		`{"port":0,"prot":1}`,
		`{"port":0}{"port":0}`,
		`{"port":0} x`,
		`{"port":0}]`,
		`{"port":"0"}`,
		`[{"port":0}]`,
		`{"port":0`,
		``,
	} {
		s.do("POST", "/servers", body).want(t, 400).problem(t)
	}
	s.do("POST", "/clients", `{"host":"127.0.0.1","port":1,"timeout":5}`).want(t, 400).problem(t, "timeout")
	s.do("POST", "/servers", "{\"port\":0}\n").want(t, 201)
}
