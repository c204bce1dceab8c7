package api

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestSendEncodings: a send body is JSON with data in utf8 (the default),
// base64 or hex, or raw text/plain or octet-stream bytes; the peer gets
// exactly the bytes meant, and the answer counts them. Broadcast takes the
// same bodies.
func TestSendEncodings(t *testing.T) {
	t.Parallel()
	binary := []byte{0, 1, 2, 0xfe, 0xff, '\n', 0x80, '"'}
	for _, tc := range []struct {
		name        string
		body        any
		contentType string
		want        []byte
	}{
		{"json default utf8", `{"data":"héllo \"quoted\"\n"}`, "", []byte("héllo \"quoted\"\n")},
		{"json utf8", SendRequest{Data: "€ and \u2028", Encoding: "utf8"}, "", []byte("€ and \u2028")},
		{"json base64", SendRequest{Data: "AAEC/v8KgCI=", Encoding: "base64"}, "", binary},
		{"json hex", SendRequest{Data: "000102feff0a8022", Encoding: "hex"}, "", binary},
		{"json hex upper case", SendRequest{Data: "000102FEFF0A8022", Encoding: "hex"}, "", binary},
		{"json empty data", SendRequest{Data: ""}, "", nil},
		{"json escaped surrogate pair", `{"data":"\ud83d\ude00 \u00e9"}`, "", []byte("\U0001F600 é")},
		{"json with charset", []byte(`{"data":"x"}`), "application/json; charset=utf-8", []byte("x")},
		{"raw text", []byte("plain text\r\n"), "text/plain", []byte("plain text\r\n")},
		{"raw text with charset", []byte("plain"), "text/plain; charset=utf-8", []byte("plain")},
		{"raw octet-stream", binary, "application/octet-stream", binary},
		{"raw octet-stream chunked", bytes.NewReader(binary), "application/octet-stream", binary},
		// Only the media type counts: a malformed or repeated parameter
		// does not make a body something else.
		{"json with a malformed parameter", []byte(`{"data":"x"}`), "application/json; charset", []byte("x")},
		{"json with a repeated parameter", []byte(`{"data":"x"}`), "Application/JSON;charset=utf-8;charset=UTF-8 ", []byte("x")},
		{"raw text with a malformed parameter", []byte("plain"), "text/plain; charset=", []byte("plain")},
		{"raw octet-stream with a malformed parameter", binary, "application/octet-stream; x", binary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(t)
			srv := a.listen(t)
			peer := dialPeer(t, srv.Address)
			s := a.accepted(t, srv.ID, peer)
			var header []string
			if tc.contentType != "" {
				header = []string{"Content-Type", tc.contentType}
			}
			body := tc.body // a *bytes.Reader is sent chunked
			var r SendResult
			a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", body, header...).want(t, http.StatusOK).decode(t, &r)
			if r.Bytes != int64(len(tc.want)) {
				t.Errorf("send: got bytes %d, want %d", r.Bytes, len(tc.want))
			}
			if got := readPeer(t, peer, len(tc.want)); !bytes.Equal(got, tc.want) {
				t.Errorf("send: peer got %q, want %q", got, tc.want)
			}

			if r, ok := body.(*bytes.Reader); ok {
				r.Seek(0, 0) // send it again
			}
			var bc BroadcastResult
			a.call(http.MethodPost, "/servers/"+srv.ID+"/messages", body, header...).want(t, http.StatusOK).decode(t, &bc)
			if bc.Sockets != 1 || bc.Bytes != int64(len(tc.want)) {
				t.Errorf("broadcast: got %+v, want 1 socket and %d bytes", bc, len(tc.want))
			}
			if got := readPeer(t, peer, len(tc.want)); !bytes.Equal(got, tc.want) {
				t.Errorf("broadcast: peer got %q, want %q", got, tc.want)
			}
			if got := a.socket(t, s.ID); got.BytesSent != 2*int64(len(tc.want)) {
				t.Errorf("got bytes_sent %d, want %d", got.BytesSent, 2*len(tc.want))
			}
		})
	}
}

// TestListsAndFilters: GET /clients lists only client sockets; GET /sockets
// filters by kind, server_id and state, alone and together.
func TestListsAndFilters(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	one, two := a.listen(t), a.listen(t)
	s1, _ := a.connect(t, one)
	s2, p2 := a.connect(t, one)
	s3, _ := a.connect(t, two)
	ln := listenPeer(t)
	c1 := a.dial(t, ln.Addr().String())
	acceptPeer(t, ln)
	p2.Close()
	waitFor(t, testTimeout, func() bool { return a.socket(t, s2.ID).State == "closed" })

	var clients SocketList
	a.call(http.MethodGet, "/clients", nil).want(t, http.StatusOK).decode(t, &clients)
	if ids := socketIDs(clients.Sockets); !slices.Equal(ids, []string{c1.ID}) {
		t.Errorf("GET /clients: got %v, want [%s]", ids, c1.ID)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{s1.ID, s2.ID, s3.ID, c1.ID}},
		{"?kind=accepted", []string{s1.ID, s2.ID, s3.ID}},
		{"?kind=client", []string{c1.ID}},
		{"?server_id=" + one.ID, []string{s1.ID, s2.ID}},
		{"?server_id=" + two.ID, []string{s3.ID}},
		{"?server_id=srv-999", []string{}},
		{"?state=closed", []string{s2.ID}},
		{"?state=connected", []string{s1.ID, s3.ID, c1.ID}},
		{"?kind=accepted&state=connected&server_id=" + one.ID, []string{s1.ID}},
		{"?kind=client&server_id=" + one.ID, []string{}},
	} {
		if ids := socketIDs(a.sockets(t, tc.query)); !slices.Equal(ids, tc.want) {
			t.Errorf("GET /sockets%s: got %v, want %v", tc.query, ids, tc.want)
		}
	}
}

// TestDeleteServerKeepsOrClosesSockets: DELETE /servers/{id} stops listening
// and leaves the accepted sockets connected; with close_sockets=true it closes
// them, and what they received stays readable.
func TestDeleteServerKeepsOrClosesSockets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, query string
		closes      bool
	}{
		{"default", "", false},
		{"false", "?close_sockets=false", false},
		{"true", "?close_sockets=true", true},
		{"1", "?close_sockets=1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(t)
			srv := a.listen(t)
			s, peer := a.connect(t, srv)
			writePeer(t, peer, []byte("before"))
			waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BytesReceived == 6 })

			a.call(http.MethodDelete, "/servers/"+srv.ID+tc.query, nil).want(t, http.StatusNoContent)
			a.call(http.MethodGet, "/servers/"+srv.ID, nil).want(t, http.StatusNotFound)
			if c, err := net.Dial("tcp", srv.Address); err == nil {
				c.Close()
				t.Errorf("dialling %s after the delete: connected, want refused", srv.Address)
			}

			if !tc.closes {
				got := a.socket(t, s.ID)
				if got.State != "connected" || got.ServerID != srv.ID {
					t.Fatalf("got %+v, want the socket still connected and still naming %s", got, srv.ID)
				}
				// Still usable both ways.
				a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", SendRequest{Data: "still here"}).want(t, http.StatusOK)
				if got := readPeer(t, peer, 10); string(got) != "still here" {
					t.Errorf("peer got %q, want %q", got, "still here")
				}
				return
			}
			wantEOF(t, peer)
			got := a.socket(t, s.ID)
			if got.State != "closed" || got.CloseReason != "server deleted with close_sockets" {
				t.Fatalf("got state %s reason %q, want closed, server deleted with close_sockets", got.State, got.CloseReason)
			}
			if l := a.read(t, s.ID, ""); len(l.Messages) != 1 || l.Messages[0].Data != "before" || l.State != "closed" {
				t.Errorf("got %+v, want %q still readable", l, "before")
			}
		})
	}
}

// TestRawSendOverLimitSaysWhatWentOut: a raw body without a length is
// streamed to the peer as it arrives, so when it turns out to be over
// --max-body part of it has gone out; the 413 says how much, and the peer got
// exactly that much.
func TestRawSendOverLimitSaysWhatWentOut(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	body := bytes.Repeat([]byte("x"), 2*testMaxBody)

	res := a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", bytes.NewReader(body), "Content-Type", "application/octet-stream").
		want(t, http.StatusRequestEntityTooLarge)
	p := res.problem(t)
	sent := a.socket(t, s.ID).BytesSent
	if want := fmt.Sprintf("its first %d bytes were sent to the peer", sent); sent == 0 || !strings.Contains(p.Detail, want) {
		t.Fatalf("got detail %q with bytes_sent %d, want it to say %q", p.Detail, sent, want)
	}
	if sent != testMaxBody {
		t.Errorf("got bytes_sent %d, want exactly the %d bytes --max-body lets through", sent, testMaxBody)
	}
	// The peer gets those bytes and nothing more: the next thing it reads
	// is the next send.
	if got := readPeer(t, peer, int(sent)); !bytes.Equal(got, body[:sent]) {
		t.Errorf("the peer got %d bytes that differ from the body's first %d", len(got), sent)
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", SendRequest{Data: "END"}).want(t, http.StatusOK)
	if got := readPeer(t, peer, 3); string(got) != "END" {
		t.Errorf("after the cut body the peer read %q, want the next send %q", got, "END")
	}
}

// TestSendTakesIdentityCoding: Content-Encoding identity is no coding at
// all; the body goes to the peer as it is.
func TestSendTakesIdentityCoding(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", []byte("as is"), "Content-Type", "text/plain", "Content-Encoding", "Identity").want(t, http.StatusOK)
	if got := readPeer(t, peer, 5); string(got) != "as is" {
		t.Errorf("peer got %q, want %q", got, "as is")
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"json"}`, "Content-Encoding", "identity").want(t, http.StatusOK)
	if got := readPeer(t, peer, 4); string(got) != "json" {
		t.Errorf("peer got %q, want %q", got, "json")
	}
}

// TestZeroMeansDefault: buffer_bytes and timeout_ms of 0 ask for the
// default, as leaving them out does, and openapi.yaml says so (the harness
// checks each request against it).
func TestZeroMeansDefault(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	var srv Server
	a.call(http.MethodPost, "/servers", `{"port":0,"buffer_bytes":0}`).want(t, http.StatusCreated).decode(t, &srv)
	if srv.BufferBytes != testBufferBytes {
		t.Errorf("POST /servers with buffer_bytes 0: got buffer_bytes %d, want the default %d", srv.BufferBytes, testBufferBytes)
	}
	host, port := splitAddr(t, srv.Address)
	var s Socket
	a.call(http.MethodPost, "/clients", fmt.Sprintf(`{"host":%q,"port":%d,"timeout_ms":0,"buffer_bytes":0}`, host, port)).want(t, http.StatusCreated).decode(t, &s)
	if s.BufferBytes != testBufferBytes || s.State != "connected" {
		t.Errorf("POST /clients with timeout_ms and buffer_bytes 0: got %+v, want connected with the default buffer %d", s, testBufferBytes)
	}
}
