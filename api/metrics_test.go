package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/sockets"
)

// scrape reads /metrics through the API and parses it.
func (a *testAPI) scrape(t testing.TB, header ...string) map[string]*dto.MetricFamily {
	t.Helper()
	res := a.call(http.MethodGet, "/metrics", nil, header...).want(t, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, res.body)
	}
	return fams
}

// metricValue returns the value of the sample of name whose labels include
// the pairs given; it fails the test when there is none.
func metricValue(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("/metrics has no %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("/metrics has no %s with labels %v", name, labels)
	return 0
}

// After a known workload the metrics say exactly what happened: 2 accepted
// and 1 client socket, 9 bytes in 3 lines received, 3 bytes in 1 message
// sent, 3 connections refused at --max-sockets (two connects through the
// API, one accepted connection) and 1 connect the policy denied.
func TestMetricsAfterKnownWorkload(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, withConfig(func(c *sockets.Config) {
		c.MaxSockets = 3
		c.ConnectPolicy, _ = sockets.ParsePolicy("--allow-connect", []string{"127.0.0.1"})
	}))
	srv := a.listen(t, func(c *ServerCreate) { c.Framing = &Framing{Type: "lines"} })
	peerLn := listenPeer(t)
	_, peerPort := splitAddr(t, peerLn.Addr().String())

	// The denial first: the limit is checked before the policy.
	a.call(http.MethodPost, "/clients", ClientCreate{Host: "127.0.0.2", Port: &peerPort}).want(t, http.StatusForbidden)

	s1, p1 := a.connect(t, srv)
	s2, p2 := a.connect(t, srv)
	client := a.dial(t, peerLn.Addr().String())
	acceptPeer(t, peerLn)
	writePeer(t, p1, []byte("a\nbb\n"))
	writePeer(t, p2, []byte("ccc\n"))
	waitFor(t, testTimeout, func() bool {
		return a.socket(t, s1.ID).BufferedMessages == 2 && a.socket(t, s2.ID).BufferedMessages == 1
	})
	a.call(http.MethodPost, "/sockets/"+client.ID+"/messages", `{"data":"xyz"}`).want(t, http.StatusOK)

	for range 2 {
		a.call(http.MethodPost, "/clients", ClientCreate{Host: "127.0.0.1", Port: &peerPort}).want(t, http.StatusServiceUnavailable)
	}
	dialPeer(t, srv.Address) // accepted, then closed at once: the limit
	waitFor(t, testTimeout, func() bool {
		var s Server
		a.call(http.MethodGet, "/servers/"+srv.ID, nil).want(t, http.StatusOK).decode(t, &s)
		return s.Rejected == 1
	})

	fams := a.scrape(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sockman_sockets", []string{"kind", "accepted", "state", "open"}, 2},
		{"sockman_sockets", []string{"kind", "client", "state", "open"}, 1},
		{"sockman_sockets", []string{"kind", "client", "state", "closed"}, 0},
		{"sockman_servers", nil, 1},
		{"sockman_received_bytes_total", nil, 9},
		{"sockman_received_messages_total", nil, 3},
		{"sockman_sent_bytes_total", nil, 3},
		{"sockman_sent_messages_total", nil, 1},
		{"sockman_dropped_bytes_total", nil, 0},
		{"sockman_refused_total", []string{"limit", "sockets"}, 3},
		{"sockman_refused_total", []string{"limit", "servers"}, 0},
		{"sockman_policy_denied_total", nil, 1},
		{"sockman_buffered_bytes_limit", nil, float64(sockets.DefaultMaxBufferTotal)},
		{"sockman_long_polls_waiting", nil, 0},
		{"sockman_event_subscribers", nil, 0},
		{"sockman_streams", nil, 0},
		{"sockman_http_requests_total", []string{"method", "POST", "route", "/clients", "status", "503"}, 2},
		{"sockman_http_requests_total", []string{"method", "POST", "route", "/clients", "status", "403"}, 1},
		{"sockman_http_requests_total", []string{"method", "POST", "route", "/sockets/:id/messages", "status", "200"}, 1},
	} {
		if got := metricValue(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := metricValue(t, fams, "sockman_buffered_bytes"); got < 9 {
		t.Errorf("sockman_buffered_bytes: got %v, want at least the 9 bytes buffered", got)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "sockman_http_request_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// Deleting a socket keeps what it received in the totals.
	a.call(http.MethodDelete, "/sockets/"+s1.ID, nil).want(t, http.StatusNoContent)
	fams = a.scrape(t)
	if got := metricValue(t, fams, "sockman_received_bytes_total"); got != 9 {
		t.Errorf("after deleting %s: sockman_received_bytes_total %v, want still 9", s1.ID, got)
	}
	if got := metricValue(t, fams, "sockman_sockets", "kind", "accepted", "state", "open"); got != 1 {
		t.Errorf("after deleting %s: %v accepted sockets open, want 1", s1.ID, got)
	}
}

// No label value comes from a request: unknown paths, ids in paths, odd
// methods and request ids all land on the route templates, the methods the
// API takes and "unmatched".
func TestMetricsLabelsAreBounded(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, _ := a.pair(t)
	a.call(http.MethodGet, "/sockets/"+s.ID, nil).want(t, http.StatusOK)
	a.call(http.MethodGet, "/sockets/sock-424242", nil).want(t, http.StatusNotFound)
	skip := []string{contract.SkipRequestHeader, "not in the description on purpose"}
	a.call(http.MethodGet, "/no/such/path-7f3a9", nil, skip...).want(t, http.StatusNotFound)
	a.call(http.MethodGet, "/sockets/"+s.ID+"/nothing-here-7f3a9", nil, skip...).want(t, http.StatusNotFound)
	req := a.newRequest("BREW", "/servers", nil)
	req.Header.Set(contract.SkipRequestHeader, "on purpose")
	a.do(req)
	a.call(http.MethodGet, "/healthz", nil, HeaderRequestID, "marker-7f3a9").want(t, http.StatusOK)

	routes := map[string]bool{routeUnmatched: true}
	for _, r := range New(a.reg, Options{Logger: slog.New(slog.DiscardHandler)}).Routes() {
		routes[r.Path] = true
	}
	fams := a.scrape(t)
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				v := l.GetValue()
				if strings.Contains(v, "7f3a9") || strings.Contains(v, "sock-") || strings.Contains(v, "127.0.0.1") {
					t.Errorf("%s: label %s=%q comes from a request", name, l.GetName(), v)
				}
				if l.GetName() == "route" && !routes[v] {
					t.Errorf("%s: route %q is not a route template", name, v)
				}
				if l.GetName() == "method" && v == "BREW" {
					t.Errorf("%s: method %q taken from the request", name, v)
				}
			}
		}
	}
	if got := metricValue(t, fams, "sockman_http_requests_total", "route", routeUnmatched, "status", "404"); got < 1 {
		t.Errorf("unknown paths: %v requests under route %q, want them there", got, routeUnmatched)
	}
	if got := metricValue(t, fams, "sockman_http_requests_total", "route", "/sockets/:id", "status", "404"); got != 1 {
		t.Errorf("GET /sockets/sock-424242: %v requests under /sockets/:id 404, want 1", got)
	}
}

// /metrics needs the token like the API; /readyz does not.
func TestMetricsNeedTheToken(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, withOptions(func(o *Options) { o.Token = "s3cret-metrics-token" }))
	a.call(http.MethodGet, "/metrics", nil).want(t, http.StatusUnauthorized)
	res := a.call(http.MethodGet, "/metrics", nil, "Authorization", "Bearer s3cret-metrics-token").want(t, http.StatusOK)
	if bytes.Contains(res.body, []byte("s3cret-metrics-token")) {
		t.Error("/metrics shows the token")
	}
	a.call(http.MethodGet, "/readyz", nil).want(t, http.StatusOK)
}

// A long poll parked in the engine shows in sockman_long_polls_waiting
// while it waits, and leaves it when data wakes it.
func TestMetricsShowParkedLongPolls(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	polled := make(chan response, 1)
	req := a.newRequest(http.MethodGet, "/sockets/"+s.ID+"/messages?wait=30s", nil)
	go func() {
		res, _ := a.tryDo(req)
		polled <- res
	}()
	waitFor(t, testTimeout, func() bool { return a.reg.Waiting() == 1 })
	if got := metricValue(t, a.scrape(t), "sockman_long_polls_waiting"); got != 1 {
		t.Errorf("with one long poll parked: sockman_long_polls_waiting %v, want 1", got)
	}
	writePeer(t, peer, []byte("wake\n"))
	if res := <-polled; res.Response == nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the long poll: got %+v, want 200", res)
	}
	if got := metricValue(t, a.scrape(t), "sockman_long_polls_waiting"); got != 0 {
		t.Errorf("after the poll answered: sockman_long_polls_waiting %v, want 0", got)
	}
}

// Rule hits and schedule sends: counted once per answer and per send that
// went out, and kept when the rule, schedule or socket is deleted.
func TestMetricsCountRuleHitsAndScheduleSends(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	srv := a.listen(t, func(c *ServerCreate) { c.Framing = &Framing{Type: "lines"} })
	var rule struct{ ID string }
	a.call(http.MethodPost, "/servers/"+srv.ID+"/rules", `{"match":{"equals":"PING"},"reply":{"data":"PONG\n"}}`).want(t, http.StatusCreated).decode(t, &rule)
	s, peer := a.connect(t, srv)
	writePeer(t, peer, []byte("PING\nnope\nPING\n"))
	if got := string(readPeer(t, peer, 10)); got != "PONG\nPONG\n" {
		t.Fatalf("the peer read %q, want two answers", got)
	}
	a.call(http.MethodPost, "/sockets/"+s.ID+"/schedules", `{"data":"tick\n","interval_ms":10,"count":3}`).want(t, http.StatusCreated)
	if got := string(readPeer(t, peer, 15)); got != "tick\ntick\ntick\n" {
		t.Fatalf("the peer read %q, want three ticks", got)
	}
	waitFor(t, testTimeout, func() bool {
		return metricValue(t, a.scrape(t), "sockman_schedule_sends_total") == 3
	})
	a.call(http.MethodDelete, "/servers/"+srv.ID+"/rules/"+rule.ID, nil).want(t, http.StatusNoContent)
	a.call(http.MethodDelete, "/sockets/"+s.ID, nil).want(t, http.StatusNoContent)
	fams := a.scrape(t)
	if got := metricValue(t, fams, "sockman_rule_hits_total"); got != 2 {
		t.Errorf("sockman_rule_hits_total: got %v, want 2", got)
	}
	if got := metricValue(t, fams, "sockman_schedule_sends_total"); got != 3 {
		t.Errorf("sockman_schedule_sends_total: got %v, want 3", got)
	}
}
