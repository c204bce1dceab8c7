package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// integritySize is how much each integrity test moves: enough for thousands
// of messages, hundreds of reads and many buffer refills.
const integritySize = 64 << 20

// integrityBuffer is the socket buffer of the integrity tests: large, so that
// a read carries megabytes, yet a quarter of the stream, so that the socket
// blocks and resumes many times.
const integrityBuffer = 16 << 20

// integrityData is the random stream every integrity test sends, made once.
var integrityData = sync.OnceValue(func() []byte {
	data := make([]byte, integritySize)
	rand.NewChaCha8([32]byte{'s', 'o', 'c', 'k', 'm', 'a', 'n'}).Read(data)
	return data
})

// chunks cuts n bytes into random sizes from 1 B to max.
func chunks(seed uint64, n, max int) []int {
	rng := rand.New(rand.NewPCG(seed, seed))
	var sizes []int
	for n > 0 {
		size := min(1+rng.IntN(max), n)
		sizes = append(sizes, size)
		n -= size
	}
	return sizes
}

// writeAndClose writes data to c in random chunks of 1 B to 256 KiB, then
// closes c. It reports the outcome on the returned channel; it never touches
// a testing.T, and a failed test's cleanup closing c ends it.
func writeAndClose(c net.Conn, data []byte, seed uint64) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer c.Close()
		off := 0
		for _, size := range chunks(seed, len(data), 256<<10) {
			c.SetWriteDeadline(time.Now().Add(testTimeout))
			if _, err := c.Write(data[off : off+size]); err != nil {
				done <- fmt.Errorf("peer writing at byte %d: %w", off, err)
				return
			}
			off += size
		}
		done <- nil
	}()
	return done
}

// drainJSON reads n bytes from socket id through the JSON cursor API with
// encoding=base64, checking that seqs follow on without a gap, and returns
// their hash and the last cursor.
func drainJSON(t *testing.T, a *testAPI, id string, n int) ([]byte, uint64) {
	t.Helper()
	h := sha256.New()
	var cursor uint64
	got := 0
	for got < n {
		var l MessageList
		a.call(http.MethodGet, fmt.Sprintf("/sockets/%s/messages?after=%d&wait=10s&encoding=base64", id, cursor), nil,
			leanCheckHeader, "yes").want(t, http.StatusOK).decode(t, &l)
		if len(l.Messages) == 0 && l.State == "closed" {
			// Closed with nothing more: the stream ended short.
			t.Fatalf("socket %s answered closed, with nothing more, after %d of %d bytes", id, got, n)
		}
		for _, m := range l.Messages {
			if m.Seq != cursor+1 || m.Encoding != "base64" {
				t.Fatalf("after cursor %d got message seq %d encoding %s, want seq %d base64", cursor, m.Seq, m.Encoding, cursor+1)
			}
			data, err := base64.StdEncoding.DecodeString(m.Data)
			if err != nil || len(data) != m.Size {
				t.Fatalf("message %d: %d bytes of size %d, %v", m.Seq, len(data), m.Size, err)
			}
			h.Write(data)
			got += len(data)
			cursor = m.Seq
		}
		if l.Cursor != cursor {
			t.Fatalf("got cursor %d, want the seq of the last message returned, %d", l.Cursor, cursor)
		}
	}
	if got != n {
		t.Fatalf("read %d bytes, want %d", got, n)
	}
	return h.Sum(nil), cursor
}

// drainRaw reads n bytes from socket id as application/octet-stream, passing
// the Sockman-Cursor header back as after, and returns their hash and the
// last cursor.
func drainRaw(t *testing.T, a *testAPI, id string, n int) ([]byte, uint64) {
	t.Helper()
	h := sha256.New()
	var cursor uint64
	got := 0
	for got < n {
		res := a.call(http.MethodGet, fmt.Sprintf("/sockets/%s/messages?after=%d&wait=10s", id, cursor), nil,
			"Accept", "application/octet-stream", leanCheckHeader, "yes").want(t, http.StatusOK)
		if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Fatalf("got Content-Type %q, want application/octet-stream", ct)
		}
		next, err := strconv.ParseUint(res.Header.Get("Sockman-Cursor"), 10, 64)
		if err != nil || next < cursor || (next == cursor) != (len(res.body) == 0) {
			t.Fatalf("after %d got Sockman-Cursor %q with %d bytes: want a later cursor exactly when bytes come", cursor, res.Header.Get("Sockman-Cursor"), len(res.body))
		}
		h.Write(res.body)
		got += len(res.body)
		cursor = next
	}
	if got != n {
		t.Fatalf("read %d bytes, want %d", got, n)
	}
	return h.Sum(nil), cursor
}

// TestReceiveIntegrity: 64 MiB of random bytes, written by a real peer in
// random chunk sizes, come out of the cursor API unchanged, as JSON and as
// octet-stream, on an accepted socket and on a client socket; the counters
// are exact at the end.
func TestReceiveIntegrity(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 256 MiB")
	}
	t.Parallel()
	data := integrityData()
	want := sha256.Sum256(data)

	for i, tc := range []struct {
		kind  string
		drain func(*testing.T, *testAPI, string, int) ([]byte, uint64)
		form  string
	}{
		{"accepted", drainJSON, "json"},
		{"accepted", drainRaw, "octet-stream"},
		{"client", drainJSON, "json"},
		{"client", drainRaw, "octet-stream"},
	} {
		t.Run(tc.kind+"/"+tc.form, func(t *testing.T) {
			a := newTestAPI(t)
			var (
				id   string
				peer net.Conn
			)
			if tc.kind == "accepted" {
				s, c := a.pair(t, func(r *ServerCreate) { r.BufferBytes = integrityBuffer })
				id, peer = s.ID, c
			} else {
				ln := listenPeer(t)
				s := a.dial(t, ln.Addr().String(), func(r *ClientCreate) { r.BufferBytes = integrityBuffer })
				id, peer = s.ID, acceptPeer(t, ln)
			}
			written := writeAndClose(peer, data, uint64(i))

			sum, cursor := tc.drain(t, a, id, len(data))
			if err := <-written; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sum, want[:]) {
				t.Fatalf("SHA-256 of what the API returned is %x, want %x (what the peer wrote)", sum, want)
			}

			// Acknowledge the last read; then nothing is held, and the
			// counters add up.
			if l := a.read(t, id, fmt.Sprintf("?after=%d&wait=10s", cursor)); len(l.Messages) != 0 {
				t.Fatalf("after the whole stream got %d more messages", len(l.Messages))
			}
			waitFor(t, testTimeout, func() bool { return a.socket(t, id).State == "closed" })
			s := a.socket(t, id)
			if s.BytesReceived != integritySize || s.BufferedBytes != 0 || s.BufferedMessages != 0 || s.DroppedBytes != 0 || s.CloseReason != "peer closed" {
				t.Errorf("at the end got %+v, want %d bytes received, nothing buffered or dropped, closed by the peer", s, integritySize)
			}
		})
	}
}

// TestSendIntegrity: 64 MiB of random bytes POSTed as octet-stream bodies of
// random sizes reach a real peer unchanged, on an accepted socket and on a
// client socket, and bytes_sent is exact.
func TestSendIntegrity(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB")
	}
	t.Parallel()
	const maxBody = 1 << 20
	data := integrityData()
	want := sha256.Sum256(data)

	for i, kind := range []string{"accepted", "client"} {
		t.Run(kind, func(t *testing.T) {
			a := newTestAPI(t, withOptions(func(o *Options) { o.MaxBody = maxBody }))
			var (
				id   string
				peer net.Conn
			)
			if kind == "accepted" {
				s, c := a.pair(t)
				id, peer = s.ID, c
			} else {
				ln := listenPeer(t)
				id, peer = a.dial(t, ln.Addr().String()).ID, acceptPeer(t, ln)
			}
			received := make(chan hashResult, 1)
			go readAndHash(peer, len(data), received)

			var sent int64
			off := 0
			for _, size := range chunks(uint64(100+i), len(data), maxBody) {
				var r SendResult
				a.call(http.MethodPost, "/sockets/"+id+"/messages", data[off:off+size], "Content-Type", "application/octet-stream").
					want(t, http.StatusOK).decode(t, &r)
				if r.Bytes != int64(size) {
					t.Fatalf("send at byte %d: got bytes %d, want %d", off, r.Bytes, size)
				}
				sent += r.Bytes
				off += size
			}
			got := <-received
			if got.err != nil {
				t.Fatal(got.err)
			}
			if !bytes.Equal(got.sum, want[:]) {
				t.Fatalf("SHA-256 of what the peer read is %x, want %x (what was POSTed)", got.sum, want)
			}
			if s := a.socket(t, id); sent != integritySize || s.BytesSent != integritySize {
				t.Errorf("got %d bytes answered and bytes_sent %d, want %d", sent, s.BytesSent, integritySize)
			}
		})
	}
}

type hashResult struct {
	sum []byte
	err error
}

// readAndHash reads exactly n bytes from c and sends their hash. A failed
// test's cleanup closing c ends it.
func readAndHash(c net.Conn, n int, out chan<- hashResult) {
	h := sha256.New()
	c.SetReadDeadline(time.Now().Add(4 * testTimeout))
	_, err := copyN(h, c, n)
	out <- hashResult{sum: h.Sum(nil), err: err}
}

func copyN(h hash.Hash, c net.Conn, n int) (int, error) {
	buf := make([]byte, 256<<10)
	got := 0
	for got < n {
		m, err := c.Read(buf[:min(len(buf), n-got)])
		h.Write(buf[:m])
		got += m
		if err != nil {
			return got, fmt.Errorf("peer reading at byte %d of %d: %w", got, n, err)
		}
	}
	return got, nil
}
