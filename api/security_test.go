package api

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/sockman/sockman/internal/fakedns"
	"github.com/sockman/sockman/internal/testnet"
	"github.com/sockman/sockman/sockets"
)

// The connect and listen policies end to end through the HTTP API, every
// response checked against openapi.yaml by the harness. Only loopback
// addresses are dialled: the policies allow 127.0.0.2, so 127.0.0.1 and ::1
// are denied addresses, watched by canary listeners that must see nothing.
// Names resolve through a fake DNS server on 127.0.0.1, never the machine's.

// policyEnv is testnet.PolicyNet (a target on 127.0.0.2 and canaries on
// 127.0.0.1 and ::1, all on one port), a fake DNS server, and an API whose
// policies allow 127.0.0.2.
type policyEnv struct {
	*testnet.PolicyNet
	api *testAPI
	dns *fakedns.Server
}

func newPolicyEnv(t *testing.T) *policyEnv {
	t.Helper()
	env := &policyEnv{PolicyNet: testnet.NewPolicyNet(t), dns: fakedns.Start(t)}
	allowed, denied4, denied6 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	env.dns.Set("allowed.test", allowed)
	env.dns.Set("denied4.test", denied4)
	env.dns.Set("denied6.test", denied6)
	env.dns.Set("denied-both.test", denied4, denied6)
	env.dns.Set("one-allowed.test", allowed, denied6)
	env.dns.Set("mapped.test", netip.MustParseAddr("::ffff:127.0.0.1"))
	for _, odd := range []string{"0x7f.0.0.1", "0x7f.1", "0x7f000001", "127.1", "2130706433", "0177.0.0.1", "127.0.0.01"} {
		env.dns.Set(odd, denied4) // as inet_aton would read it
	}
	connect, err := sockets.ParsePolicy("--allow-connect", []string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	listen, err := sockets.ParsePolicy("--allow-listen", []string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	env.api = newTestAPI(t, withConfig(func(c *sockets.Config) {
		c.ConnectPolicy, c.ListenPolicy, c.Resolver = connect, listen, env.dns.Resolver()
	}))
	return env
}

// clientPolicyTable: host spellings for POST /clients and the status each
// must get. v6 rows need an IPv6 loopback.
var clientPolicyTable = []struct {
	host string
	want int
	v6   bool
}{
	{"127.0.0.2", 201, false},
	{"::ffff:127.0.0.2", 201, false},
	{"::FFFF:7F00:2", 201, false},
	{"0:0:0:0:0:ffff:127.0.0.2", 201, false},
	{"allowed.test", 201, false},
	{"one-allowed.test", 201, false},
	{"127.0.0.1", 403, false},
	{"::ffff:127.0.0.1", 403, false},
	{"::ffff:7f00:1", 403, false},
	{"0:0:0:0:0:ffff:7f00:1", 403, false},
	{"0000:0000:0000:0000:0000:ffff:127.0.0.1", 403, false},
	{"::ffff:127.0.0.1%lo", 403, false},
	{"[127.0.0.1]", 400, false},
	{"::1", 403, true},
	{"0:0:0:0:0:0:0:1", 403, true},
	{"0000:0000:0000:0000:0000:0000:0000:0001", 403, true},
	{"::0:1", 403, true},
	{"0::1", 403, true},
	{"::0.0.0.1", 403, true},
	{"::1%lo", 403, true},
	{"::1%1", 403, true},
	{"localhost", 403, false},
	{"LocalHost", 403, false},
	{"denied4.test", 403, false},
	{"DENIED4.TEST.", 403, false},
	{"denied6.test", 403, true},
	{"denied-both.test", 403, false},
	{"mapped.test", 403, false},
	{"0x7f.0.0.1", 400, false},
	{"0x7f.1", 400, false},
	{"0x7f000001", 400, false},
	// Legacy numeric spellings of an address are refused before any lookup.
	{"127.1", 400, false},
	{"2130706433", 400, false},
	{"0177.0.0.1", 400, false},
	{"127.0.0.01", 400, false},
	{"127.000.000.001", 400, false},
	{"017700000001", 400, false},
	{"127.0.0.1.", 400, false},
	{"127.0.0.1%lo", 400, false},
	{"nosuch.test", 502, false},
	{"[::1]", 403, true},
	{"127.0.0.1:80", 400, false},
}

func TestConnectPolicyThroughAPI(t *testing.T) {
	env := newPolicyEnv(t)
	for _, tt := range clientPolicyTable {
		t.Run(tt.host, func(t *testing.T) {
			if tt.v6 && env.Canary6 == nil {
				t.Skip("no IPv6 loopback")
			}
			body := ClientCreate{Host: tt.host, Port: ptr(env.Port)}
			res := env.api.call(http.MethodPost, "/clients", body).want(t, tt.want)
			switch tt.want {
			case 201:
				var s Socket
				res.decode(t, &s)
				if want := net.JoinHostPort("127.0.0.2", strconv.Itoa(env.Port)); s.RemoteAddress != want {
					t.Errorf("remote_address: got %s, want %s", s.RemoteAddress, want)
				}
				acceptPeer(t, env.Target).Close()
				env.api.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)
			case 403:
				p := res.problem(t)
				if p.Type != "urn:sockman:problem:forbidden-by-policy" || !strings.Contains(p.Detail, "--allow-connect") || !strings.Contains(p.Detail, "127.0.0.2") {
					t.Errorf("got problem %+v, want forbidden-by-policy naming the rule --allow-connect 127.0.0.2", p)
				}
			default:
				res.problem(t)
			}
		})
	}
	env.Canary4.Untouched(t)
	if env.Canary6 != nil {
		env.Canary6.Untouched(t)
	}
	if n := env.dns.Queries("127.1") + env.dns.Queries("2130706433") + env.dns.Queries("0177.0.0.1"); n != 0 {
		t.Errorf("DNS queries for all-numeric names: got %d, want 0", n)
	}
}

func TestListenPolicyThroughAPI(t *testing.T) {
	env := newPolicyEnv(t)
	tests := []struct {
		host string
		want int
		v6   bool
	}{
		{"127.0.0.2", 201, false},
		{"::ffff:127.0.0.2", 201, false},
		{"allowed.test", 201, false},
		{"", 403, false}, // the default host, 127.0.0.1
		{"127.0.0.1", 403, false},
		{"::ffff:127.0.0.1", 403, false},
		{"0.0.0.0", 403, false},
		{"::", 403, true},
		{"::1", 403, true},
		{"::1%lo", 403, true},
		{"localhost", 403, false},
		{"denied4.test", 403, false},
		{"0x7f000001", 400, false},
		{"127.1", 400, false},
		{"nosuch.test", 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if tt.v6 && env.Canary6 == nil {
				t.Skip("no IPv6 loopback")
			}
			res := env.api.call(http.MethodPost, "/servers", ServerCreate{Host: tt.host, Port: ptr(0)}).want(t, tt.want)
			switch tt.want {
			case 201:
				var srv Server
				res.decode(t, &srv)
				if !strings.HasPrefix(srv.Address, "127.0.0.2:") {
					t.Errorf("address: got %s, want 127.0.0.2:port", srv.Address)
				}
				env.api.call(http.MethodDelete, "/servers/"+srv.ID, nil).want(t, http.StatusNoContent)
			case 403:
				if p := res.problem(t); !strings.Contains(p.Detail, "--allow-listen") {
					t.Errorf("detail %q does not name --allow-listen", p.Detail)
				}
			default:
				res.problem(t)
			}
		})
	}
}

// DNS rebinding: a name that resolves to an allowed address and then to a
// denied one is checked at each connect.
func TestRebindingThroughAPI(t *testing.T) {
	env := newPolicyEnv(t)
	env.dns.SetSequence("rebind.test", []netip.Addr{netip.MustParseAddr("127.0.0.2")}, []netip.Addr{netip.MustParseAddr("127.0.0.1")})
	body := ClientCreate{Host: "rebind.test", Port: ptr(env.Port)}
	env.api.call(http.MethodPost, "/clients", body).want(t, http.StatusCreated)
	acceptPeer(t, env.Target)
	p := env.api.call(http.MethodPost, "/clients", body).want(t, http.StatusForbidden).problem(t)
	if !strings.Contains(p.Detail, "127.0.0.1") {
		t.Errorf("detail %q does not name the denied address 127.0.0.1", p.Detail)
	}
	env.Canary4.Untouched(t)
}

func TestCheckSecurity(t *testing.T) {
	tests := map[string]struct {
		o    Options
		want string // "" when valid
	}{
		"defaults":                 {Options{}, ""},
		"token":                    {Options{Token: "abc-DEF_123.~+/="}, ""},
		"token with space":         {Options{Token: "a b"}, "printable ASCII"},
		"token with newline":       {Options{Token: "ab\n"}, "printable ASCII"},
		"token not ascii":          {Options{Token: "clé"}, "printable ASCII"},
		"hosts":                    {Options{AllowedHosts: []string{"box.lan", "[2001:db8::1]", "192.0.2.7", "box.lan:8080"}}, ""},
		"empty host":               {Options{AllowedHosts: []string{" "}}, "empty"},
		"any host without a token": {Options{AllowedHosts: []string{"*"}}, "needs a token"},
		"any host with a token":    {Options{AllowedHosts: []string{"*"}, Token: "t"}, ""},
		"host with a path":         {Options{AllowedHosts: []string{"box.lan/x"}}, "--allowed-hosts"},
		"origins":                  {Options{CORSOrigins: []string{"https://app.example.com", "http://localhost:3000", "http://[::1]:3000"}}, ""},
		"wildcard origin":          {Options{CORSOrigins: []string{"*"}}, "wildcards"},
		"subdomain pattern":        {Options{CORSOrigins: []string{"https://*.example.com"}}, "wildcards"},
		"null origin":              {Options{CORSOrigins: []string{"null"}}, "null"},
		"origin with a path":       {Options{CORSOrigins: []string{"https://app.example.com/"}}, "scheme://host"},
		"origin without scheme":    {Options{CORSOrigins: []string{"app.example.com"}}, "scheme://host"},
		"origin ftp":               {Options{CORSOrigins: []string{"ftp://app.example.com"}}, "scheme://host"},
		"origin with user":         {Options{CORSOrigins: []string{"https://u@app.example.com"}}, "scheme://host"},
		"origin upper case":        {Options{CORSOrigins: []string{"https://App.example.com"}}, "lower case"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.o.CheckSecurity()
			if tt.want == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// routerFor is the bare router (no contract validator: the security checks
// answer 401 and 403 on every route, documented or not).
func routerFor(t *testing.T, o Options) http.Handler {
	t.Helper()
	reg := sockets.New(sockets.Config{})
	t.Cleanup(func() { reg.Close() })
	return New(reg, o)
}

func serveRecorded(h http.Handler, method, target, host string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	recordProblem(response{Response: rec.Result(), body: rec.Body.Bytes()})
	return rec
}

// Allowed host names are compared without case, port, brackets or a final
// dot; loopback addresses in any form are always allowed.
func TestHostAllowList(t *testing.T) {
	h := routerFor(t, Options{AllowedHosts: []string{"Box.LAN.", "[2001:db8::1]", "other.lan:8080"}})
	tests := []struct {
		host string
		want int
	}{
		{"box.lan", 200}, {"BOX.lan:8080", 200}, {"box.lan.:1", 200}, {"[2001:db8::1]:8080", 200}, {"other.lan", 200},
		{"127.0.0.1", 200}, {"127.255.0.1:9", 200}, {"[::1]", 200}, {"[::ffff:127.0.0.1]:80", 200}, {"localhost:1", 200},
		{"box.lan.evil.example", 403}, {"evil.box.lan", 403}, {"2001:db8::2", 403}, {"0.0.0.0", 403}, {"", 403},
		{"127.0.0.1.nip.io", 403}, {"localhost.evil.example", 403},
	}
	for _, tt := range tests {
		rec := serveRecorded(h, http.MethodGet, "/healthz", tt.host)
		if rec.Code != tt.want {
			t.Errorf("Host %q: got %d, want %d", tt.host, rec.Code, tt.want)
		}
		if tt.want == 403 && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
			t.Errorf("Host %q: got Content-Type %q, want problem+json", tt.host, rec.Header().Get("Content-Type"))
		}
	}
	anyHost := routerFor(t, Options{AllowedHosts: []string{"*"}, Token: "t"})
	if rec := serveRecorded(anyHost, http.MethodGet, "/healthz", "anything.example"); rec.Code != 200 {
		t.Errorf("--allowed-hosts '*': got %d, want 200", rec.Code)
	}
}

// The token guards every route but /healthz and the documentation, decided
// on the path echo routes on, so that no spelling of an API path passes as
// a public one.
func TestPublicRoutes(t *testing.T) {
	h := routerFor(t, Options{Token: "t0k"})
	tests := []struct {
		method, target string
		public         bool
	}{
		{"GET", "/healthz", true},
		{"GET", "/openapi.yaml", true},
		{"GET", "/swagger/index.html", true},
		{"GET", "/swagger", true},
		{"GET", "/swagger/", true},
		{"GET", "/swagger/x/doc.json", true},
		{"GET", "/", true},
		{"HEAD", "/healthz", true},
		{"POST", "/healthz", false},
		{"GET", "/healthz/", false},
		{"GET", "/healthzz", false},
		{"GET", "/servers", false},
		{"GET", "/swaggerx", false},
		{"GET", "/%73wagger/index.html", false},
		{"GET", "/%2Fservers", false},
		{"OPTIONS", "/servers", false},
		{"GET", "/sockets/sock-1/messages", false},
	}
	for _, tt := range tests {
		rec := serveRecorded(h, tt.method, tt.target, "127.0.0.1")
		if got := rec.Code != http.StatusUnauthorized; got != tt.public {
			t.Errorf("%s %s without a token: got %d, want public %v", tt.method, tt.target, rec.Code, tt.public)
		}
	}
	// A path under /swagger/ reaches Swagger UI's file server, never an API route.
	if rec := serveRecorded(h, "GET", "/swagger/../servers", "127.0.0.1"); rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), `"servers"`) {
		t.Errorf("GET /swagger/../servers without a token: got the server list")
	}
}

// A cross-site page may not read the API (a read with ?after= frees data),
// nor change anything; trusted origins may.
func TestCrossSiteRequests(t *testing.T) {
	h := routerFor(t, Options{CORSOrigins: []string{"http://app.test"}})
	tests := []struct {
		method, target string
		header         []string
		want           int
	}{
		{"GET", "/sockets/sock-1/messages?after=5", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"GET", "/servers", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://localhost:3000"}, 403},
		{"GET", "/servers", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://app.test"}, 200},
		{"GET", "/servers", []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"GET", "/openapi.yaml", []string{"Sec-Fetch-Site", "cross-site"}, 200},
		{"DELETE", "/servers/srv-1", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 403},
		{"DELETE", "/servers/srv-1", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://app.test"}, 404},
		{"DELETE", "/servers/srv-1", []string{"Origin", "http://evil.example"}, 403},
		{"DELETE", "/servers/srv-1", []string{"Origin", "http://127.0.0.1"}, 404},
	}
	for _, tt := range tests {
		rec := serveRecorded(h, tt.method, tt.target, "127.0.0.1", tt.header...)
		if rec.Code != tt.want {
			t.Errorf("%s %s %q: got %d, want %d (%s)", tt.method, tt.target, tt.header, rec.Code, tt.want, rec.Body)
		}
	}
}

// Problems from the security checks are problem+json from the one table, and
// a 401 carries WWW-Authenticate.
func TestSecurityProblems(t *testing.T) {
	h := routerFor(t, Options{Token: "t0k"})
	for _, tt := range []struct {
		rec  *httptest.ResponseRecorder
		want string
	}{
		{serveRecorded(h, "GET", "/servers", "127.0.0.1"), "urn:sockman:problem:unauthorized"},
		{serveRecorded(h, "GET", "/servers", "evil.example"), "urn:sockman:problem:forbidden"},
		{serveRecorded(h, "POST", "/servers", "127.0.0.1", "Sec-Fetch-Site", "cross-site"), "urn:sockman:problem:forbidden"},
	} {
		if ct := tt.rec.Header().Get("Content-Type"); ct != "application/problem+json" || !strings.Contains(tt.rec.Body.String(), fmt.Sprintf("%q", tt.want)) {
			t.Errorf("got %d %s %s, want a problem of type %s", tt.rec.Code, ct, tt.rec.Body, tt.want)
		}
	}
	if got := serveRecorded(h, "GET", "/servers", "127.0.0.1").Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate: got %q, want Bearer", got)
	}
}

// A CORS preflight advertises the methods the API serves, and only those.
func TestCORSPreflightMethods(t *testing.T) {
	h := routerFor(t, Options{CORSOrigins: []string{"http://app.test"}})
	rec := serveRecorded(h, http.MethodOptions, "/servers", "127.0.0.1",
		"Origin", "http://app.test", "Access-Control-Request-Method", "POST")
	if got := rec.Header().Get("Access-Control-Allow-Methods"); got != "GET,HEAD,POST,DELETE" {
		t.Errorf("preflight Access-Control-Allow-Methods: got %q, want GET,HEAD,POST,DELETE", got)
	}
}
