package sockets

import (
	"fmt"
	"time"

	"github.com/sockman/sockman/internal/quote"
)

// RecvOptions say how a socket receives: the bounds of its buffer and how
// its bytes are cut into messages. A server keeps one for every socket it
// accepts. The zero value takes the registry's defaults: a buffer of
// Config.BufferBytes that blocks when full, and raw messages.
type RecvOptions struct {
	BufferBytes int     // 0 means Config.BufferBytes
	Overflow    string  // "block" (default) or "drop_oldest"
	Framing     Framing // the zero value is raw

	// Connection control (control.go).
	HalfClose bool           // a peer's FIN leaves the socket open for sends
	NoDelay   *bool          // TCP_NODELAY; nil means true
	KeepAlive *time.Duration // keepalive idle time and interval; nil: DefaultKeepAlive, 0: off
	Name      string         // a label, at most Config.MaxNameBytes

	Retain string // which messages are stored: "all" (default), "unmatched", "none" (rules.go)
}

// recvOptions are RecvOptions checked and with defaults filled in, as a
// server and a socket keep them.
type recvOptions struct {
	bufBytes int
	overflow Overflow
	framing  Framing // Type and MaxFrame set

	halfClose bool
	noDelay   bool
	keepAlive time.Duration // 0: off
	name      string

	retain Retain
}

// Framing types, as Framing.Type names them.
const (
	FrameRaw          = "raw"
	FrameLines        = "lines"
	FrameDelimiter    = "delimiter"
	FrameFixed        = "fixed"
	FrameLengthPrefix = "length_prefix"
)

// DefaultMaxFrame is the largest frame when a request names none (at most
// the socket's buffer).
const DefaultMaxFrame = 1 << 20

// Framing says how a socket's byte stream is cut into messages. With Type
// raw (or "") a message is whatever one read returned; otherwise each
// message is one frame, and a frame over MaxFrame, or one cut short by the
// peer's close, is stored as a partial message and closes the socket.
type Framing struct {
	Type string // FrameRaw ("" too), FrameLines, FrameDelimiter, FrameFixed, FrameLengthPrefix

	// Delimiter ends a frame (FrameDelimiter); DelimiterEncoding is how the
	// request wrote it, kept to show it back the same way.
	Delimiter         string // the bytes, not text
	DelimiterEncoding string
	// KeepDelimiter keeps the delimiter (lines: the \n, and a \r before it)
	// in the message.
	KeepDelimiter bool

	Size int // FrameFixed: the bytes of each frame

	// FrameLengthPrefix: a header of HeaderBytes (1, 2, 4 or 8) holding the
	// length in Endian ("big" or "little") byte order, of the payload, or
	// of header and payload with LengthIncludesHeader. KeepHeader keeps the
	// header in the message.
	HeaderBytes          int
	Endian               string
	LengthIncludesHeader bool
	KeepHeader           bool

	// MaxFrame bounds a frame's bytes as they come on the wire, delimiter
	// or header included; 0 means DefaultMaxFrame (for fixed, at least
	// Size), at most the buffer.
	MaxFrame int
}

// Framed reports whether f cuts the stream into frames (it is not raw).
func (f Framing) Framed() bool { return f.Type != "" && f.Type != FrameRaw }

// recvOptions checks o against the registry's bounds and fills in defaults.
func (r *Registry) recvOptions(o RecvOptions) (recvOptions, error) {
	bufBytes, ov, err := r.bufferOptions(o.BufferBytes, o.Overflow)
	if err != nil {
		return recvOptions{}, err
	}
	f, err := checkFraming(o.Framing, bufBytes)
	if err != nil {
		return recvOptions{}, err
	}
	retain, err := ParseRetain(o.Retain)
	if err != nil {
		return recvOptions{}, err
	}
	out := recvOptions{bufBytes: bufBytes, overflow: ov, framing: f, retain: retain}
	if err := r.connOptions(o, &out); err != nil {
		return recvOptions{}, err
	}
	return out, nil
}

// checkFraming validates f for a buffer of bufBytes and fills in its
// defaults.
func checkFraming(f Framing, bufBytes int) (Framing, error) {
	if f.Type == "" {
		f.Type = FrameRaw
	}
	if f.MaxFrame < 0 || f.MaxFrame > bufBytes {
		return f, fmt.Errorf("%w: framing max_frame %d is out of range 1 to %d (the socket's buffer_bytes; raise buffer_bytes for larger frames)", ErrInvalid, f.MaxFrame, bufBytes)
	}
	given := f.MaxFrame != 0
	if !given {
		f.MaxFrame = min(DefaultMaxFrame, bufBytes)
	}
	switch f.Type {
	case FrameRaw:
		f.MaxFrame = 0 // no frames, no bound
		return f, nil
	case FrameLines:
		return f, nil
	case FrameDelimiter:
		if len(f.Delimiter) == 0 {
			return f, fmt.Errorf("%w: framing type delimiter needs a delimiter of at least one byte, such as \"\\r\\n\" with encoding escaped", ErrInvalid)
		}
		if len(f.Delimiter) > f.MaxFrame {
			return f, fmt.Errorf("%w: framing delimiter of %d bytes is longer than max_frame %d", ErrInvalid, len(f.Delimiter), f.MaxFrame)
		}
		return f, nil
	case FrameFixed:
		if !given {
			f.MaxFrame = min(max(DefaultMaxFrame, f.Size), bufBytes)
		}
		if f.Size < 1 || f.Size > f.MaxFrame {
			return f, fmt.Errorf("%w: framing size %d is out of range 1 to %d (max_frame, at most buffer_bytes)", ErrInvalid, f.Size, f.MaxFrame)
		}
		return f, nil
	case FrameLengthPrefix:
		switch f.HeaderBytes {
		case 0:
			f.HeaderBytes = 4
		case 1, 2, 4, 8:
		default:
			return f, fmt.Errorf("%w: framing header_bytes %d must be 1, 2, 4 or 8", ErrInvalid, f.HeaderBytes)
		}
		switch f.Endian {
		case "":
			f.Endian = "big"
		case "big", "little":
		default:
			return f, fmt.Errorf("%w: framing endian %s must be big or little", ErrInvalid, quote.String(f.Endian))
		}
		if f.HeaderBytes > f.MaxFrame {
			return f, fmt.Errorf("%w: framing header of %d bytes is longer than max_frame %d", ErrInvalid, f.HeaderBytes, f.MaxFrame)
		}
		return f, nil
	}
	return f, fmt.Errorf("%w: framing type %s is not one of raw, lines, delimiter, fixed, length_prefix", ErrInvalid, quote.String(f.Type))
}
