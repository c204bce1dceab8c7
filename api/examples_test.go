package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/internal/testnet"
	"github.com/sockman/sockman/sockets"
)

// The examples of openapi.yaml are what the service answers: these tests
// provoke every documented problem of every operation and compare it with the
// example shown for it, and check that every success example is a body the
// service's own types encode that way (no field the service would leave out,
// none it would add).

// loadDescription loads the embedded openapi.yaml.
func loadDescription(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(sockman.OpenAPI)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	return doc
}

// described is one response of one operation of openapi.yaml.
type described struct {
	method, path, status string
	op                   *openapi3.Operation
	content              openapi3.Content
}

func (d described) key() string { return d.op.OperationID + " " + d.status }

// describedResponses lists every response of every operation, in a stable
// order.
func describedResponses(doc *openapi3.T) []described {
	var out []described
	for _, path := range slices.Sorted(maps.Keys(doc.Paths.Map())) {
		item := doc.Paths.Value(path)
		ops := item.Operations()
		for _, method := range slices.Sorted(maps.Keys(ops)) {
			op := ops[method]
			for _, status := range slices.Sorted(maps.Keys(op.Responses.Map())) {
				out = append(out, described{method: method, path: path, status: status, op: op, content: op.Responses.Value(status).Value.Content})
			}
		}
	}
	return out
}

// digits stands for the numbers of a detail: ids, ports and byte counts
// differ from one run to the next.
var digits = regexp.MustCompile(`[0-9]+`)

// opRequest is a well-formed request to each operation, on ids that need not
// exist: the security checks (401, 403) and the body limit (413) answer
// before the handler looks them up.
var opRequest = map[string]struct{ method, path, body string }{
	"health":         {http.MethodGet, "/healthz", ""},
	"ready":          {http.MethodGet, "/readyz", ""},
	"metrics":        {http.MethodGet, "/metrics", ""},
	"getOpenAPI":     {http.MethodGet, "/openapi.yaml", ""},
	"swaggerUI":      {http.MethodGet, "/swagger/index.html", ""},
	"listServers":    {http.MethodGet, "/servers", ""},
	"createServer":   {http.MethodPost, "/servers", `{"port":0}`},
	"getServer":      {http.MethodGet, "/servers/srv-1", ""},
	"deleteServer":   {http.MethodDelete, "/servers/srv-1", ""},
	"broadcast":      {http.MethodPost, "/servers/srv-1/messages", `{"data":"hello\n"}`},
	"listClients":    {http.MethodGet, "/clients", ""},
	"createClient":   {http.MethodPost, "/clients", `{"host":"127.0.0.1","port":9988}`},
	"listSockets":    {http.MethodGet, "/sockets", ""},
	"getSocket":      {http.MethodGet, "/sockets/sock-1", ""},
	"deleteSocket":   {http.MethodDelete, "/sockets/sock-1", ""},
	"read":           {http.MethodGet, "/sockets/sock-1/messages", ""},
	"send":           {http.MethodPost, "/sockets/sock-1/messages", `{"data":"hello\n"}`},
	"streamEvents":   {http.MethodGet, "/events", ""},
	"shutdownSocket": {http.MethodPost, "/sockets/sock-1/shutdown", ""},
	"closeSocket":    {http.MethodPost, "/sockets/sock-1/close", ""},
	"streamSocket":   {http.MethodGet, "/sockets/sock-1/stream", ""},

	"createServerRule":     {http.MethodPost, "/servers/srv-1/rules", `{"echo":true}`},
	"listServerRules":      {http.MethodGet, "/servers/srv-1/rules", ""},
	"deleteServerRule":     {http.MethodDelete, "/servers/srv-1/rules/rule-1", ""},
	"createSocketRule":     {http.MethodPost, "/sockets/sock-1/rules", `{"echo":true}`},
	"listSocketRules":      {http.MethodGet, "/sockets/sock-1/rules", ""},
	"deleteSocketRule":     {http.MethodDelete, "/sockets/sock-1/rules/rule-1", ""},
	"createServerSchedule": {http.MethodPost, "/servers/srv-1/schedules", `{"data":"PING\r\n","interval_ms":1000}`},
	"listServerSchedules":  {http.MethodGet, "/servers/srv-1/schedules", ""},
	"deleteServerSchedule": {http.MethodDelete, "/servers/srv-1/schedules/sched-1", ""},
	"createSocketSchedule": {http.MethodPost, "/sockets/sock-1/schedules", `{"data":"PING\r\n","interval_ms":1000}`},
	"listSocketSchedules":  {http.MethodGet, "/sockets/sock-1/schedules", ""},
	"deleteSocketSchedule": {http.MethodDelete, "/sockets/sock-1/schedules/sched-1", ""},
}

func (a *testAPI) opRequest(t *testing.T, op string) *http.Request {
	r, ok := opRequest[op]
	if !ok {
		t.Fatalf("opRequest has no request for operation %s", op)
	}
	var body any
	if r.body != "" {
		body = r.body
	}
	if op == "streamSocket" {
		return a.newRequest(r.method, r.path, body, upgradeHeader...)
	}
	return a.newRequest(r.method, r.path, body)
}

// genericProblem provokes the statuses that every operation answers the same
// way; ok is false for the others.
func genericProblem(op, status string) (errorCase, bool) {
	switch status {
	case "401":
		return errorCase{
			opts: []harnessOption{withOptions(func(o *Options) { o.Token = "s3cret" })},
			req:  func(t *testing.T, a *testAPI) *http.Request { return a.opRequest(t, op) },
		}, true
	case "403":
		return errorCase{req: func(t *testing.T, a *testAPI) *http.Request {
			r := a.opRequest(t, op)
			r.Host = "sockman.example.com" // a Host header only: nothing resolves it
			return r
		}}, true
	case "413":
		return errorCase{req: func(t *testing.T, a *testAPI) *http.Request {
			r := a.opRequest(t, op)
			return a.newRequest(r.Method, r.URL.Path, `{"data":"`+strings.Repeat("x", testMaxBody)+`"}`)
		}, offContract: true}, true
	}
	return errorCase{}, false
}

// problemCases provokes the problem documented for "operationId status"
// where it depends on the operation.
func problemCases() map[string]errorCase {
	withSocket := func(method, path string, body any, header ...string) func(*testing.T, *testAPI) *http.Request {
		return onSocket(method, path, body, header...)
	}
	unknownQuery := func(method, path string) errorCase {
		return errorCase{req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(method, path+"?verbose=1", nil)
		}, offContract: true}
	}
	connectPolicy := withConfig(func(c *sockets.Config) {
		c.ConnectPolicy, _ = sockets.ParsePolicy("--allow-connect", []string{"127.0.0.2"})
	})
	listenPolicy := withConfig(func(c *sockets.Config) {
		c.ListenPolicy, _ = sockets.ParsePolicy("--allow-listen", []string{"127.0.0.2"})
	})
	closedSocket := func(t *testing.T, a *testAPI) string {
		s, peer := a.pair(t)
		peer.Close()
		waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })
		return s.ID
	}
	return map[string]errorCase{
		"createServerRule 400": {req: onServer(http.MethodPost, "/servers/{id}/rules", `{"match":{"regex":"^(AT\\S*"},"reply":{"data":"OK"}}`)},
		"createSocketRule 400": {req: withSocket(http.MethodPost, "/sockets/{id}/rules", `{"match":{"regex":"^AT(\\S*)"},"reply":{"data":"got $2"}}`)},
		"createServerRule 404": {req: postJSON("/servers/srv-9/rules", `{"echo":true}`)},
		"createSocketRule 404": {req: postJSON("/sockets/sock-9/rules", `{"echo":true}`)},
		"createServerRule 415": {req: onServer(http.MethodPost, "/servers/{id}/rules", []byte(`<echo/>`), "Content-Type", "application/xml"), offContract: true},
		"createSocketRule 415": {req: withSocket(http.MethodPost, "/sockets/{id}/rules", []byte(`<echo/>`), "Content-Type", "application/xml"), offContract: true},
		"createServerRule 503": {opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxRules = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			srv := a.listen(t)
			a.call(http.MethodPost, "/servers/"+srv.ID+"/rules", `{"echo":true}`).want(t, http.StatusCreated)
			return a.newRequest(http.MethodPost, "/servers/"+srv.ID+"/rules", `{"echo":true}`)
		}},
		"createSocketRule 503": {opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxRules = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			s, _ := a.pair(t)
			a.call(http.MethodPost, "/sockets/"+s.ID+"/rules", `{"echo":true}`).want(t, http.StatusCreated)
			return a.newRequest(http.MethodPost, "/sockets/"+s.ID+"/rules", `{"echo":true}`)
		}},
		"listServerRules 400":  {req: onServer(http.MethodGet, "/servers/{id}/rules?verbose=1", nil), offContract: true},
		"listSocketRules 400":  {req: withSocket(http.MethodGet, "/sockets/{id}/rules?verbose=1", nil), offContract: true},
		"listServerRules 404":  {req: get("/servers/srv-9/rules")},
		"listSocketRules 404":  {req: get("/sockets/sock-9/rules")},
		"deleteServerRule 400": {req: onServer(http.MethodDelete, "/servers/{id}/rules/rule-1?verbose=1", nil), offContract: true},
		"deleteSocketRule 400": {req: withSocket(http.MethodDelete, "/sockets/{id}/rules/rule-1?verbose=1", nil), offContract: true},
		"deleteServerRule 404": {req: onServer(http.MethodDelete, "/servers/{id}/rules/rule-9", nil)},
		"deleteSocketRule 404": {req: withSocket(http.MethodDelete, "/sockets/{id}/rules/rule-9", nil)},

		"createServerSchedule 400": {req: onServer(http.MethodPost, "/servers/{id}/schedules", `{"data":"PING","interval_ms":1}`)},
		"createSocketSchedule 400": {req: withSocket(http.MethodPost, "/sockets/{id}/schedules", `{"data":"PING","interval_ms":1}`)},
		"createServerSchedule 404": {req: postJSON("/servers/srv-9/schedules", `{"data":"PING","interval_ms":1000}`)},
		"createSocketSchedule 404": {req: postJSON("/sockets/sock-9/schedules", `{"data":"PING","interval_ms":1000}`)},
		"createSocketSchedule 409": {req: func(t *testing.T, a *testAPI) *http.Request {
			id := closedSocket(t, a)
			return a.newRequest(http.MethodPost, "/sockets/"+id+"/schedules", `{"data":"PING","interval_ms":1000}`)
		}},
		"createServerSchedule 415": {req: onServer(http.MethodPost, "/servers/{id}/schedules", []byte(`<ping/>`), "Content-Type", "application/xml"), offContract: true},
		"createSocketSchedule 415": {req: withSocket(http.MethodPost, "/sockets/{id}/schedules", []byte(`<ping/>`), "Content-Type", "application/xml"), offContract: true},
		"createServerSchedule 503": {opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxSchedules = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			srv := a.listen(t)
			a.call(http.MethodPost, "/servers/"+srv.ID+"/schedules", `{"data":"PING","interval_ms":1000}`).want(t, http.StatusCreated)
			return a.newRequest(http.MethodPost, "/servers/"+srv.ID+"/schedules", `{"data":"PING","interval_ms":1000}`)
		}},
		"createSocketSchedule 503": {opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxSchedules = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			s, _ := a.pair(t)
			a.call(http.MethodPost, "/sockets/"+s.ID+"/schedules", `{"data":"PING","interval_ms":1000}`).want(t, http.StatusCreated)
			return a.newRequest(http.MethodPost, "/sockets/"+s.ID+"/schedules", `{"data":"PING","interval_ms":1000}`)
		}},
		"listServerSchedules 400":  {req: onServer(http.MethodGet, "/servers/{id}/schedules?verbose=1", nil), offContract: true},
		"listSocketSchedules 400":  {req: withSocket(http.MethodGet, "/sockets/{id}/schedules?verbose=1", nil), offContract: true},
		"listServerSchedules 404":  {req: get("/servers/srv-9/schedules")},
		"listSocketSchedules 404":  {req: get("/sockets/sock-9/schedules")},
		"deleteServerSchedule 400": {req: onServer(http.MethodDelete, "/servers/{id}/schedules/sched-1?verbose=1", nil), offContract: true},
		"deleteSocketSchedule 400": {req: withSocket(http.MethodDelete, "/sockets/{id}/schedules/sched-1?verbose=1", nil), offContract: true},
		"deleteServerSchedule 404": {req: onServer(http.MethodDelete, "/servers/{id}/schedules/sched-9", nil)},
		"deleteSocketSchedule 404": {req: withSocket(http.MethodDelete, "/sockets/{id}/schedules/sched-9", nil)},

		"ready 503": {
			opts: []harnessOption{withOptions(func(o *Options) { o.Ready = func() bool { return false } })},
			req:  func(t *testing.T, a *testAPI) *http.Request { return a.newRequest(http.MethodGet, "/readyz", nil) },
		},
		"listServers 400":    unknownQuery(http.MethodGet, "/servers"),
		"listClients 400":    unknownQuery(http.MethodGet, "/clients"),
		"getServer 400":      {req: onServer(http.MethodGet, "/servers/{id}?verbose=1", nil), offContract: true},
		"getSocket 400":      {req: withSocket(http.MethodGet, "/sockets/{id}?verbose=1", nil), offContract: true},
		"deleteSocket 400":   {req: withSocket(http.MethodDelete, "/sockets/{id}?reset=yes", nil), offContract: true},
		"shutdownSocket 400": {req: withSocket(http.MethodPost, "/sockets/{id}/shutdown?reset=true", nil), offContract: true},
		"closeSocket 400":    {req: withSocket(http.MethodPost, "/sockets/{id}/close?reset=yes", nil), offContract: true},
		"shutdownSocket 404": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/sockets/sock-9/shutdown", nil)
		}},
		"closeSocket 404": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/sockets/sock-9/close", nil)
		}},
		"shutdownSocket 409": {req: func(t *testing.T, a *testAPI) *http.Request {
			s, peer := a.pair(t)
			peer.Close()
			waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })
			return a.newRequest(http.MethodPost, "/sockets/"+s.ID+"/shutdown", nil)
		}},
		"listSockets 400":  {req: get("/sockets?kind=server"), offContract: true},
		"deleteServer 400": {req: onServer(http.MethodDelete, "/servers/{id}?close_sockets=maybe", nil), offContract: true},
		"createServer 400": {req: postJSON("/servers", `{"host":"192.0.2.1","port":0}`)},
		"createClient 400": {req: postJSON("/clients", `{"host":"127.0.0.1:9988","port":9988}`)},
		"broadcast 400":    {req: onServer(http.MethodPost, "/servers/{id}/messages", `{"data":"aGVsbG8K!","encoding":"base64"}`)},
		"send 400":         {req: withSocket(http.MethodPost, "/sockets/{id}/messages", `{"data":"aGVsbG8K!","encoding":"base64"}`)},
		"read 400":         {req: withSocket(http.MethodGet, "/sockets/{id}/messages?after=5", nil)},
		"streamEvents 400": {req: get("/events?types=nope")},
		"streamSocket 400": {req: withSocket(http.MethodGet, "/sockets/{id}/stream?ack=client", nil, upgradeHeader...)},
		"streamSocket 404": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodGet, "/sockets/sock-9/stream", nil, upgradeHeader...)
		}},
		"streamSocket 409": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodGet, "/sockets/"+attached(t, a)+"/stream", nil, upgradeHeader...)
		}},
		"read 409": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodGet, "/sockets/"+attached(t, a)+"/messages?after=0", nil)
		}},
		"streamSocket 426": {req: withSocket(http.MethodGet, "/sockets/{id}/stream", nil)},
		"streamSocket 503": {opts: []harnessOption{withOptions(func(o *Options) { o.MaxStreams = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			s, _ := a.pair(t)
			openStream(t, a, s.ID, "")
			s2, _ := a.pair(t)
			return a.newRequest(http.MethodGet, "/sockets/"+s2.ID+"/stream", nil, upgradeHeader...)
		}},
		"streamEvents 503": {opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxSubscribers = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			sub, err := a.reg.Subscribe(sockets.SubscribeOptions{})
			if err != nil {
				t.Fatalf("the one subscription the limit allows: got %v, want nil", err)
			}
			t.Cleanup(sub.Close)
			return a.newRequest(http.MethodGet, "/events", nil)
		}},

		"createServer 403": {opts: []harnessOption{listenPolicy}, req: postJSON("/servers", `{"port":0}`)},
		"createClient 403": {opts: []harnessOption{connectPolicy}, req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/clients", fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, listenPeer(t).Addr().(*net.TCPAddr).Port))
		}},

		"getServer 404": {req: get("/servers/srv-9")},
		"deleteServer 404": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodDelete, "/servers/srv-9", nil)
		}},
		"broadcast 404": {req: postJSON("/servers/srv-9/messages", `{"data":"hello\n"}`)},
		"getSocket 404": {req: get("/sockets/sock-9")},
		"deleteSocket 404": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodDelete, "/sockets/sock-9", nil)
		}},
		"read 404": {req: get("/sockets/sock-9/messages")},
		"send 404": {req: postJSON("/sockets/sock-9/messages", `{"data":"hello\n"}`)},

		"createServer 409": {req: func(t *testing.T, a *testAPI) *http.Request {
			_, port := splitAddr(t, a.listen(t).Address)
			return a.newRequest(http.MethodPost, "/servers", `{"port":`+strconv.Itoa(port)+`}`)
		}},
		"send 409": {req: func(t *testing.T, a *testAPI) *http.Request {
			s, peer := a.pair(t)
			peer.Close()
			waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })
			return a.newRequest(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"hello\n"}`)
		}},

		"createServer 415": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/servers", []byte(`port=0`), "Content-Type", "application/x-www-form-urlencoded")
		}, offContract: true},
		"createClient 415": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/clients", []byte(`host=127.0.0.1&port=9988`), "Content-Type", "application/x-www-form-urlencoded")
		}, offContract: true},
		"broadcast 415": {req: onServer(http.MethodPost, "/servers/{id}/messages", []byte(`<data>hello</data>`), "Content-Type", "application/xml"), offContract: true},
		"send 415":      {req: withSocket(http.MethodPost, "/sockets/{id}/messages", []byte(`<data>hello</data>`), "Content-Type", "application/xml"), offContract: true},

		"createClient 502": {req: func(t *testing.T, a *testAPI) *http.Request {
			return a.newRequest(http.MethodPost, "/clients", dialBody(t, ""))
		}},
		"createServer 503": {opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxServers = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			a.listen(t)
			return a.newRequest(http.MethodPost, "/servers", `{"port":0}`)
		}},
		"createClient 503": {opts: []harnessOption{withConfig(func(c *sockets.Config) { c.MaxSockets = 1 })}, req: func(t *testing.T, a *testAPI) *http.Request {
			ln := listenPeer(t)
			a.dial(t, ln.Addr().String())
			return a.newRequest(http.MethodPost, "/clients", dialBody(t, ""))
		}},
		"createClient 504": {req: func(t *testing.T, a *testAPI) *http.Request {
			host, port := splitAddr(t, testnet.UnansweredAddr(t))
			return a.newRequest(http.MethodPost, "/clients", fmt.Sprintf(`{"host":%q,"port":%d,"timeout_ms":%d}`, host, port, 1000))
		}},
		"send 504": {opts: []harnessOption{
			withConfig(func(c *sockets.Config) { c.WriteTimeout = time.Second }),
			withOptions(func(o *Options) { o.MaxBody = 32 << 20 }),
		}, req: func(t *testing.T, a *testAPI) *http.Request {
			s, peer := a.pair(t)
			peer.SetReadBuffer(4096)
			return a.newRequest(http.MethodPost, "/sockets/"+s.ID+"/messages", make([]byte, 24<<20), "Content-Type", "application/octet-stream")
		}},
	}
}

// attached opens a socket with a stream attached, and returns its id.
func attached(t *testing.T, a *testAPI) string {
	s, _ := a.pair(t)
	openStream(t, a, s.ID, "")
	return s.ID
}

// cancelledProblems provokes the 503 of a send or broadcast that the
// shutdown cancels: the service cancels the context of every request in
// flight, which no client can do and still read the answer, so the request
// goes to the router directly with a context that is already cancelled.
var cancelledProblems = map[string]func(t *testing.T, a *testAPI) *http.Request{
	"send 503": func(t *testing.T, a *testAPI) *http.Request {
		s, _ := a.pair(t)
		return httptest.NewRequest(http.MethodPost, "/sockets/"+s.ID+"/messages", strings.NewReader(`{"data":"hello\n"}`))
	},
	"broadcast 503": func(t *testing.T, a *testAPI) *http.Request {
		s, _ := a.pair(t)
		return httptest.NewRequest(http.MethodPost, "/servers/"+s.ServerID+"/messages", strings.NewReader(`{"data":"hello\n"}`))
	},
}

func (a *testAPI) cancelled(t *testing.T, r *http.Request) response {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r = r.WithContext(ctx)
	r.Host = "127.0.0.1" // httptest's default, example.com, is not a name the API answers to
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	New(a.reg, Options{OpenAPI: sockman.OpenAPI, Logger: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, r)
	res := rec.Result()
	res.Request = r
	return response{Response: res, body: rec.Body.Bytes()}
}

// TestProblemExamples: the example of every documented error response of
// every operation is what the service answers in that case: the same type,
// title and status, and the same detail but for its numbers.
func TestProblemExamples(t *testing.T) {
	t.Parallel()
	doc := loadDescription(t)
	cases := problemCases()
	used := map[string]bool{}
	for _, d := range describedResponses(doc) {
		mt := d.content.Get("application/problem+json")
		if mt == nil {
			continue
		}
		key := d.key()
		want, ok := mt.Example.(map[string]any)
		if !ok {
			t.Errorf("%s %s %s: no problem example", d.method, d.path, d.status)
		}
		tc, ok := cases[key]
		cancelled := cancelledProblems[key]
		if ok || cancelled != nil {
			used[key] = true
		} else if tc, ok = genericProblem(d.op.OperationID, d.status); !ok {
			t.Errorf("%s (%s %s): no case provokes it", key, d.method, d.path)
			continue
		}
		status, _ := strconv.Atoi(d.status)
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(t, tc.opts...)
			var res response
			if cancelled != nil {
				res = a.cancelled(t, cancelled(t, a))
			} else {
				req := tc.req(t, a)
				if tc.offContract {
					req.Header.Set(contract.SkipRequestHeader, "wrong on purpose")
				}
				res = a.do(req)
			}
			p := res.want(t, status).problem(t)
			if p.Type != want["type"] || p.Title != want["title"] || float64(p.Status) != want["status"] ||
				digits.ReplaceAllString(p.Detail, "N") != digits.ReplaceAllString(fmt.Sprint(want["detail"]), "N") {
				js, _ := json.Marshal(p)
				t.Errorf("the service answers\n\t%s\nopenapi.yaml shows\n\t%v", js, want)
			}
		})
	}
	for key := range cases {
		if !used[key] {
			t.Errorf("case %s provokes a response openapi.yaml does not document", key)
		}
	}
	for key := range cancelledProblems {
		if !used[key] {
			t.Errorf("case %s provokes a response openapi.yaml does not document", key)
		}
	}
}

// successTypes are the Go types of the JSON success answers.
var successTypes = map[string]reflect.Type{
	"health":         reflect.TypeFor[Health](),
	"ready":          reflect.TypeFor[Health](),
	"listServers":    reflect.TypeFor[ServerList](),
	"createServer":   reflect.TypeFor[Server](),
	"getServer":      reflect.TypeFor[Server](),
	"broadcast":      reflect.TypeFor[BroadcastResult](),
	"listClients":    reflect.TypeFor[SocketList](),
	"createClient":   reflect.TypeFor[Socket](),
	"listSockets":    reflect.TypeFor[SocketList](),
	"getSocket":      reflect.TypeFor[Socket](),
	"read":           reflect.TypeFor[MessageList](),
	"send":           reflect.TypeFor[SendResult](),
	"shutdownSocket": reflect.TypeFor[Socket](),
	"closeSocket":    reflect.TypeFor[Socket](),

	"createServerRule":     reflect.TypeFor[Rule](),
	"listServerRules":      reflect.TypeFor[RuleList](),
	"createSocketRule":     reflect.TypeFor[Rule](),
	"listSocketRules":      reflect.TypeFor[RuleList](),
	"createServerSchedule": reflect.TypeFor[Schedule](),
	"listServerSchedules":  reflect.TypeFor[ScheduleList](),
	"createSocketSchedule": reflect.TypeFor[Schedule](),
	"listSocketSchedules":  reflect.TypeFor[ScheduleList](),
}

// TestSuccessExamples: every JSON success example is a body the service
// sends: decoded into the type the handler encodes and encoded again, it is
// the same JSON (a field the service omits when empty is absent, every
// field it always sends is there, nothing else is).
func TestSuccessExamples(t *testing.T) {
	t.Parallel()
	for _, d := range describedResponses(loadDescription(t)) {
		mt := d.content.Get("application/json")
		if mt == nil || d.status[0] != '2' {
			continue
		}
		typ, ok := successTypes[d.op.OperationID]
		if !ok {
			t.Errorf("%s: no Go type to check its example with", d.key())
			continue
		}
		if mt.Example == nil {
			t.Errorf("%s: no example", d.key())
			continue
		}
		want, _ := json.Marshal(mt.Example)
		v := reflect.New(typ)
		dec := json.NewDecoder(bytes.NewReader(want))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v.Interface()); err != nil {
			t.Errorf("%s: example %s does not decode into %s: %v", d.key(), want, typ, err)
			continue
		}
		got, _ := json.Marshal(v.Interface())
		var a, b any
		json.Unmarshal(got, &a)
		json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the example is\n\t%s\nbut the service would send\n\t%s", d.key(), want, got)
		}
	}
}

// TestEveryRouteIsDescribed: openapi.yaml describes every method of every
// route the router serves (HEAD included), and nothing else. The redirects
// to Swagger UI (/ and /swagger) are left out on purpose, and of the files
// under /swagger/ only the page is described.
func TestEveryRouteIsDescribed(t *testing.T) {
	t.Parallel()
	reg := sockets.New(sockets.Config{})
	t.Cleanup(func() { reg.Close() })
	served := map[string]bool{}
	for _, r := range New(reg, Options{OpenAPI: sockman.OpenAPI}).Routes() {
		path := regexp.MustCompile(`:([a-z_]+)`).ReplaceAllString(r.Path, "{$1}")
		switch path {
		case "/", "/swagger":
			continue
		case "/swagger/*":
			path = "/swagger/index.html"
		}
		if strings.HasPrefix(r.Name, "github.com/labstack/echo") { // echo's own 404/405 routes
			continue
		}
		served[r.Method+" "+path] = true
	}
	described := map[string]bool{}
	doc := loadDescription(t)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+path] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(served)) {
		if !described[k] {
			t.Errorf("the router serves %s, openapi.yaml does not describe it", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(described)) {
		if !served[k] {
			t.Errorf("openapi.yaml describes %s, the router does not serve it", k)
		}
	}
}
