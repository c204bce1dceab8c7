package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sockman/sockman/internal/fakedns"
	"github.com/sockman/sockman/internal/testnet"
)

// A non-loopback --addr without a token refuses to start, exits non-zero,
// says how to fix it, and binds nothing. Only IP literals here: a name would
// be looked up by the machine's resolver if the check failed.
func TestExposedAddrWithoutTokenRefusesToStart(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "[2001:db8::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"serve", "--addr", addr}, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit code: got 0, want non-zero")
			}
			for _, want := range []string{"no token is set", "--token-file", "SOCKMAN_TOKEN", "--addr 127.0.0.1:8080"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			}
			if strings.Contains(stderr.String(), "sockman serving") {
				t.Errorf("stderr %q: the API started, want it refused before binding", stderr.String())
			}
		})
	}
}

func TestCheckExposure(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"127.9.9.9:8080", "", true},
		{"[::1]:8080", "", true},
		{"[::ffff:127.0.0.1]:8080", "", true},
		{"localhost:8080", "", true},
		{"LocalHost:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"[::]:8080", "", false},
		{"10.1.2.3:8080", "", false},
		{"sockman.example.com:8080", "", false}, // a name is not looked up
		{"localhost.example.com:8080", "", false},
		{"0.0.0.0:8080", "t", true},
		{"sockman.example.com:8080", "t", true},
	}
	for _, tt := range tests {
		err := checkExposure(serveConfig{Addr: tt.addr, Token: tt.token})
		if (err == nil) != tt.ok {
			t.Errorf("checkExposure(%q, token %q): got %v, want ok %v", tt.addr, tt.token, err, tt.ok)
		}
	}
}

// --addr 0.0.0.0 (or ::) never makes "0.0.0.0" an allowed Host: a browser
// sends that Host only when some page pointed it at 0.0.0.0. The names other
// machines use come from --allowed-hosts.
func TestAllowedHostsSkipUnspecified(t *testing.T) {
	tests := []struct {
		addr, bound string
		extra       []string
		want        []string
	}{
		{"127.0.0.1:0", "127.0.0.1:4000", nil, []string{"127.0.0.1"}},
		{"localhost:0", "127.0.0.1:4000", nil, []string{"localhost", "127.0.0.1"}},
		{"0.0.0.0:8080", "0.0.0.0:8080", nil, nil},
		{"0.0.0.0:8080", "0.0.0.0:8080", []string{"box.lan"}, []string{"box.lan"}},
		{":8080", "[::]:8080", nil, nil},
		{"192.0.2.7:8080", "192.0.2.7:8080", nil, []string{"192.0.2.7"}},
		{"192.0.2.7:8080", "192.0.2.7:8080", []string{"192.0.2.7"}, []string{"192.0.2.7"}},
	}
	for _, tt := range tests {
		bound, _ := net.ResolveTCPAddr("tcp", tt.bound)
		got := allowedHosts(serveConfig{Addr: tt.addr, AllowedHosts: tt.extra}, bound)
		if !slices.Equal(got, tt.want) {
			t.Errorf("allowedHosts(%q, bound %s, %q): got %q, want %q", tt.addr, tt.bound, tt.extra, got, tt.want)
		}
	}
}

const testToken = "s3cret-Token_for.tests~1234567890"

// With a token every route but /healthz and the docs needs it; a missing or
// wrong one is 401 problem+json with WWW-Authenticate: Bearer.
func TestTokenRequired(t *testing.T) {
	t.Setenv("SOCKMAN_TOKEN", testToken)
	s := startService(t, nil)
	s.token = "" // each row sets its own header
	tests := []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/servers", "", 401},
		{"GET", "/servers", "Bearer wrong", 401},
		{"GET", "/servers", "Bearer " + testToken + "x", 401},
		{"GET", "/servers", "Bearer " + testToken[:len(testToken)-1], 401},
		{"GET", "/servers", "Basic " + testToken, 401},
		{"GET", "/servers", testToken, 401},
		{"GET", "/servers", "Bearer", 401},
		{"GET", "/servers", "Bearer " + testToken, 200},
		{"GET", "/servers", "bearer " + testToken, 200},
		{"GET", "/servers", "BEARER  " + testToken + " ", 200},
		{"POST", "/servers", "", 401},
		{"GET", "/sockets", "", 401},
		{"GET", "/clients", "", 401},
		{"DELETE", "/sockets/sock-1", "", 401},
		{"GET", "/no/such/route", "", 401}, // no route is revealed without the token
		{"GET", "/healthz", "", 200},
		{"GET", "/openapi.yaml", "", 200},
		{"GET", "/swagger/index.html", "", 200},
		{"GET", "/", "", 302},
		{"POST", "/healthz", "", 401},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s %q", tt.method, tt.path, tt.auth), func(t *testing.T) {
			var body any
			if tt.method == "POST" {
				body = `{"port":0}`
			}
			res := s.do(tt.method, tt.path, body, "Authorization", tt.auth).want(t, tt.want)
			if tt.want != 401 {
				return
			}
			if got := res.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate: got %q, want Bearer ...", got)
			}
			if detail := res.problem(t, "Authorization: Bearer"); strings.Contains(detail, testToken) {
				t.Errorf("detail %q shows the token", detail)
			}
		})
	}
}

// Swagger UI's Authorize sends the token as "Authorization: Bearer <token>":
// the document it loads (served without the token) declares an HTTP bearer
// scheme, and exactly the operations that need the token require it.
// TestSwaggerUIAuthorizeWithToken drives the dialog in a browser.
func TestSwaggerAuthorizeUsesBearerScheme(t *testing.T) {
	t.Setenv("SOCKMAN_TOKEN", testToken)
	s := startService(t, nil)
	s.token = ""
	doc, err := openapi3.NewLoader().LoadFromData(s.do("GET", "/openapi.yaml", nil).want(t, 200).body)
	if err != nil {
		t.Fatal(err)
	}
	scheme := doc.Components.SecuritySchemes["BearerAuth"]
	if scheme == nil || scheme.Value.Type != "http" || !strings.EqualFold(scheme.Value.Scheme, "bearer") {
		t.Fatalf("openapi.yaml: BearerAuth is %+v, want an HTTP bearer scheme for Swagger UI's Authorize", scheme)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			secured := slices.ContainsFunc(security, func(r openapi3.SecurityRequirement) bool { _, ok := r["BearerAuth"]; return ok })
			public := s.do(method, path, nil).status != http.StatusUnauthorized
			if secured == public {
				t.Errorf("%s %s (%s): documented as needing the token %v, but served without it %v", method, path, op.OperationID, secured, public)
			}
		}
	}
	page := string(s.do("GET", "/swagger/index.html", nil).want(t, 200).body)
	if !strings.Contains(page, "swagger") {
		t.Errorf("/swagger/index.html does not look like Swagger UI")
	}
}

// The token never appears in a log line, whatever happens, and a token
// given as a flag draws a warning.
func TestTokenNeverLogged(t *testing.T) {
	s := startService(t, []string{"--token", testToken, "--log-level", "debug", "--read-header-timeout", "200ms"})
	s.do("GET", "/servers", nil).want(t, 200)
	s.do("GET", "/servers", nil, "Authorization", "Bearer "+testToken+"-wrong").want(t, 401)
	s.do("GET", "/servers", nil, "Authorization", "Bearer "+testToken, "Host", "evil.example").want(t, 403)
	s.do("POST", "/clients", `{"host":"127.0.0.1","port":1}`).want(t, 502) // nothing listens on port 1
	c := s.rawConn(t)
	fmt.Fprintf(c, "GET /servers HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n", s.addr, testToken) // never finished
	waitClosed(t, c)
	s.stop()
	log := s.stderr.String()
	if !strings.Contains(log, "sockman serving") || !strings.Contains(log, "token=true") {
		t.Errorf("log %q: want the start line saying a token is set", log)
	}
	if !strings.Contains(log, "--token-file") {
		t.Errorf("log %q: want a warning that --token shows in ps", log)
	}
	if strings.Contains(log, testToken) || strings.Contains(log, testToken[:10]) {
		t.Errorf("the log shows the token:\n%s", log)
	}

	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"serve", "--token", testToken, "--max-body", "x"}, &stdout, &stderr)
	run(context.Background(), []string{"serve", "--token", testToken, "--addr", "127.0.0.1:0", "--cors-origin", "*"}, &stdout, &stderr)
	if strings.Contains(stdout.String()+stderr.String(), testToken) {
		t.Errorf("start-up errors show the token:\n%s", stderr.String())
	}
}

// A Host that is not a loopback name, the --addr host or an --allowed-hosts
// name gets 403: DNS rebinding sends the attacker's name as Host.
func TestHostCheck(t *testing.T) {
	s := startService(t, []string{"--allowed-hosts", "sockman.test,[2001:db8::7]"})
	_, port, _ := net.SplitHostPort(s.addr)
	tests := []struct {
		host string
		want int
	}{
		{s.addr, 200},
		{"localhost:" + port, 200},
		{"LOCALHOST:" + port, 200},
		{"localhost.:" + port, 200},
		{"localhost", 200},
		{"127.0.0.1", 200},
		{"127.1.2.3:" + port, 200},
		{"[::1]:" + port, 200},
		{"sockman.test:" + port, 200},
		{"Sockman.Test", 200},
		{"[2001:db8::7]:" + port, 200},
		{"evil.example", 403},
		{"evil.example:" + port, 403},
		{"localhost.evil.example:" + port, 403},
		{"sockman.test.evil.example", 403},
		{"127.0.0.1.evil.example", 403},
		{"0.0.0.0:" + port, 403},
		{"[::]:" + port, 403},
		{"10.0.0.1:" + port, 403},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			res := s.do("GET", "/servers", nil, "Host", tt.host).want(t, tt.want)
			if tt.want == 403 {
				res.problem(t, "--allowed-hosts", "DNS rebinding")
			}
		})
	}
	// /healthz too: the check runs before routing.
	s.do("GET", "/healthz", nil, "Host", "evil.example").want(t, 403)
}

// An HTTP/1.0 request may come without Host: it is refused too.
func TestHostCheckNoHost(t *testing.T) {
	s := startService(t, nil)
	c := s.rawConn(t)
	fmt.Fprint(c, "GET /servers HTTP/1.0\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("got %d, want 403", res.StatusCode)
	}
}

// Cross-origin browser requests that change state are refused before they
// do anything; so are cross-site reads of the API. No CORS header is sent.
func TestCrossOriginRefused(t *testing.T) {
	s := startService(t, nil)
	origin := "http://" + s.addr
	tests := []struct {
		name, method, path string
		header             []string
		want               int
	}{
		{"cross-site POST", "POST", "/servers", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 403},
		{"same-site POST", "POST", "/servers", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://localhost:3000"}, 403},
		{"old browser, foreign Origin", "POST", "/servers", []string{"Origin", "https://evil.example"}, 403},
		{"cross-site DELETE", "DELETE", "/servers/srv-1", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 403},
		{"cross-site GET of the API", "GET", "/sockets", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-origin POST", "POST", "/servers", []string{"Sec-Fetch-Site", "same-origin", "Origin", origin}, 201},
		{"old browser, own Origin", "POST", "/servers", []string{"Origin", origin}, 201},
		{"typed in the address bar", "GET", "/servers", []string{"Sec-Fetch-Site", "none"}, 200},
		{"curl", "POST", "/servers", nil, 201},
		{"cross-site link to Swagger UI", "GET", "/swagger/index.html", []string{"Sec-Fetch-Site", "cross-site"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.method == "POST" {
				body = `{"port":0}`
			}
			res := s.do(tt.method, tt.path, body, tt.header...).want(t, tt.want)
			if tt.want == 403 {
				res.problem(t, "--cors-origin")
			}
			for name := range res.header {
				if strings.HasPrefix(name, "Access-Control-") {
					t.Errorf("got header %s without --cors-origin, want no CORS header", name)
				}
			}
		})
	}
	var list struct{ Servers []any }
	s.do("GET", "/servers", nil).want(t, 200).decode(t, &list)
	if len(list.Servers) != 3 {
		t.Errorf("servers: got %d, want 3 (only the allowed POSTs)", len(list.Servers))
	}
}

// --cors-origin lets the listed origins call the API from their pages, with
// the token; others are still refused.
func TestCORSOrigin(t *testing.T) {
	const app = "http://app.test:3000"
	s := startService(t, []string{"--cors-origin", app, "--token", testToken})
	s.token = ""
	pre := s.do("OPTIONS", "/servers", nil, "Origin", app, "Sec-Fetch-Site", "cross-site",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type").want(t, 204)
	if got := pre.header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("preflight Access-Control-Allow-Origin: got %q, want %q", got, app)
	}
	if got := strings.ToLower(pre.header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "authorization") {
		t.Errorf("preflight Access-Control-Allow-Headers: got %q, want Authorization in it", got)
	}
	res := s.do("POST", "/servers", `{"port":0}`, "Origin", app, "Sec-Fetch-Site", "cross-site", "Authorization", "Bearer "+testToken).want(t, 201)
	if got := res.header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("Access-Control-Allow-Origin: got %q, want %q", got, app)
	}
	for _, h := range []string{"Location", "Sockman-Cursor", "Sockman-State", "WWW-Authenticate"} {
		if got := res.header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, h) {
			t.Errorf("Access-Control-Expose-Headers: got %q, want %s in it", got, h)
		}
	}
	s.do("GET", "/servers", nil, "Origin", app, "Sec-Fetch-Site", "cross-site", "Authorization", "Bearer "+testToken).want(t, 200)
	s.do("POST", "/servers", `{"port":0}`, "Origin", app, "Sec-Fetch-Site", "cross-site").want(t, 401)

	other := s.do("POST", "/servers", `{"port":0}`, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "Authorization", "Bearer "+testToken).want(t, 403)
	if got := other.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Access-Control-Allow-Origin for another origin: got %q, want none", got)
	}
	pre = s.do("OPTIONS", "/servers", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := pre.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight Access-Control-Allow-Origin for another origin: got %q, want none", got)
	}
}

// Security options that cannot work stop the start with the flag named.
func TestBadSecurityOptionsRefused(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"wildcard origin":            {[]string{"--cors-origin", "*"}, "--cors-origin"},
		"origin pattern":             {[]string{"--cors-origin", "https://*.example.com"}, "--cors-origin"},
		"origin with a path":         {[]string{"--cors-origin", "https://app.example.com/"}, "--cors-origin"},
		"origin without a scheme":    {[]string{"--cors-origin", "app.example.com"}, "--cors-origin"},
		"null origin":                {[]string{"--cors-origin", "null"}, "--cors-origin"},
		"any Host without a token":   {[]string{"--allowed-hosts", "*"}, "needs a token"},
		"Host with a path":           {[]string{"--allowed-hosts", "box.lan/x"}, "--allowed-hosts"},
		"token with a space":         {[]string{"--token", "two words"}, "printable ASCII"},
		"bad connect rule":           {[]string{"--allow-connect", "example.com"}, "--allow-connect"},
		"bad listen rule":            {[]string{"--allow-listen", "10.0.0.0/33"}, "--allow-listen"},
		"non-loopback, no token":     {[]string{"--addr", "0.0.0.0:0"}, "no token is set"},
		"log level":                  {[]string{"--log-level", "loud"}, "--log-level"},
		"connect timeout over max":   {[]string{"--connect-timeout", "5s", "--max-connect-timeout", "1s"}, "--max-connect-timeout"},
		"any Host, no token via env": {[]string{"--allowed-hosts", "*", "--token", ""}, "needs a token"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0"}, tt.args...)
			if code := run(context.Background(), args, &stdout, &stderr); code == 0 {
				t.Fatalf("exit code: got 0, want non-zero")
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.want)
			}
		})
	}
}

// --allow-connect and --allow-listen reach the engine: a denied connect is
// 403 naming the rule and reaches nothing, whatever the spelling, names
// included (resolved by a fake DNS server through the hidden resolver seam).
// testnet.PolicyNet puts the target on the allowed 127.0.0.2 and canaries on
// the denied 127.0.0.1 and ::1, all on one port.
func TestPolicyFlags(t *testing.T) {
	n := testnet.NewPolicyNet(t)
	dns := fakedns.Start(t)
	dns.Set("denied.test", netip.MustParseAddr("127.0.0.1"))
	dns.SetSequence("rebind.test", []netip.Addr{netip.MustParseAddr("127.0.0.2")}, []netip.Addr{netip.MustParseAddr("127.0.0.1")})
	s := startService(t, []string{"--allow-connect", "127.0.0.2", "--allow-listen", "127.0.0.2:*"},
		func(c *serveConfig) { c.resolver = dns.Resolver() })

	// v6 rows need an IPv6 loopback.
	for _, tt := range []struct {
		host string
		v6   bool
	}{
		{"127.0.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"[::ffff:127.0.0.1]", false},
		{"localhost", false},
		{"denied.test", false},
		{"::1", true},
		{"[::1]", true},
	} {
		t.Run(tt.host, func(t *testing.T) {
			if tt.v6 && n.Canary6 == nil {
				t.Skip("no IPv6 loopback")
			}
			body := fmt.Sprintf(`{"host":%q,"port":%d}`, tt.host, n.Port)
			s.do("POST", "/clients", body).want(t, 403).problem(t, "--allow-connect", "127.0.0.2")
		})
	}
	s.do("POST", "/clients", fmt.Sprintf(`{"host":"0x7f.0.0.1","port":%d}`, n.Port)).want(t, 400).problem(t, "127.0.0.1")
	s.do("POST", "/clients", fmt.Sprintf(`{"host":"rebind.test","port":%d}`, n.Port)).want(t, 201)
	acceptOne(t, n.Target)
	s.do("POST", "/clients", fmt.Sprintf(`{"host":"rebind.test","port":%d}`, n.Port)).want(t, 403).problem(t, "127.0.0.1")
	s.do("POST", "/servers", `{"host":"127.0.0.1","port":0}`).want(t, 403).problem(t, "--allow-listen")
	s.do("POST", "/servers", `{"host":"127.0.0.2","port":0}`).want(t, 201)

	n.Canary4.Untouched(t)
	if n.Canary6 != nil {
		n.Canary6.Untouched(t)
	}
}

// The token file is read once at start; its content is the token.
func TestTokenFileServes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startService(t, []string{"--token-file", file})
	s.do("GET", "/servers", nil).want(t, 200)
	s.do("GET", "/servers", nil, "Authorization", "").want(t, 401)
}

// A short token draws a warning that gives its length, not the token.
func TestShortTokenWarns(t *testing.T) {
	t.Setenv("SOCKMAN_TOKEN", "tiny-tok")
	s := startService(t, nil)
	s.stop()
	log := s.stderr.String()
	if !strings.Contains(log, "the token is short") || !strings.Contains(log, "length=8") {
		t.Errorf("log %q: want a warning about the 8-character token", log)
	}
	if strings.Contains(log, "tiny-tok") {
		t.Errorf("the log shows the token:\n%s", log)
	}
	if strings.Contains(log, "--token, which other users") {
		t.Errorf("log %q: a token from the environment drew the ps warning", log)
	}
}
