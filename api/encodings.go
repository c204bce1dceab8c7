package api

import (
	"encoding/base64"
	"strings"

	"github.com/sockman/sockman/internal/quote"
)

// The encodings people type: sends, and delimiters, take utf8 (the
// default), base64, hex as people paste it, and escaped text.

// decodeField turns text written in encoding into bytes; field names it in
// a 400, which says where the text went wrong.
func decodeField(field, text, encoding string) ([]byte, error) {
	switch encoding {
	case "", "utf8":
		return []byte(text), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, badRequest("%s is not valid base64 (standard alphabet, with padding): %v", field, err)
		}
		return b, nil
	case "hex":
		return decodeHex(field, text)
	case "escaped":
		return decodeEscaped(field, text)
	}
	return nil, badRequest("encoding %s must be utf8, base64, hex or escaped", quote.String(encoding))
}

// at quotes the text from byte i on, for a detail that says where.
func at(text string, i int) string {
	return quote.String(text[i:min(len(text), i+16)])
}

// hexSeparator reports whether c may stand between the bytes of hex text.
func hexSeparator(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ':', '-', ',':
		return true
	}
	return false
}

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeHex reads bytes written as pairs of hex digits, with spaces, :, -,
// , or 0x between them, as people paste them ("48 65", "48:65", "0x48,0x65").
func decodeHex(field, text string) ([]byte, error) {
	out := make([]byte, 0, len(text)/2)
	for i := 0; i < len(text); {
		c := text[i]
		if hexSeparator(c) {
			i++
			continue
		}
		if c == '0' && i+1 < len(text) && (text[i+1] == 'x' || text[i+1] == 'X') {
			if i+2 >= len(text) || hexSeparator(text[i+2]) {
				return nil, badRequest("%s is not valid hex: at byte %d, %s is a 0x without its two hex digits", field, i, at(text, i))
			}
			i += 2
			c = text[i]
		}
		hi, ok := hexValue(c)
		if !ok {
			return nil, badRequest("%s is not valid hex: at byte %d, %s does not start with a hex digit; write each byte as two hex digits (spaces, :, -, , or 0x may stand between bytes)", field, i, at(text, i))
		}
		if i+1 >= len(text) {
			return nil, badRequest("%s is not valid hex: at byte %d, %s is half a byte; write each byte as two hex digits, such as 0A", field, i, at(text, i))
		}
		lo, ok := hexValue(text[i+1])
		if !ok {
			return nil, badRequest("%s is not valid hex: at byte %d, %s is not two hex digits; write each byte as two hex digits, such as 0A", field, i, at(text, i))
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	return out, nil
}

// decodeEscaped reads text with the escapes \r \n \t \0 \\ and \xNN; any
// other backslash is a 400.
func decodeEscaped(field, text string) ([]byte, error) {
	if strings.IndexByte(text, '\\') < 0 {
		return []byte(text), nil
	}
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(text) {
			return nil, badRequest("%s is not valid escaped text: at byte %d, a lone \\ ends it; write \\\\ for a backslash", field, i)
		}
		switch text[i+1] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case 'x':
			var hi, lo byte
			ok := i+3 < len(text)
			if ok {
				var ok1, ok2 bool
				hi, ok1 = hexValue(text[i+2])
				lo, ok2 = hexValue(text[i+3])
				ok = ok1 && ok2
			}
			if !ok {
				return nil, badRequest("%s is not valid escaped text: at byte %d, %s is not \\x and two hex digits", field, i, at(text, i))
			}
			out = append(out, hi<<4|lo)
			i += 2
		default:
			return nil, badRequest("%s is not valid escaped text: at byte %d, %s is not one of the escapes \\r \\n \\t \\0 \\\\ \\xNN", field, i, at(text, i))
		}
		i++
	}
	return out, nil
}

// encodeEscaped writes p as escaped text that decodeEscaped reads back:
// printable ASCII as it is, \r \n \t \0 \\ by name, other bytes as \xNN.
func encodeEscaped(p []byte) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range p {
		switch {
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == 0:
			b.WriteString(`\0`)
		case c == '\\':
			b.WriteString(`\\`)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			b.WriteString(`\x`)
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
		}
	}
	return b.String()
}
