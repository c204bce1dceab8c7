package api

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sockman/sockman/sockets"
)

// writers are pooled 64 KiB buffers between the encoder and the response.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// writeMessageList writes a MessageList as JSON straight into w, encoding
// each message's bytes on the way (no intermediate copy of the payload).
// encoding is auto, base64 or hex. The output is what encoding/json would
// write for the MessageList type.
func writeMessageList(w io.Writer, id, state string, sel sockets.Selection, encoding string) error {
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
	for i, m := range sel.Messages {
		if i > 0 {
			bw.WriteByte(',')
		}
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
		bw.WriteString(`,"encoding":"` + enc + `","data":`)
		switch enc {
		case "utf8":
			writeJSONString(bw, string(m.Data))
		case "hex":
			bw.WriteByte('"')
			he := hex.NewEncoder(bw)
			he.Write(m.Data)
			bw.WriteByte('"')
		default:
			bw.WriteByte('"')
			be := base64.NewEncoder(base64.StdEncoding, bw)
			be.Write(m.Data)
			be.Close()
			bw.WriteByte('"')
		}
		bw.WriteByte('}')
	}
	bw.WriteString(`],"cursor":`)
	bw.Write(strconv.AppendUint(num[:0], sel.Cursor, 10))
	bw.WriteString("}\n")
	return bw.Flush()
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s, valid UTF-8, as a JSON string: quotes,
// backslashes and control characters escaped, as encoding/json does
// (including <, >, & and U+2028/U+2029, so the two writers agree).
func writeJSONString(w *bufio.Writer, s string) {
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
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
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hexDigits[c>>4])
				w.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			w.WriteString(s[start:i])
			w.WriteString(`\u202`)
			w.WriteByte(hexDigits[r&0xf])
			start = i + size
		}
		i += size
	}
	w.WriteString(s[start:])
	w.WriteByte('"')
}
