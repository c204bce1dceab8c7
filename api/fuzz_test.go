package api

// Fuzz targets for every request decoder and for the read-parameter parser.
// Their seed corpora are in testdata/fuzz/<FuzzName>; `go test` runs the
// seeds, `go test -fuzz=FuzzName ./api` explores. The invariant everywhere:
// no input panics or gets a 5xx; an error is a 4xx problem.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/sockets"
)

// fuzzMaxBody is the body limit of the fuzz targets: small, so that the
// fuzzer reaches it.
const fuzzMaxBody = 4 << 10

// fuzzContext is an echo context for a request with body and Content-Type
// ct, its body capped as the API's middleware caps it.
func fuzzContext(method, target, ct string, body []byte) echo.Context {
	req := httptest.NewRequest(method, "http://127.0.0.1"+target, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set(echo.HeaderContentType, ct)
	}
	rec := httptest.NewRecorder()
	req.Body = http.MaxBytesReader(rec, req.Body, fuzzMaxBody)
	return echo.New().NewContext(req, rec)
}

// wantClientError fails t unless err maps to one of the 4xx statuses.
func wantClientError(t *testing.T, err error, statuses ...int) {
	t.Helper()
	p := problemFor(err)
	for _, s := range statuses {
		if p.Status == s {
			if p.Detail == "" || p.Type == "" {
				t.Fatalf("error %v: got problem %+v, want a type and a detail", err, p)
			}
			return
		}
	}
	t.Fatalf("error %v: got status %d, want one of %v", err, p.Status, statuses)
}

func FuzzDecodeServerCreate(f *testing.F) {
	f.Add("application/json", []byte(`{"port":0}`))
	f.Add("application/json", []byte(`{"host":"127.0.0.1","port":9988,"buffer_bytes":4096,"overflow":"drop_oldest"}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		var req ServerCreate
		err := decodeJSON(fuzzContext(http.MethodPost, "/servers", ct, body), &req)
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
			return
		}
		// What decoded is one JSON value, and it says the same encoded again.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var back ServerCreate
		if err := json.Unmarshal(again, &back); err != nil || !sameServerCreate(req, back) {
			t.Fatalf("%s decoded to %+v, which does not survive a round trip (%v)", body, req, err)
		}
	})
}

func sameServerCreate(a, b ServerCreate) bool {
	return a.Host == b.Host && a.BufferBytes == b.BufferBytes && a.Overflow == b.Overflow &&
		(a.Port == nil) == (b.Port == nil) && (a.Port == nil || *a.Port == *b.Port)
}

// FuzzFramingRequest: whatever framing a body gives, it is refused with a
// 400 or becomes an engine framing that the engine takes or refuses with a
// 400; never a panic or another status.
func FuzzFramingRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"lines"}`, `{"type":"delimiter","delimiter":"0d 0a","encoding":"hex"}`,
		`{"type":"delimiter","delimiter":"\\r\\n","encoding":"escaped","keep_delimiter":true}`,
		`{"type":"fixed","size":16,"max_frame":16}`, `{"type":"length_prefix","header_bytes":8,"endian":"little","keep_header":false}`,
		`{"type":"raw","size":1}`,
	} {
		f.Add([]byte(`{"port":0,"framing":` + s + `}`))
	}
	reg := sockets.New(sockets.Config{Logger: slog.New(slog.DiscardHandler), MaxServers: 1})
	f.Cleanup(func() { reg.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ServerCreate
		if err := decodeJSON(fuzzContext(http.MethodPost, "/servers", "application/json", body), &req); err != nil {
			wantClientError(t, err, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
			return
		}
		fr, err := req.Framing.engine()
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest)
			return
		}
		srv, err := reg.Listen(context.Background(), sockets.ListenOptions{Host: "127.0.0.1", Recv: sockets.RecvOptions{Framing: fr}})
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest)
			return
		}
		out := framingOut(srv.Info().Framing)
		if out.Type != fr.Type && !(fr.Type == "" && out.Type == sockets.FrameRaw) {
			t.Fatalf("framing %+v shows as %+v", fr, out)
		}
		if err := reg.DeleteServer(srv.Info().ID, true); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeClientCreate(f *testing.F) {
	f.Add("application/json", []byte(`{"host":"127.0.0.1","port":9988}`))
	f.Add("application/json", []byte(`{"host":"localhost","port":1,"timeout_ms":5000,"buffer_bytes":1,"overflow":"block"}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		var req ClientCreate
		err := decodeJSON(fuzzContext(http.MethodPost, "/clients", ct, body), &req)
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
			return
		}
		if ct != "" && !isMediaType(ct, echo.MIMEApplicationJSON) {
			t.Fatalf("Content-Type %q was accepted as JSON", ct)
		}
	})
}

func FuzzReadPayload(f *testing.F) {
	f.Add("application/json", []byte(`{"data":"hello\n"}`))
	f.Add("application/json", []byte(`{"data":"aGk=","encoding":"base64"}`))
	f.Add("application/octet-stream", []byte{0, 1, 2, 255})
	f.Add("text/plain; charset=utf-8", []byte("hi"))
	f.Add("application/json", []byte(`{"data":"0x48, 65:6c-6C","encoding":"hex"}`))
	f.Add("application/json", []byte(`{"data":"AT\\r\\n\\x00","encoding":"escaped"}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		data, err := readPayload(fuzzContext(http.MethodPost, "/sockets/sock-1/messages", ct, body))
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
			return
		}
		mt, _, _ := strings.Cut(ct, ";") // parameters are not used, however written
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case echo.MIMEOctetStream, echo.MIMETextPlain:
			if !bytes.Equal(data, body) {
				t.Fatalf("raw body %q: got %q to send, want it byte for byte", body, data)
			}
		case echo.MIMEApplicationJSON:
		default:
			t.Fatalf("Content-Type %q was accepted", ct)
		}
	})
}

func FuzzDecodeData(f *testing.F) {
	for _, enc := range []string{"", "utf8", "base64", "hex", "HEX", "latin1"} {
		f.Add("aGVsbG8=", enc)
	}
	f.Add("00ff10", "hex")
	f.Fuzz(func(t *testing.T, data, encoding string) {
		b, err := decodeData(data, encoding)
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest)
			return
		}
		switch encoding {
		case "", "utf8":
			if string(b) != data {
				t.Fatalf("utf8 %q: got %q", data, b)
			}
		case "hex":
			if !strings.EqualFold(hex.EncodeToString(b), data) {
				t.Fatalf("hex %q: got %x", data, b)
			}
		case "base64":
			// The decoder is lenient (line breaks, non-zero padding bits),
			// so compare bytes: the canonical spelling must give the same.
			again, err := decodeData(base64.StdEncoding.EncodeToString(b), "base64")
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("base64 %q: got %x, which does not survive a round trip (%v)", data, b, err)
			}
		default:
			t.Fatalf("encoding %q was accepted", encoding)
		}
	})
}

func FuzzParseReadParams(f *testing.F) {
	for _, q := range []string{"", "after=0", "after=3&limit=10&max_bytes=1024&wait=5s&encoding=hex", "wait=1h", "limit=0", "after=%zz", "wait=1s;after=0"} {
		f.Add(q)
	}
	const maxWait = time.Minute
	f.Fuzz(func(t *testing.T, rawQuery string) {
		c := fuzzContext(http.MethodGet, "/sockets/sock-1/messages", "", nil)
		c.Request().URL.RawQuery = rawQuery
		q, err := queryOf(c)
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest)
			return
		}
		p, err := parseReadParams(q, maxWait)
		if err != nil {
			wantClientError(t, err, http.StatusBadRequest)
			return
		}
		switch {
		case p.Limit < 1 || p.Limit > maxReadLimit:
			t.Fatalf("%q: limit %d out of range", rawQuery, p.Limit)
		case p.MaxBytes < 1 || p.MaxBytes > maxReadBytes:
			t.Fatalf("%q: max_bytes %d out of range", rawQuery, p.MaxBytes)
		case p.Wait < 0 || p.Wait > maxWait:
			t.Fatalf("%q: wait %v out of range", rawQuery, p.Wait)
		case p.encoding != "auto" && p.encoding != "base64" && p.encoding != "hex":
			t.Fatalf("%q: encoding %q", rawQuery, p.encoding)
		case q.Has("after") != (p.After != nil):
			t.Fatalf("%q: after given %v, parsed %v", rawQuery, q.Has("after"), p.After)
		}
		for name := range q {
			if !strings.Contains(" after limit max_bytes wait encoding ", " "+name+" ") {
				t.Fatalf("%q: unknown parameter %q accepted", rawQuery, name)
			}
		}
	})
}

// fuzzAPI is the real router over a registry that cannot reach anything
// but a refused loopback port, with no DNS and long polls cut to 1 ms, and
// one connected socket whose peer reads everything.
type fuzzAPI struct {
	h      http.Handler
	v      *contract.Validator
	sockID string
	srvID  string
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	connect, err := sockets.ParsePolicy("--allow-connect", []string{"127.0.0.1:1"}) // refused at once
	if err != nil {
		f.Fatal(err)
	}
	listen, err := sockets.ParsePolicy("--allow-listen", []string{"127.0.0.1:*"})
	if err != nil {
		f.Fatal(err)
	}
	noDNS := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return nil, errors.New("no DNS in fuzz tests")
	}}
	quiet := slog.New(slog.DiscardHandler)
	reg := sockets.New(sockets.Config{
		ConnectPolicy: connect, ListenPolicy: listen, Resolver: noDNS, Logger: quiet,
		MaxServers: 16, MaxSockets: 64, BufferBytes: 64 << 10, DialTimeout: time.Second,
	})
	f.Cleanup(func() { reg.Close() })
	srv, err := reg.Listen(context.Background(), sockets.ListenOptions{})
	if err != nil {
		f.Fatal(err)
	}
	peer, err := net.Dial("tcp", srv.Info().Address)
	if err != nil {
		f.Fatal(err)
	}
	var drained sync.WaitGroup
	drained.Go(func() { io.Copy(io.Discard, peer) })
	f.Cleanup(func() { peer.Close(); drained.Wait() })
	var sockID string
	for deadline := time.Now().Add(testTimeout); sockID == ""; time.Sleep(time.Millisecond) {
		if ids := srv.Info().Sockets; len(ids) > 0 {
			sockID = ids[0]
		} else if time.Now().After(deadline) {
			f.Fatal("the fuzz fixture's server did not accept its peer")
		}
	}
	v, err := contract.New(sockman.OpenAPI)
	if err != nil {
		f.Fatal(err)
	}
	v.Ignore("/swagger/", "/openapi.yaml")
	h := New(reg, Options{MaxBody: fuzzMaxBody, MaxWait: time.Millisecond, OpenAPI: sockman.OpenAPI, Logger: quiet})
	return &fuzzAPI{h: h, v: v, sockID: sockID, srvID: srv.Info().ID}
}

// serve runs one request through the router and checks the answer: never
// a 5xx but the upstream ones (502, 503, 504), every error a problem, and
// every answer as openapi.yaml describes it.
func (a *fuzzAPI) serve(t *testing.T, method, target, ct string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1"+target, bytes.NewReader(body))
	if err != nil || req.URL.Host != "127.0.0.1" || req.URL.Opaque != "" {
		return 0 // not a request a client could send to the API
	}
	if ct != "" {
		req.Header.Set(echo.HeaderContentType, ct)
	}
	req.Header.Set(contract.SkipRequestHeader, "fuzzed")
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	res := rec.Result()
	switch {
	case res.StatusCode == http.StatusInternalServerError || res.StatusCode > 504:
		t.Fatalf("%s %q %q %q: got %d %s", method, target, ct, body, res.StatusCode, rec.Body)
	case res.StatusCode >= 400:
		mt, _, _ := mime.ParseMediaType(res.Header.Get(echo.HeaderContentType))
		var p Problem
		if mt != "application/problem+json" || (method != http.MethodHead && (json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != res.StatusCode)) {
			t.Fatalf("%s %q: got %d %q %s, want a problem+json of that status", method, target, res.StatusCode, mt, rec.Body)
		}
	}
	if err := a.v.Check(req, body, res.StatusCode, res.Header, rec.Body.Bytes()); err != nil {
		t.Fatalf("%s %q: openapi.yaml: %v", method, target, err)
	}
	return res.StatusCode
}

func FuzzRouter(f *testing.F) {
	a := newFuzzAPI(f)
	seeds := []struct{ method, path, ct, body string }{
		{"POST", "/servers", "application/json", `{"port":0}`},
		{"POST", "/clients", "application/json", `{"host":"127.0.0.1","port":1}`},
		{"POST", "/sockets/{sock}/messages", "application/json", `{"data":"hi"}`},
		{"POST", "/sockets/{sock}/messages", "application/octet-stream", "raw"},
		{"POST", "/servers/{srv}/messages", "text/plain", "to all"},
		{"GET", "/sockets/{sock}/messages?after=0&wait=1s", "", ""},
		{"GET", "/sockets?kind=client&state=closed", "", ""},
		{"DELETE", "/servers/srv-999?close_sockets=true", "", ""},
		{"PUT", "/servers", "", ""},
		{"GET", "/nope%zz", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, ct string, body []byte) {
		if strings.Contains(path, "{sock}/") && method == http.MethodDelete {
			return // the fixture socket must stay
		}
		path = strings.NewReplacer("{sock}", a.sockID, "{srv}", a.srvID).Replace(path)
		if method == http.MethodDelete && (strings.HasPrefix(path, "/sockets/"+a.sockID) || strings.HasPrefix(path, "/servers/"+a.srvID)) {
			return
		}
		if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "/swagger") {
			return
		}
		a.serve(t, method, path, ct, body)
	})
}

func FuzzQueryFilters(f *testing.F) {
	a := newFuzzAPI(f)
	for _, q := range []string{"kind=accepted", "state=connected&server_id=srv-1", "kind=%zz", "close_sockets=true", "close_sockets=maybe", "x=1"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		if strings.ContainsAny(rawQuery, "# ") {
			return // not a query: a client would escape these
		}
		switch status := a.serve(t, http.MethodGet, "/sockets?"+rawQuery, "", nil); status {
		case 0, http.StatusOK, http.StatusBadRequest:
		default:
			t.Fatalf("GET /sockets?%s: got %d, want 200 or 400", rawQuery, status)
		}
		switch status := a.serve(t, http.MethodDelete, "/servers/srv-999?"+rawQuery, "", nil); status {
		case 0, http.StatusNotFound, http.StatusBadRequest:
		default:
			t.Fatalf("DELETE /servers/srv-999?%s: got %d, want 404 or 400", rawQuery, status)
		}
	})
}
