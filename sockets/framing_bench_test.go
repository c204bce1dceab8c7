//go:build unix

package sockets

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

// BenchmarkIngestFramed is BenchmarkIngest of a stream of lines, on a raw
// socket and on one framed as lines: what cutting the stream into frames
// costs. B/op and allocs/op are per 256 KiB streamed.
func BenchmarkIngestFramed(b *testing.B) {
	for _, size := range []int{64, 1 << 10} {
		line := append(bytes.Repeat([]byte("x"), size-1), '\n')
		chunk := bytes.Repeat(line, (256<<10)/size)
		for _, f := range []Framing{{Type: FrameRaw}, {Type: FrameLines}} {
			b.Run(f.Type+"-"+benchSize(size), func(b *testing.B) {
				benchIngest(b, RecvOptions{BufferBytes: 16 << 20, Framing: f}, chunk)
			})
		}
	}
}

// benchIngest streams chunk b.N times from a peer into a socket with o and
// reads it all with a cursor.
func benchIngest(b *testing.B, o RecvOptions, chunk []byte) {
	r := benchRegistry(b, Config{})
	srv, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1", Recv: o})
	if err != nil {
		b.Fatal(err)
	}
	peer, s := benchPeer(b, r, srv)
	streamAndRead(b, peer, s, chunk, o.Framing.Framed())
}

// streamAndRead has peer write chunk b.N times while it reads everything
// from s with a cursor, timed; framed: each message lost one byte (a \n).
// It reports the bytes per message.
func streamAndRead(b *testing.B, peer net.Conn, s *Socket, chunk []byte, framed bool) {
	total := int64(b.N) * int64(len(chunk))
	werr := make(chan error, 1)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := benchCPU(b)
	go func() {
		var err error
		for n := total; n > 0 && err == nil; n -= int64(len(chunk)) {
			_, err = peer.Write(chunk)
		}
		werr <- err
	}()
	var got int64
	msgs := 0
	cursor := uint64(0)
	for got < total {
		sel, err := s.Read(context.Background(), ReadOptions{After: &cursor, MaxBytes: 8 << 20, Wait: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if len(sel.Messages) == 0 {
			b.Fatalf("no data within 10s after %d of %d bytes", got, total)
		}
		for _, m := range sel.Messages {
			got += int64(len(m.Data))
			if framed {
				got++ // the \n the frame lost
			}
		}
		msgs += len(sel.Messages)
		cursor = sel.Cursor
		sel.Release()
	}
	b.StopTimer()
	cpu()
	if err := <-werr; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(got)/float64(msgs), "B/msg")
}
