//go:build unix

package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sockman/sockman/sockets"
)

// The WebSocket stream against a raw loopback TCP stream of the same bytes,
// in the same run: BenchmarkStreamIngest is a peer's bytes to the
// WebSocket client (the peer writes 256 KiB chunks), BenchmarkStreamSend
// the client's 64 KiB frames (websocat's size) to the peer. An op is one
// chunk or frame. Each reports the process's CPU time per op too (user and
// system, every goroutine: the peer and client included, as in raw): on a
// shared machine a steadier figure than the rate. Compare the medians of
// raw and ws, from runs that interleave them:
//
//	go test -c -o /tmp/api.test ./api/ &&
//	for i in 1 2 3 4 5 6; do /tmp/api.test -test.run '^$' -test.bench 'Stream(Ingest|Send)'; done

const (
	benchIngestChunk = 256 << 10
	benchSendFrame   = 64 << 10
)

// benchStream is one socket with a stream attached, over real HTTP.
type benchStream struct {
	reg  *sockets.Registry
	srv  *httptest.Server
	peer net.Conn
	ws   *websocket.Conn
	id   string
}

func newBenchStream(b *testing.B) *benchStream {
	b.Helper()
	reg := sockets.New(sockets.Config{Logger: slog.New(slog.DiscardHandler), BufferBytes: 4 << 20})
	srv := httptest.NewServer(New(reg, Options{Logger: slog.New(slog.DiscardHandler)}))
	bs := &benchStream{reg: reg, srv: srv}
	l, err := reg.Listen(context.Background(), sockets.ListenOptions{Host: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	if bs.peer, err = net.Dial("tcp", l.Info().Address); err != nil {
		b.Fatal(err)
	}
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == ""; {
		if ids := l.Info().Sockets; len(ids) > 0 {
			id = ids[0]
		} else if time.Now().After(deadline) {
			b.Fatal("no accepted socket")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bs.ws, _, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/sockets/"+id+"/stream", nil)
	if err != nil {
		b.Fatal(err)
	}
	bs.ws.SetReadLimit(-1)
	bs.id = id
	return bs
}

func (bs *benchStream) close() {
	bs.ws.CloseNow()
	bs.peer.Close()
	bs.reg.Close()
	bs.srv.Close()
}

// wholeFrameClient opens a second stream by hand (the first, the
// library's, is closed first: one consumer at a time) and returns its
// connection and one masked binary frame of benchSendFrame bytes.
func wholeFrameClient(b *testing.B, bs *benchStream) (net.Conn, []byte) {
	b.Helper()
	bs.ws.Close(websocket.StatusNormalClosure, "")
	u := strings.TrimPrefix(bs.srv.URL, "http://")
	var conn net.Conn
	var br *bufio.Reader
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", u)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(c, "GET /sockets/%s/stream HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", bs.id, u)
		br = bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			conn = c
			break
		}
		c.Close()
		if res.StatusCode != http.StatusConflict || time.Now().After(deadline) {
			b.Fatalf("upgrade: got status %d", res.StatusCode)
		}
	}
	// The service sends nothing unless the peer does; its close comes last.
	go io.Copy(io.Discard, br)
	payload := bytes.Repeat([]byte("0123456789abcdef"), benchSendFrame/16)
	key := [4]byte{1, 2, 3, 4}
	frame := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(frame[2:], uint64(len(payload)))
	frame = append(frame, key[:]...)
	for i, c := range payload {
		frame = append(frame, c^key[i%4])
	}
	return conn, frame
}

// rawPair is a loopback TCP connection: the baseline.
func rawPair(b *testing.B) (w, r net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	if w, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		b.Fatal(err)
	}
	if r = <-accepted; r == nil {
		b.Fatal("accept failed")
	}
	return w, r
}

// pump writes n chunks of size to w in a goroutine, and returns a channel
// that gets its error.
func pump(n, size int, write func([]byte) error) <-chan error {
	errc := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		for range n {
			if err := write(chunk); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	return errc
}

// drain reads n bytes from r into buf, a read at a time.
func drain(r io.Reader, n int64, buf []byte) error {
	for n > 0 {
		k, err := r.Read(buf[:min(int64(len(buf)), n)])
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkStreamIngest(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		w, r := rawPair(b)
		defer w.Close()
		defer r.Close()
		b.SetBytes(benchIngestChunk)
		defer benchCPU(b)()
		errc := pump(b.N, benchIngestChunk, func(p []byte) error { _, err := w.Write(p); return err })
		if err := drain(r, int64(b.N)*benchIngestChunk, make([]byte, benchIngestChunk)); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
	b.Run("ws", func(b *testing.B) {
		bs := newBenchStream(b)
		defer bs.close()
		b.ResetTimer()
		b.SetBytes(benchIngestChunk)
		defer benchCPU(b)()
		errc := pump(b.N, benchIngestChunk, func(p []byte) error { _, err := bs.peer.Write(p); return err })
		buf := make([]byte, benchIngestChunk)
		frames := 0
		defer func() { b.ReportMetric(float64(frames)/float64(b.N), "frames/op") }()
		for left := int64(b.N) * benchIngestChunk; left > 0; frames++ {
			_, r, err := bs.ws.Reader(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			for {
				k, err := r.Read(buf)
				left -= int64(k)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkStreamSend(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		w, r := rawPair(b)
		defer w.Close()
		defer r.Close()
		b.SetBytes(benchSendFrame)
		defer benchCPU(b)()
		errc := pump(b.N, benchSendFrame, func(p []byte) error { _, err := w.Write(p); return err })
		if err := drain(r, int64(b.N)*benchSendFrame, make([]byte, 256<<10)); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
	// The library's client masks each frame through a 4 KiB buffer, so it
	// writes 64 KiB in 16 system calls; websocat writes a frame at once.
	// ws-whole is a client that writes each frame whole (masked once,
	// before the timer), so that what is measured is sockman's side.
	b.Run("ws-whole", func(b *testing.B) {
		bs := newBenchStream(b)
		defer bs.close()
		conn, frame := wholeFrameClient(b, bs)
		defer conn.Close()
		b.SetBytes(benchSendFrame)
		b.ResetTimer()
		defer benchCPU(b)()
		errc := pump(b.N, 16, func([]byte) error { _, err := conn.Write(frame); return err })
		if err := drain(bs.peer, int64(b.N)*benchSendFrame, make([]byte, 256<<10)); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
	b.Run("ws", func(b *testing.B) {
		bs := newBenchStream(b)
		defer bs.close()
		b.ResetTimer()
		b.SetBytes(benchSendFrame)
		defer benchCPU(b)()
		errc := pump(b.N, benchSendFrame, func(p []byte) error {
			return bs.ws.Write(context.Background(), websocket.MessageBinary, p)
		})
		if err := drain(bs.peer, int64(b.N)*benchSendFrame, make([]byte, 256<<10)); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
}
