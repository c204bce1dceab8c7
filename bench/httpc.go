package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// httpConn is a minimal HTTP/1.1 keep-alive client on one TCP connection.
// The measured requests go through it rather than net/http so that the
// client costs as little as possible and the same in every comparison:
// one write per request head (a body is a second write, whole), responses
// read through a large buffer and handed to a sink, never collected.
type httpConn struct {
	c    net.Conn
	br   *bufio.Reader
	host string
	head []byte // scratch for the request head
	scr  []byte // scratch for response bodies
}

// response is what roundTrip keeps of a response: the status and the few
// headers the benchmarks need.
type response struct {
	status   int
	cursor   string // Sockman-Cursor
	location string
	length   int64 // body bytes read
}

const clientBuf = 256 << 10

func dialHTTP(addr string) (*httpConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &httpConn{
		c:    c,
		br:   bufio.NewReaderSize(c, clientBuf),
		host: addr,
		scr:  make([]byte, clientBuf),
	}, nil
}

func (h *httpConn) Close() error { return h.c.Close() }

// writeRequest writes a request head (and body, if any) without waiting for
// the answer; readResponse reads it.
func (h *httpConn) writeRequest(method, target string, hdrs []string, body []byte) error {
	b := h.head[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.host...)
	b = append(b, "\r\n"...)
	for _, kv := range hdrs {
		b = append(b, kv...)
		b = append(b, "\r\n"...)
	}
	if body != nil || method == "POST" || method == "PUT" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	h.head = b
	if len(body) > 0 && len(body) < 4096 {
		b = append(b, body...)
		h.head = b
		body = nil
	}
	if _, err := h.c.Write(b); err != nil {
		return err
	}
	if len(body) > 0 {
		if _, err := h.c.Write(body); err != nil {
			return err
		}
	}
	return nil
}

// roundTrip sends a request and reads the answer, passing each piece of the
// body to sink (which must not keep it); a nil sink discards.
func (h *httpConn) roundTrip(method, target string, hdrs []string, body []byte, sink func([]byte)) (response, error) {
	if err := h.writeRequest(method, target, hdrs, body); err != nil {
		return response{}, err
	}
	return h.readResponse(sink)
}

// readResponse reads one response: Content-Length or chunked bodies.
func (h *httpConn) readResponse(sink func([]byte)) (response, error) {
	var r response
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return r, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return r, fmt.Errorf("bad status line %q", line)
	}
	r.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return r, fmt.Errorf("bad status line %q", line)
	}
	length := int64(-1)
	chunked := false
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return r, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case asciiEqualFold(k, "Content-Length"):
			length, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return r, fmt.Errorf("bad Content-Length %q", v)
			}
		case asciiEqualFold(k, "Transfer-Encoding"):
			chunked = asciiEqualFold(v, "chunked")
		case asciiEqualFold(k, "Sockman-Cursor"):
			r.cursor = string(v)
		case asciiEqualFold(k, "Location"):
			r.location = string(v)
		}
	}
	switch {
	case chunked:
		for {
			line, err := h.br.ReadSlice('\n')
			if err != nil {
				return r, err
			}
			line = bytes.TrimRight(line, "\r\n")
			if i := bytes.IndexByte(line, ';'); i >= 0 {
				line = line[:i]
			}
			n, err := strconv.ParseInt(string(line), 16, 64)
			if err != nil {
				return r, fmt.Errorf("bad chunk size %q", line)
			}
			if n == 0 {
				// Trailers, then the blank line.
				for {
					line, err := h.br.ReadSlice('\n')
					if err != nil {
						return r, err
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						return r, nil
					}
				}
			}
			if err := h.readBody(n, sink); err != nil {
				return r, err
			}
			r.length += n
			if _, err := h.br.Discard(2); err != nil {
				return r, err
			}
		}
	case length >= 0:
		r.length = length
		return r, h.readBody(length, sink)
	case r.status == 204 || r.status == 304:
		return r, nil
	}
	return r, errors.New("response without length (connection close bodies are not supported)")
}

// readBody reads n bytes of body into the scratch buffer, piece by piece.
// bufio.Reader.Read reads straight into the scratch when its own buffer is
// empty, so a large body costs one read syscall per 256 KiB at most.
func (h *httpConn) readBody(n int64, sink func([]byte)) error {
	for n > 0 {
		k, err := h.br.Read(h.scr[:min(n, int64(len(h.scr)))])
		if k > 0 && sink != nil {
			sink(h.scr[:k])
		}
		n -= int64(k)
		if err != nil {
			if err == io.EOF && n > 0 {
				return io.ErrUnexpectedEOF
			}
			if n > 0 {
				return err
			}
		}
	}
	return nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// collect returns a sink that appends to *dst (for small setup answers).
func collect(dst *[]byte) func([]byte) {
	return func(p []byte) { *dst = append(*dst, p...) }
}
