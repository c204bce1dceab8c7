package sockets

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// Property tests and fuzz targets of the framing stage, without a socket:
// reads go in as a read loop hands them over, frames come out of emit.

// stageRun is what a frame stage made of a stream.
type stageRun struct {
	frames  []tframe
	stopped string // the close reason of a frameError, "" when none
	used    int64  // what the stage still counts in the total at the end
}

// runStage feeds data to a frame stage of f in the chunk sizes that sizes
// gives (1 and more), then ends the stream as a peer's close would.
func runStage(f Framing, data []byte, sizes func(left int) int) stageRun {
	mem := newMemory(0)
	var run stageRun
	st := &frameStage{mem: mem, fr: newFramer(f), max: f.MaxFrame, wake: func() {}}
	st.emit = func(p []byte, partial bool, _ time.Time) (bool, error) {
		run.frames = append(run.frames, tframe{data: string(p), partial: partial})
		return false, nil
	}
	st.emitAll = func(_ *block, base []byte, spans []span, _ time.Time) (bool, error) {
		for _, sp := range spans {
			run.frames = append(run.frames, tframe{data: string(base[sp.lo:sp.hi])})
		}
		return false, nil
	}
	reads := 0
	for len(data) > 0 {
		n := min(sizes(len(data)), len(data))
		chunk := append([]byte(nil), data[:n]...) // the read's memory is the reader's again after write
		data = data[n:]
		mem.add(int64(n + entryCost)) // the read's reservation
		// Every other read is the read loop's own memory (owned: frames
		// are views into it), the others its scratch (copied).
		reads++
		_, err := st.write(chunk, nil, reads%2 == 0)
		clear(chunk)
		if fe, ok := errors.AsType[*frameError](err); ok {
			run.stopped = fe.reason
			run.used = mem.used.Load()
			return run
		}
	}
	st.end()
	run.used = mem.used.Load()
	return run
}

// checkStage is the property every framing holds on any stream: cut into
// any reads it makes the same messages as in one read, gives back all it
// counted, and (with delimiters and headers kept) its messages joined give
// back the stream, or its start when a frame over max_frame stopped it.
func checkStage(t *testing.T, f Framing, data []byte, seed uint64) {
	t.Helper()
	whole := runStage(f, data, func(left int) int { return left })
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	for name, sizes := range map[string]func(int) int{
		"bytes":  func(int) int { return 1 },
		"random": func(left int) int { return 1 + rng.IntN(min(left, 64)) },
	} {
		got := runStage(f, data, sizes)
		if len(got.frames) != len(whole.frames) || got.stopped != whole.stopped {
			t.Fatalf("%s: %d messages, stopped %q; in one read %d, stopped %q", name, len(got.frames), got.stopped, len(whole.frames), whole.stopped)
		}
		for i := range got.frames {
			if got.frames[i] != whole.frames[i] {
				t.Fatalf("%s: message %d is %v; in one read %v", name, i+1, got.frames[i], whole.frames[i])
			}
		}
		if got.used != 0 {
			t.Fatalf("%s: the stage still counts %d bytes in the total at the end, want 0", name, got.used)
		}
	}
	var joined bytes.Buffer
	for i, fr := range whole.frames {
		if fr.partial && i != len(whole.frames)-1 {
			t.Fatalf("message %d of %d is partial: only the last may be", i+1, len(whole.frames))
		}
		if len(fr.data) > f.MaxFrame {
			t.Fatalf("message %d has %d bytes, over max_frame %d", i+1, len(fr.data), f.MaxFrame)
		}
		joined.WriteString(fr.data)
	}
	if whole.stopped == "" && !bytes.Equal(joined.Bytes(), data) {
		t.Fatalf("the messages joined are %q, want the stream %q", joined.Bytes(), data)
	}
	if whole.stopped != "" && !bytes.HasPrefix(data, joined.Bytes()) {
		t.Fatalf("the messages joined are %q, want the start of the stream %q", joined.Bytes(), data)
	}
}

// fuzzFraming runs checkStage on the fuzzer's streams, with a few seeds
// that go test runs as unit tests.
func fuzzFraming(f *testing.F, fr Framing, seeds ...string) {
	fr, err := checkFraming(fr, 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		checkStage(t, fr, data, seed)
	})
}

func FuzzLinesFraming(f *testing.F) {
	fuzzFraming(f, Framing{Type: FrameLines, KeepDelimiter: true, MaxFrame: 32},
		"", "\n", "a\r\nb\n\n", "no end", "\r\r\n", string(bytes.Repeat([]byte("x"), 40))+"\n", string(bytes.Repeat([]byte("y"), 31))+"\n")
}

func FuzzDelimiterFraming(f *testing.F) {
	fuzzFraming(f, Framing{Type: FrameDelimiter, Delimiter: "\r\n\r\n", KeepDelimiter: true, MaxFrame: 32},
		"", "\r\n\r\n", "a\r\n\r\r\n\r\nb", "\r\n\r\n\r\n", "ab\r\n\r\ncd\r\n", string(bytes.Repeat([]byte("\r\n\r"), 12)))
}

func FuzzFixedFraming(f *testing.F) {
	fuzzFraming(f, Framing{Type: FrameFixed, Size: 5},
		"", "12345", "1234567890ab", "\x00\x00\x00\x00\x00\x00")
}

func FuzzLengthPrefixFraming(f *testing.F) {
	fuzzFraming(f, Framing{Type: FrameLengthPrefix, HeaderBytes: 2, Endian: "big", KeepHeader: true, MaxFrame: 40},
		"", "\x00\x00", "\x00\x03abc\x00\x01d", "\x00\x26"+string(bytes.Repeat([]byte("z"), 38)), "\x00\x27"+string(bytes.Repeat([]byte("z"), 39)), "\xff\xff", "\x00")
}

func FuzzLengthPrefixInclusiveFraming(f *testing.F) {
	fuzzFraming(f, Framing{Type: FrameLengthPrefix, HeaderBytes: 1, LengthIncludesHeader: true, KeepHeader: true, MaxFrame: 16},
		"", "\x01", "\x00", "\x03ab\x02c", "\x10"+string(bytes.Repeat([]byte("q"), 15)), "\x11"+string(bytes.Repeat([]byte("q"), 16)))
}

// TestStageWithoutKeepingStripsOnly: with the delimiter or header dropped,
// each message is the kept one less its delimiter or header.
func TestStageWithoutKeepingStripsOnly(t *testing.T) {
	data := []byte("a\r\nbb\n\r\n\nend")
	kept := runStage(Framing{Type: FrameLines, KeepDelimiter: true, MaxFrame: 64}, data, func(int) int { return 3 })
	stripped := runStage(Framing{Type: FrameLines, MaxFrame: 64}, data, func(int) int { return 2 })
	want := []tframe{{data: "a"}, {data: "bb"}, {data: ""}, {data: ""}, {data: "end", partial: true}}
	sameFrames(t, stripped.frames, want)
	if len(kept.frames) != len(want) {
		t.Fatalf("kept: %v", kept.frames)
	}
	lp := runStage(Framing{Type: FrameLengthPrefix, HeaderBytes: 2, MaxFrame: 64}, []byte("\x00\x02hi\x00\x00\x00\x01!"), func(int) int { return 1 })
	sameFrames(t, lp.frames, []tframe{{data: "hi"}, {data: ""}, {data: "!"}})
}

// TestLengthBelowHeaderStops: a length that counts itself but is shorter
// than the header cannot be a frame: the header is stored as a partial
// message and the reason says why.
func TestLengthBelowHeaderStops(t *testing.T) {
	run := runStage(Framing{Type: FrameLengthPrefix, HeaderBytes: 2, LengthIncludesHeader: true, MaxFrame: 64}, []byte("\x00\x03a\x00\x01zz"), func(int) int { return 1 })
	sameFrames(t, run.frames, []tframe{{data: "a"}, {data: "\x00\x01", partial: true}})
	if want := "less than its own 2"; !bytes.Contains([]byte(run.stopped), []byte(want)) {
		t.Fatalf("stopped: got %q, want it to say %q", run.stopped, want)
	}
}
