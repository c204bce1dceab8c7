package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// goal says how a figure is judged.
type goal int

const (
	info        goal = iota // no target, shown for context
	ratioMin                // sockman/baseline at least target
	ratioMax                // sockman/baseline at most target
	absoluteMax             // sockman at most target (in unit)
)

// metric describes one row of the table.
type metric struct {
	key      string
	label    string
	unit     string
	baseline string // what the baseline column is
	goal     goal
	target   float64
}

var metrics = []metric{
	{"ingest-octet", "ingest, GET octet-stream", "MB/s", "raw loopback stream", ratioMin, 0.5},
	{"ingest-json", "ingest, GET JSON base64", "MB/s", "raw loopback stream", ratioMin, 0.25},
	{"send", "send, POST 1 MiB octet-stream", "MB/s", "raw loopback stream", ratioMin, 0.4},
	{"ingest-octet-cpu", "sockman CPU, ingest octet-stream", "ms/GiB", "", info, 0},
	{"ingest-json-cpu", "sockman CPU, ingest JSON base64", "ms/GiB", "", info, 0},
	{"send-cpu", "sockman CPU, send", "ms/GiB", "", info, 0},
	{"idle", "idle socket, RSS delta", "KiB/socket", "", absoluteMax, 6},
	{"idle-rss", "sockman RSS with the idle sockets", "MiB", "RSS before", info, 0},
	{"wake-p50", "long-poll wake-up p50", "µs", "relay process p50", ratioMax, 1.5},
	{"wake-p99", "long-poll wake-up p99", "µs", "relay process p99", ratioMax, 2},
	{"wake-inproc-p50", "long-poll wake-up p50", "µs", "in-process relay p50", info, 0},
	{"wake-inproc-p99", "long-poll wake-up p99", "µs", "in-process relay p99", info, 0},
	{"wake-cpu", "sockman CPU per poll and wake-up", "µs", "", info, 0},
	{"events-wake-p50", "event stream delivery p50", "µs", "long-poll wake-up p50", ratioMax, 1.5},
	{"events-wake-p99", "event stream delivery p99", "µs", "long-poll wake-up p99", info, 0},
	{"events-flow-p50", "event stream, event right after one, p50", "µs", "long-poll wake-up p50", info, 0},
	{"events-flow-p99", "event stream, event right after one, p99", "µs", "long-poll wake-up p99", info, 0},
	{"events-steady-p50", "event stream, 8th event in a row, p50", "µs", "long-poll wake-up p50", info, 0},
	{"events-steady-p99", "event stream, 8th event in a row, p99", "µs", "long-poll wake-up p99", info, 0},
	{"control-pairs-std", "server create+delete, net/http client", "pairs/s", "GET /healthz pairs/s", ratioMin, 0.8},
	{"control-get-std", "GET /sockets/{id}, net/http client", "req/s", "GET /healthz req/s", ratioMin, 0.8},
	{"control-pairs", "server create+delete, minimal client", "pairs/s", "GET /healthz pairs/s", ratioMin, 0.8},
	{"control-get", "GET /sockets/{id}, minimal client", "req/s", "GET /healthz req/s", ratioMin, 0.8},
	{"control-pairs-cpu", "sockman CPU per create+delete", "µs", "per /healthz pair", info, 0},
	{"control-get-cpu", "sockman CPU per GET /sockets/{id}", "µs", "per GET /healthz", info, 0},
	{"control-floor-std", "floor create+delete, net/http client", "pairs/s", "its /healthz pairs/s", info, 0},
	{"control-floor", "floor create+delete, minimal client", "pairs/s", "its /healthz pairs/s", info, 0},
	{"control-floor-cpu", "floor CPU per create+delete", "µs", "per /healthz pair", info, 0},
	{"load-p99", "API p99, 1,000 sockets streaming", "ms", "same probe, idle", absoluteMax, 10},
	{"load-p50", "API p50, 1,000 sockets streaming", "ms", "same probe, idle", info, 0},
	{"load-rate", "ingest during the load test", "MB/s", "offered by the peers", info, 0},
	{"load-cpu", "sockman CPU during the load test", "% of a core", "", info, 0},
	{"mock-rtt-p50", "echo rule round trip, 64 B, p50", "µs", "bare Go echo process p50", ratioMax, 1.5},
	{"mock-rtt-p99", "echo rule round trip, 64 B, p99", "µs", "bare Go echo process p99", ratioMax, 2},
	{"mock-rate", "echo rule, 1,000 sockets", "msg/s", "bare Go echo process", ratioMin, 0.5},
	{"socat", "peer: socat relaying a stream", "MB/s", "raw loopback stream", info, 0},
	{"socat-256k", "peer: socat -b 262144 relaying", "MB/s", "raw loopback stream", info, 0},
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// printTable prints one row per measured figure: medians over the runs,
// and the median of the per-run ratios (each run's sockman figure against
// the baseline measured in that run).
func printTable(w io.Writer, c *config, all map[string][]sample) {
	fmt.Fprintf(w, "\n%-36s %12s %-11s %12s  %-22s %7s %-12s %s\n", "figure", "measured", "unit", "baseline", "(baseline is)", "ratio", "target", "")
	for _, m := range metrics {
		ss, ok := all[m.key]
		if !ok {
			continue
		}
		var sv, bv, rv []float64
		for _, s := range ss {
			sv = append(sv, s.sockman)
			bv = append(bv, s.baseline)
			if s.baseline != 0 {
				rv = append(rv, s.sockman/s.baseline)
			}
		}
		sm, bm, rm := median(sv), median(bv), median(rv)
		base, ratio := "-", "-"
		if m.baseline != "" {
			base = fmt.Sprintf("%12.1f", bm)
			if len(rv) > 0 {
				ratio = fmt.Sprintf("%.2fx", rm)
			}
		}
		target, verdict := "", ""
		switch m.goal {
		case ratioMin:
			target, verdict = fmt.Sprintf(">= %.2fx", m.target), met(rm >= m.target)
		case ratioMax:
			target, verdict = fmt.Sprintf("<= %.2fx", m.target), met(rm <= m.target)
		case absoluteMax:
			target, verdict = fmt.Sprintf("<= %g %s", m.target, m.unit), met(sm <= m.target)
		}
		fmt.Fprintf(w, "%-36s %12.1f %-11s %12s  %-22s %7s %-12s %s\n", m.label, sm, m.unit, base, m.baseline, ratio, target, verdict)
		if c.verbose && len(rv) > 1 {
			fmt.Fprintf(w, "%-36s ratios per run: %s\n", "", fmtList(rv))
		}
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func fmtList(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.2f", x)
	}
	return s
}
