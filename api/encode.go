package api

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	asmbase64 "github.com/segmentio/asm/base64"

	"github.com/sockman/sockman/sockets"
)

// writers are pooled 64 KiB buffers between the encoder and the response.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// writeMessageList writes a MessageList as JSON straight into w, encoding
// each message's bytes on the way (no intermediate copy of the payload).
// encoding is auto, base64 or hex. The output is what encoding/json would
// write for the MessageList type.
func writeMessageList(w io.Writer, id string, sel sockets.Selection, encoding string) error {
	state := sel.State
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil)
		writers.Put(bw)
	}()
	var num [32]byte
	bw.WriteString(`{"socket_id":`)
	writeJSONString(bw, id)
	bw.WriteString(`,"state":`)
	writeJSONString(bw, state)
	bw.WriteString(`,"messages":[`)
	for i := range sel.Messages {
		if i > 0 {
			bw.WriteByte(',')
		}
		writeMessage(bw, &sel.Messages[i], encoding)
	}
	bw.WriteString(`],"cursor":`)
	bw.Write(strconv.AppendUint(num[:0], sel.Cursor, 10))
	bw.WriteString("}\n")
	return bw.Flush()
}

// writeMessage writes one Message object of a read (seq, received_at,
// size, encoding, data, and partial when set), as encoding/json would
// write it.
func writeMessage(bw *bufio.Writer, m *sockets.Message, encoding string) {
	var num [32]byte
	bw.WriteString(`{"seq":`)
	bw.Write(strconv.AppendUint(num[:0], m.Seq, 10))
	bw.WriteString(`,"received_at":"`)
	bw.Write(m.ReceivedAt.AppendFormat(num[:0], time.RFC3339Nano))
	bw.WriteString(`","size":`)
	bw.Write(strconv.AppendInt(num[:0], int64(len(m.Data)), 10))
	enc := encoding
	if enc == "auto" {
		enc = "base64"
		if utf8.Valid(m.Data) {
			enc = "utf8"
		}
	}
	bw.WriteString(`,"encoding":"`)
	bw.WriteString(enc)
	bw.WriteString(`","data":`)
	switch enc {
	case "utf8":
		// A view, not a copy: Data is never modified once stored.
		writeJSONString(bw, unsafe.String(unsafe.SliceData(m.Data), len(m.Data)))
	case "hex":
		bw.WriteByte('"')
		writeEncoded(bw, m.Data, 1, 2, hex.AppendEncode)
		bw.WriteByte('"')
	default:
		bw.WriteByte('"')
		writeEncoded(bw, m.Data, 3, 4, appendBase64)
		bw.WriteByte('"')
	}
	if m.Partial {
		bw.WriteString(`,"partial":true`)
	}
	bw.WriteByte('}')
}

// messageListLen returns the length of what writeMessageList writes, when
// it is known without reading the data: encoding base64 or hex (auto must
// look at each message). With it the answer can carry a Content-Length
// instead of being chunked, which spares a write per chunk.
func messageListLen(id string, sel sockets.Selection, encoding string) (int, bool) {
	state := sel.State
	var encodedLen func(int) int
	switch encoding {
	case "base64":
		encodedLen = base64.StdEncoding.EncodedLen
	case "hex":
		encodedLen = hex.EncodedLen
	default:
		return 0, false
	}
	var num [40]byte
	n := len(`{"socket_id":`) + jsonStringLen(id) + len(`,"state":`) + jsonStringLen(state) + len(`,"messages":[`)
	for i, m := range sel.Messages {
		if i > 0 {
			n++ // ,
		}
		n += len(`{"seq":`) + len(strconv.AppendUint(num[:0], m.Seq, 10)) +
			len(`,"received_at":"`) + len(m.ReceivedAt.AppendFormat(num[:0], time.RFC3339Nano)) +
			len(`","size":`) + len(strconv.AppendInt(num[:0], int64(len(m.Data)), 10)) +
			len(`,"encoding":"`) + len(encoding) + len(`","data":`) +
			1 + encodedLen(len(m.Data)) + 1 + len(`}`)
		if m.Partial {
			n += len(`,"partial":true`)
		}
	}
	n += len(`],"cursor":`) + len(strconv.AppendUint(num[:0], sel.Cursor, 10)) + len("}\n")
	return n, true
}

// jsonStringLen is the length of what writeJSONString writes for s.
func jsonStringLen(s string) int {
	n := 2 // the quotes
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case jsonPlain[c]:
			n++
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			n += 2
		case c < utf8.RuneSelf:
			n += 6 // \u00XX
		case i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8:
			n += 6 // \u2028 or \u2029 for three bytes
			i += 2
		default:
			n++ // 0xE2 starting another character
		}
	}
	return n
}

// writeEncoded writes data through appendEncode (base64 or hex, which turn
// every in input bytes into out bytes) straight into bw's free space, as
// much at a time as fits: no encoder per message and no hops through an
// encoder's own small buffer.
func writeEncoded(bw *bufio.Writer, data []byte, in, out int, appendEncode func(dst, src []byte) []byte) {
	for len(data) > 0 {
		if bw.Available() < out && bw.Flush() != nil {
			return // the writer failed; Flush at the end reports it
		}
		n := min(len(data), bw.Available()/out*in)
		bw.Write(appendEncode(bw.AvailableBuffer(), data[:n]))
		data = data[n:]
	}
}

// appendBase64 appends the standard base64 of src to dst. It is
// encoding/base64's AppendEncode, written by github.com/segmentio/asm/base64,
// which gives the same bytes with SIMD where the CPU has it: over ten times
// faster here, and base64 is most of the cost of a JSON read of binary data.
func appendBase64(dst, src []byte) []byte {
	n := asmbase64.StdEncoding.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	asmbase64.StdEncoding.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}

const hexDigits = "0123456789abcdef"

// jsonPlain[c] says that byte c goes into a JSON string as it is: printable
// ASCII but for the quote, the backslash and <, > and &, and every byte of
// a multi-byte UTF-8 sequence but 0xE2, the lead byte of U+2028 and U+2029.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = true
	}
	for _, c := range []byte{'"', '\\', '<', '>', '&', 0xE2} {
		t[c] = false
	}
	return t
}()

// writeJSONString writes s, valid UTF-8, as a JSON string: quotes,
// backslashes and control characters escaped, as encoding/json does
// (\b and \f short since Go 1.22; <, >, & and U+2028/U+2029 as \u
// escapes), so the two writers agree byte for byte.
func writeJSONString(w *bufio.Writer, s string) {
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			w.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				w.WriteByte('\\')
				w.WriteByte(c)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			case '\b':
				w.WriteString(`\b`)
			case '\f':
				w.WriteString(`\f`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hexDigits[c>>4])
				w.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		// 0xE2: U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
		if i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8 {
			w.WriteString(s[start:i])
			w.WriteString(`\u202`)
			w.WriteByte(hexDigits[s[i+2]&0xf])
			start = i + 3
			i += 3
			continue
		}
		i++
	}
	w.WriteString(s[start:])
	w.WriteByte('"')
}
