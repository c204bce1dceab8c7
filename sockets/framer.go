package sockets

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// framer finds frames in a byte stream as a Framing says. It holds no
// state between calls: the stage keeps the bytes of an unfinished frame.
type framer struct {
	f     Framing
	delim []byte // FrameLines: "\n"; FrameDelimiter: f.Delimiter
}

func newFramer(f Framing) framer {
	fr := framer{f: f, delim: []byte(f.Delimiter)}
	if f.Type == FrameLines {
		fr.delim = []byte{'\n'}
	}
	return fr
}

// next returns the length of the frame that data starts with, 0 when data
// holds no whole frame yet. from says how many bytes of data an earlier call
// already searched (a delimiter search resumes there). A length header that
// gives a length shorter than the header itself is an error.
func (fr *framer) next(data []byte, from int) (int, error) {
	switch fr.f.Type {
	case FrameLines:
		if i := bytes.IndexByte(data[from:], '\n'); i >= 0 {
			return from + i + 1, nil
		}
		return 0, nil
	case FrameDelimiter:
		start := max(0, from-len(fr.delim)+1)
		if i := bytes.Index(data[start:], fr.delim); i >= 0 {
			return start + i + len(fr.delim), nil
		}
		return 0, nil
	case FrameFixed:
		if len(data) >= fr.f.Size {
			return fr.f.Size, nil
		}
		return 0, nil
	case FrameLengthPrefix:
		hb := fr.f.HeaderBytes
		if len(data) < hb {
			return 0, nil
		}
		n := fr.length(data[:hb])
		if fr.f.LengthIncludesHeader {
			if n < uint64(hb) {
				return 0, fmt.Errorf("a length header gives %d bytes, less than its own %d (length_includes_header is true)", n, hb)
			}
		} else {
			n += uint64(hb) // may wrap for an 8-byte header: see below
			if n < uint64(hb) {
				n = 1<<64 - 1
			}
		}
		if n > uint64(len(data)) {
			if n > uint64(fr.f.MaxFrame) {
				return int(min(n, uint64(fr.f.MaxFrame)+1)), nil // over max_frame: the stage cuts it
			}
			return 0, nil
		}
		return int(n), nil
	}
	return len(data), nil
}

// length reads a length header.
func (fr *framer) length(h []byte) uint64 {
	if fr.f.Endian == "little" {
		switch len(h) {
		case 1:
			return uint64(h[0])
		case 2:
			return uint64(binary.LittleEndian.Uint16(h))
		case 4:
			return uint64(binary.LittleEndian.Uint32(h))
		}
		return binary.LittleEndian.Uint64(h)
	}
	switch len(h) {
	case 1:
		return uint64(h[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(h))
	case 4:
		return uint64(binary.BigEndian.Uint32(h))
	}
	return binary.BigEndian.Uint64(h)
}

// payload returns the message that a whole frame makes.
func (fr *framer) payload(frame []byte) []byte {
	lo, hi := fr.bounds(frame)
	return frame[lo:hi]
}

// bounds returns where in a whole frame its message lies.
func (fr *framer) bounds(frame []byte) (lo, hi int) {
	n := len(frame)
	switch fr.f.Type {
	case FrameLines:
		if fr.f.KeepDelimiter {
			return 0, n
		}
		n--
		if n > 0 && frame[n-1] == '\r' {
			n--
		}
		return 0, n
	case FrameDelimiter:
		if fr.f.KeepDelimiter {
			return 0, n
		}
		return 0, n - len(fr.delim)
	case FrameLengthPrefix:
		if fr.f.KeepHeader {
			return 0, n
		}
		return fr.f.HeaderBytes, n
	}
	return 0, n
}

// frameOf returns p framed for sending as fr says: the delimiter appended,
// or a length header prepended. A fixed frame must be exactly its size.
func (fr *framer) frameOf(p []byte) ([]byte, error) {
	switch fr.f.Type {
	case FrameLines, FrameDelimiter:
		return append(append(make([]byte, 0, len(p)+len(fr.delim)), p...), fr.delim...), nil
	case FrameFixed:
		if len(p) != fr.f.Size {
			return nil, fmt.Errorf("%w: the socket's frames are fixed at %d bytes and this send has %d; send exactly %d bytes, or add ?frame=false to send them as they are", ErrInvalid, fr.f.Size, len(p), fr.f.Size)
		}
		return p, nil
	case FrameLengthPrefix:
		hb := fr.f.HeaderBytes
		n := uint64(len(p))
		if fr.f.LengthIncludesHeader {
			n += uint64(hb)
		}
		if hb < 8 && n >= 1<<(8*hb) {
			most := uint64(1)<<(8*hb) - 1
			if fr.f.LengthIncludesHeader {
				most -= uint64(hb)
			}
			return nil, fmt.Errorf("%w: a send of %d bytes does not fit a %d-byte length header (at most %d bytes); send less, or add ?frame=false and write the header yourself", ErrInvalid, len(p), hb, most)
		}
		out := make([]byte, hb, hb+len(p))
		var h [8]byte
		if fr.f.Endian == "little" {
			binary.LittleEndian.PutUint64(h[:], n)
			copy(out, h[:hb])
		} else {
			binary.BigEndian.PutUint64(h[:], n)
			copy(out, h[8-hb:])
		}
		return append(out, p...), nil
	}
	return p, nil
}

// SendFrame sends p as one frame of the socket's framing (see Framing):
// lines and delimiter append the delimiter, length_prefix prepends the
// header, fixed takes exactly Size bytes (else ErrInvalid, nothing sent).
// A raw socket sends p as it is. Otherwise as SendBytes.
func (s *Socket) SendFrame(ctx context.Context, p []byte) (int64, error) {
	fr := newFramer(s.framing)
	fp, err := fr.frameOf(p)
	if err != nil {
		return 0, err
	}
	return s.SendBytes(ctx, fp)
}

// FrameOf returns p framed as the framing of the server's sockets says, for
// a Broadcast of one frame; errors as Socket.SendFrame.
func (s *Server) FrameOf(p []byte) ([]byte, error) {
	fr := newFramer(s.recv.framing)
	return fr.frameOf(p)
}

// Framing returns the socket's framing, with its defaults filled in.
func (s *Socket) Framing() Framing { return s.framing }
