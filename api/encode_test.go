package api

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sockman/sockman/sockets"
)

// wantMessageList is what encoding/json writes for the answer that
// writeMessageList streams: the reference the fast writer must match.
func wantMessageList(t testing.TB, id, state string, sel sockets.Selection, encoding string) []byte {
	t.Helper()
	out := MessageList{SocketID: id, State: state, Messages: []Message{}, Cursor: sel.Cursor}
	for _, m := range sel.Messages {
		enc := encoding
		if enc == "auto" {
			enc = "base64"
			if utf8.Valid(m.Data) {
				enc = "utf8"
			}
		}
		var data string
		switch enc {
		case "utf8":
			data = string(m.Data)
		case "hex":
			data = hex.EncodeToString(m.Data)
		default:
			data = base64.StdEncoding.EncodeToString(m.Data)
		}
		out.Messages = append(out.Messages, Message{Seq: m.Seq, ReceivedAt: m.ReceivedAt, Size: len(m.Data), Encoding: enc, Data: data, Partial: m.Partial})
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(out); err != nil { // Encode, like the writer, ends with a newline
		t.Fatalf("encoding/json: %v", err)
	}
	return b.Bytes()
}

// checkWriter fails t unless writeMessageList writes exactly what
// encoding/json does for the same answer.
func checkWriter(t testing.TB, id, state string, sel sockets.Selection, encoding string) {
	t.Helper()
	var got bytes.Buffer
	sel.State = state
	if err := writeMessageList(&got, id, sel, encoding); err != nil {
		t.Fatalf("writeMessageList: %v", err)
	}
	want := wantMessageList(t, id, state, sel, encoding)
	if !bytes.Equal(got.Bytes(), want) {
		i := 0
		for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
			i++
		}
		t.Fatalf("encoding=%s: writeMessageList and encoding/json differ at byte %d:\n got %.200q\nwant %.200q", encoding, i, got.Bytes()[i:], want[i:])
	}
}

// awkward are payloads that each exercise a JSON escaping rule.
var awkward = [][]byte{
	{},
	[]byte("plain text\n"),
	[]byte("quotes \" and \\ backslash"),
	[]byte("<script>alert('&')</script>"),
	[]byte("line\u2028separator\u2029paragraph"),
	[]byte("\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f"),
	[]byte("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), // valid multi-byte UTF-8
	[]byte("\xff\xfe invalid"),
	[]byte("truncated \xe2\x82"),
	[]byte("\xed\xa0\x80 surrogate"),
	[]byte("\xef\xbf\xbd replacement char itself"),
}

// TestWriteMessageListMatchesEncodingJSON: the hand-written JSON writer of
// reads produces, byte for byte, what encoding/json would for MessageList,
// for every encoding and for payloads full of characters JSON escapes.
func TestWriteMessageListMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, encoding := range []string{"auto", "base64", "hex"} {
		t.Run(encoding, func(t *testing.T) {
			// No messages: an empty array, not null.
			checkWriter(t, "sock-1", "connected", sockets.Selection{Cursor: 7}, encoding)
			// Each awkward payload alone and all of them together.
			var all []sockets.Message
			for i, data := range awkward {
				m := sockets.Message{Seq: uint64(i + 1), ReceivedAt: time.Date(2026, 11, 29, 8, 0, i, i*1001, time.UTC), Data: data, Partial: i%2 == 1}
				all = append(all, m)
				checkWriter(t, "sock-2", "closed", sockets.Selection{Messages: []sockets.Message{m}, Cursor: m.Seq}, encoding)
			}
			checkWriter(t, "sock-3", "connected", sockets.Selection{Messages: all, Cursor: uint64(len(all))}, encoding)
			// Random messages: random bytes, random text, random times.
			for range 200 {
				sel := randomSelection(rng)
				checkWriter(t, "sock-"+strings.Repeat("9", rng.IntN(20)), "connected", sel, encoding)
			}
		})
	}
}

// randomSelection makes up to 8 messages of random bytes, each either raw
// noise or text drawn from an alphabet rich in escapes.
func randomSelection(rng *rand.Rand) sockets.Selection {
	const alphabet = "aZ09 \"\\<>&\n\r\t\b\f\x00\x1f\x7f/\u2028\u2029é€😀\ufffd"
	alpha := []rune(alphabet)
	var sel sockets.Selection
	seq := rng.Uint64N(1 << 40)
	for range rng.IntN(9) {
		var data []byte
		n := rng.IntN(300)
		if rng.IntN(2) == 0 {
			data = make([]byte, n)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
		} else {
			var b strings.Builder
			for range n {
				b.WriteRune(alpha[rng.IntN(len(alpha))])
			}
			data = []byte(b.String())
		}
		seq += 1 + rng.Uint64N(3) // gaps, as drop_oldest leaves them
		at := time.Unix(0, rng.Int64()).UTC()
		sel.Messages = append(sel.Messages, sockets.Message{Seq: seq, ReceivedAt: at, Data: data})
	}
	sel.Cursor = seq
	return sel
}

// FuzzWriteMessageList compares the JSON writer with encoding/json on
// arbitrary payloads, ids and times.
func FuzzWriteMessageList(f *testing.F) {
	for i, data := range awkward {
		f.Add(data, []byte("second"), uint64(i+1), int64(i)*1_000_000_007, uint8(i), "sock-1", "connected")
	}
	f.Add([]byte{}, []byte{}, uint64(0), int64(0), uint8(0), "", "")
	f.Add([]byte("\xff"), []byte("\u2028"), uint64(1<<63), int64(-1), uint8(2), "sock-\"<>", "closed")
	f.Fuzz(func(t *testing.T, a, b []byte, seq uint64, nanos int64, enc uint8, id, state string) {
		// Ids and states come from the engine as ASCII; encoding/json
		// would replace invalid UTF-8 in them, the writer assumes none.
		id = strings.ToValidUTF8(id, "\ufffd")
		state = strings.ToValidUTF8(state, "\ufffd")
		at := time.Unix(0, nanos).UTC()
		sel := sockets.Selection{Messages: []sockets.Message{
			{Seq: seq, ReceivedAt: at, Data: a},
			{Seq: seq + 1, ReceivedAt: at, Data: b},
		}, Cursor: seq + 1}
		checkWriter(t, id, state, sel, []string{"auto", "base64", "hex"}[enc%3])
	})
}
