package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestBackpressureBlocksPeerAndLosesNothing: a peer that keeps writing into a
// socket nobody reads (buffer_bytes 64 KiB, overflow block) is slowed by TCP
// until its write times out; the socket never holds more than its bound and
// drops nothing; reading through the API then yields every byte the peer
// wrote, in order.
func TestBackpressureBlocksPeerAndLosesNothing(t *testing.T) {
	t.Parallel()
	const bound = 64 << 10
	a := newTestAPI(t)
	s, peer := a.pair(t, func(r *ServerCreate) { r.BufferBytes = bound })
	if s.BufferBytes != bound || s.Overflow != "block" {
		t.Fatalf("got buffer %d overflow %s, want %d block", s.BufferBytes, s.Overflow, bound)
	}

	// The peer writes random bytes until one write of 64 KiB cannot finish
	// within a second: the kernel's buffers are full because sockman stopped
	// reading. Each write is hashed as far as it went out.
	wrote := sha256.New()
	type outcome struct {
		n   int64
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		rng := rand.NewChaCha8([32]byte{'b', 'p'})
		buf := make([]byte, 64<<10)
		var total int64
		for total < 1<<30 { // past that, the socket never pushed back
			rng.Read(buf)
			peer.SetWriteDeadline(time.Now().Add(time.Second))
			n, err := peer.Write(buf)
			wrote.Write(buf[:n])
			total += int64(n)
			if err != nil {
				done <- outcome{total, err}
				return
			}
		}
		done <- outcome{total, nil}
	}()

	// While the peer is held up, and after it gave up, the socket holds at
	// most its bound and has dropped nothing.
	var res outcome
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for samples := 0; ; samples++ {
		got := a.socket(t, s.ID)
		if got.BufferedBytes > bound || got.DroppedBytes != 0 || got.State != "connected" {
			t.Fatalf("sample %d: got buffered %d dropped %d state %s, want at most %d buffered, none dropped, connected",
				samples, got.BufferedBytes, got.DroppedBytes, got.State, bound)
		}
		if res.n != 0 && samples >= 5 {
			break
		}
		select {
		case res = <-done:
			if !errors.Is(res.err, os.ErrDeadlineExceeded) {
				t.Fatalf("the peer wrote %d bytes and stopped with %v, want its write to time out", res.n, res.err)
			}
			samples = 0 // five more after the peer gave up
		case <-tick.C:
		}
	}
	t.Logf("the peer was held up after %d bytes", res.n)
	if got := a.socket(t, s.ID); got.BufferedBytes == 0 || got.BytesReceived >= res.n {
		t.Errorf("got %d received, %d buffered, want the buffer to hold data and the rest of the %d bytes to wait in the kernel",
			got.BytesReceived, got.BufferedBytes, res.n)
	}

	// The peer hangs up; reading drains everything it wrote, in order.
	peer.Close()
	sum, _ := drainJSON(t, a, s.ID, int(res.n))
	if want := wrote.Sum(nil); !bytes.Equal(sum, want) {
		t.Fatalf("SHA-256 of what the API returned is %x, want %x (what the peer wrote)", sum, want)
	}
	if got := a.socket(t, s.ID); got.BytesReceived != res.n || got.DroppedBytes != 0 {
		t.Errorf("at the end got %d received, %d dropped, want %d and 0", got.BytesReceived, got.DroppedBytes, res.n)
	}
}

// TestDropOldestCountsAndShowsTheGap: with overflow drop_oldest, a peer
// writing more than the buffer holds is never slowed; the oldest messages are
// dropped, counted in dropped_bytes, and the first seq left shows the gap.
func TestDropOldestCountsAndShowsTheGap(t *testing.T) {
	t.Parallel()
	const bound, total = 64 << 10, 4 << 20
	a := newTestAPI(t)
	s, peer := a.pair(t, func(r *ServerCreate) { r.BufferBytes = bound; r.Overflow = "drop_oldest" })
	if s.Overflow != "drop_oldest" {
		t.Fatalf("got overflow %s, want drop_oldest", s.Overflow)
	}
	data := make([]byte, total)
	rand.NewChaCha8([32]byte{'d', 'o'}).Read(data)
	for off := 0; off < total; off += 4 << 10 { // small writes: many messages
		writePeer(t, peer, data[off:off+4<<10])
	}
	peer.Close()
	waitFor(t, testTimeout, func() bool { return a.socket(t, s.ID).State == "closed" })

	got := a.socket(t, s.ID)
	if got.BytesReceived != total || got.DroppedBytes == 0 || got.BufferedBytes > bound ||
		got.DroppedBytes+got.BufferedBytes != total {
		t.Fatalf("got received %d dropped %d buffered %d, want %d received, some dropped, at most %d buffered, dropped+buffered = received",
			got.BytesReceived, got.DroppedBytes, got.BufferedBytes, total, bound)
	}
	l := a.read(t, s.ID, "")
	if len(l.Messages) == 0 || l.Messages[0].Seq == 1 {
		t.Fatalf("got %d messages from seq %v, want the oldest dropped: a first seq above 1", len(l.Messages), firstSeq(l))
	}
	// What is left is the tail of the stream, in order and whole.
	var kept []byte
	for i, m := range l.Messages {
		if i > 0 && m.Seq != l.Messages[i-1].Seq+1 {
			t.Fatalf("gap inside what was kept: seq %d after %d", m.Seq, l.Messages[i-1].Seq)
		}
		kept = append(kept, messageBytes(t, m)...)
	}
	if int64(len(kept)) != got.BufferedBytes || !bytes.Equal(kept, data[total-len(kept):]) {
		t.Fatalf("kept %d bytes, want the last %d bytes the peer wrote", len(kept), got.BufferedBytes)
	}
	t.Logf("dropped %d bytes; kept seq %d to %d", got.DroppedBytes, l.Messages[0].Seq, l.Cursor)
}

func firstSeq(l MessageList) any {
	if len(l.Messages) == 0 {
		return "none"
	}
	return l.Messages[0].Seq
}

// messageBytes returns the bytes of a message as the API wrote them.
func messageBytes(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil || len(b) != m.Size {
		t.Fatalf("message %d: %d bytes of size %d in encoding %s: %v", m.Seq, len(b), m.Size, m.Encoding, err)
	}
	return b
}
