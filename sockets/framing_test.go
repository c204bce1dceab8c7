package sockets

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// frameCase is a stream and the messages a framing must make of it.
type frameCase struct {
	name    string
	framing Framing
	stream  []byte
	want    []tframe
	tail    string // an unfinished frame
}

// tframe is a message as these tests compare it.
type tframe struct {
	data    string
	partial bool
}

func (f tframe) String() string {
	return fmt.Sprintf("%q%s", f.data, map[bool]string{true: "(partial)"}[f.partial])
}

// frameCases builds one stream per framing mode from rng: many frames,
// empty ones and ones that hold parts of their delimiter among them.
func frameCases(rng *rand.Rand) []frameCase {
	text := func(alphabet string, n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	var cases []frameCase

	// lines: \n and \r\n endings, stripped.
	var stream bytes.Buffer
	var want []tframe
	for range 200 {
		line := text("abc \r\t", rng.IntN(40))
		line = strings.TrimRight(line, "\r") // a \r before the \n is part of the ending
		end := []string{"\n", "\r\n"}[rng.IntN(2)]
		stream.WriteString(line + end)
		want = append(want, tframe{data: line})
	}
	cases = append(cases, frameCase{"lines", Framing{Type: FrameLines}, bytes.Clone(stream.Bytes()), want, "no end\r"})

	// lines with keep_delimiter: the stream itself, cut after each \n.
	var kept []tframe
	for _, l := range strings.SplitAfter(stream.String(), "\n") {
		if l != "" {
			kept = append(kept, tframe{data: l})
		}
	}
	cases = append(cases, frameCase{"lines-kept", Framing{Type: FrameLines, KeepDelimiter: true}, bytes.Clone(stream.Bytes()), kept, "x"})

	// delimiter: \r\n\r\n, with frames that hold \r, \n and \r\n.
	stream.Reset()
	want = nil
	for len(want) < 200 {
		body := text("ab\r\n", rng.IntN(30))
		if strings.Index(body+"\r\n\r\n", "\r\n\r\n") != len(body) {
			continue // the delimiter would end it earlier
		}
		stream.WriteString(body + "\r\n\r\n")
		want = append(want, tframe{data: body})
	}
	cases = append(cases, frameCase{"delimiter", Framing{Type: FrameDelimiter, Delimiter: "\r\n\r\n"}, bytes.Clone(stream.Bytes()), want, "almost\r\n\r"})

	// fixed: 7 bytes each, any bytes.
	stream.Reset()
	want = nil
	for range 200 {
		f := text("\x00\x01\xff\n\r", 7)
		stream.WriteString(f)
		want = append(want, tframe{data: f})
	}
	cases = append(cases, frameCase{"fixed", Framing{Type: FrameFixed, Size: 7}, bytes.Clone(stream.Bytes()), want, "123456"})

	// length_prefix: 2-byte big-endian header of the payload, header dropped.
	stream.Reset()
	want = nil
	for range 200 {
		p := text("\x00\x02xyz", rng.IntN(300))
		stream.Write(binary.BigEndian.AppendUint16(nil, uint16(len(p))))
		stream.WriteString(p)
		want = append(want, tframe{data: p})
	}
	cases = append(cases, frameCase{"length-prefix", Framing{Type: FrameLengthPrefix, HeaderBytes: 2, Endian: "big"}, bytes.Clone(stream.Bytes()), want, "\x00\x0aabc"})

	// length_prefix: 4-byte little-endian header that counts itself, kept.
	stream.Reset()
	want = nil
	for range 100 {
		p := text("pq\x00", rng.IntN(100))
		f := string(binary.LittleEndian.AppendUint32(nil, uint32(4+len(p)))) + p
		stream.WriteString(f)
		want = append(want, tframe{data: f})
	}
	cases = append(cases, frameCase{"length-prefix-inclusive", Framing{Type: FrameLengthPrefix, HeaderBytes: 4, Endian: "little", LengthIncludesHeader: true, KeepHeader: true}, bytes.Clone(stream.Bytes()), want, "\x09\x00"})
	return cases
}

// splits are the ways a peer writes one stream.
var splits = []struct {
	name string
	cut  func(rng *rand.Rand, n int) int // the next write's size, n bytes left
}{
	{"byte-at-a-time", func(*rand.Rand, int) int { return 1 }},
	{"random-sizes", func(rng *rand.Rand, n int) int { return 1 + rng.IntN(min(n, 700)) }},
	{"all-at-once", func(_ *rand.Rand, n int) int { return n }},
}

// receiveFramed opens a framed server, has a loopback peer write stream
// in the sizes cut gives (then close), and returns the messages stored and
// the socket's close reason.
func receiveFramed(t *testing.T, f Framing, stream []byte, rng *rand.Rand, cut func(*rand.Rand, int) int) ([]tframe, string) {
	t.Helper()
	return receiveWith(t, RecvOptions{Framing: f}, stream, rng, cut)
}

// receiveWith is receiveFramed with every receive option. It also checks
// that once the socket is deleted, nothing of it counts in the
// registry-wide total.
func receiveWith(t *testing.T, o RecvOptions, stream []byte, rng *rand.Rand, cut func(*rand.Rand, int) int) ([]tframe, string) {
	t.Helper()
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: o})
	peer.SetNoDelay(true)
	werr := make(chan error, 1)
	go func() {
		rest := stream
		for len(rest) > 0 {
			n := cut(rng, len(rest))
			if _, err := peer.Write(rest[:n]); err != nil {
				werr <- err
				return
			}
			rest = rest[n:]
		}
		werr <- peer.CloseWrite()
	}()
	var got []tframe
	cursor := uint64(0)
	for {
		sel, err := s.Read(context.Background(), ReadOptions{After: &cursor, Wait: guard})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sel.Messages {
			got = append(got, tframe{data: string(m.Data), partial: m.Partial})
		}
		cursor = sel.Cursor
		sel.Release()
		if sel.EOF {
			break
		}
		if len(sel.Messages) == 0 {
			t.Fatalf("nothing within %v after %d messages", guard, len(got))
		}
	}
	waitReadLoopDone(t, s)
	reason := s.Info().CloseReason
	if err := <-werr; err != nil && !strings.HasPrefix(reason, "frame over max_frame") {
		// (A socket that a frame over max_frame closed may reset the
		// peer's later writes.)
		t.Fatal(err)
	}
	if err := r.DeleteSocket(s.ID()); err != nil {
		t.Fatal(err)
	}
	if used := r.MemoryInUse(); used != 0 {
		t.Fatalf("after the socket was deleted, %d bytes still count in the total, want 0", used)
	}
	return got, reason
}

func sameFrames(t *testing.T, got, want []tframe) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d (first got %v, first want %v)", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d: got %v, want %v", i+1, got[i], want[i])
		}
	}
}

// TestFramingSameFramesWhateverTheSplits proves that every framing mode
// makes the same messages of one stream whether the peer writes it a byte
// at a time, in random sizes or at once; and that a stream that ends in the
// middle of a frame leaves it as a partial message and says so.
func TestFramingSameFramesWhateverTheSplits(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, c := range frameCases(rand.New(rand.NewPCG(seed, 1))) {
		for _, sp := range splits {
			t.Run(c.name+"/"+sp.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 2))
				got, reason := receiveFramed(t, c.framing, c.stream, rng, sp.cut)
				sameFrames(t, got, c.want)
				if reason != ReasonPeerClosed {
					t.Fatalf("close reason: got %q, want %q", reason, ReasonPeerClosed)
				}
			})
		}
		t.Run(c.name+"/small-buffer", func(t *testing.T) {
			// A buffer of a few frames: frames wait for room, none is lost.
			rng := rand.New(rand.NewPCG(seed, 4))
			got, _ := receiveWith(t, RecvOptions{BufferBytes: 512, Framing: c.framing}, c.stream, rng, splits[1].cut)
			sameFrames(t, got, c.want)
		})
		t.Run(c.name+"/cut-short", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			got, reason := receiveFramed(t, c.framing, append(bytes.Clone(c.stream), c.tail...), rng, splits[1].cut)
			sameFrames(t, got, append(c.want, tframe{data: c.tail, partial: true}))
			if !strings.Contains(reason, "in the middle of a frame") || !strings.HasPrefix(reason, ReasonPeerClosed) {
				t.Fatalf("close reason: got %q, want the peer's close in the middle of a frame", reason)
			}
		})
	}
}

// TestMaxFrameEdge: a frame of exactly max_frame bytes (delimiter or
// header included) is a message; one byte more is stored as a partial
// message of max_frame bytes and closes the socket with a reason that
// says so.
func TestMaxFrameEdge(t *testing.T) {
	const max = 16
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		name     string
		f        Framing
		exact    string // a frame of max bytes
		over     string // one of max+1
		exactMsg string
	}{
		{"lines", Framing{Type: FrameLines}, strings.Repeat("a", max-1) + "\n", strings.Repeat("b", max) + "\n", strings.Repeat("a", max-1)},
		{"delimiter", Framing{Type: FrameDelimiter, Delimiter: "||"}, strings.Repeat("a", max-2) + "||", strings.Repeat("b", max-1) + "||", strings.Repeat("a", max-2)},
		{"length-prefix", Framing{Type: FrameLengthPrefix, HeaderBytes: 1}, "\x0f" + strings.Repeat("a", max-1), "\x10" + strings.Repeat("b", max), strings.Repeat("a", max-1)},
	}
	for _, c := range cases {
		c.f.MaxFrame = max
		for _, sp := range splits {
			t.Run(c.name+"/"+sp.name, func(t *testing.T) {
				got, reason := receiveFramed(t, c.f, []byte(c.exact+c.over+"trailing"), rng, sp.cut)
				want := []tframe{{data: c.exactMsg}, {data: c.over[:max], partial: true}}
				sameFrames(t, got, want)
				if wantReason := fmt.Sprintf("frame over max_frame (%d bytes)", max); !strings.HasPrefix(reason, wantReason) {
					t.Fatalf("close reason: got %q, want it to start with %q", reason, wantReason)
				}
			})
		}
	}
}

// TestFramedSends proves that a send on a framed socket is framed as the
// socket's framing says, as the peer receives it.
func TestFramedSends(t *testing.T) {
	cases := []struct {
		name string
		f    Framing
		send string
		wire string
		err  string
	}{
		{"raw", Framing{}, "abc", "abc", ""},
		{"lines", Framing{Type: FrameLines}, "AT", "AT\n", ""},
		{"delimiter", Framing{Type: FrameDelimiter, Delimiter: "\r\n"}, "EHLO x", "EHLO x\r\n", ""},
		{"fixed", Framing{Type: FrameFixed, Size: 3}, "abc", "abc", ""},
		{"fixed-other-size", Framing{Type: FrameFixed, Size: 3}, "abcd", "", "fixed at 3 bytes and this send has 4"},
		{"length-prefix-big", Framing{Type: FrameLengthPrefix, HeaderBytes: 2}, "hi", "\x00\x02hi", ""},
		{"length-prefix-little-inclusive", Framing{Type: FrameLengthPrefix, HeaderBytes: 4, Endian: "little", LengthIncludesHeader: true}, "hi", "\x06\x00\x00\x00hi", ""},
		{"length-prefix-too-long", Framing{Type: FrameLengthPrefix, HeaderBytes: 1}, strings.Repeat("x", 256), "", "does not fit a 1-byte length header (at most 255 bytes)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRegistry(t, Config{})
			_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Framing: c.f}})
			n, err := s.SendFrame(context.Background(), []byte(c.send))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || n != 0 {
					t.Fatalf("got %d, %v; want 0 and an error saying %q", n, err, c.err)
				}
				return
			}
			if err != nil || n != int64(len(c.wire)) {
				t.Fatalf("got %d, %v; want %d, nil", n, err, len(c.wire))
			}
			got := make([]byte, len(c.wire))
			peer.SetReadDeadline(time.Now().Add(guard))
			if _, err := io.ReadFull(peer, got); err != nil || string(got) != c.wire {
				t.Fatalf("peer read %q, %v; want %q", got, err, c.wire)
			}
		})
	}
}

// TestFramingOptionsChecked: a framing that cannot work is ErrInvalid
// with a detail that says what to change.
func TestFramingOptionsChecked(t *testing.T) {
	r := newTestRegistry(t, Config{BufferBytes: 1 << 20})
	for name, c := range map[string]struct {
		f    Framing
		want string
	}{
		"unknown type":          {Framing{Type: "json"}, "not one of raw, lines"},
		"delimiter missing":     {Framing{Type: FrameDelimiter}, "needs a delimiter"},
		"fixed without size":    {Framing{Type: FrameFixed}, "size 0 is out of range"},
		"fixed over max_frame":  {Framing{Type: FrameFixed, Size: 10, MaxFrame: 9}, "size 10 is out of range 1 to 9"},
		"header bytes":          {Framing{Type: FrameLengthPrefix, HeaderBytes: 3}, "must be 1, 2, 4 or 8"},
		"endian":                {Framing{Type: FrameLengthPrefix, Endian: "middle"}, "must be big or little"},
		"max_frame over buffer": {Framing{Type: FrameLines, MaxFrame: 1<<20 + 1}, "out of range 1 to 1048576"},
		"max_frame negative":    {Framing{Type: FrameLines, MaxFrame: -1}, "out of range"},
	} {
		_, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1", Recv: RecvOptions{Framing: c.f}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, c.want)
		}
	}
	srv := listen(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 4096, Framing: Framing{Type: FrameLengthPrefix}}})
	got := srv.Info().Framing
	want := Framing{Type: FrameLengthPrefix, HeaderBytes: 4, Endian: "big", MaxFrame: 4096}
	if got != want {
		t.Fatalf("defaults: got %+v, want %+v", got, want)
	}
}

// TestFramedDropOldestKeepsWholeFrames: with drop_oldest, a full buffer
// drops the oldest frames, whole, and counts them; what stays is whole
// frames in order.
func TestFramedDropOldestKeepsWholeFrames(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 64, Overflow: string(OverflowDropOldest), Framing: Framing{Type: FrameLines}}})
	var stream bytes.Buffer
	for i := range 100 {
		fmt.Fprintf(&stream, "line %03d\n", i) // 8 bytes a message
	}
	writeAll(t, peer, stream.Bytes())
	peer.CloseWrite()
	waitReadLoopDone(t, s)
	sel, err := s.Read(context.Background(), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Release()
	if len(sel.Messages) != 8 {
		t.Fatalf("got %d messages, want the 8 newest (64 bytes of 8-byte frames)", len(sel.Messages))
	}
	for i, m := range sel.Messages {
		want := fmt.Sprintf("line %03d", 92+i)
		if string(m.Data) != want || m.Partial || m.Seq != uint64(93+i) {
			t.Fatalf("message %d: got seq %d %q (partial %v), want seq %d %q", i, m.Seq, m.Data, m.Partial, 93+i, want)
		}
	}
	if info := s.Info(); info.DroppedBytes != 92*8 {
		t.Fatalf("dropped: got %d bytes, want %d", info.DroppedBytes, 92*8)
	}
}

// TestFramedEvents: every frame is a socket.received of its own, with its
// seq, size and (when asked for) bytes, and what drop_oldest drops to make
// room for it is a socket.dropped just before it, whole frames in order.
func TestFramedEvents(t *testing.T) {
	r := newTestRegistry(t, Config{})
	sub := subscribe(t, r, SubscribeOptions{Data: true, Filter: EventFilter{Types: []string{string(EventSocketReceived), string(EventSocketDropped)}}})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 64, Overflow: string(OverflowDropOldest), Framing: Framing{Type: FrameLines}}})
	var stream bytes.Buffer
	for i := range 100 {
		fmt.Fprintf(&stream, "line %03d\n", i)
	}
	writeAll(t, peer, stream.Bytes())
	peer.CloseWrite()
	waitReadLoopDone(t, s)
	var evs []Event
	received, dropped := 0, int64(0)
	nextDrop := uint64(1) // the oldest frame not dropped yet
	for received < 100 {
		for _, e := range nextEvents(t, sub, 1) {
			evs = append(evs, e)
			switch e.Type {
			case EventSocketReceived:
				received++
				want := fmt.Sprintf("line %03d", received-1)
				if e.Seq != uint64(received) || e.Size != 8 || string(e.Data) != want {
					t.Fatalf("socket.received #%d: got seq %d size %d %q, want seq %d size 8 %q (%s)", received, e.Seq, e.Size, e.Data, received, want, eventSummary(evs))
				}
			case EventSocketDropped:
				// Room for frame received+1: the oldest frames, whole.
				if e.FirstSeq != nextDrop || e.LastSeq < e.FirstSeq || e.LastSeq > uint64(received) || e.Bytes != int64(e.LastSeq-e.FirstSeq+1)*8 {
					t.Fatalf("socket.dropped after %d frames: got seqs %d-%d, %d bytes; want from seq %d, 8 bytes a frame", received, e.FirstSeq, e.LastSeq, e.Bytes, nextDrop)
				}
				nextDrop = e.LastSeq + 1
				dropped += e.Bytes
			}
		}
	}
	if info := s.Info(); dropped != info.DroppedBytes || dropped != 92*8 {
		t.Fatalf("socket.dropped events: got %d bytes, want %d (DroppedBytes %d)", dropped, 92*8, info.DroppedBytes)
	}
}

// TestFramesHeldOutliveTheirBuffer: frames are views into their read's
// memory; a read still held keeps its bytes intact while the buffer lets
// them go and more reads reuse pooled memory, and every byte counted comes
// back once the read is released and the socket deleted.
func TestFramesHeldOutliveTheirBuffer(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 4 << 20, Framing: Framing{Type: FrameLines}}})
	line := func(i int) string { return fmt.Sprintf("%07d %s", i, bytes.Repeat([]byte{byte('a' + i%26)}, i%300)) }
	send := func(from, to int) {
		var stream bytes.Buffer
		for i := from; i < to; i++ {
			stream.WriteString(line(i) + "\n")
		}
		writeAll(t, peer, stream.Bytes())
	}
	read := func(after *uint64, n int) Selection {
		t.Helper()
		var sel Selection
		waitFor(t, guard, func() bool {
			sel.Release()
			var err error
			if sel, err = s.Read(context.Background(), ReadOptions{After: after}); err != nil {
				t.Fatal(err)
			}
			return len(sel.Messages) >= n
		})
		return sel
	}
	send(0, 5000)
	held := read(nil, 5000)
	for i, m := range held.Messages {
		if m.Seq != uint64(i+1) || string(m.Data) != line(i) {
			t.Fatalf("message %d: got seq %d %.20q, want seq %d %.20q", i, m.Seq, m.Data, i+1, line(i))
		}
	}
	// The buffer lets them go, and as many again go through it.
	cursor := held.Cursor
	send(5000, 10000)
	more := read(&cursor, 5000)
	cursor = more.Cursor
	more.Release()
	if err := s.buf.ack(cursor); err != nil {
		t.Fatal(err)
	}
	if r.MemoryInUse() == 0 {
		t.Fatal("nothing counts in the total while a read holds frames, want their memory")
	}
	for i, m := range held.Messages {
		if string(m.Data) != line(i) {
			t.Fatalf("held message %d changed to %.20q once the buffer let it go, want %.20q", i, m.Data, line(i))
		}
	}
	peer.Close()
	waitReadLoopDone(t, s)
	if err := r.DeleteSocket(s.ID()); err != nil {
		t.Fatal(err)
	}
	held.Release()
	if used := r.MemoryInUse(); used != 0 {
		t.Fatalf("after the release and the delete %d bytes still count, want 0", used)
	}
}

// TestCloseMidFrameKeepsThePartialFrame: a framed socket closed through
// the API while a frame is unfinished stores it as a partial message, and
// its close reason says so.
func TestCloseMidFrameKeepsThePartialFrame(t *testing.T) {
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{Framing: Framing{Type: FrameLines}}})
	writeAll(t, peer, []byte("whole\nhalf a li"))
	waitFor(t, guard, func() bool { return s.Info().BytesReceived == 15 })
	s.Close(ReasonAPI)
	sel, err := s.Read(context.Background(), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Release()
	got := make([]tframe, 0, len(sel.Messages))
	for _, m := range sel.Messages {
		got = append(got, tframe{data: string(m.Data), partial: m.Partial})
	}
	sameFrames(t, got, []tframe{{data: "whole"}, {data: "half a li", partial: true}})
	want := ReasonAPI + " in the middle of a frame: its first 9 bytes are stored as a partial message"
	if reason := s.Info().CloseReason; reason != want {
		t.Fatalf("close reason: got %q, want %q", reason, want)
	}
}

// TestFramesWaitForTheRegistryTotal: with --max-buffer-total far below the
// stream, frames wait for memory (the peer is slowed, not cut) and every
// one arrives whole; afterwards nothing stays counted.
func TestFramesWaitForTheRegistryTotal(t *testing.T) {
	r := newTestRegistry(t, Config{MaxBufferTotal: 64 << 10})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 32 << 10, Framing: Framing{Type: FrameLengthPrefix, HeaderBytes: 2, KeepHeader: true, MaxFrame: 4096}}})
	var stream bytes.Buffer
	var want []tframe
	rng := rand.New(rand.NewPCG(7, 7))
	for stream.Len() < 1<<20 {
		p := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(2000))
		stream.Write(binary.BigEndian.AppendUint16(nil, uint16(len(p))))
		stream.Write(p)
		want = append(want, tframe{data: string(binary.BigEndian.AppendUint16(nil, uint16(len(p)))) + string(p)})
	}
	werr := make(chan error, 1)
	go func() {
		_, err := peer.Write(stream.Bytes())
		if err == nil {
			err = peer.CloseWrite()
		}
		werr <- err
	}()
	var got []tframe
	cursor := uint64(0)
	for {
		sel, err := s.Read(context.Background(), ReadOptions{After: &cursor, Wait: guard, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sel.Messages {
			got = append(got, tframe{data: string(m.Data), partial: m.Partial})
		}
		cursor = sel.Cursor
		if used, limit := r.MemoryInUse(), int64(64<<10); used > limit+readSize {
			t.Fatalf("%d bytes count in the total, want at most the limit %d and one read", used, limit)
		}
		sel.Release()
		if sel.EOF {
			break
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	sameFrames(t, got, want)
	waitReadLoopDone(t, s)
	if err := r.DeleteSocket(s.ID()); err != nil {
		t.Fatal(err)
	}
	if used := r.MemoryInUse(); used != 0 {
		t.Fatalf("after the delete %d bytes still count, want 0", used)
	}
}

// writeAll writes p to c within the guard.
func writeAll(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(guard))
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
}
