//go:build unix

package api

// Micro-benchmarks of the HTTP layer's hot paths, for `go test -bench .
// -benchmem` and for profiles (-cpuprofile, -memprofile). They assert
// nothing about speed; `go run ./bench` measures the whole service against
// its baselines.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/testnet"
	"github.com/sockman/sockman/sockets"
)

// benchSelection returns n messages of size bytes each; text ones are
// printable ASCII (valid UTF-8), others random (base64 under auto).
func benchSelection(n, size int, text bool) sockets.Selection {
	var sel sockets.Selection
	now := time.Now().UTC()
	for i := range n {
		data := make([]byte, size)
		if text {
			for j := range data {
				data[j] = 'a' + byte(j%26)
			}
		} else {
			rand.Read(data)
		}
		sel.Messages = append(sel.Messages, sockets.Message{Seq: uint64(i + 1), ReceivedAt: now, Data: data})
	}
	sel.Cursor = uint64(n)
	return sel
}

// BenchmarkWriteMessageList encodes a read's answer as JSON, as GET
// /sockets/{id}/messages does, into a writer that discards. MB/s is of the
// messages' bytes before encoding.
func BenchmarkWriteMessageList(b *testing.B) {
	for _, shape := range []struct {
		name    string
		n, size int
	}{{"16x256KiB", 16, 256 << 10}, {"1000x64B", 1000, 64}} {
		for _, enc := range []struct {
			name, encoding string
			text           bool
		}{{"base64", "base64", false}, {"hex", "hex", false}, {"auto-text", "auto", true}, {"auto-binary", "auto", false}} {
			b.Run(shape.name+"/"+enc.name, func(b *testing.B) {
				sel := benchSelection(shape.n, shape.size, enc.text)
				sel.State = "connected"
				b.SetBytes(int64(shape.n * shape.size))
				b.ReportAllocs()
				cpu := benchCPU(b)
				for b.Loop() {
					if err := writeMessageList(io.Discard, "sock-1", sel, enc.encoding); err != nil {
						b.Fatal(err)
					}
				}
				cpu()
			})
		}
	}
}

// benchWriter is an http.ResponseWriter that discards the body.
type benchWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *benchWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *benchWriter) WriteHeader(status int) { w.status = status }

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += int64(len(p))
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchAPI is the real router over a real registry, called in process.
type benchAPI struct {
	reg *sockets.Registry
	h   http.Handler
}

func newBenchAPI(b *testing.B) *benchAPI {
	b.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := sockets.New(sockets.Config{Logger: log, BufferBytes: 8 << 20})
	b.Cleanup(func() { reg.Close() })
	return &benchAPI{reg: reg, h: New(reg, Options{Logger: log})}
}

// do serves one request; it fails the benchmark on an unexpected status.
func (a *benchAPI) do(b *testing.B, w *benchWriter, method, target string, hdr http.Header, body []byte, want int) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req.Host = "127.0.0.1"
	for k, v := range hdr {
		req.Header[k] = v
	}
	w.reset()
	a.h.ServeHTTP(w, req)
	if w.status != want {
		b.Fatalf("%s %s: status %d, want %d", method, target, w.status, want)
	}
}

// benchSocket opens a server and connects a peer; it returns the peer and
// the accepted socket's id.
func (a *benchAPI) benchSocket(b *testing.B) (net.Conn, string) {
	b.Helper()
	srv, err := a.reg.Listen(context.Background(), sockets.ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	peer, err := net.Dial("tcp", srv.Info().Address)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { peer.Close() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ids := srv.Info().Sockets; len(ids) > 0 {
			return peer, ids[0]
		}
		if time.Now().After(deadline) {
			b.Fatal("the server did not register the peer")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkReadHandler reads the same 4 MiB held by a socket again and
// again (no after: nothing is acknowledged) through the router, as
// octet-stream and as JSON with base64.
func BenchmarkReadHandler(b *testing.B) {
	a := newBenchAPI(b)
	peer, id := a.benchSocket(b)
	payload := make([]byte, 4<<20)
	rand.Read(payload)
	if _, err := peer.Write(payload); err != nil {
		b.Fatal(err)
	}
	s, err := a.reg.Socket(id)
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); s.Info().BufferedBytes < int64(len(payload)); {
		if time.Now().After(deadline) {
			b.Fatal("the socket did not buffer the payload")
		}
		time.Sleep(time.Millisecond)
	}
	for _, v := range []struct {
		name, query string
		hdr         http.Header
	}{
		{"octet-stream", "", http.Header{"Accept": {"application/octet-stream"}}},
		{"json-base64", "?encoding=base64", nil},
	} {
		b.Run(v.name, func(b *testing.B) {
			w := &benchWriter{}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			cpu := benchCPU(b)
			for b.Loop() {
				a.do(b, w, "GET", "/sockets/"+id+"/messages"+v.query, v.hdr, nil, http.StatusOK)
			}
			cpu()
		})
	}
}

// BenchmarkSendHandler posts 1 MiB octet-stream bodies through the router
// to a peer that discards.
func BenchmarkSendHandler(b *testing.B) {
	a := newBenchAPI(b)
	peer, id := a.benchSocket(b)
	go io.Copy(io.Discard, peer)
	body := make([]byte, 1<<20)
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	w := &benchWriter{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu := benchCPU(b)
	for b.Loop() {
		a.do(b, w, "POST", "/sockets/"+id+"/messages", hdr, body, http.StatusOK)
	}
	cpu()
}

// BenchmarkControlPlane serves the requests the control-plane figures of
// `go run ./bench` are made of.
func BenchmarkControlPlane(b *testing.B) {
	a := newBenchAPI(b)
	_, id := a.benchSocket(b)
	w := &benchWriter{}
	b.Run("healthz", func(b *testing.B) {
		b.ReportAllocs()
		cpu := benchCPU(b)
		for b.Loop() {
			a.do(b, w, "GET", "/healthz", nil, nil, http.StatusOK)
		}
		cpu()
	})
	b.Run("get-socket", func(b *testing.B) {
		b.ReportAllocs()
		cpu := benchCPU(b)
		for b.Loop() {
			a.do(b, w, "GET", "/sockets/"+id, nil, nil, http.StatusOK)
		}
		cpu()
	})
	b.Run("create-delete-server", func(b *testing.B) {
		hdr := http.Header{"Content-Type": {"application/json"}}
		body := []byte(`{"port":0}`)
		b.ReportAllocs()
		cpu := benchCPU(b)
		for b.Loop() {
			a.do(b, w, "POST", "/servers", hdr, body, http.StatusCreated)
			loc := w.Header().Get("Location")
			if !strings.HasPrefix(loc, "/servers/srv-") {
				b.Fatalf("Location %q", loc)
			}
			a.do(b, w, "DELETE", loc, nil, nil, http.StatusNoContent)
		}
		cpu()
	})
}

// benchCPU reports the process's CPU time per operation.
var benchCPU = testnet.ReportCPU

// TestBenchAppendBase64MatchesEncodingBase64 guards the base64 writer that
// BenchmarkWriteMessageList measures: it must write exactly what
// encoding/base64 writes, at every length (SIMD encoders work in blocks).
func TestBenchAppendBase64MatchesEncodingBase64(t *testing.T) {
	src := make([]byte, 4096)
	rand.Read(src)
	for n := 0; n <= len(src); n++ {
		if n > 100 && n%97 != 0 && n != len(src) {
			continue
		}
		prefix := []byte("prefix")
		got := appendBase64(prefix, src[:n])
		want := base64.StdEncoding.AppendEncode([]byte("prefix"), src[:n])
		if !bytes.Equal(got, want) {
			t.Fatalf("appendBase64 of %d bytes: got %q, want %q", n, got, want)
		}
	}
}

// BenchmarkBase64 compares the fast base64 writer with encoding/base64.
func BenchmarkBase64(b *testing.B) {
	src := make([]byte, 48<<10)
	rand.Read(src)
	dst := make([]byte, 0, 64<<10)
	for _, v := range []struct {
		name string
		f    func(dst, src []byte) []byte
	}{{"appendBase64", appendBase64}, {"encoding-base64", base64.StdEncoding.AppendEncode}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			cpu := benchCPU(b)
			for b.Loop() {
				dst = v.f(dst[:0], src)
			}
			cpu()
		})
	}
}

// TestBenchMessageListLenIsWhatIsWritten guards the Content-Length of JSON
// reads: messageListLen must be the exact length writeMessageList writes.
func TestBenchMessageListLenIsWhatIsWritten(t *testing.T) {
	ids := []string{"sock-1", "", "sock-\"<>&\\\n\x01", "\u2028\u2029\u20ac\xe2\x80", "é"}
	for i := range 300 {
		n := i % 7
		sel := benchSelection(n, (i*37)%300, i%2 == 0)
		for j := range sel.Messages {
			sel.Messages[j].Seq = uint64(i*j + 1)
			sel.Messages[j].ReceivedAt = time.Unix(int64(i*1000), int64(i*j*1_000_003)).UTC()
		}
		sel.Cursor = uint64(i * 1000)
		for _, enc := range []string{"base64", "hex"} {
			id := ids[i%len(ids)]
			sel.State = []string{"connected", "closed"}[i%2]
			var buf bytes.Buffer
			if err := writeMessageList(&buf, id, sel, enc); err != nil {
				t.Fatal(err)
			}
			got, ok := messageListLen(id, sel, enc)
			if !ok || got != buf.Len() {
				t.Fatalf("messageListLen(%q, %d messages, %s): got %d, %v; writeMessageList wrote %d", id, n, enc, got, ok, buf.Len())
			}
		}
	}
	if _, ok := messageListLen("sock-1", sockets.Selection{State: "connected"}, "auto"); ok {
		t.Fatalf("messageListLen with encoding auto: got a length, want none (it depends on the data)")
	}
}
