package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/internal/fakedns"
	"github.com/sockman/sockman/sockets"
)

// badInput is one hand-written bad request. Paths may hold {sock} (a
// connected socket holding one message), {closed} (a socket whose peer
// closed) and {srv} (a listening server).
type badInput struct {
	method, path string
	ctype        string // Content-Type; none when empty
	body         string
	want         int // the status it must get
}

// badInputs is the table: malformed JSON, wrong types, unknown fields,
// empty and huge values, bad ports, hosts, encodings, cursors, durations,
// query strings, methods and content types, across every endpoint.
func badInputs() []badInput {
	const (
		js   = "application/json"
		raw  = "application/octet-stream"
		text = "text/plain"
	)
	huge := strings.Repeat("a", testMaxBody+1)
	long := strings.Repeat("x", 300)
	var rows []badInput
	add := func(method, path, ctype, body string, want int) {
		rows = append(rows, badInput{method, path, ctype, body, want})
	}
	// Shapes of a JSON body that no endpoint takes, sent to each that takes one.
	for _, path := range []string{"/servers", "/clients", "/sockets/{sock}/messages", "/servers/{srv}/messages"} {
		for _, body := range []string{"", "{", "[]", `"port"`, "123", `{"port":0`, `{'port':0}`, `{"port":0,}`, "\xff\xfe{}", `{"a":1}{"b":2}`} {
			add(http.MethodPost, path, js, body, http.StatusBadRequest)
		}
		add(http.MethodPost, path, "application/xml", "<port>0</port>", http.StatusUnsupportedMediaType)
		add(http.MethodPost, path, "multipart/form-data; boundary=x", "--x--", http.StatusUnsupportedMediaType)
		add(http.MethodPost, path, "application/json x", "{}", http.StatusUnsupportedMediaType)
		add(http.MethodPost, path, "application/json; charset", "{", http.StatusBadRequest) // the parameter is not used
		add(http.MethodPost, path, js, `{"data":"`+huge+`"}`, http.StatusRequestEntityTooLarge)
		// What encoding/json would take by changing it: invalid UTF-8 and
		// lone surrogates (read as U+FFFD) and a member named twice.
		for _, body := range []string{"{\"data\":\"a\xffb\"}", `{"data":"\ud800"}`, `{"data":"\udc00x"}`, `{"data":"\ud83dx\ude00"}`, `{"data":"a","data":"b"}`, "{\"port\":0,\"host\":\"\xc3\"}"} {
			add(http.MethodPost, path, js, body, http.StatusBadRequest)
		}
	}

	// POST /servers
	for _, body := range []string{
		`{}`, `null`, `{"port":null}`, `{"port":"80"}`, `{"port":1.5}`, `{"port":-1}`, `{"port":65536}`,
		`{"port":99999999999999999999}`, `{"port":true}`, `{"port":[0]}`, `{"port":{}}`,
		`{"port":0,"host":5}`, `{"port":0,"host":"not a host"}`, `{"port":0,"host":"256.256.256.256"}`,
		`{"port":0,"host":"[127.0.0.1]"}`, `{"port":0,"host":"127.0.0.1:80"}`, `{"port":0,"host":"` + long + `"}`,
		`{"port":0,"host":"\u0000"}`, `{"port":0,"host":"no-such-name.test"}`,
		`{"port":0,"buffer_bytes":-1}`, `{"port":0,"buffer_bytes":"big"}`, `{"port":0,"buffer_bytes":1e20}`,
		`{"port":0,"buffer_bytes":999999999999}`, `{"port":0,"buffer_bytes":1.5}`,
		`{"port":0,"overflow":"sometimes"}`, `{"port":0,"overflow":1}`, `{"port":0,"overflow":"BLOCK"}`,
		`{"port":0,"extra":1}`, `{"port":0,"sockets":[]}`, `{"port":0} trailing`,
		`{"port":0,"host":"localhost","host":"x y"}`,
	} {
		add(http.MethodPost, "/servers", js, body, http.StatusBadRequest)
	}
	// framing, on servers and clients alike.
	for _, framing := range []string{
		`5`, `"lines"`, `{}`, `{"type":""}`, `{"type":"json"}`, `{"type":"LINES"}`, `{"type":"lines","size":4}`,
		`{"type":"raw","max_frame":10}`, `{"type":"lines","max_frame":-1}`, `{"type":"lines","max_frame":999999999999}`,
		`{"type":"lines","delimiter":"
"}`, `{"type":"lines","unknown":1}`, `{"type":"lines","Max_Frame":1}`,
		`{"type":"delimiter"}`, `{"type":"delimiter","delimiter":""}`, `{"type":"delimiter","delimiter":"zz","encoding":"hex"}`,
		`{"type":"delimiter","delimiter":"0d 0","encoding":"hex"}`, `{"type":"delimiter","delimiter":"\\q","encoding":"escaped"}`,
		`{"type":"delimiter","delimiter":"\\x4","encoding":"escaped"}`, `{"type":"delimiter","delimiter":"a","encoding":"rot13"}`,
		`{"type":"delimiter","delimiter":"====","encoding":"base64"}`, `{"type":"delimiter","delimiter":"ab","max_frame":1}`,
		`{"type":"fixed"}`, `{"type":"fixed","size":0}`, `{"type":"fixed","size":-3}`, `{"type":"fixed","size":"8"}`, `{"type":"fixed","size":100,"max_frame":99}`,
		`{"type":"fixed","size":8,"keep_header":true}`, `{"type":"length_prefix","header_bytes":3}`, `{"type":"length_prefix","endian":"middle"}`,
		`{"type":"length_prefix","keep_header":"yes"}`, `{"type":"length_prefix","header_bytes":8,"max_frame":4}`,
		`{"type":"length_prefix","keep_delimiter":true}`,
	} {
		add(http.MethodPost, "/servers", js, `{"port":0,"framing":`+framing+`}`, http.StatusBadRequest)
		add(http.MethodPost, "/clients", js, `{"host":"127.0.0.1","port":80,"framing":`+framing+`}`, http.StatusBadRequest)
	}
	add(http.MethodPost, "/servers", js, `{"port":0,"host":"10.255.255.1"}`, http.StatusForbidden) // policy: loopback only
	add(http.MethodPost, "/servers", text, `{"port":0}`, http.StatusUnsupportedMediaType)

	// POST /clients
	for _, body := range []string{
		`{}`, `{"port":80}`, `{"host":"127.0.0.1"}`, `{"host":"127.0.0.1","port":0}`, `{"host":"127.0.0.1","port":-1}`,
		`{"host":"127.0.0.1","port":65536}`, `{"host":"127.0.0.1","port":"80"}`, `{"host":"127.0.0.1","port":80.5}`,
		`{"host":"127.0.0.1","port":null}`, `{"host":"127.0.0.1","port":true}`, `{"host":5,"port":80}`,
		`{"host":"","port":80}`, `{"host":null,"port":80}`, `{"host":"[127.0.0.1]","port":80}`, `{"host":["127.0.0.1"],"port":80}`,
		`{"host":"127.1","port":80}`, `{"host":"2130706433","port":80}`, `{"host":"0x7f.0.0.1","port":80}`,
		`{"host":"[example.test]","port":80}`, `{"host":"127.0.0.1","port":80,"timeout_ms":-1}`,
		`{"host":"127.0.0.1","port":80,"timeout_ms":"5s"}`, `{"host":"127.0.0.1","port":80,"timeout_ms":1.5}`,
		`{"host":"127.0.0.1","port":80,"timeout_ms":288230376151716744}`, // overflows to 5 s in nanoseconds
		`{"host":"127.0.0.1","port":80,"timeout_ms":9223372036854775807}`, `{"host":"127.0.0.1","port":80,"timeout_ms":86400000}`,
		`{"host":"127.0.0.1","port":80,"buffer_bytes":-5}`, `{"host":"127.0.0.1","port":80,"buffer_bytes":"x"}`,
		`{"host":"127.0.0.1","port":80,"buffer_bytes":999999999999}`, `{"host":"127.0.0.1","port":80,"overflow":"nope"}`,
		`{"host":"127.0.0.1","port":80,"id":"sock-1"}`, `{"host":"127.0.0.1","port":80}]`,
		`{"host":"bad host!","port":80}`, `{"host":"a..b","port":80}`, `{"host":"-x.test","port":80}`,
		`{"host":"127.0.0.1:80","port":80}`, `{"host":"127.0.0.1%lo","port":80}`, `{"host":"[::1","port":80}`,
		`{"host":".","port":80}`, `{"host":"` + strings.Repeat("a", 64) + `.test","port":80}`,
	} {
		add(http.MethodPost, "/clients", js, body, http.StatusBadRequest)
	}
	add(http.MethodPost, "/clients", js, `{"host":"169.254.169.254","port":80}`, http.StatusForbidden)
	add(http.MethodPost, "/clients", js, `{"host":"10.1.2.3","port":80}`, http.StatusForbidden)
	add(http.MethodPost, "/clients", text, `{"host":"127.0.0.1","port":80}`, http.StatusUnsupportedMediaType)

	// Sending: POST /sockets/{id}/messages and POST /servers/{id}/messages
	for _, path := range []string{"/sockets/{sock}/messages", "/servers/{srv}/messages"} {
		for _, body := range []string{
			`{}`, `{"data":null}`, `{"data":5}`, `{"data":["a"]}`, `{"data":"zz","encoding":"hex"}`,
			`{"data":"abc","encoding":"hex"}`, `{"data":"###","encoding":"base64"}`, `{"data":"YQ","encoding":"base64"}`,
			`{"data":"x","encoding":"UTF8"}`, `{"data":"x","encoding":"latin1"}`, `{"data":"x","encoding":5}`,
			`{"data":"x","unknown":true}`, `{"data":"x"}garbage`,
			`{"data":"0x","encoding":"hex"}`, `{"data":"0x0g","encoding":"hex"}`, `{"data":"01 2","encoding":"hex"}`, `{"data":"01;02","encoding":"hex"}`,
			`{"data":"\\","encoding":"escaped"}`, `{"data":"a\\b","encoding":"escaped"}`, `{"data":"\\x1","encoding":"escaped"}`, `{"data":"\\xzz","encoding":"escaped"}`,
			`{"data":"x","encoding":"ESCAPED"}`,
		} {
			add(http.MethodPost, path, js, body, http.StatusBadRequest)
		}
		for _, q := range []string{"frame=maybe", "frame=", "frame", "frame=true&frame=false", "frame=FALSE", "framing=false"} {
			add(http.MethodPost, path+"?"+q, js, `{"data":"x"}`, http.StatusBadRequest)
		}
		add(http.MethodPost, path, "", `{"data":"x"}`, http.StatusUnsupportedMediaType)
		add(http.MethodPost, path, "image/png", "\x89PNG", http.StatusUnsupportedMediaType)
		add(http.MethodPost, path, raw, huge, http.StatusRequestEntityTooLarge)
	}
	add(http.MethodPost, "/sockets/sock-999999/messages", js, `{"data":"x"}`, http.StatusNotFound)
	add(http.MethodPost, "/servers/srv-999999/messages", js, `{"data":"x"}`, http.StatusNotFound)
	add(http.MethodPost, "/sockets/{closed}/messages", js, `{"data":"x"}`, http.StatusConflict)
	add(http.MethodPost, "/sockets/{closed}/messages", raw, "x", http.StatusConflict)
	add(http.MethodPost, "/sockets/{closed}/messages", text, "x", http.StatusConflict)

	// Reading: cursors, limits, durations, encodings, the query itself.
	for _, q := range []string{
		"after=-1", "after=abc", "after=1.5", "after=99999999999999999999", "after=5", "after=0&after=0", "after=",
		"after=%2B1", "limit=0", "limit=-5", "limit=100001", "limit=x", "limit=", "max_bytes=0", "max_bytes=67108865",
		"max_bytes=1e6", "wait=5", "wait=-1s", "wait=forever", "wait=1s&wait=2s", "wait=", "wait=-9999999999h", "wait=9999999999", "wait=9999999999x", "wait=.h",
		"encoding=utf8", "encoding=HEX", "encoding=base64&encoding=hex", "encoding=", "cursor=1", "After=0",
		"after=%zz", "wait=1s;after=0", "after=0%", strings.Repeat("limit=1&", 3),
	} {
		add(http.MethodGet, "/sockets/{sock}/messages?"+q, "", "", http.StatusBadRequest)
	}
	add(http.MethodGet, "/sockets/sock-999999/messages?after=0", "", "", http.StatusNotFound)

	// Lists and one-resource routes.
	for _, q := range []string{"kind=server", "state=open", "state=CONNECTED", "foo=bar", "kind=%zz", "kind=client;state=closed", "server_id=%",
		"kind=client&kind=accepted", "kind=", "server_id=", "state", "state=closed&state=connected", "server_id=srv-1&server_id=srv-1"} {
		add(http.MethodGet, "/sockets?"+q, "", "", http.StatusBadRequest)
	}
	for _, q := range []string{"close_sockets=maybe", "close_sockets=2", "close=true", "close_sockets=%zz", "close_sockets=true;x=1",
		"close_sockets", "close_sockets=", "close_sockets=true&close_sockets=false", "close_sockets=true&close_sockets=true"} {
		add(http.MethodDelete, "/servers/{srv}?"+q, "", "", http.StatusBadRequest)
	}
	for _, path := range []string{"/servers/srv-999999", "/servers/sock-1", "/servers/%20", "/servers/" + long} {
		add(http.MethodGet, path, "", "", http.StatusNotFound)
		add(http.MethodDelete, path, "", "", http.StatusNotFound)
	}
	for _, path := range []string{"/sockets/sock-999999", "/sockets/srv-1", "/sockets/sock-1%00", "/sockets/" + long} {
		add(http.MethodGet, path, "", "", http.StatusNotFound)
		add(http.MethodDelete, path, "", "", http.StatusNotFound)
	}

	// Connection control: options on servers and clients, lists by name,
	// shutdown, close and reset.
	for _, opts := range []string{
		`"keepalive":"often"`, `"keepalive":"500ms"`, `"keepalive":"1.5s"`, `"keepalive":"10h"`, `"keepalive":"-1s"`,
		`"keepalive":0`, `"keepalive":""`, `"no_delay":"yes"`, `"no_delay":1`, `"half_close":"true"`,
		`"name":"` + long + `"`, `"name":"a\nb"`, `"name":5`, `"name":"\u0000"`,
	} {
		add(http.MethodPost, "/servers", js, `{"port":0,`+opts+`}`, http.StatusBadRequest)
		add(http.MethodPost, "/clients", js, `{"host":"127.0.0.1","port":80,`+opts+`}`, http.StatusBadRequest)
	}
	for _, path := range []string{"/servers", "/sockets", "/clients"} {
		for _, q := range []string{"name=", "name", "name=a&name=b", "name=" + long, "name=%zz", "name=a%09b"} {
			add(http.MethodGet, path+"?"+q, "", "", http.StatusBadRequest)
		}
	}
	for _, q := range []string{"reset=yes", "reset=", "reset", "reset=true&reset=false", "force=true"} {
		add(http.MethodPost, "/sockets/{sock}/close?"+q, "", "", http.StatusBadRequest)
		add(http.MethodDelete, "/sockets/{sock}?"+q, "", "", http.StatusBadRequest)
	}
	add(http.MethodPost, "/sockets/{sock}/shutdown?reset=true", "", "", http.StatusBadRequest)
	add(http.MethodGet, "/sockets/{sock}/shutdown", "", "", http.StatusMethodNotAllowed)
	add(http.MethodPost, "/sockets/sock-999999/shutdown", "", "", http.StatusNotFound)
	add(http.MethodPost, "/sockets/sock-999999/close", "", "", http.StatusNotFound)
	add(http.MethodPost, "/sockets/{closed}/shutdown", "", "", http.StatusConflict)

	// Methods and routes that do not exist.
	for _, m := range [][2]string{
		{http.MethodPut, "/servers"}, {http.MethodDelete, "/servers"}, {http.MethodPatch, "/servers/{srv}"},
		{http.MethodPut, "/sockets/{sock}"}, {http.MethodPatch, "/sockets/{sock}"}, {http.MethodPost, "/sockets"},
		{http.MethodDelete, "/sockets"}, {http.MethodDelete, "/clients"}, {http.MethodPut, "/clients"},
		{http.MethodPost, "/healthz"}, {http.MethodDelete, "/healthz"}, {http.MethodPut, "/sockets/{sock}/messages"},
		{http.MethodDelete, "/sockets/{sock}/messages"}, {http.MethodPut, "/servers/{srv}/messages"},
		{http.MethodGet, "/servers/{srv}/messages"}, {"FOO", "/servers"}, {http.MethodPost, "/openapi.yaml"},
	} {
		add(m[0], m[1], "", "", http.StatusMethodNotAllowed)
	}
	for _, path := range []string{"/nope", "/servers/{srv}/nope", "/sockets/{sock}/messages/1", "/clients/sock-1", "/v1/servers", "/sockets//messages"} {
		add(http.MethodGet, path, "", "", http.StatusNotFound)
	}
	return rows
}

// TestBadInputIsAProblemNeverA5xx sends every request of badInputs and
// wants each answered with its 4xx as RFC 9457 problem+json (checked
// against openapi.yaml too), never a 5xx.
func TestBadInputIsAProblemNeverA5xx(t *testing.T) {
	dns := fakedns.Start(t) // names resolve nowhere, and no query leaves the machine
	loopback := []string{"127.0.0.0/8", "[::1]"}
	connect, err := sockets.ParsePolicy("--allow-connect", loopback)
	if err != nil {
		t.Fatal(err)
	}
	listen, err := sockets.ParsePolicy("--allow-listen", loopback)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAPI(t, withConfig(func(c *sockets.Config) {
		c.Resolver, c.ConnectPolicy, c.ListenPolicy = dns.Resolver(), connect, listen
	}))
	sock, peer := a.pair(t)
	writePeer(t, peer, []byte("one message"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, sock.ID).BufferedMessages == 1 })
	closed, closedPeer := a.pair(t)
	closedPeer.Close()
	waitFor(t, testTimeout, func() bool { return a.socket(t, closed.ID).State == sockets.StateClosed })
	ids := strings.NewReplacer("{sock}", sock.ID, "{closed}", closed.ID, "{srv}", sock.ServerID)

	rows := badInputs()
	if len(rows) < 150 {
		t.Fatalf("the table has %d bad requests, want at least 150", len(rows))
	}
	t.Logf("%d bad requests", len(rows))
	covered := map[string]bool{}
	for i, row := range rows {
		covered[route(row.path)] = true
		path := ids.Replace(row.path)
		t.Run(fmt.Sprintf("%03d", i), func(t *testing.T) {
			req, err := http.NewRequest(row.method, a.srv.URL+path, bytes.NewReader([]byte(row.body)))
			if err != nil {
				t.Fatalf("%s %s: %v", row.method, path, err)
			}
			if row.body == "" {
				req.Body, req.ContentLength = nil, 0
			}
			if row.ctype != "" {
				req.Header.Set("Content-Type", row.ctype)
			}
			req.Header.Set(contract.SkipRequestHeader, "bad on purpose") // the answer is still checked
			res := a.do(req)
			if res.StatusCode >= 500 {
				t.Fatalf("%s %.80s %.80q: got %d %s, want a 4xx", row.method, path, row.body, res.StatusCode, res.body)
			}
			p := res.problem(t)
			if res.StatusCode != row.want {
				t.Errorf("%s %.80s %.80q: got %d (%s), want %d", row.method, path, row.body, res.StatusCode, p.Detail, row.want)
			}
		})
	}
	// Every route of the API has bad requests in the table.
	for _, r := range []string{
		"/healthz", "/openapi.yaml", "/servers", "/servers/{id}", "/servers/{id}/messages", "/clients",
		"/sockets", "/sockets/{id}", "/sockets/{id}/messages", "/sockets/{id}/shutdown", "/sockets/{id}/close",
	} {
		if !covered[r] {
			t.Errorf("no bad request in the table for %s", r)
		}
	}
	// The socket and its message are untouched by all of that.
	if got := a.read(t, sock.ID, ""); len(got.Messages) != 1 || got.Messages[0].Data != "one message" {
		t.Errorf("the fixture socket after the table: got %+v, want its one message", got.Messages)
	}
}

// route returns the API route a table path is for ("/sockets/{id}/messages").
func route(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(path, "/")
	if len(parts) > 2 && (parts[1] == "servers" || parts[1] == "sockets") {
		parts[2] = "{id}"
	}
	return strings.Join(parts, "/")
}
