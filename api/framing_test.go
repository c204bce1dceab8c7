package api

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sockman/sockman/internal/contract"
)

// TestDecodeEncodingsPeopleType: hex as people paste it and escaped text
// give the bytes meant; malformed ones are a 400 that says at which byte
// and quotes the text there.
func TestDecodeEncodingsPeopleType(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text, encoding string
		want           string // the bytes, or "" with detail
		detail         string // what the 400 must say
	}{
		{"48656c6c6f", "hex", "Hello", ""},
		{"48 65 6C 6c 6f", "hex", "Hello", ""},
		{"48:65:6c", "hex", "Hel", ""},
		{"48-65-6c", "hex", "Hel", ""},
		{"0x48, 0x65,0x6c", "hex", "Hel", ""},
		{"0X48 0x65", "hex", "He", ""},
		{"0x4865", "hex", "He", ""},
		{" 48\t65\r\n6c ", "hex", "Hel", ""},
		{"", "hex", "", ""},
		{"4", "hex", "", `at byte 0, "4" is half a byte`},
		{"48 6", "hex", "", `at byte 3, "6" is half a byte`},
		{"48 6g", "hex", "", `at byte 3, "6g" is not two hex digits`},
		{"48;65", "hex", "", `at byte 2, ";65" does not start with a hex digit`},
		{"zz", "hex", "", `at byte 0, "zz" does not start with a hex digit`},
		{"48 0x", "hex", "", `at byte 3, "0x" is a 0x without its two hex digits`},
		{"0x 48", "hex", "", `at byte 0, "0x 48" is a 0x without its two hex digits`},
		{"00x1", "hex", "", `at byte 2, "x1" does not start with a hex digit`},
		{`AT\r\n`, "escaped", "AT\r\n", ""},
		{`a\tb\0c\\d\x7f\xFF`, "escaped", "a\tb\x00c\\d\x7f\xff", ""},
		{"no escapes at all", "escaped", "no escapes at all", ""},
		{`é\n`, "escaped", "é\n", ""},
		{`ab\`, "escaped", "", `at byte 2, a lone \ ends it`},
		{`ab\q`, "escaped", "", `at byte 2, "\\q" is not one of the escapes`},
		{`\x4`, "escaped", "", `at byte 0, "\\x4" is not \x and two hex digits`},
		{`x\xg0`, "escaped", "", `at byte 1, "\\xg0" is not \x and two hex digits`},
		{`\u0041`, "escaped", "", `at byte 0, "\\u0041" is not one of the escapes`},
		{"aGk=", "base64", "hi", ""},
		{"aGk", "base64", "", "not valid base64"},
		{"x", "latin1", "", `encoding "latin1" must be utf8, base64, hex or escaped`},
	} {
		got, err := decodeField("data", tt.text, tt.encoding)
		if tt.detail == "" {
			if err != nil || string(got) != tt.want {
				t.Errorf("%s %q: got %q, %v; want %q", tt.encoding, tt.text, got, err, tt.want)
			}
			continue
		}
		if err == nil || !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), tt.detail) {
			t.Errorf("%s %q: got %q, %v; want a 400 saying %s", tt.encoding, tt.text, got, err, tt.detail)
		}
	}
}

// TestEscapedRoundTrips: what encodeEscaped writes (a delimiter shown back)
// decodes to the same bytes, for every byte.
func TestEscapedRoundTrips(t *testing.T) {
	t.Parallel()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	got, err := decodeEscaped("delimiter", encodeEscaped(all))
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("round trip: got %q, %v; want every byte back", got, err)
	}
}

// FuzzDecodeHex: whatever the text, decodeHex either fails with a 400 or
// gives bytes whose plain hex, decoded again, is the same.
func FuzzDecodeHex(f *testing.F) {
	for _, s := range []string{"", "00", "0x0A,0x0b", "de:ad-be ef", "0", "0x", "zz", "00x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeHex("data", s)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("%q: got %v, want a 400", s, err)
			}
			return
		}
		var plain strings.Builder
		for _, b := range got {
			plain.WriteString(strings.ToUpper(string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])))
			plain.WriteByte(' ')
		}
		again, err := decodeHex("data", plain.String())
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("%q gave %x; its plain hex gives %x, %v", s, got, again, err)
		}
	})
}

// FuzzDecodeEscaped: decodeEscaped either fails with a 400 or gives bytes
// that encodeEscaped writes back to text decoding to the same bytes.
func FuzzDecodeEscaped(f *testing.F) {
	for _, s := range []string{"", `\r\n`, `\x00\\`, `\`, `\q`, `\x1`, "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeEscaped("data", s)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("%q: got %v, want a 400", s, err)
			}
			return
		}
		again, err := decodeEscaped("data", encodeEscaped(got))
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("%q gave %q; written back and read again %q, %v", s, got, again, err)
		}
	})
}

// TestFramingThroughTheAPI: a line-protocol server and a length-prefixed
// client, driven by real peers: whole frames come out, the framing is shown
// with its defaults, sends are framed unless ?frame=false, and a frame cut
// short by the peer's close is partial with the reason.
func TestFramingThroughTheAPI(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	s, peer := a.pair(t, func(r *ServerCreate) {
		r.Framing = &Framing{Type: "delimiter", Delimiter: `\r\n`, Encoding: "escaped"}
	})
	want := Framing{Type: "delimiter", Delimiter: `\r\n`, Encoding: "escaped", MaxFrame: 1 << 20}
	if s.Framing != want {
		t.Fatalf("framing shown: got %+v, want %+v", s.Framing, want)
	}
	writePeer(t, peer, []byte("AT\r\nATI"))
	writePeer(t, peer, []byte("\r\nAT+CSQ"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).BufferedMessages == 2 })
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages", `{"data":"OK"}`).want(t, http.StatusOK)
	a.call(http.MethodPost, "/sockets/"+s.ID+"/messages?frame=false", `{"data":"4f 4b","encoding":"hex"}`).want(t, http.StatusOK)
	if got := readPeer(t, peer, 6); string(got) != "OK\r\nOK" {
		t.Fatalf("peer got %q, want the framed send then the unframed one", got)
	}
	peer.CloseWrite()
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })
	got := a.read(t, s.ID, "")
	if len(got.Messages) != 3 || got.Messages[0].Data != "AT" || got.Messages[1].Data != "ATI" ||
		got.Messages[2].Data != "AT+CSQ" || !got.Messages[2].Partial || got.Messages[1].Partial {
		t.Fatalf("messages: got %+v, want AT, ATI and a partial AT+CSQ", got.Messages)
	}
	if reason := a.socket(t, s.ID).CloseReason; !strings.Contains(reason, "in the middle of a frame") {
		t.Fatalf("close reason: got %q, want it to say the frame was cut short", reason)
	}

	// A length-prefixed client: header defaults shown, sends get a header.
	ln := listenPeer(t)
	c := a.dial(t, ln.Addr().String(), func(r *ClientCreate) {
		r.Framing = &Framing{Type: "length_prefix", HeaderBytes: 2, KeepHeader: ptr(false)}
	})
	devPeer := acceptPeer(t, ln)
	wantLP := Framing{Type: "length_prefix", HeaderBytes: 2, Endian: "big", KeepHeader: ptr(false), MaxFrame: 1 << 20}
	if c.Framing.Type != wantLP.Type || c.Framing.HeaderBytes != 2 || c.Framing.Endian != "big" || c.Framing.KeepHeader == nil || *c.Framing.KeepHeader || c.Framing.MaxFrame != wantLP.MaxFrame {
		t.Fatalf("framing shown: got %+v, want %+v", c.Framing, wantLP)
	}
	a.call(http.MethodPost, "/sockets/"+c.ID+"/messages", `{"data":"ping"}`).want(t, http.StatusOK)
	if got := readPeer(t, devPeer, 6); string(got) != "\x00\x04ping" {
		t.Fatalf("device got %q, want a 2-byte length then ping", got)
	}
	writePeer(t, devPeer, []byte("\x00\x04pong\x00\x00\x00"))
	waitFor(t, testTimeout, func() bool { return a.socket(t, c.ID).BufferedMessages == 2 })
	got = a.read(t, c.ID, "")
	if len(got.Messages) != 2 || got.Messages[0].Data != "pong" || got.Messages[1].Data != "" || got.Messages[1].Size != 0 {
		t.Fatalf("messages: got %+v, want pong and an empty frame", got.Messages)
	}

	// A fixed server refuses a send of another size, unless frame=false.
	fs, _ := a.pair(t, func(r *ServerCreate) { r.Framing = &Framing{Type: "fixed", Size: 4} })
	p := a.call(http.MethodPost, "/sockets/"+fs.ID+"/messages", `{"data":"abc"}`).want(t, http.StatusBadRequest).problem(t)
	if !strings.Contains(p.Detail, "fixed at 4 bytes and this send has 3") {
		t.Fatalf("detail: got %q, want it to give both sizes", p.Detail)
	}
	a.call(http.MethodPost, "/sockets/"+fs.ID+"/messages?frame=false", `{"data":"abc"}`).want(t, http.StatusOK)
	a.call(http.MethodPost, "/servers/"+fs.ServerID+"/messages", `{"data":"abc"}`).want(t, http.StatusBadRequest)
	var br BroadcastResult
	a.call(http.MethodPost, "/servers/"+fs.ServerID+"/messages", `{"data":"abcd"}`).want(t, http.StatusOK).decode(t, &br)
	if br.Sockets != 1 || br.Bytes != 4 {
		t.Fatalf("broadcast: got %+v, want 1 socket, 4 bytes", br)
	}
}

// TestFramingDetails: a framing that cannot work says what to change.
func TestFramingDetails(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	for body, detail := range map[string]string{
		`{"port":0,"framing":{"type":"lines","size":4}}`:                                   `framing.size does not apply to type "lines" (only to fixed)`,
		`{"port":0,"framing":{}}`:                                                          "framing.type is required",
		`{"port":0,"framing":{"type":"delimiter","delimiter":"0d 0","encoding":"hex"}}`:    `framing.delimiter is not valid hex: at byte 3, "0" is half a byte`,
		`{"port":0,"framing":{"type":"delimiter","delimiter":"\\q","encoding":"escaped"}}`: `framing.delimiter is not valid escaped text: at byte 0, "\\q"`,
		`{"port":0,"framing":{"type":"fixed","size":100,"max_frame":99}}`:                  "framing size 100 is out of range 1 to 99",
		`{"port":0,"buffer_bytes":4096,"framing":{"type":"lines","max_frame":4097}}`:       "max_frame 4097 is out of range 1 to 4096",
		`{"port":0,"framing":{"type":"lines","maxframe":1}}`:                               `unknown field "maxframe"`,
		`{"port":0,"framing":{"type":"length_prefix","header_bytes":3}}`:                   "header_bytes 3 must be 1, 2, 4 or 8",
	} {
		p := a.call(http.MethodPost, "/servers", body, contract.SkipRequestHeader, "bad on purpose").want(t, http.StatusBadRequest).problem(t)
		if !strings.Contains(p.Detail, detail) {
			t.Errorf("%s: got detail %q, want it to say %s", body, p.Detail, detail)
		}
	}
}

// TestRequestExamplesRun: the request bodies openapi.yaml shows (what
// Swagger UI's "Try it out" starts from) are taken by the service as they
// are; a client's only changes its port to a listener of the test's.
func TestRequestExamplesRun(t *testing.T) {
	t.Parallel()
	doc := loadDescription(t)
	a := newTestAPI(t)
	ln := listenPeer(t)
	examples := map[string]map[string]any{}
	for _, path := range doc.Paths.InMatchingOrder() {
		for _, op := range doc.Paths.Value(path).Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Example != nil {
				examples[op.OperationID] = mt.Example.(map[string]any)
			}
		}
	}
	for _, op := range []string{"createServer", "createClient"} {
		body, ok := examples[op]
		if !ok {
			t.Fatalf("%s shows no request example", op)
		}
		path := "/servers"
		if op == "createClient" {
			path = "/clients"
			body["port"] = ln.Addr().(*net.TCPAddr).Port
		}
		a.call(http.MethodPost, path, body).want(t, http.StatusCreated)
	}
}
