package api

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sockman/sockman/internal/contract"
)

// TestDetailQuotesInputCut sends a megabyte of input in every place a
// detail quotes it (body fields, member names, path ids, query names and
// values, headers) and wants each problem under a kilobyte: a detail quotes
// at most a few hundred bytes of what it was sent.
func TestDetailQuotesInputCut(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, withOptions(func(o *Options) { o.MaxBody = 4 << 20 }))
	sock, _ := a.pair(t)
	const size = 1_000_000 // a URL or header under net/http's 1 MiB header limit
	big := strings.Repeat("a", size)
	digits := strings.Repeat("9", size)
	js := "application/json"
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
	}{
		{"listen host", http.MethodPost, "/servers", `{"port":0,"host":"` + big + `"}`, nil, http.StatusBadRequest},
		{"listen overflow", http.MethodPost, "/servers", `{"port":0,"overflow":"` + big + `"}`, nil, http.StatusBadRequest},
		{"listen port", http.MethodPost, "/servers", `{"port":` + digits + `}`, nil, http.StatusBadRequest},
		{"member name", http.MethodPost, "/servers", `{"port":0,"` + big + `":1}`, nil, http.StatusBadRequest},
		{"connect host", http.MethodPost, "/clients", `{"host":"` + big + `","port":80}`, nil, http.StatusBadRequest},
		{"connect bracketed host", http.MethodPost, "/clients", `{"host":"[` + big + `]","port":80}`, nil, http.StatusBadRequest},
		{"connect port", http.MethodPost, "/clients", `{"host":"127.0.0.1","port":-` + digits + `}`, nil, http.StatusBadRequest},
		{"send encoding", http.MethodPost, "/sockets/" + sock.ID + "/messages", `{"data":"x","encoding":"` + big + `"}`, nil, http.StatusBadRequest},
		{"broadcast encoding", http.MethodPost, "/servers/" + sock.ServerID + "/messages", `{"data":"x","encoding":"` + big + `"}`, nil, http.StatusBadRequest},
		{"socket id", http.MethodGet, "/sockets/" + big, "", nil, http.StatusNotFound},
		{"socket id to delete", http.MethodDelete, "/sockets/" + big, "", nil, http.StatusNotFound},
		{"socket id to read", http.MethodGet, "/sockets/" + big + "/messages", "", nil, http.StatusNotFound},
		{"server id", http.MethodGet, "/servers/" + big, "", nil, http.StatusNotFound},
		{"server id to delete", http.MethodDelete, "/servers/" + big, "", nil, http.StatusNotFound},
		{"kind filter", http.MethodGet, "/sockets?kind=" + big, "", nil, http.StatusBadRequest},
		{"state filter", http.MethodGet, "/sockets?state=" + big, "", nil, http.StatusBadRequest},
		{"query name", http.MethodGet, "/sockets?" + big + "=1", "", nil, http.StatusBadRequest},
		{"read query name", http.MethodGet, "/sockets/" + sock.ID + "/messages?" + big + "=1", "", nil, http.StatusBadRequest},
		{"cursor", http.MethodGet, "/sockets/" + sock.ID + "/messages?after=" + big, "", nil, http.StatusBadRequest},
		{"wait", http.MethodGet, "/sockets/" + sock.ID + "/messages?wait=" + big, "", nil, http.StatusBadRequest},
		{"read encoding", http.MethodGet, "/sockets/" + sock.ID + "/messages?encoding=" + big, "", nil, http.StatusBadRequest},
		{"event types", http.MethodGet, "/events?types=" + big, "", nil, http.StatusBadRequest},
		{"event socket filter", http.MethodGet, "/events?socket_id=" + big, "", nil, http.StatusBadRequest},
		{"event data", http.MethodGet, "/events?data=" + big, "", nil, http.StatusBadRequest},
		{"event encoding", http.MethodGet, "/events?encoding=" + big, "", nil, http.StatusBadRequest},
		{"Last-Event-ID", http.MethodGet, "/events", "", []string{"Last-Event-ID", big}, http.StatusBadRequest},
		{"close_sockets", http.MethodDelete, "/servers/" + sock.ServerID + "?close_sockets=" + big, "", nil, http.StatusBadRequest},
		{"Content-Type", http.MethodPost, "/servers", `{"port":0}`, []string{"Content-Type", js + big}, http.StatusUnsupportedMediaType},
		{"Content-Encoding", http.MethodPost, "/servers", `{"port":0}`, []string{"Content-Encoding", big}, http.StatusUnsupportedMediaType},
		{"Host", http.MethodGet, "/servers", "", []string{"Host", big}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			req := a.newRequest(tc.method, tc.path, body, tc.header...)
			if len(tc.header) == 2 && tc.header[0] == "Host" {
				req.Host = tc.header[1]
			}
			req.Header.Set(contract.SkipRequestHeader, "too long on purpose")
			res := a.do(req).want(t, tc.status)
			p := res.problem(t)
			if len(res.body) > 1024 {
				t.Errorf("got a problem of %d bytes, want under 1024: %.400s", len(res.body), res.body)
			}
			if !strings.Contains(p.Detail, "bytes)") {
				t.Errorf("got detail %.400q, want it to say how long the input was", p.Detail)
			}
		})
	}
}

// TestDetailIsCapped: a detail that quotes input without quote.String is
// still cut, at a character boundary.
func TestDetailIsCapped(t *testing.T) {
	long := strings.Repeat("é", 5000)
	p := problemFor(badRequest("no quote here: %s", long))
	if len(p.Detail) > maxDetail || !strings.HasSuffix(p.Detail, "...") || !utf8.ValidString(p.Detail) {
		t.Errorf("got a detail of %d bytes ending %q, want at most %d, valid UTF-8, ending ...", len(p.Detail), p.Detail[len(p.Detail)-10:], maxDetail)
	}
	if short := problemFor(badRequest("short")); short.Detail != "bad request: short" {
		t.Errorf("got %q, want a short detail unchanged", short.Detail)
	}
}
