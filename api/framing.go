package api

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// Framing says how a socket's byte stream is cut into messages: in a
// request, on POST /servers (for its accepted sockets) and POST /clients;
// in an answer, with its defaults filled in. Fields that do not apply to
// the type are left out.
type Framing struct {
	// raw (default): a message is whatever one read returned. lines: up to \n. delimiter: up to the delimiter bytes. fixed: exactly size bytes. length_prefix: a header and the length it gives.
	Type string `json:"type" enums:"raw,lines,delimiter,fixed,length_prefix" example:"lines" validate:"required"`
	// delimiter: the bytes that end a frame, written in encoding.
	Delimiter string `json:"delimiter,omitempty" example:"\\r\\n"`
	// delimiter: how delimiter is written: utf8 (default), hex (pairs of digits; spaces, :, -, , or 0x between bytes), base64, or escaped (\r \n \t \0 \\ \xNN).
	Encoding string `json:"encoding,omitempty" enums:"utf8,hex,base64,escaped" example:"escaped"`
	// lines and delimiter: keep the delimiter in each message (lines: the \n and a \r before it). Default false.
	KeepDelimiter bool `json:"keep_delimiter,omitempty" example:"false"`
	// fixed: the bytes of each frame.
	Size int `json:"size,omitempty" example:"16" minimum:"1"`
	// length_prefix: bytes of the length header, 1, 2, 4 or 8. Default 4.
	HeaderBytes int `json:"header_bytes,omitempty" enums:"1,2,4,8" example:"2"`
	// length_prefix: byte order of the header. Default big (network order).
	Endian string `json:"endian,omitempty" enums:"big,little" example:"big"`
	// length_prefix: the length counts the header too. Default false.
	LengthIncludesHeader bool `json:"length_includes_header,omitempty" example:"false"`
	// length_prefix: keep the header in each message. Default true.
	KeepHeader *bool `json:"keep_header,omitempty" example:"true"`
	// The most bytes one frame may have on the wire, delimiter or header included: 1 MiB by default (for fixed, at least size), at most buffer_bytes. A frame over it is stored as a partial message of its first max_frame bytes, and the socket closes. Not for raw.
	MaxFrame int `json:"max_frame,omitempty" example:"1048576" minimum:"1"`
} // @name Framing

// framingField is one member of Framing, the types it applies to, and
// whether a request gave it.
type framingField struct {
	name  string
	types []string
	given bool
}

// engine checks f and returns it as the engine takes it. A field given for
// a type it does not apply to is a 400: it would do nothing, and the user
// meant something by it.
func (f *Framing) engine() (sockets.Framing, error) {
	if f == nil {
		return sockets.Framing{}, nil
	}
	if f.Type == "" {
		return sockets.Framing{}, badRequest("framing.type is required: raw, lines, delimiter, fixed or length_prefix")
	}
	delim, framed := []string{sockets.FrameDelimiter}, []string{sockets.FrameLines, sockets.FrameDelimiter, sockets.FrameFixed, sockets.FrameLengthPrefix}
	lp := []string{sockets.FrameLengthPrefix}
	for _, fd := range []framingField{
		{"delimiter", delim, f.Delimiter != ""},
		{"encoding", delim, f.Encoding != ""},
		{"keep_delimiter", []string{sockets.FrameLines, sockets.FrameDelimiter}, f.KeepDelimiter},
		{"size", []string{sockets.FrameFixed}, f.Size != 0},
		{"header_bytes", lp, f.HeaderBytes != 0},
		{"endian", lp, f.Endian != ""},
		{"length_includes_header", lp, f.LengthIncludesHeader},
		{"keep_header", lp, f.KeepHeader != nil},
		{"max_frame", framed, f.MaxFrame != 0},
	} {
		if fd.given && !slices.Contains(fd.types, f.Type) && slices.Contains(append(framed, sockets.FrameRaw), f.Type) {
			return sockets.Framing{}, badRequest("framing.%s does not apply to type %s (only to %s); leave it out", fd.name, quote.String(f.Type), strings.Join(fd.types, ", "))
		}
	}
	out := sockets.Framing{
		Type: f.Type, DelimiterEncoding: f.Encoding, KeepDelimiter: f.KeepDelimiter,
		Size: f.Size, HeaderBytes: f.HeaderBytes, Endian: f.Endian,
		LengthIncludesHeader: f.LengthIncludesHeader, KeepHeader: f.KeepHeader == nil || *f.KeepHeader,
		MaxFrame: f.MaxFrame,
	}
	if f.Type == sockets.FrameDelimiter {
		if f.Delimiter == "" {
			return sockets.Framing{}, badRequest("framing.delimiter is required for type delimiter: the bytes that end a frame, such as \"\\\\r\\\\n\" with \"encoding\":\"escaped\"")
		}
		d, err := decodeField("framing.delimiter", f.Delimiter, f.Encoding)
		if err != nil {
			return sockets.Framing{}, err
		}
		if len(d) == 0 {
			return sockets.Framing{}, badRequest("framing.delimiter %s is no bytes once decoded; give at least one byte", quote.String(f.Delimiter))
		}
		out.Delimiter = string(d)
		if out.DelimiterEncoding == "" {
			out.DelimiterEncoding = "utf8"
		}
	}
	return out, nil
}

// framingOut is the answer's form of a socket's or server's framing.
func framingOut(f sockets.Framing) Framing {
	out := Framing{Type: f.Type, MaxFrame: f.MaxFrame}
	switch f.Type {
	case sockets.FrameLines:
		out.KeepDelimiter = f.KeepDelimiter
	case sockets.FrameDelimiter:
		out.KeepDelimiter = f.KeepDelimiter
		out.Encoding = f.DelimiterEncoding
		switch f.DelimiterEncoding {
		case "hex":
			out.Delimiter = hex.EncodeToString([]byte(f.Delimiter))
		case "base64":
			out.Delimiter = base64.StdEncoding.EncodeToString([]byte(f.Delimiter))
		case "escaped":
			out.Delimiter = encodeEscaped([]byte(f.Delimiter))
		default:
			out.Delimiter = f.Delimiter
		}
	case sockets.FrameFixed:
		out.Size = f.Size
	case sockets.FrameLengthPrefix:
		out.HeaderBytes, out.Endian, out.LengthIncludesHeader = f.HeaderBytes, f.Endian, f.LengthIncludesHeader
		keep := f.KeepHeader
		out.KeepHeader = &keep
	}
	return out
}
