package api

import (
	"net/http"
	"testing"
)

// TestWantsRaw: a read answers octet-stream only when the Accept header
// prefers it (RFC 9110 §12.5.1): its q is above zero, and above that of
// application/json (or of the range that covers JSON), or equal to it and
// listed first. Anything malformed counts as not written.
func TestWantsRaw(t *testing.T) {
	for _, tt := range []struct {
		accept string
		want   bool
	}{
		{"", false},
		{"application/octet-stream", true},
		{"APPLICATION/Octet-Stream", true},
		{"application/octet-stream; q=1.000", true},
		{"application/json", false},
		{"*/*", false},
		{"application/*", false},
		{"text/html", false},
		{"application/octet-stream;q=0, application/json", false},
		{"application/octet-stream;q=0", false},
		{"application/octet-stream;Q=0", false},
		{"application/octet-stream;q=0.000, */*", false},
		{"application/json;q=0.5, application/octet-stream", true},
		{"application/octet-stream;q=0.9, application/json;q=0.8", true},
		{"application/octet-stream;q=0.8, application/json;q=0.9", false},
		{"application/octet-stream, application/json", true},
		{"application/json, application/octet-stream", false},
		{"application/octet-stream, */*", true},
		{"*/*, application/octet-stream", false},
		{"*/*;q=0.1, application/octet-stream", true},
		{"application/octet-stream;q=0.8, */*;q=0.9", false},
		{"application/octet-stream;q=0.5, application/*;q=0.9", false},
		{"application/*;q=0.9, application/octet-stream;q=0.5", false},
		{"application/*;q=0, application/octet-stream;q=0.5", true},    // the exact type is more specific
		{"application/octet-stream;q=0, application/*", false},         // and so is its q=0
		{"text/html, application/octet-stream;q=0.1", true},            // nothing covers JSON
		{"application/json;q=0, application/octet-stream;q=0.1", true}, // JSON refused outright
		{",, application/octet-stream ,", true},
		{`application/octet-stream; ext="a,b", application/json`, true},
		{`application/json; ext="a,b", application/octet-stream`, false},
		// Malformed elements count as not written.
		{"application/octet-stream;q=abc", false},
		{"application/octet-stream;q=1.5", false},
		{"application/octet-stream;q=-1", false},
		{"application/octet-stream;q=0.0001", false},
		{"application/octet-stream;q=", false},
		{"application/octet-stream;q", false},
		{"application/octet-stream;q=NaN", false},
		{"application/octet-stream;q=1e0", false},
		{"application/octet-stream/x", false},
		{"octet-stream", false},
		{"garbage, application/octet-stream", true},
		{"application/octet-stream;q=0.5, garbage;q=1", true},
		{`application/octet-stream; ext="unterminated`, false},
		{"application/octet-stream;q=0.5;q=0.5", true},
		{"application/octet-stream;q=0.5;q=0.6", false}, // repeated with two values
	} {
		if got := wantsRaw(http.Header{"Accept": {tt.accept}}); got != tt.want {
			t.Errorf("Accept: %s: got octet-stream %v, want %v", tt.accept, got, tt.want)
		}
	}
	// Several Accept fields are one list.
	if !wantsRaw(http.Header{"Accept": {"application/json;q=0.5", "application/octet-stream"}}) {
		t.Errorf("Accept: application/json;q=0.5 and Accept: application/octet-stream: got JSON, want octet-stream")
	}
}

// TestReadFollowsAcceptQValues: a read with octet-stream refused by q=0 is
// JSON, however the header mentions octet-stream.
func TestReadFollowsAcceptQValues(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t)
	writePeer(t, peer, []byte("hi"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BufferedMessages == 1 })

	var l MessageList
	a.call(http.MethodGet, "/sockets/"+s.ID+"/messages", nil, "Accept", "application/octet-stream;q=0, application/json").want(t, http.StatusOK).decode(t, &l)
	if len(l.Messages) != 1 || l.Messages[0].Data != "hi" {
		t.Errorf("got %+v, want the message as JSON", l)
	}
	res := a.call(http.MethodGet, "/sockets/"+s.ID+"/messages", nil, "Accept", "application/json;q=0.5, application/octet-stream").want(t, http.StatusOK)
	if mt := mediaType(res.Header.Get("Content-Type")); mt != "application/octet-stream" || string(res.body) != "hi" {
		t.Errorf("got %s %q, want octet-stream %q", mt, res.body, "hi")
	}
}
