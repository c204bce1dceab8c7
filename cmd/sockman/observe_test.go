package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// sideAddr returns the address the log says flag's listener is bound to
// (serve logs it before it is ready). The service must log JSON.
func sideAddr(t *testing.T, s *service, flag string) string {
	t.Helper()
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving "+flag && rec.Addr != "" {
			return rec.Addr
		}
	}
	t.Fatalf("no %q line in the log:\n%s", "serving "+flag, s.stderr.String())
	return ""
}

// get fetches url with the service's client, without a token.
func (s *service) get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// --metrics-addr serves /metrics without the token, and nothing else; the
// API's /metrics still needs it.
func TestMetricsAddrServesWithoutToken(t *testing.T) {
	s := startService(t, []string{"--token", testToken, "--log-format", "json", "--metrics-addr", "127.0.0.1:0"})
	addr := sideAddr(t, s, "--metrics-addr")
	code, body := s.get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK || !bytes.Contains(body, []byte("sockman_sockets{")) {
		t.Fatalf("GET /metrics on --metrics-addr: got %d, want 200 with sockman_sockets:\n%.300s", code, body)
	}
	if code, _ := s.get(t, "http://"+addr+"/sockets"); code != http.StatusNotFound {
		t.Errorf("GET /sockets on --metrics-addr: got %d, want 404 (only /metrics is there)", code)
	}
	if code, _ := s.get(t, s.url+"/metrics"); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics on the API without the token: got %d, want 401", code)
	}
	s.do("GET", "/metrics", nil).want(t, http.StatusOK)
}

// --pprof-addr serves net/http/pprof there only: not on the API, not on
// --metrics-addr.
func TestPprofOnlyOnItsAddress(t *testing.T) {
	s := startService(t, []string{"--log-format", "json", "--pprof-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"})
	pprofAddr := sideAddr(t, s, "--pprof-addr")
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		if code, _ := s.get(t, "http://"+pprofAddr+path); code != http.StatusOK {
			t.Errorf("GET %s on --pprof-addr: got %d, want 200", path, code)
		}
	}
	for _, base := range []string{s.url, "http://" + sideAddr(t, s, "--metrics-addr")} {
		if code, _ := s.get(t, base+"/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("GET %s/debug/pprof/: got %d, want 404", base, code)
		}
	}
	t2 := startService(t, nil)
	if strings.Contains(t2.stderr.String(), "--pprof-addr") {
		t.Errorf("without --pprof-addr the log names it:\n%s", t2.stderr.String())
	}
}

// The side listeners serve without a token: any address but loopback is
// refused at start, with the flag named and nothing left bound.
func TestSideAddrsRefuseNonLoopback(t *testing.T) {
	for _, flag := range []string{"--metrics-addr", "--pprof-addr"} {
		for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "sockman.example.com:0"} {
			t.Run(flag+" "+addr, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				args := []string{"serve", "--addr", "127.0.0.1:0", "--token", testToken, flag, addr}
				if code := run(context.Background(), args, &stdout, &stderr); code == 0 {
					t.Fatal("exit code: got 0, want non-zero")
				}
				if !strings.Contains(stderr.String(), flag+" "+addr+" is not a loopback address") {
					t.Errorf("stderr %q does not refuse %s %s", stderr.String(), flag, addr)
				}
			})
		}
	}
	for _, addr := range []string{"localhost:0", "127.0.0.1:0"} {
		s := startService(t, []string{"--log-format", "json", "--metrics-addr", addr})
		if code, _ := s.get(t, "http://"+sideAddr(t, s, "--metrics-addr")+"/metrics"); code != http.StatusOK {
			t.Errorf("--metrics-addr %s: GET /metrics got %d, want 200", addr, code)
		}
	}
}

// --log-format: text by default, json on request, anything else refused.
func TestLogFormatFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{{nil, "text"}, {[]string{"--log-format", "json"}, "json"}} {
		cfg, err := parseServeFlags(c.args, func(string) (string, bool) { return "", false }, io.Discard)
		if err != nil || cfg.LogFormat != c.want {
			t.Errorf("%v: got %q, %v; want %q", c.args, cfg.LogFormat, err, c.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--log-format", "xml"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "--log-format") {
		t.Errorf("--log-format xml: exit %d, stderr %q; want a refusal naming the flag", code, stderr.String())
	}
	text := startService(t, nil)
	if !strings.Contains(text.stderr.String(), `level=INFO msg="sockman serving"`) {
		t.Errorf("default log format: want text lines, got:\n%s", text.stderr.String())
	}
}

// Over a whole run (start, a server, a peer that sends a payload, a send,
// a read, a refused token, a scrape, the shutdown) the JSON log has one
// request line per API request and a line per socket opened and closed,
// every line is JSON, and neither the log nor the metrics show the token
// or a payload byte.
func TestLogAndMetricsNeverShowTokenOrPayload(t *testing.T) {
	const payload = "payload-9d8e7f-secret"
	s := startService(t, []string{"--token", testToken, "--log-format", "json", "--log-level", "debug", "--log-max-similar", "0"})
	var srv struct{ ID, Address string }
	s.do("POST", "/servers", `{"port":0}`).want(t, http.StatusCreated).decode(t, &srv)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, guard, func() bool {
		var l struct {
			Sockets []struct {
				ID            string
				BytesReceived int64 `json:"bytes_received"`
			}
		}
		s.do("GET", "/sockets", nil).want(t, http.StatusOK).decode(t, &l)
		if len(l.Sockets) == 1 && l.Sockets[0].BytesReceived == int64(len(payload)) {
			id = l.Sockets[0].ID
			return true
		}
		return false
	})
	s.do("POST", "/sockets/"+id+"/messages", `{"data":"`+payload+`-sent"}`).want(t, http.StatusOK)
	s.do("GET", "/sockets/"+id+"/messages", nil).want(t, http.StatusOK)
	s.do("GET", "/servers", nil, "Authorization", "Bearer "+testToken+"x").want(t, http.StatusUnauthorized)
	metrics := s.do("GET", "/metrics", nil).want(t, http.StatusOK).body
	s.do("DELETE", "/sockets/"+id, nil).want(t, http.StatusNoContent)
	s.stop()

	out := s.stderr.String()
	for _, secret := range []string{testToken, payload} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q", secret)
		}
		if bytes.Contains(metrics, []byte(secret)) {
			t.Errorf("the metrics show %q", secret)
		}
	}
	msgs := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		msgs[msg]++
		if msg == "socket closed" && (rec["reason"] == "" || rec["bytes_received"] != float64(len(payload))) {
			t.Errorf("socket closed line %s: want its reason and bytes_received %d", line, len(payload))
		}
	}
	if msgs["request"] < 7 || msgs["socket opened"] != 1 || msgs["socket closed"] != 1 {
		t.Errorf("log lines by message: %v; want at least 7 request lines and one socket opened and closed", msgs)
	}
}
