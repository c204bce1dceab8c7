//go:build unix

package api

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockman/sockman/sockets"
)

// BenchmarkIngestSSE is the engine's ingest (a peer streams 256 KiB writes,
// a reader takes them with a cursor) with 0 or 10 GET /events streams (no
// data) open over real HTTP, each read to the end by its client. It reports
// the events published per op and the writes to each stream's connection
// per op (its flushes), and the process's CPU time per op (user and
// system: on a shared machine a steadier figure than the rate). Compare the medians of -count 5 in
// one run:
//
//	go test -run '^$' -bench IngestSSE -count 5 ./api/
func BenchmarkIngestSSE(b *testing.B) {
	for _, n := range []int{0, 10} {
		b.Run("subscribers="+map[int]string{0: "0", 10: "10"}[n], func(b *testing.B) {
			reg := sockets.New(sockets.Config{Logger: slog.New(slog.DiscardHandler), BufferBytes: 16 << 20})
			var writes atomic.Int64
			srv := httptest.NewUnstartedServer(New(reg, Options{Logger: slog.New(slog.DiscardHandler)}))
			srv.Listener = countWrites{srv.Listener, &writes}
			srv.Start()
			defer func() { srv.Close(); reg.Close() }()
			done := make(chan struct{}, n)
			ctx, cancel := context.WithCancel(context.Background())
			for range n {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
				res, err := srv.Client().Do(req)
				if err != nil || res.StatusCode != http.StatusOK {
					b.Fatalf("GET /events: %v", err)
				}
				go func() {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					done <- struct{}{}
				}()
			}
			l, err := reg.Listen(context.Background(), sockets.ListenOptions{Host: "127.0.0.1"})
			if err != nil {
				b.Fatal(err)
			}
			peer, err := net.Dial("tcp", l.Info().Address)
			if err != nil {
				b.Fatal(err)
			}
			defer peer.Close()
			var s *sockets.Socket
			for deadline := time.Now().Add(10 * time.Second); s == nil; {
				if ids := l.Info().Sockets; len(ids) > 0 {
					s, _ = reg.Socket(ids[0])
				} else if time.Now().After(deadline) {
					b.Fatal("no accepted socket")
				}
			}
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 16<<10)
			total := int64(b.N) * int64(len(chunk))
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			writes.Store(0)
			cpu := benchCPU(b)
			go func() {
				for n := total; n > 0; n -= int64(len(chunk)) {
					if _, err := peer.Write(chunk); err != nil {
						return
					}
				}
			}()
			var got int64
			cursor := uint64(0)
			for got < total {
				sel, err := s.Read(context.Background(), sockets.ReadOptions{After: &cursor, MaxBytes: 8 << 20, Wait: 10 * time.Second})
				if err != nil || len(sel.Messages) == 0 {
					b.Fatalf("read after %d of %d bytes: %v", got, total, err)
				}
				for _, m := range sel.Messages {
					got += int64(len(m.Data))
				}
				cursor = sel.Cursor
				sel.Release()
			}
			b.StopTimer()
			cpu()
			b.ReportMetric(float64(reg.LastEventID())/float64(b.N), "events/op")
			if n > 0 {
				b.ReportMetric(float64(writes.Load())/float64(n)/float64(b.N), "writes/op")
			}
			cancel()
			for range n {
				<-done
			}
		})
	}
}

// countWrites counts the writes to the connections it accepts.
type countWrites struct {
	net.Listener
	n *atomic.Int64
}

func (l countWrites) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, l.n}, nil
}

type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countedConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// BenchmarkWriteEvent is the encoding of one socket.received (no data) as
// an SSE event, what each stream does for each event.
func BenchmarkWriteEvent(b *testing.B) {
	bw := bufio.NewWriterSize(io.Discard, 64<<10)
	s := &eventStream{bw: bw}
	e := sockets.Event{ID: 123456, Type: sockets.EventSocketReceived, Time: time.Now().UTC(),
		SocketID: "sock-12", ServerID: "srv-3", Seq: 4567, Size: 16384}
	b.ReportAllocs()
	for b.Loop() {
		s.write(&e)
	}
}
