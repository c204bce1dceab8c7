// Package loglimit bounds a flood of identical log lines: a slog.Handler
// that passes at most a number of records of one kind (level and message)
// per window, counts the others, and writes one summary line of how many
// it held back.
package loglimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// MaxKinds bounds the kinds a Handler counts at once. Past it, new kinds
// of one level share one count, so that messages built from input (an id
// in the text) cannot grow the table or escape the bound.
const MaxKinds = 1024

// SummaryMessage is the message of a summary line.
const SummaryMessage = "suppressed similar lines"

// Handler passes records to the next handler, at most Burst of each kind
// per Window. The records it holds back are counted; the first record
// handled after their kind's window has run out is preceded by a summary
// line, at the kind's level: msg=SummaryMessage count=N like=<message>.
// It is safe for concurrent use; handlers made by WithAttrs and WithGroup
// share its counts.
type Handler struct {
	next  slog.Handler
	state *state
}

type state struct {
	burst  int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex // guards the following fields
	kinds map[kind]*count
	swept time.Time // last look for kinds whose window ran out
}

type kind struct {
	level slog.Level
	msg   string
}

// count is one kind's window.
type count struct {
	start      time.Time
	passed     int
	suppressed int
	to         slog.Handler // where its summary goes: the handler of its first suppressed record
}

// summary is a line to write about a kind's suppressed records.
type summary struct {
	to     slog.Handler
	record slog.Record
}

// New returns a Handler in front of next that passes at most burst
// records of a kind per window. A burst of 0 or less passes everything.
func New(next slog.Handler, burst int, window time.Duration) *Handler {
	return &Handler{next: next, state: &state{burst: burst, window: window, now: time.Now, kinds: map[kind]*count{}}}
}

// Enabled reports whether the next handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on unless its kind has had its burst in this window. A
// summary due for any kind is written first.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if h.state.burst <= 0 {
		return h.next.Handle(ctx, r)
	}
	summaries, pass := h.state.admit(r, h.next)
	for _, s := range summaries { // outside the lock: they write
		s.to.Handle(ctx, s.record)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a Handler whose next handler has attrs; it shares h's counts.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), state: h.state}
}

// WithGroup returns a Handler whose next handler has the group; it shares h's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), state: h.state}
}

// admit counts r and reports whether it passes, with the summaries now due.
func (s *state) admit(r slog.Record, next slog.Handler) ([]summary, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []summary
	// Once a window, every kind whose window ran out is summed up and
	// forgotten: a flood that stopped is reported with the next line of
	// any kind, and the table holds only kinds seen in the last window.
	if now.Sub(s.swept) >= s.window {
		s.swept = now
		for k, c := range s.kinds {
			if now.Sub(c.start) >= s.window {
				due = s.appendSummary(due, k, c, now)
				delete(s.kinds, k)
			}
		}
	}
	k := kind{r.Level, r.Message}
	c := s.kinds[k]
	if c == nil && len(s.kinds) >= MaxKinds {
		k = kind{r.Level, "(other messages)"}
		c = s.kinds[k]
	}
	if c != nil && now.Sub(c.start) >= s.window {
		due = s.appendSummary(due, k, c, now)
		c = nil
	}
	if c == nil {
		c = &count{start: now}
		s.kinds[k] = c
	}
	if c.passed < s.burst {
		c.passed++
		return due, true
	}
	if c.suppressed == 0 {
		c.to = next
	}
	c.suppressed++
	return due, false
}

func (s *state) appendSummary(due []summary, k kind, c *count, now time.Time) []summary {
	if c.suppressed == 0 {
		return due
	}
	r := slog.NewRecord(now, k.level, SummaryMessage, 0)
	r.AddAttrs(slog.Int("count", c.suppressed), slog.String("like", k.msg),
		slog.String("limit", fmt.Sprintf("%d per %v", s.burst, s.window)))
	return append(due, summary{c.to, r})
}
