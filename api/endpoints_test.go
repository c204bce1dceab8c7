package api

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/internal/contract"
)

// TestEveryEndpointHappyPath walks the endpoints table of API.md in the order
// of the Qt walk-through: listen, a peer connects, read, answer, broadcast,
// connect out, list, close.
func TestEveryEndpointHappyPath(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)

	var health Health
	a.call(http.MethodGet, "/healthz", nil).want(t, http.StatusOK).decode(t, &health)
	if health.Status != "ok" {
		t.Errorf("GET /healthz: got status %q, want ok", health.Status)
	}

	// POST /servers
	res := a.call(http.MethodPost, "/servers", map[string]any{"port": 0, "buffer_bytes": 4096, "overflow": "drop_oldest"}).want(t, http.StatusCreated)
	var srv Server
	res.decode(t, &srv)
	if loc := res.Header.Get("Location"); loc != "/servers/"+srv.ID {
		t.Errorf("POST /servers: got Location %q, want /servers/%s", loc, srv.ID)
	}
	if host, port := splitAddr(t, srv.Address); host != "127.0.0.1" || port == 0 {
		t.Errorf("POST /servers: got address %q, want 127.0.0.1 and the bound ephemeral port", srv.Address)
	}
	if srv.CreatedAt.Location() != time.UTC || srv.CreatedAt.IsZero() {
		t.Errorf("POST /servers: got created_at %v, want an RFC 3339 time in UTC", srv.CreatedAt)
	}
	if srv.State != "listening" || srv.BufferBytes != 4096 || srv.Overflow != "drop_oldest" || len(srv.Sockets) != 0 {
		t.Errorf("POST /servers: got %+v, want listening, buffer 4096, drop_oldest, no sockets", srv)
	}

	// GET /servers and /servers/{id}
	var list ServerList
	a.call(http.MethodGet, "/servers", nil).want(t, http.StatusOK).decode(t, &list)
	if len(list.Servers) != 1 || list.Servers[0].ID != srv.ID {
		t.Errorf("GET /servers: got %+v, want just %s", list.Servers, srv.ID)
	}

	// A peer connects: the server lists its socket.
	peer := dialPeer(t, srv.Address)
	sock := a.accepted(t, srv.ID, peer)
	var got Server
	a.call(http.MethodGet, "/servers/"+srv.ID, nil).want(t, http.StatusOK).decode(t, &got)
	if got.Accepted != 1 || !slices.Equal(got.Sockets, []string{sock.ID}) {
		t.Errorf("GET /servers/%s: got accepted %d sockets %v, want 1 [%s]", srv.ID, got.Accepted, got.Sockets, sock.ID)
	}
	if sock.Kind != "accepted" || sock.ServerID != srv.ID || sock.State != "connected" || sock.LocalAddress != srv.Address {
		t.Errorf("accepted socket: got %+v, want kind accepted of %s, connected, local %s", sock, srv.ID, srv.Address)
	}

	// GET /sockets/{id}/messages: what the peer wrote.
	writePeer(t, peer, []byte("hello from nc\n"))
	msgs := a.read(t, sock.ID, "?wait=30s")
	if len(msgs.Messages) != 1 || msgs.Messages[0].Data != "hello from nc\n" || msgs.Messages[0].Encoding != "utf8" ||
		msgs.Messages[0].Seq != 1 || msgs.Messages[0].Size != 14 || msgs.Cursor != 1 || msgs.SocketID != sock.ID || msgs.State != "connected" {
		t.Errorf("GET /sockets/%s/messages: got %+v, want one utf8 message seq 1 %q, cursor 1", sock.ID, msgs, "hello from nc\n")
	}

	// POST /sockets/{id}/messages: the peer gets it.
	var sent SendResult
	a.call(http.MethodPost, "/sockets/"+sock.ID+"/messages", SendRequest{Data: "hi nc\n"}).want(t, http.StatusOK).decode(t, &sent)
	if sent.Bytes != 6 {
		t.Errorf("send: got bytes %d, want 6", sent.Bytes)
	}
	if got := readPeer(t, peer, 6); string(got) != "hi nc\n" {
		t.Errorf("peer got %q, want %q", got, "hi nc\n")
	}

	// POST /servers/{id}/messages
	var bc BroadcastResult
	a.call(http.MethodPost, "/servers/"+srv.ID+"/messages", SendRequest{Data: "all\n"}).want(t, http.StatusOK).decode(t, &bc)
	if bc.Sockets != 1 || bc.Bytes != 4 {
		t.Errorf("broadcast: got %+v, want 1 socket, 4 bytes", bc)
	}
	if got := readPeer(t, peer, 4); string(got) != "all\n" {
		t.Errorf("peer got %q, want %q", got, "all\n")
	}

	// POST /clients and GET /clients
	ln := listenPeer(t)
	_, port := splitAddr(t, ln.Addr().String())
	res = a.call(http.MethodPost, "/clients", map[string]any{"host": "127.0.0.1", "port": port, "timeout_ms": 5000}).want(t, http.StatusCreated)
	var cli Socket
	res.decode(t, &cli)
	if loc := res.Header.Get("Location"); loc != "/sockets/"+cli.ID {
		t.Errorf("POST /clients: got Location %q, want /sockets/%s", loc, cli.ID)
	}
	remote := acceptPeer(t, ln)
	if cli.Kind != "client" || cli.ServerID != "" || cli.State != "connected" || cli.RemoteAddress != ln.Addr().String() || cli.LocalAddress != remote.RemoteAddr().String() {
		t.Errorf("POST /clients: got %+v, want a connected client from %s to %s", cli, remote.RemoteAddr(), ln.Addr())
	}
	var clients SocketList
	a.call(http.MethodGet, "/clients", nil).want(t, http.StatusOK).decode(t, &clients)
	if len(clients.Sockets) != 1 || clients.Sockets[0].ID != cli.ID {
		t.Errorf("GET /clients: got %+v, want just %s", clients.Sockets, cli.ID)
	}

	// GET /sockets and /sockets/{id}
	all := a.sockets(t, "")
	if ids := socketIDs(all); !slices.Equal(ids, []string{sock.ID, cli.ID}) {
		t.Errorf("GET /sockets: got %v, want [%s %s]", ids, sock.ID, cli.ID)
	}
	if s := a.socket(t, sock.ID); s.BytesReceived != 14 || s.BytesSent != 10 || s.BufferedBytes != 14 || s.BufferedMessages != 1 {
		t.Errorf("GET /sockets/%s: got %+v, want 14 received, 10 sent, 14 bytes in 1 message buffered", sock.ID, s)
	}

	// DELETE /sockets/{id}: the peer sees the close, the socket is gone.
	a.call(http.MethodDelete, "/sockets/"+sock.ID, nil).want(t, http.StatusNoContent)
	wantEOF(t, peer)
	a.call(http.MethodGet, "/sockets/"+sock.ID, nil).want(t, http.StatusNotFound)

	// DELETE /servers/{id}: no longer listening.
	a.call(http.MethodDelete, "/servers/"+srv.ID, nil).want(t, http.StatusNoContent)
	a.call(http.MethodGet, "/servers/"+srv.ID, nil).want(t, http.StatusNotFound)
	if c, err := net.Dial("tcp", srv.Address); err == nil {
		c.Close()
		t.Errorf("dialling %s after DELETE /servers/%s: connected, want refused", srv.Address, srv.ID)
	}
}

// TestDocumentationRoutes: / redirects to Swagger UI, which is served, and
// /openapi.yaml is the embedded document byte for byte.
func TestDocumentationRoutes(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)

	// / is not in openapi.yaml (it only redirects): mark it so.
	res := a.call(http.MethodGet, "/", nil, contract.SkipRequestHeader, "redirect").want(t, http.StatusFound)
	if loc := res.Header.Get("Location"); loc != "/swagger/index.html" {
		t.Errorf("GET /: got Location %q, want /swagger/index.html", loc)
	}

	res = a.call(http.MethodGet, "/swagger/index.html", nil).want(t, http.StatusOK)
	if mt := mediaType(res.Header.Get("Content-Type")); mt != "text/html" || !bytes.Contains(res.body, []byte("swagger-ui")) {
		t.Errorf("GET /swagger/index.html: got %s %.200q, want the Swagger UI page", mt, res.body)
	}

	res = a.call(http.MethodGet, "/openapi.yaml", nil).want(t, http.StatusOK)
	if mt := mediaType(res.Header.Get("Content-Type")); mt != "application/yaml" {
		t.Errorf("GET /openapi.yaml: got Content-Type %q, want application/yaml", mt)
	}
	if !bytes.Equal(res.body, sockman.OpenAPI) {
		t.Errorf("GET /openapi.yaml: got %d bytes that differ from the embedded %d", len(res.body), len(sockman.OpenAPI))
	}
}

func socketIDs(list []Socket) []string {
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids
}

// wantEOF fails the test unless the peer's next read ends the stream.
func wantEOF(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	var b [1]byte
	if n, err := c.Read(b[:]); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer read after the close: got %d bytes, %v; want the end of the stream", n, err)
	}
}

// TestSwaggerUIServesOnlyItsFiles: under /swagger/ only Swagger UI's page and
// the files it loads exist, whatever the rest of the URI holds; every other
// path is a 404 problem, never echo-swagger's 500 for a swag registry this
// binary does not fill, nor a text/plain 404. /swagger and /swagger/ lead to
// the page.
func TestSwaggerUIServesOnlyItsFiles(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)

	for _, tt := range []struct{ path, mediaType string }{
		{"/swagger/index.html", "text/html"},
		{"/swagger/index.html?/doc.json", "text/html"}, // the query is not part of the file's name
		{"/swagger/index.html?x=1", "text/html"},
		{"/swagger/swagger-ui.css", "text/css"},
		{"/swagger/swagger-ui-bundle.js", "application/javascript"},
		{"/swagger/swagger-ui-standalone-preset.js", "application/javascript"},
		{"/swagger/favicon-32x32.png", "image/png"},
		{"/swagger/favicon-16x16.png", "image/png"},
		{"/swagger/swagger-ui.css?v=1", "text/css"},
	} {
		res := a.call(http.MethodGet, tt.path, nil).want(t, http.StatusOK)
		if mt := mediaType(res.Header.Get("Content-Type")); mt != tt.mediaType || len(res.body) == 0 {
			t.Errorf("GET %s: got %s with %d bytes, want %s", tt.path, mt, len(res.body), tt.mediaType)
		}
	}

	for _, path := range []string{
		"/swagger/doc.json", "/swagger/doc.yaml", "/swagger/x/doc.json", "/swagger/x/doc.yaml",
		"/swagger/index.html/doc.json", "/swagger/x/index.html", "/swagger/x/swagger-ui.css",
		"/swagger/nope.js", "/swagger/index.htm", "/swagger/index.html/", "/swagger//index.html",
		"/swagger/%69ndex.html", "/swagger/x?/doc.json", "/swagger/x?/index.html",
	} {
		res := a.call(http.MethodGet, path, nil).want(t, http.StatusNotFound)
		if p := res.problem(t); !strings.Contains(p.Detail, "/swagger/index.html") {
			t.Errorf("GET %s: got detail %q, want it to point at /swagger/index.html", path, p.Detail)
		}
	}

	for _, path := range []string{"/swagger", "/swagger/", "/swagger/?x=1"} {
		res := a.call(http.MethodGet, path, nil, contract.SkipRequestHeader, "redirect").want(t, http.StatusFound)
		if loc := res.Header.Get("Location"); loc != "/swagger/index.html" {
			t.Errorf("GET %s: got Location %q, want /swagger/index.html", path, loc)
		}
	}
}

// TestHeadOnGetRoutes: every GET route answers HEAD as GET with no body,
// but the read, which can acknowledge data: HEAD there is 405.
func TestHeadOnGetRoutes(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	writePeer(t, peer, []byte("kept"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BufferedMessages == 1 })

	for _, tt := range []struct {
		path      string
		status    int
		mediaType string
	}{
		{"/healthz", http.StatusOK, "application/json"},
		{"/openapi.yaml", http.StatusOK, "application/yaml"},
		{"/", http.StatusFound, ""},
		{"/swagger", http.StatusFound, ""},
		{"/swagger/index.html", http.StatusOK, "text/html"},
		{"/swagger/swagger-ui.css", http.StatusOK, "text/css"},
		{"/servers", http.StatusOK, "application/json"},
		{"/servers/" + s.ServerID, http.StatusOK, "application/json"},
		{"/clients", http.StatusOK, "application/json"},
		{"/sockets?kind=accepted", http.StatusOK, "application/json"},
		{"/sockets/" + s.ID, http.StatusOK, "application/json"},
		{"/servers/srv-999", http.StatusNotFound, "application/problem+json"},
		{"/sockets?kind=server", http.StatusBadRequest, "application/problem+json"},
		{"/swagger/x/doc.json", http.StatusNotFound, "application/problem+json"},
	} {
		res := a.call(http.MethodHead, tt.path, nil, contract.SkipRequestHeader, "HEAD is GET without a body").want(t, tt.status)
		if mt := mediaType(res.Header.Get("Content-Type")); mt != tt.mediaType || len(res.body) != 0 {
			t.Errorf("HEAD %s: got %s with %d body bytes, want %s and no body", tt.path, mt, len(res.body), tt.mediaType)
		}
	}

	res := a.call(http.MethodHead, "/sockets/"+s.ID+"/messages?after=1", nil, contract.SkipRequestHeader, "not allowed").want(t, http.StatusMethodNotAllowed)
	if allow := res.Header.Get("Allow"); strings.Contains(allow, http.MethodHead) || !strings.Contains(allow, http.MethodGet) {
		t.Errorf("HEAD /sockets/%s/messages: got Allow %q, want GET and POST without HEAD", s.ID, allow)
	}
	if got := a.socket(t, s.ID); got.BufferedMessages != 1 {
		t.Errorf("after HEAD on the read: got %d messages buffered, want the one still held", got.BufferedMessages)
	}
}
