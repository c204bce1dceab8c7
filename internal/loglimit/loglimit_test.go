package loglimit

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a time the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(burst int, level slog.Level) (*slog.Logger, *bytes.Buffer, *clock) {
	var out bytes.Buffer
	clk := &clock{t: time.Unix(1000, 0)}
	h := New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: level}), burst, time.Second)
	h.state.now = clk.now
	return slog.New(h), &out, clk
}

func lines(out *bytes.Buffer, substr string) int {
	n := 0
	for l := range strings.Lines(out.String()) {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// A flood of one kind passes its burst per window; the rest is one
// summary line with its count, written with the next line after the window.
func TestFloodIsBoundedAndSummedUp(t *testing.T) {
	log, out, clk := newTest(5, slog.LevelInfo)
	for range 1000 {
		log.Info("answered 502", "n", 1)
	}
	if got := lines(out, `msg="answered 502"`); got != 5 {
		t.Fatalf("got %d lines in the first window, want 5:\n%s", got, out)
	}
	if got := lines(out, SummaryMessage); got != 0 {
		t.Fatalf("got a summary within the window, want it after:\n%s", out)
	}
	clk.add(time.Second)
	log.Info("answered 502")
	if got := lines(out, `msg="`+SummaryMessage+`" count=995 like="answered 502" limit="5 per 1s"`); got != 1 {
		t.Errorf("want one summary of 995 lines, at level INFO:\n%s", out)
	}
	if got := lines(out, `level=INFO msg="answered 502"`); got != 6 {
		t.Errorf("got %d lines, want 6 (a new window)", got)
	}
}

// A summary is also written with a line of another kind, once the window
// of the flood has run out: a flood that stopped is still reported.
func TestStoppedFloodIsReportedWithAnyLine(t *testing.T) {
	log, out, clk := newTest(1, slog.LevelInfo)
	for range 3 {
		log.Warn("rejected a connection")
	}
	clk.add(2 * time.Second)
	log.Info("shutting down")
	if !strings.Contains(out.String(), `level=WARN msg="`+SummaryMessage+`" count=2 like="rejected a connection"`) {
		t.Errorf("want a WARN summary of 2 lines before the next line:\n%s", out)
	}
}

// Kinds are counted apart: by message, and by level.
func TestKindsAreApart(t *testing.T) {
	log, out, _ := newTest(2, slog.LevelDebug)
	for range 10 {
		log.Info("a")
		log.Info("b")
		log.Error("a")
	}
	for _, want := range []string{`level=INFO msg=a`, `level=INFO msg=b`, `level=ERROR msg=a`} {
		if got := lines(out, want+"\n"); got != 2 {
			t.Errorf("%s: got %d lines, want 2:\n%s", want, got, out)
		}
	}
}

// Records the next handler does not take are not counted: a flood below
// the level writes nothing, not even a summary.
func TestLevelBelowWritesNothing(t *testing.T) {
	log, out, clk := newTest(2, slog.LevelError)
	for range 100 {
		log.Info("answered 502")
	}
	clk.add(time.Minute)
	log.Info("answered 502")
	if out.Len() != 0 {
		t.Errorf("got output at level error:\n%s", out)
	}
}

// Messages that differ in every line (built from input) share one count
// past MaxKinds: the table stays bounded and so does the output.
func TestKindsAreBounded(t *testing.T) {
	log, out, _ := newTest(1, slog.LevelInfo)
	h := log.Handler().(*Handler)
	for i := range 5 * MaxKinds {
		log.Info(fmt.Sprintf("server srv-%d rejected a connection", i))
	}
	if n := len(h.state.kinds); n > MaxKinds+1 {
		t.Errorf("got %d kinds, want at most %d", n, MaxKinds+1)
	}
	if got := lines(out, "rejected a connection"); got > MaxKinds+1 {
		t.Errorf("got %d lines, want at most %d", got, MaxKinds+1)
	}
}

// WithAttrs shares the counts, and a summary goes to the handler of the
// lines it stands for (with its attributes).
func TestWithAttrsSharesCounts(t *testing.T) {
	log, out, clk := newTest(1, slog.LevelInfo)
	sub := log.With("component", "api")
	sub.Info("x")
	sub.Info("x")
	log.Info("x")
	clk.add(time.Second)
	log.Info("y")
	if got := lines(out, "msg=x"); got != 1 {
		t.Errorf("got %d lines of x, want 1:\n%s", got, out)
	}
	if !strings.Contains(out.String(), `msg="`+SummaryMessage+`" component=api count=2`) {
		t.Errorf("want the summary with component=api:\n%s", out)
	}
}

// Burst 0 turns the bound off.
func TestZeroBurstPassesAll(t *testing.T) {
	log, out, _ := newTest(0, slog.LevelInfo)
	for range 50 {
		log.Info("x")
	}
	if got := lines(out, "msg=x"); got != 50 {
		t.Errorf("got %d lines, want 50", got)
	}
}

// Concurrent loggers keep the bound (run with -race).
func TestConcurrentFlood(t *testing.T) {
	log, out, _ := newTest(3, slog.LevelInfo)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				log.Info("x")
			}
		})
	}
	wg.Wait()
	if got := lines(out, "msg=x"); got != 3 {
		t.Errorf("got %d lines, want 3", got)
	}
}
