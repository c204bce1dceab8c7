package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// latencies records how long each API request took, by class.
type latencies struct {
	mu sync.Mutex // guards by
	by map[string][]time.Duration
}

func (l *latencies) add(class string, d time.Duration) {
	l.mu.Lock()
	if l.by == nil {
		l.by = map[string][]time.Duration{}
	}
	l.by[class] = append(l.by[class], d)
	l.mu.Unlock()
}

// table returns one line per class: count and percentiles.
func (l *latencies) table() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "  %-9s %9s %9s %9s %9s %9s %9s\n", "class", "requests", "p50", "p90", "p99", "p99.9", "max")
	classes := make([]string, 0, len(l.by))
	for c := range l.by {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var all []time.Duration
	for _, c := range classes {
		fmt.Fprintf(&b, "  %-9s %s\n", c, percentiles(l.by[c]))
		all = append(all, l.by[c]...)
	}
	fmt.Fprintf(&b, "  %-9s %s\n", "all", percentiles(all))
	return b.String()
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return fmt.Sprintf("%9d", 0)
	}
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	r := func(x time.Duration) string { return x.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("%9d %9s %9s %9s %9s %9s", len(d), r(at(0.5)), r(at(0.9)), r(at(0.99)), r(at(0.999)), r(d[len(d)-1]))
}

// problems counts what went wrong where nothing should have: unexpected
// statuses and transport errors. It keeps the first few for the report.
type problems struct {
	n     atomic.Int64
	mu    sync.Mutex // guards first
	first []string
}

func (p *problems) add(format string, args ...any) {
	if p.n.Add(1) <= 10 {
		p.mu.Lock()
		p.first = append(p.first, fmt.Sprintf(format, args...))
		p.mu.Unlock()
	}
}

// client calls the API and times every request.
type client struct {
	base string
	hc   *http.Client
	lat  *latencies
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request: body is nil, []byte sent with contentType, or a
// string sent as JSON. header holds name, value pairs.
func (c *client) do(ctx context.Context, class, method, path string, body any, contentType string, header ...string) (answer, error) {
	var r io.Reader
	switch b := body.(type) {
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r, contentType = strings.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return answer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	c.lat.add(class, time.Since(start))
	if err != nil {
		return answer{}, err
	}
	return answer{res.StatusCode, res.Header, b}, nil
}

// openFiles counts this process's open file descriptors.
func openFiles() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries) - 1 // the directory being read
}

// settle waits until the goroutine and descriptor counts are back to at
// most the baseline, or limit passes, and returns the counts.
func settle(goroutines, files int, limit time.Duration) (int, int) {
	deadline := time.Now().Add(limit)
	for {
		g, f := runtime.NumGoroutine(), openFiles()
		if (g <= goroutines && f <= files) || time.Now().After(deadline) {
			return g, f
		}
		time.Sleep(50 * time.Millisecond)
	}
}
