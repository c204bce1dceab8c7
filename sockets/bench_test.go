//go:build unix

package sockets

// Micro-benchmarks of the engine's hot paths, for `go test -bench . -benchmem`
// and for profiles (-cpuprofile, -memprofile). They assert nothing about
// speed; `go run ./bench` measures the whole service against its baselines.

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/testnet"
)

// benchRegistry returns a registry that logs nowhere, closed at the end.
func benchRegistry(b *testing.B, cfg Config) *Registry {
	b.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	r := New(cfg)
	b.Cleanup(func() { r.Close() })
	return r
}

// benchPair opens a server, connects a peer and returns the peer and the
// accepted socket.
func benchPair(b *testing.B, r *Registry, bufBytes int) (*net.TCPConn, *Socket) {
	b.Helper()
	srv, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1", Recv: RecvOptions{BufferBytes: bufBytes}})
	if err != nil {
		b.Fatal(err)
	}
	return benchPeer(b, r, srv)
}

// benchPeer connects a peer to srv and returns it and the accepted socket.
func benchPeer(b *testing.B, r *Registry, srv *Server) (*net.TCPConn, *Socket) {
	b.Helper()
	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		b.Fatal(err)
	}
	peer := c.(*net.TCPConn)
	b.Cleanup(func() { peer.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ids := srv.socketIDs(); len(ids) > 0 {
			s, err := r.Socket(ids[0])
			if err != nil {
				b.Fatal(err)
			}
			return peer, s
		}
		if time.Now().After(deadline) {
			b.Fatal("the server did not register the peer's connection")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkBufferPushAck stores one message and acknowledges it: the cost
// the buffer adds to every read from the kernel, without the read.
func BenchmarkBufferPushAck(b *testing.B) {
	for _, size := range []int{64, 256 << 10} {
		b.Run(benchSize(size), func(b *testing.B) {
			buf := newBuffer(4<<20, OverflowBlock, newMemory(0))
			data := make([]byte, size)
			now := time.Now()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := benchCPU(b)
			for b.Loop() {
				buf.mem.add(int64(size + entryCost))
				buf.push(data, nil, true, now) // as the read loop hands over a slice made for it
				if err := buf.ack(buf.lastSeq); err != nil {
					b.Fatal(err)
				}
			}
			cpu()
		})
	}
}

// BenchmarkBufferSelect selects 1,000 held messages, as a read does.
func BenchmarkBufferSelect(b *testing.B) {
	buf := newBuffer(1<<30, OverflowBlock, newMemory(0))
	data := make([]byte, 64)
	for range 1000 {
		buf.mem.add(int64(64 + entryCost))
		buf.push(data, nil, false, time.Now())
		buf.sealed = buf.lastSeq // a message each
	}
	b.ReportAllocs()
	cpu := benchCPU(b)
	for b.Loop() {
		sel, _ := buf.selectAfter(0, 1000, 0)
		if len(sel.Messages) != 1000 {
			b.Fatalf("got %d messages, want 1000", len(sel.Messages))
		}
		sel.Release()
	}
	cpu()
}

// BenchmarkIngest is the read path end to end: a peer streams 256 KiB
// writes, the socket's read loop reads them into its buffer, and a reader
// takes and acknowledges them with Read, as GET /sockets/{id}/messages
// does. B/op and allocs/op are per 256 KiB streamed.
func BenchmarkIngest(b *testing.B) { benchIngestScrape(b, 0) }

// BenchmarkIngestScraped is BenchmarkIngest while a scraper reads the
// registry's Metrics every millisecond, thousands of times as often as a
// Prometheus scrape: what the metrics cost the receive path (BENCHMARKS.md).
func BenchmarkIngestScraped(b *testing.B) { benchIngestScrape(b, time.Millisecond) }

// benchIngestScrape is BenchmarkIngest with Registry.Metrics called every scrape
// meanwhile (0: never).
func benchIngestScrape(b *testing.B, scrape time.Duration) {
	r := benchRegistry(b, Config{})
	peer, s := benchPair(b, r, 16<<20)
	if scrape > 0 {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(scrape)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					_ = r.Metrics()
				}
			}
		}()
		defer func() { close(stop); <-done }()
	}
	streamAndRead(b, peer, s, bytes.Repeat([]byte("0123456789abcdef"), 16<<10), false)
}

// BenchmarkSend writes 1 MiB to a peer that discards, as POST
// /sockets/{id}/messages with an octet-stream body does.
func BenchmarkSend(b *testing.B) {
	r := benchRegistry(b, Config{})
	peer, s := benchPair(b, r, 0)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256<<10)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu := benchCPU(b)
	for b.Loop() {
		if _, err := s.Send(context.Background(), bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	cpu()
	b.StopTimer()
	s.Close(ReasonAPI)
	<-done
}

// BenchmarkIdleSockets opens 1,000 connected idle sockets and reports the
// Go heap and goroutine stack they hold, per socket, after a GC. (RSS per
// socket, kernel included, is what `go run ./bench -bench idle` measures.)
func BenchmarkIdleSockets(b *testing.B) {
	const n = 1000
	for b.Loop() {
		b.StopTimer()
		r := New(Config{Logger: slog.New(slog.DiscardHandler), MaxSockets: 2 * n})
		srv, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1"})
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		peers := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				b.Fatal(err)
			}
			peers = append(peers, c)
		}
		for len(srv.socketIDs()) < n {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		// The peers' connections live in this process too: the heap
		// figure is per socket and its peer's net.Conn together.
		heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		stack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
		b.ReportMetric(heap, "heap-B/socket+peer")
		b.ReportMetric(stack, "stack-B/socket")
		for _, c := range peers {
			c.Close()
		}
		r.Close()
		b.StartTimer()
	}
}

func benchSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// benchCPU reports the process's CPU time per operation.
var benchCPU = testnet.ReportCPU
