package sockets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// stallWrite is what writeUntilStalled saw.
type stallWrite struct {
	written int64
	sum     []byte // SHA-256 of the bytes the kernel took
	err     error  // the error that ended the writes (a timeout when stalled)
}

// stallDeadline is how long one peer write may block before the peer counts
// as stalled by TCP flow control. Generous: a loaded CI machine must not make
// a reading socket look stalled.
const stallDeadline = time.Second

// writeUntilStalled writes pseudo-random chunks until one write cannot
// finish within stallDeadline, and reports what the kernel took (partial
// writes included).
func writeUntilStalled(c net.Conn, seed uint64) stallWrite {
	rng := rand.New(rand.NewPCG(seed, seed))
	h := sha256.New()
	chunk := make([]byte, 32<<10)
	var res stallWrite
	for {
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		c.SetWriteDeadline(time.Now().Add(stallDeadline))
		n, err := c.Write(chunk)
		h.Write(chunk[:n])
		res.written += int64(n)
		if err != nil {
			res.err = err
			res.sum = h.Sum(nil)
			return res
		}
	}
}

func checkContiguous(t *testing.T, seqs []uint64) {
	t.Helper()
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("message %d: got seq %d, want %d (no gap: nothing dropped)", i, seq, i+1)
		}
	}
}

func TestBlockBufferStallsPeerAndLosesNothing(t *testing.T) {
	const limit = 64 << 10
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: limit, Overflow: string(OverflowBlock)}})

	done := make(chan stallWrite, 1)
	go func() { done <- writeUntilStalled(peer, 1) }()
	var (
		res       stallWrite
		maxBuffer int64
	)
	waitFor(t, 2*guard, func() bool {
		maxBuffer = max(maxBuffer, s.Info().BufferedBytes)
		select {
		case res = <-done:
			return true
		default:
			return false
		}
	})
	if !isTimeout(res.err) {
		t.Fatalf("peer writes into an unread socket: got %v, want a write timeout (stalled by flow control)", res.err)
	}
	if res.written <= limit {
		t.Fatalf("peer wrote %d bytes before stalling, want more than the %d-byte buffer", res.written, limit)
	}
	// Once stalled, the buffer is exactly full and nothing was dropped.
	waitFor(t, guard, func() bool {
		maxBuffer = max(maxBuffer, s.Info().BufferedBytes)
		return s.Info().BufferedBytes == limit
	})
	if maxBuffer > limit {
		t.Fatalf("buffered bytes: got %d at most, want at most %d", maxBuffer, limit)
	}
	info := s.Info()
	if info.DroppedBytes != 0 || info.State != StateConnected {
		t.Fatalf("dropped, state: got %d, %q; want 0, %q", info.DroppedBytes, info.State, StateConnected)
	}

	got, seqs := drain(t, s, res.written)
	if int64(len(got)) != res.written {
		t.Fatalf("bytes read back: got %d, want %d", len(got), res.written)
	}
	if sum := sha256.Sum256(got); !bytes.Equal(sum[:], res.sum) {
		t.Fatalf("SHA-256 of what was read: got %x, want %x", sum, res.sum)
	}
	checkContiguous(t, seqs)
	if info := s.Info(); info.BytesReceived != res.written || info.DroppedBytes != 0 {
		t.Fatalf("bytes_received, dropped: got %d, %d; want %d, 0", info.BytesReceived, info.DroppedBytes, res.written)
	}
}

func TestMaxBufferTotalPausesReadingUntilAcked(t *testing.T) {
	const (
		total   = 64 << 10
		perSock = 1 << 20
		peers   = 2
	)
	r := newTestRegistry(t, Config{MaxBufferTotal: total})
	srv := listen(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: perSock}})
	var (
		conns   [peers]*net.TCPConn
		sockets [peers]*Socket
		results [peers]chan stallWrite
	)
	for i := range peers {
		conns[i] = dialPeer(t, srv.addr)
		sockets[i] = acceptedSocket(t, r, srv, conns[i])
	}
	for i := range peers {
		results[i] = make(chan stallWrite, 1)
		go func() { results[i] <- writeUntilStalled(conns[i], uint64(10+i)) }()
	}
	var (
		writes    [peers]stallWrite
		got       int
		maxUsed   int64
		maxBuffer int64
	)
	sample := func() {
		var sum int64
		for _, s := range sockets {
			sum += s.Info().BufferedBytes
		}
		maxBuffer = max(maxBuffer, sum)
		maxUsed = max(maxUsed, r.mem.used.Load())
	}
	waitFor(t, 2*guard, func() bool {
		sample()
		for i := range peers {
			select {
			case writes[i] = <-results[i]:
				got++
			default:
			}
		}
		return got == peers
	})
	for i, w := range writes {
		if !isTimeout(w.err) {
			t.Fatalf("peer %d: got %v, want a write timeout (stalled by the registry-wide limit)", i, w.err)
		}
	}
	// Stalled: the registry total is exactly full, no socket's own buffer is.
	waitFor(t, guard, func() bool { sample(); return r.mem.used.Load() == total })
	if maxBuffer > total || maxUsed > total {
		t.Fatalf("bytes buffered by all sockets: got %d (accounted %d) at most, want at most %d", maxBuffer, maxUsed, total)
	}
	for i, s := range sockets {
		if b := s.Info().BufferedBytes; b >= perSock {
			t.Fatalf("socket %d buffered: got %d, want less than its own %d (the total must be what paused it)", i, b, perSock)
		}
	}

	// A full registry refuses new connections rather than buffering them.
	if _, err := r.Dial(context.Background(), DialOptions{Host: "127.0.0.1", Port: portOf(t, srv.addr)}); !errors.Is(err, ErrLimit) {
		t.Fatalf("Dial while the total is reached: got %v, want %v", err, ErrLimit)
	}
	late := dialPeer(t, srv.addr)
	late.SetReadDeadline(time.Now().Add(guard))
	if _, err := late.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a connection accepted while the total is reached: got data, want it closed")
	}
	waitFor(t, guard, func() bool { return srv.Info().Rejected == 1 })

	// Acknowledging frees the total: both sockets resume and lose nothing.
	var wg sync.WaitGroup
	for i, s := range sockets {
		wg.Go(func() {
			data, seqs, err := readUntil(s, writes[i].written)
			if err != nil {
				t.Error(err)
				return
			}
			if sum := sha256.Sum256(data); int64(len(data)) != writes[i].written || !bytes.Equal(sum[:], writes[i].sum) {
				t.Errorf("socket %d: got %d bytes with SHA-256 %x, want %d with %x", i, len(data), sum, writes[i].written, writes[i].sum)
			}
			for j, seq := range seqs {
				if seq != uint64(j+1) {
					t.Errorf("socket %d message %d: got seq %d, want %d", i, j, seq, j+1)
					return
				}
			}
		})
	}
	wg.Wait()
	// A read loop holds a share of the total only while a read(2) runs.
	waitFor(t, guard, func() bool { return r.mem.used.Load() == 0 })
}

func TestDropOldestKeepsNewestAndCountsDropped(t *testing.T) {
	const (
		limit = 64 << 10
		total = 1 << 20
	)
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: limit, Overflow: string(OverflowDropOldest)}})
	payload := make([]byte, total)
	rand.NewChaCha8([32]byte{3}).Read(payload)
	if _, err := peer.Write(payload); err != nil {
		t.Fatalf("peer write: got %v, want nil", err)
	}
	peer.Close()
	waitReadLoopDone(t, s) // nobody read, yet the socket kept reading to the end
	info := s.Info()
	if info.BytesReceived != total || info.BufferedBytes+info.DroppedBytes != total {
		t.Fatalf("received, buffered + dropped: got %d, %d; want %d, %d", info.BytesReceived, info.BufferedBytes+info.DroppedBytes, total, total)
	}
	if info.BufferedBytes > limit || info.DroppedBytes == 0 {
		t.Fatalf("buffered, dropped: got %d, %d; want at most %d, more than 0", info.BufferedBytes, info.DroppedBytes, limit)
	}
	if got, want := r.mem.used.Load(), heldCost(s.buf); got != want || got < info.BufferedBytes {
		t.Fatalf("registry total: got %d, want %d, the cost of the %d bytes held (dropped bytes given back)", got, want, info.BufferedBytes)
	}
	sel, err := s.Read(context.Background(), ReadOptions{})
	if err != nil || !sel.EOF || len(sel.Messages) == 0 {
		t.Fatalf("Read: got %d messages, EOF %v, err %v; want some, true, nil", len(sel.Messages), sel.EOF, err)
	}
	if first := sel.Messages[0].Seq; first == 1 {
		t.Fatalf("first seq held: got 1, want a gap where messages were dropped")
	}
	var held []byte
	for _, m := range sel.Messages {
		held = append(held, m.Data...)
	}
	if !bytes.HasSuffix(payload, held) {
		t.Fatalf("held bytes: got %d bytes that are not the end of what the peer sent, want the newest", len(held))
	}
}
