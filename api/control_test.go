package api

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/contract"
)

// peerReadAll reads c until EOF or an error, within the test timeout.
func peerReadAll(c net.Conn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(testTimeout))
	var b bytes.Buffer
	_, err := io.Copy(&b, c)
	return b.Bytes(), err
}

func TestShutdownThroughTheAPI(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"bye\n"}`).want(t, http.StatusOK)
	var got Socket
	a.call(http.MethodPost, "/sockets/"+s.ID+"/shutdown", nil).want(t, http.StatusOK).decode(t, &got)
	if !got.WriteClosed || got.State != "connected" {
		t.Fatalf("after shutdown: got write_closed %v, state %q; want true, connected", got.WriteClosed, got.State)
	}
	if b, err := peerReadAll(peer); err != nil || string(b) != "bye\n" {
		t.Fatalf("peer read to EOF: got %q, %v; want %q, nil", b, err, "bye\n")
	}
	writePeer(t, peer, []byte("after your FIN"))
	if l := a.read(t, s.ID, "?wait=5s"); len(l.Messages) != 1 || l.Messages[0].Data != "after your FIN" {
		t.Fatalf("read after shutdown: got %+v, want the peer's message", l.Messages)
	}
	p := a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"x"}`).want(t, http.StatusConflict).problem(t)
	if p.Type != problemPrefix+"socket-closed-for-writing" || !strings.Contains(p.Detail, "FIN") {
		t.Fatalf("send after shutdown: got %+v, want socket-closed-for-writing", p)
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/shutdown", nil).want(t, http.StatusOK) // idempotent
}

func TestHalfCloseThroughTheAPI(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t, func(c *ServerCreate) { c.HalfClose = true })
	if !s.HalfClose {
		t.Fatalf("socket: got half_close false, want the server's true")
	}
	writePeer(t, peer, []byte("question"))
	peer.CloseWrite()
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).ReadClosed })
	if got := a.socket(t, s.ID); got.State != "connected" {
		t.Fatalf("after the peer's FIN: got state %q, want connected", got.State)
	}
	if l := a.read(t, s.ID, ""); len(l.Messages) != 1 || l.Messages[0].Data != "question" {
		t.Fatalf("read: got %+v, want the peer's message", l.Messages)
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"answer"}`).want(t, http.StatusOK)
	a.call(http.MethodPost, "/sockets/"+s.ID+"/shutdown", nil).want(t, http.StatusOK)
	if b, err := peerReadAll(peer); err != nil || string(b) != "answer" {
		t.Fatalf("peer read: got %q, %v; want %q, nil", b, err, "answer")
	}
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })
	if got := a.socket(t, s.ID).CloseReason; !strings.HasPrefix(got, "closed both ways") {
		t.Fatalf("close reason: got %q, want closed both ways", got)
	}
}

func TestCloseKeepsTheSocketReadable(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	writePeer(t, peer, []byte("keep me"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BytesReceived == 7 })
	var got Socket
	a.call(http.MethodPost, "/sockets/"+s.ID+"/close", nil).want(t, http.StatusOK).decode(t, &got)
	if got.State != "closed" || got.CloseReason != "closed through the API" {
		t.Fatalf("closed socket: got %q, %q; want closed, closed through the API", got.State, got.CloseReason)
	}
	if b, err := peerReadAll(peer); err != nil || len(b) != 0 {
		t.Fatalf("peer: got %q, %v; want EOF", b, err)
	}
	if l := a.read(t, s.ID, ""); len(l.Messages) != 1 || l.Messages[0].Data != "keep me" || l.State != "closed" {
		t.Fatalf("read after close: got %+v, want the message, state closed", l)
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/close?reset=true", nil).want(t, http.StatusOK) // closed already: stays
	if got := a.socket(t, s.ID).CloseReason; got != "closed through the API" {
		t.Fatalf("a second close: got reason %q, want the first", got)
	}
	a.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)
	a.call(http.MethodPost, "/sockets/"+s.ID+"/close", nil).want(t, http.StatusNotFound)
}

func TestResetThroughTheAPI(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	for _, how := range []struct{ method, path string }{
		{http.MethodPost, "/close?reset=true"},
		{http.MethodDelete, "?reset=true"},
	} {
		s, peer := a.pair(t)
		res := a.call(how.method, "/sockets/"+s.ID+how.path, nil)
		if res.StatusCode/100 != 2 {
			t.Fatalf("%s %s: got %d, want success", how.method, how.path, res.StatusCode)
		}
		if _, err := peerReadAll(peer); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s %s: peer read got %v, want ECONNRESET", how.method, how.path, err)
		}
		if how.method == http.MethodPost {
			if got := a.socket(t, s.ID).CloseReason; got != "reset through the API" {
				t.Fatalf("close reason: got %q, want reset through the API", got)
			}
		}
	}
}

func TestTCPOptionsShown(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	srv := a.listen(t, func(c *ServerCreate) { c.NoDelay, c.KeepAlive = ptr(false), ptr("15s") })
	if srv.NoDelay || srv.KeepAlive != "15s" {
		t.Fatalf("server: got no_delay %v, keepalive %q; want false, 15s", srv.NoDelay, srv.KeepAlive)
	}
	s, _ := a.connect(t, srv)
	if s.NoDelay || s.KeepAlive != "15s" {
		t.Fatalf("accepted socket: got no_delay %v, keepalive %q; want false, 15s", s.NoDelay, s.KeepAlive)
	}
	ln := listenPeer(t)
	c := a.dial(t, ln.Addr().String(), func(c *ClientCreate) { c.KeepAlive = ptr("0") })
	if !c.NoDelay || c.KeepAlive != "0" {
		t.Fatalf("client: got no_delay %v, keepalive %q; want true, 0", c.NoDelay, c.KeepAlive)
	}
	d := a.listen(t)
	if !d.NoDelay || d.KeepAlive != "30s" || d.HalfClose {
		t.Fatalf("defaults: got no_delay %v, keepalive %q, half_close %v; want true, 30s, false", d.NoDelay, d.KeepAlive, d.HalfClose)
	}
}

func TestNameFilters(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	srv := a.listen(t, func(c *ServerCreate) { c.Name = "modem A" })
	a.listen(t, func(c *ServerCreate) { c.Name = "modem" })
	s, _ := a.connect(t, srv)
	if s.Name != "modem A" {
		t.Fatalf("accepted socket: got name %q, want its server's", s.Name)
	}
	var l ServerList
	a.call(http.MethodGet, "/servers?name=modem+A", nil).want(t, http.StatusOK).decode(t, &l)
	if len(l.Servers) != 1 || l.Servers[0].ID != srv.ID {
		t.Fatalf("servers named modem A: got %+v, want %s alone", l.Servers, srv.ID)
	}
	if got := a.sockets(t, "?name=modem+A"); len(got) != 1 || got[0].ID != s.ID {
		t.Fatalf("sockets named modem A: got %d, want %s alone", len(got), s.ID)
	}
	if got := a.sockets(t, "?name=modem"); len(got) != 0 {
		t.Fatalf("sockets named modem: got %d, want none (the match is exact)", len(got))
	}
	ln := listenPeer(t)
	c := a.dial(t, ln.Addr().String(), func(c *ClientCreate) { c.Name = "probe" })
	var cl SocketList
	a.call(http.MethodGet, "/clients?name=probe", nil).want(t, http.StatusOK).decode(t, &cl)
	if len(cl.Sockets) != 1 || cl.Sockets[0].ID != c.ID || c.Name != "probe" {
		t.Fatalf("clients named probe: got %+v, want %s alone", cl.Sockets, c.ID)
	}
}

func TestPeerSocketIDThroughTheAPI(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	srv := a.listen(t)
	c := a.dial(t, srv.Address)
	var acc Socket
	waitFor(t, testTimeout, func() bool {
		list := a.sockets(t, "?server_id="+srv.ID)
		if len(list) == 1 {
			acc = list[0]
		}
		return len(list) == 1
	})
	if got := a.socket(t, c.ID).PeerSocketID; got != acc.ID {
		t.Fatalf("client's peer_socket_id: got %q, want %q", got, acc.ID)
	}
	if acc.PeerSocketID != c.ID {
		t.Fatalf("accepted socket's peer_socket_id: got %q, want %q", acc.PeerSocketID, c.ID)
	}
}

func TestConnControlBadInput(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, _ := a.pair(t)
	long := strings.Repeat("n", 129)
	for _, c := range []struct {
		name, method, path, body, want string
	}{
		{"keepalive not a duration", http.MethodPost, "/servers", `{"port":0,"keepalive":"often"}`, `keepalive "often" is not a duration`},
		{"keepalive under a second", http.MethodPost, "/servers", `{"port":0,"keepalive":"500ms"}`, "keepalive 500ms is out of range 1s to 9h6m7s"},
		{"keepalive not whole seconds", http.MethodPost, "/clients", `{"host":"127.0.0.1","port":1,"keepalive":"1.5s"}`, "in whole seconds"},
		{"keepalive too long", http.MethodPost, "/servers", `{"port":0,"keepalive":"10h"}`, "out of range"},
		{"keepalive negative", http.MethodPost, "/servers", `{"port":0,"keepalive":"-5s"}`, "out of range"},
		{"keepalive a number", http.MethodPost, "/servers", `{"port":0,"keepalive":0}`, `must be a string, not a number (a duration such as "15s", or "0" for off)`},
		{"no_delay a string", http.MethodPost, "/servers", `{"port":0,"no_delay":"yes"}`, "no_delay"},
		{"half_close a number", http.MethodPost, "/clients", `{"host":"127.0.0.1","port":1,"half_close":1}`, "half_close"},
		{"name too long", http.MethodPost, "/servers", `{"port":0,"name":"` + long + `"}`, "name is 129 bytes, more than the 128 that --max-name-bytes allows"},
		{"name with a control character", http.MethodPost, "/clients", `{"host":"127.0.0.1","port":1,"name":"a\tb"}`, "control character at byte 1"},
		{"name filter too long", http.MethodGet, "/sockets?name=" + long, "", "--max-name-bytes"},
		{"name filter empty", http.MethodGet, "/servers?name=", "", "name"},
		{"name filter repeated", http.MethodGet, "/clients?name=a&name=b", "", "name"},
		{"reset not a bool", http.MethodPost, "/sockets/" + s.ID + "/close?reset=yes", "", `reset="yes" must be true or false`},
		{"reset on delete not a bool", http.MethodDelete, "/sockets/" + s.ID + "?reset=2", "", "reset"},
		{"shutdown takes no query", http.MethodPost, "/sockets/" + s.ID + "/shutdown?reset=true", "", "unknown query parameter"},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		p := a.call(c.method, c.path, body, contract.SkipRequestHeader, "bad on purpose").want(t, http.StatusBadRequest).problem(t)
		if !strings.Contains(p.Detail, c.want) {
			t.Errorf("%s: got detail %q, want it to say %q", c.name, p.Detail, c.want)
		}
	}
	if got := a.socket(t, s.ID); got.State != "connected" {
		t.Fatalf("after the bad requests: socket is %q, want connected", got.State)
	}
}
