package api

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/internal/testnet"
	"github.com/sockman/sockman/sockets"
)

// errorCase is one row of the error table: a request that must fail with
// status, as problem+json whose detail mentions detail.
type errorCase struct {
	name string
	opts []harnessOption
	// req builds the request on a's fixtures (it may open servers, peers...).
	req    func(t *testing.T, a *testAPI) *http.Request
	status int
	detail string
	// header, when set, is a header name and a substring its value must hold.
	header [2]string
	// offContract marks a request that is malformed on purpose: the
	// validator checks only its response.
	offContract bool
}

// TestErrorTable proves every status of the README's error table that the
// core API produces (401 and 403 are security's, in security_test.go).
func TestErrorTable(t *testing.T) {
	t.Parallel()
	var cases []errorCase
	cases = append(cases, badRequestCases()...)
	cases = append(cases, notFoundCases()...)
	cases = append(cases, conflictAndLimitCases()...)
	cases = append(cases, upstreamCases()...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(t, tc.opts...)
			req := tc.req(t, a)
			if tc.offContract {
				req.Header.Set(contract.SkipRequestHeader, "malformed on purpose")
			}
			res := a.do(req).want(t, tc.status)
			p := res.problem(t)
			t.Logf("%d %s", p.Status, p.Detail)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("got detail %q, want it to mention %q", p.Detail, tc.detail)
			}
			if name := tc.header[0]; name != "" && !strings.Contains(res.Header.Get(name), tc.header[1]) {
				t.Errorf("got header %s %q, want it to hold %q", name, res.Header.Get(name), tc.header[1])
			}
		})
	}
}

// Request builders for the table.

func postJSON(path, body string) func(*testing.T, *testAPI) *http.Request {
	return func(t *testing.T, a *testAPI) *http.Request {
		return a.newRequest(http.MethodPost, path, body)
	}
}

func get(path string) func(*testing.T, *testAPI) *http.Request {
	return func(t *testing.T, a *testAPI) *http.Request {
		return a.newRequest(http.MethodGet, path, nil)
	}
}

// onSocket builds a request on the path of a connected accepted socket
// ("{id}" in path is replaced by its id).
func onSocket(method, path string, body any, header ...string) func(*testing.T, *testAPI) *http.Request {
	return func(t *testing.T, a *testAPI) *http.Request {
		s, _ := a.pair(t)
		return a.newRequest(method, strings.ReplaceAll(path, "{id}", s.ID), body, header...)
	}
}

// onServer is onSocket for a listening server.
func onServer(method, path string, body any, header ...string) func(*testing.T, *testAPI) *http.Request {
	return func(t *testing.T, a *testAPI) *http.Request {
		srv := a.listen(t)
		return a.newRequest(method, strings.ReplaceAll(path, "{id}", srv.ID), body, header...)
	}
}

// dialBody is a POST /clients body for a refused loopback port.
func dialBody(t *testing.T, extra string) string {
	return fmt.Sprintf(`{"host":"127.0.0.1","port":%d%s}`, freePort(t), extra)
}

func badRequestCases() []errorCase {
	const bad = http.StatusBadRequest
	return []errorCase{
		{name: "malformed JSON", req: postJSON("/servers", `{"port":0,}`), status: bad, detail: "not valid JSON", offContract: true},
		{name: "truncated JSON", req: postJSON("/servers", `{"port":`), status: bad, detail: "ends too early", offContract: true},
		{name: "empty body", req: postJSON("/servers", ``), status: bad, detail: "empty", offContract: true},
		{name: "body not an object", req: postJSON("/servers", `[0]`), status: bad, detail: "JSON object", offContract: true},
		{name: "wrong type", req: postJSON("/servers", `{"port":"9988"}`), status: bad, detail: `"port"`, offContract: true},
		{name: "wrong type nested in client", req: postJSON("/clients", `{"host":1,"port":9988}`), status: bad, detail: `"host"`, offContract: true},
		{name: "unknown field", req: postJSON("/servers", `{"port":0,"colour":"red"}`), status: bad, detail: "colour", offContract: true},
		{name: "trailing data", req: postJSON("/servers", `{"port":0}{"port":0}`), status: bad, detail: "nothing after it", offContract: true},
		{name: "missing port", req: postJSON("/servers", `{}`), status: bad, detail: "port is required", offContract: true},
		{name: "listen port out of range", req: postJSON("/servers", `{"port":70000}`), status: bad, detail: "port 70000", offContract: true},
		{name: "listen host not local", req: postJSON("/servers", `{"host":"192.0.2.1","port":0}`), status: bad, detail: "192.0.2.1"},
		{name: "buffer over max", opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxBufferBytes = 1 << 20 })},
			req: postJSON("/servers", `{"port":0,"buffer_bytes":2097152}`), status: bad, detail: "buffer_bytes 2097152"},
		{name: "bad overflow", req: postJSON("/servers", `{"port":0,"overflow":"spill"}`), status: bad, detail: `"spill"`, offContract: true},
		{name: "connect port zero", req: postJSON("/clients", `{"host":"127.0.0.1","port":0}`), status: bad, detail: "port 0", offContract: true},
		{name: "connect without host", req: postJSON("/clients", `{"host":"","port":9988}`), status: bad, detail: "host is required"},
		{name: "connect negative timeout", req: postJSON("/clients", `{"host":"127.0.0.1","port":9988,"timeout_ms":-1}`), status: bad, detail: "timeout_ms", offContract: true},
		{name: "connect timeout over max", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/clients", dialBody(t, `,"timeout_ms":86400000`))
		}, status: bad, detail: "timeout"},
		{name: "send bad encoding", req: onSocket(http.MethodPost, "/sockets/{id}/messages", `{"data":"aGk=","encoding":"rot13"}`), status: bad, detail: `"rot13"`, offContract: true},
		{name: "send bad base64", req: onSocket(http.MethodPost, "/sockets/{id}/messages", `{"data":"not base64!","encoding":"base64"}`), status: bad, detail: "base64"},
		{name: "send bad hex", req: onSocket(http.MethodPost, "/sockets/{id}/messages", `{"data":"0g","encoding":"hex"}`), status: bad, detail: "hex"},
		{name: "send without data", req: onSocket(http.MethodPost, "/sockets/{id}/messages", `{"encoding":"hex"}`), status: bad, detail: "data is required", offContract: true},
		{name: "broadcast bad encoding", req: onServer(http.MethodPost, "/servers/{id}/messages", `{"data":"x","encoding":"utf16"}`), status: bad, detail: `"utf16"`, offContract: true},
		{name: "cursor after last seq", req: onSocket(http.MethodGet, "/sockets/{id}/messages?after=5", nil), status: bad, detail: "after=5"},
		{name: "cursor not a number", req: onSocket(http.MethodGet, "/sockets/{id}/messages?after=last", nil), status: bad, detail: "after", offContract: true},
		{name: "cursor negative", req: onSocket(http.MethodGet, "/sockets/{id}/messages?after=-1", nil), status: bad, detail: "after", offContract: true},
		{name: "cursor given twice", req: onSocket(http.MethodGet, "/sockets/{id}/messages?after=0&after=0", nil), status: bad, detail: "after", offContract: true},
		{name: "bad duration", req: onSocket(http.MethodGet, "/sockets/{id}/messages?wait=soon", nil), status: bad, detail: `wait="soon"`},
		{name: "negative duration", req: onSocket(http.MethodGet, "/sockets/{id}/messages?wait=-1s", nil), status: bad, detail: `wait="-1s"`},
		{name: "limit zero", req: onSocket(http.MethodGet, "/sockets/{id}/messages?limit=0", nil), status: bad, detail: `limit="0"`, offContract: true},
		{name: "limit over max", req: onSocket(http.MethodGet, "/sockets/{id}/messages?limit=100001", nil), status: bad, detail: "limit", offContract: true},
		{name: "limit not a number", req: onSocket(http.MethodGet, "/sockets/{id}/messages?limit=ten", nil), status: bad, detail: "limit", offContract: true},
		{name: "max_bytes zero", req: onSocket(http.MethodGet, "/sockets/{id}/messages?max_bytes=0", nil), status: bad, detail: `max_bytes="0"`, offContract: true},
		{name: "max_bytes over max", req: onSocket(http.MethodGet, "/sockets/{id}/messages?max_bytes=67108865", nil), status: bad, detail: "max_bytes", offContract: true},
		{name: "read bad encoding", req: onSocket(http.MethodGet, "/sockets/{id}/messages?encoding=utf8", nil), status: bad, detail: `encoding="utf8"`, offContract: true},
		{name: "read unknown query parameter", req: onSocket(http.MethodGet, "/sockets/{id}/messages?afterr=1", nil), status: bad, detail: `"afterr"`, offContract: true},
		{name: "bad kind filter", req: get("/sockets?kind=server"), status: bad, detail: `kind="server"`, offContract: true},
		{name: "bad state filter", req: get("/sockets?state=open"), status: bad, detail: `state="open"`, offContract: true},
		{name: "unknown filter", req: get("/sockets?server=srv-1"), status: bad, detail: `"server"`, offContract: true},
		{name: "unknown delete option", req: onServer(http.MethodDelete, "/servers/{id}?close_socket=true", nil), status: bad, detail: `"close_socket"`, offContract: true},
		{name: "close_sockets without a value", req: onServer(http.MethodDelete, "/servers/{id}?close_sockets", nil), status: bad, detail: "close_sockets has no value", offContract: true},
		{name: "close_sockets given twice", req: onServer(http.MethodDelete, "/servers/{id}?close_sockets=true&close_sockets=false", nil), status: bad, detail: "close_sockets is given 2 times", offContract: true},
		{name: "kind filter given twice", req: get("/sockets?kind=client&kind=accepted"), status: bad, detail: "kind is given 2 times", offContract: true},
		{name: "server_id filter given twice", req: get("/sockets?server_id=srv-1&server_id=srv-2"), status: bad, detail: "server_id is given 2 times", offContract: true},
		{name: "state filter given twice", req: get("/sockets?state=closed&state=closed"), status: bad, detail: "state is given 2 times", offContract: true},
		{name: "empty kind filter", req: get("/sockets?kind="), status: bad, detail: "kind has no value", offContract: true},
		{name: "empty server_id filter", req: get("/sockets?server_id"), status: bad, detail: "server_id has no value", offContract: true},
		{name: "empty state filter", req: get("/sockets?state="), status: bad, detail: "state has no value", offContract: true},
		{name: "wait given twice", req: onSocket(http.MethodGet, "/sockets/{id}/messages?wait=1s&wait=2s", nil), status: bad, detail: "wait is given 2 times", offContract: true},
		{name: "negative duration too long for Go", req: onSocket(http.MethodGet, "/sockets/{id}/messages?wait=-5000000h", nil), status: bad, detail: `wait="-5000000h"`},
		{name: "bad close_sockets", req: onServer(http.MethodDelete, "/servers/{id}?close_sockets=maybe", nil), status: bad, detail: `close_sockets="maybe"`, offContract: true},
	}
}

func notFoundCases() []errorCase {
	const nf = http.StatusNotFound
	return []errorCase{
		{name: "unknown server", req: get("/servers/srv-999"), status: nf, detail: `"srv-999"`},
		{name: "delete unknown server", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodDelete, "/servers/srv-999", nil)
		}, status: nf, detail: `"srv-999"`},
		{name: "broadcast to unknown server", req: postJSON("/servers/srv-999/messages", `{"data":"x"}`), status: nf, detail: `"srv-999"`},
		{name: "unknown socket", req: get("/sockets/sock-999"), status: nf, detail: `"sock-999"`},
		{name: "delete unknown socket", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodDelete, "/sockets/sock-999", nil)
		}, status: nf, detail: `"sock-999"`},
		{name: "read unknown socket", req: get("/sockets/sock-999/messages?after=0"), status: nf, detail: `"sock-999"`},
		{name: "send to unknown socket", req: postJSON("/sockets/sock-999/messages", `{"data":"x"}`), status: nf, detail: `"sock-999"`},
		{name: "deleted socket", req: func(t *testing.T, a *testAPI) *http.Request {
			s, _ := a.pair(t)
			a.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)
			return a.newRequest(http.MethodGet, "/sockets/"+s.ID+"/messages", nil)
		}, status: nf, detail: "socket"},
		{name: "unknown route", req: get("/sockets/sock-1/bytes"), status: nf, detail: "no such route", offContract: true},
		{name: "unknown top route", req: get("/listeners"), status: nf, detail: "no such route", offContract: true},
		{name: "method not allowed", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPut, "/servers", `{"port":0}`)
		}, status: http.StatusMethodNotAllowed, detail: "method", header: [2]string{"Allow", "POST"}, offContract: true},
		{name: "method not allowed on socket", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPatch, "/sockets/sock-1", `{}`)
		}, status: http.StatusMethodNotAllowed, detail: "method", header: [2]string{"Allow", "DELETE"}, offContract: true},
	}
}

func conflictAndLimitCases() []errorCase {
	big := `{"port":0` + strings.Repeat(" ", testMaxBody) + `}`
	// One object of exactly --max-body bytes, then more: it decodes, and
	// the limit is only met looking for what follows it.
	full := `{"port":0` + strings.Repeat(" ", testMaxBody-len(`{"port":0}`)) + `}`
	return []errorCase{
		{name: "address in use", req: func(t *testing.T, a *testAPI) *http.Request {
			srv := a.listen(t)
			_, port := splitAddr(t, srv.Address)
			return a.newRequest(http.MethodPost, "/servers", `{"port":`+strconv.Itoa(port)+`}`)
		}, status: http.StatusConflict, detail: "already bound"},
		{name: "send on closed socket", req: func(t *testing.T, a *testAPI) *http.Request {
			s, peer := a.pair(t)
			peer.Close()
			waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })
			return a.newRequest(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"late"}`)
		}, status: http.StatusConflict, detail: "closed"},
		{name: "body over max with length", req: postJSON("/servers", big), status: http.StatusRequestEntityTooLarge, detail: "--max-body"},
		{name: "body over max chunked", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/servers", io.MultiReader(strings.NewReader(big)), "Content-Type", "application/json")
		}, status: http.StatusRequestEntityTooLarge, detail: "--max-body"},
		{name: "body over max after a whole object chunked", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/servers", io.MultiReader(strings.NewReader(full+"\n\n\n")), "Content-Type", "application/json")
		}, status: http.StatusRequestEntityTooLarge, detail: "--max-body"},
		{name: "raw send over max with length", req: onSocket(http.MethodPost, "/sockets/{id}/messages", make([]byte, testMaxBody+1),
			"Content-Type", "application/octet-stream"), status: http.StatusRequestEntityTooLarge, detail: "--max-body"},
		{name: "raw send over max chunked", req: onSocket(http.MethodPost, "/sockets/{id}/messages", io.MultiReader(strings.NewReader(strings.Repeat("x", testMaxBody+1))),
			"Content-Type", "application/octet-stream"), status: http.StatusRequestEntityTooLarge, detail: "bytes were sent to the peer"},
		{name: "broadcast over max chunked", req: onServer(http.MethodPost, "/servers/{id}/messages", io.MultiReader(strings.NewReader(strings.Repeat("x", testMaxBody+1))),
			"Content-Type", "text/plain"), status: http.StatusRequestEntityTooLarge, detail: "--max-body"},
		{name: "send XML", req: onSocket(http.MethodPost, "/sockets/{id}/messages", []byte(`<data>hi</data>`), "Content-Type", "application/xml"),
			status: http.StatusUnsupportedMediaType, detail: "application/xml", offContract: true},
		{name: "send without content type", req: onSocket(http.MethodPost, "/sockets/{id}/messages", []byte(`hi`)),
			status: http.StatusUnsupportedMediaType, detail: "Content-Type", offContract: true},
		{name: "broadcast XML", req: onServer(http.MethodPost, "/servers/{id}/messages", []byte(`<data>hi</data>`), "Content-Type", "application/xml"),
			status: http.StatusUnsupportedMediaType, detail: "application/xml", offContract: true},
		{name: "send gzip raw", req: onSocket(http.MethodPost, "/sockets/{id}/messages", []byte("\x1f\x8b\x08\x00"), "Content-Type", "application/octet-stream", "Content-Encoding", "gzip"),
			status: http.StatusUnsupportedMediaType, detail: "uncompressed", header: [2]string{"Accept-Encoding", "identity"}},
		{name: "send gzip JSON", req: onSocket(http.MethodPost, "/sockets/{id}/messages", []byte("\x1f\x8b\x08\x00"), "Content-Type", "application/json", "Content-Encoding", "gzip"),
			status: http.StatusUnsupportedMediaType, detail: "uncompressed", offContract: true},
		{name: "send deflate after identity", req: onSocket(http.MethodPost, "/sockets/{id}/messages", []byte("x"), "Content-Type", "text/plain", "Content-Encoding", "identity, deflate"),
			status: http.StatusUnsupportedMediaType, detail: "uncompressed"},
		{name: "broadcast br", req: onServer(http.MethodPost, "/servers/{id}/messages", []byte("x"), "Content-Type", "text/plain", "Content-Encoding", "br"),
			status: http.StatusUnsupportedMediaType, detail: "uncompressed"},
		{name: "listen gzip", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/servers", []byte("\x1f\x8b\x08\x00"), "Content-Type", "application/json", "Content-Encoding", "gzip")
		}, status: http.StatusUnsupportedMediaType, detail: "uncompressed", offContract: true},
		{name: "listen with text body", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/servers", []byte(`port=0`), "Content-Type", "text/plain")
		}, status: http.StatusUnsupportedMediaType, detail: "text/plain", offContract: true},
		{name: "max servers", opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxServers = 1 })},
			req: func(t *testing.T, a *testAPI) *http.Request {
				a.listen(t)
				return a.newRequest(http.MethodPost, "/servers", `{"port":0}`)
			}, status: http.StatusServiceUnavailable, detail: "--max-servers"},
		{name: "max buffer total", opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxBufferTotal = 4096 })},
			req: func(t *testing.T, a *testAPI) *http.Request {
				s, peer := a.pair(t)
				writePeer(t, peer, make([]byte, 8192))
				// The total counts what messages cost, payload and more.
				waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BufferedBytes >= 4096-1024 })
				ln := listenPeer(t)
				return a.newRequest(http.MethodPost, "/clients", fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, ln.Addr().(*net.TCPAddr).Port))
			}, status: http.StatusServiceUnavailable, detail: "--max-buffer-total"},
		{name: "shutting down", req: func(t *testing.T, a *testAPI) *http.Request {
			a.reg.Close()
			return a.newRequest(http.MethodPost, "/servers", `{"port":0}`)
		}, status: http.StatusServiceUnavailable, detail: "shutting down"},
		{name: "max sockets", opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxSockets = 1 })},
			req: func(t *testing.T, a *testAPI) *http.Request {
				ln := listenPeer(t)
				a.dial(t, ln.Addr().String())
				return a.newRequest(http.MethodPost, "/clients", fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, ln.Addr().(*net.TCPAddr).Port))
			}, status: http.StatusServiceUnavailable, detail: "--max-sockets"},
	}
}

func upstreamCases() []errorCase {
	return []errorCase{
		{name: "connect refused", req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/clients", dialBody(t, ""))
		}, status: http.StatusBadGateway, detail: "refused"},
		{name: "write timeout", opts: []harnessOption{
			withConfig(func(c *sockets.Config) { c.WriteTimeout = 200 * time.Millisecond }),
			withOptions(func(o *Options) { o.MaxBody = 32 << 20 }),
		}, req: func(t *testing.T, a *testAPI) *http.Request {
			// A peer that reads nothing: once its receive window and
			// sockman's send buffer are full, a write cannot finish.
			s, peer := a.pair(t)
			peer.SetReadBuffer(4096)
			return a.newRequest(http.MethodPost, "/sockets/"+s.ID+"/messages", make([]byte, 24<<20), "Content-Type", "application/octet-stream")
		}, status: http.StatusGatewayTimeout, detail: "took no data"},
		{name: "connect timeout", req: func(t *testing.T, a *testAPI) *http.Request {
			addr := testnet.UnansweredAddr(t)
			host, port := splitAddr(t, addr)
			return a.newRequest(http.MethodPost, "/clients", fmt.Sprintf(`{"host":%q,"port":%d,"timeout_ms":%d}`, host, port, testnet.ConnectProbe/time.Millisecond))
		}, status: http.StatusGatewayTimeout, detail: "did not answer within"},
	}
}

// TestUnknownQueryParameterIsRefused: every API route refuses a query
// parameter it does not take, rather than ignore it and do something else
// than asked (list every server, send text that was meant as hex). The
// liveness and documentation routes ignore a query: probes and browsers
// add cache busters.
func TestUnknownQueryParameterIsRefused(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, _ := a.pair(t)
	for _, tt := range []struct {
		method, path string
		body         any
		takes        string // what the detail lists
	}{
		{http.MethodPost, "/servers?port=0", `{"port":0}`, "no query parameters"},
		{http.MethodGet, "/servers?state=failed", nil, "takes name"},
		{http.MethodGet, "/servers/" + s.ServerID + "?verbose=1", nil, "no query parameters"},
		{http.MethodDelete, "/servers/" + s.ServerID + "?close=true", nil, "close_sockets"},
		{http.MethodPost, "/servers/" + s.ServerID + "/messages?encoding=hex", `{"data":"00"}`, "takes frame"},
		{http.MethodPost, "/clients?timeout_ms=1", `{"host":"127.0.0.1","port":1}`, "no query parameters"},
		{http.MethodGet, "/clients?state=closed", nil, "takes name"},
		{http.MethodGet, "/sockets?kinds=client", nil, "kind, server_id, state"},
		{http.MethodGet, "/sockets/" + s.ID + "?x", nil, "no query parameters"},
		{http.MethodDelete, "/sockets/" + s.ID + "?force=true", nil, "takes reset"},
		{http.MethodPost, "/sockets/" + s.ID + "/close?force=true", nil, "takes reset"},
		{http.MethodPost, "/sockets/" + s.ID + "/shutdown?now=1", nil, "no query parameters"},
		{http.MethodPost, "/sockets/" + s.ID + "/messages?encoding=hex", `{"data":"00"}`, "takes frame"},
		{http.MethodGet, "/sockets/" + s.ID + "/messages?cursor=0", nil, "after, limit, max_bytes, wait and encoding"},
	} {
		name, _, _ := strings.Cut(strings.SplitN(tt.path, "?", 2)[1], "=")
		res := a.call(tt.method, tt.path, tt.body, contract.SkipRequestHeader, "unknown parameter").want(t, http.StatusBadRequest)
		if p := res.problem(t); !strings.Contains(p.Detail, fmt.Sprintf("%q", name)) || !strings.Contains(p.Detail, tt.takes) {
			t.Errorf("%s %s: got detail %q, want it to name %q and say it takes %s", tt.method, tt.path, p.Detail, name, tt.takes)
		}
	}
	// Nothing was done: no server, client or send happened, nothing closed.
	if got := a.socket(t, s.ID); got.BytesSent != 0 || got.State != "connected" {
		t.Errorf("socket after the refused requests: got %+v, want nothing sent and still connected", got)
	}
	var servers ServerList
	a.call(http.MethodGet, "/servers", nil).want(t, http.StatusOK).decode(t, &servers)
	if len(servers.Servers) != 1 {
		t.Errorf("got %d servers, want the fixture's one", len(servers.Servers))
	}
	if n := len(a.sockets(t, "")); n != 1 {
		t.Errorf("got %d sockets, want the fixture's one", n)
	}

	a.call(http.MethodGet, "/healthz?probe=1", nil, contract.SkipRequestHeader, "cache buster").want(t, http.StatusOK)
	a.call(http.MethodGet, "/openapi.yaml?v=2", nil).want(t, http.StatusOK)
	a.call(http.MethodGet, "/?x=1", nil, contract.SkipRequestHeader, "redirect").want(t, http.StatusFound)
}
