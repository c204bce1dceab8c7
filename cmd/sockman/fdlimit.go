package main

import (
	"fmt"
	"math"
	"strings"
	"syscall"

	"github.com/sockman/sockman/sockets"
)

// fdReserve is the share of RLIMIT_NOFILE that no flag hands out: standard
// streams, the network poller, the API's listener, the files and DNS
// lookups of a connect, a descriptor or two that net/http or a server's
// accept loop holds for a moment before it turns a connection away.
const fdReserve = 64

// fdShare is one flag's part of the descriptor budget.
type fdShare struct {
	flag  string
	val   *int
	def   int
	per   int    // descriptors each unit may hold
	why   string // what they are, when per > 1
	given bool
}

// shares are the flags that hand out descriptors, in c.
func (c *serveConfig) shares() []fdShare {
	shares := []fdShare{
		{flag: "max-sockets", val: &c.MaxSockets, def: sockets.DefaultMaxSockets, per: 1},
		{flag: "max-servers", val: &c.MaxServers, def: sockets.DefaultMaxServers, per: 2, why: "its listener, and a connection it accepts past --max-sockets to close it"},
		{flag: "max-api-conns", val: &c.MaxAPIConns, def: defaultMaxAPIConns, per: 1},
	}
	for i := range shares {
		shares[i].given = c.given[shares[i].flag] || *shares[i].val != shares[i].def
	}
	return shares
}

// filesNeeded is the most descriptors c lets the process hold: every
// socket, every server with the connection it may be turning away, every
// API connection, and the reserve.
func filesNeeded(c serveConfig) uint64 {
	n := uint64(fdReserve)
	for _, s := range c.shares() {
		n += uint64(*s.val) * uint64(s.per)
	}
	return n
}

// openFilesLimit returns RLIMIT_NOFILE, soft and hard. The Go runtime has
// already raised the soft limit to the hard one when the process started.
func openFilesLimit(c serveConfig) (soft, hard uint64, err error) {
	if c.fileLimit != 0 {
		return c.fileLimit, c.fileLimit, nil
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("reading the open files limit (ulimit -n): %w", err)
	}
	return lim.Cur, lim.Max, nil
}

// fitFiles makes the descriptor limits (--max-sockets, --max-servers,
// --max-api-conns and fdReserve) fit limit, so that neither the sockets nor
// the API can run the other out of descriptors. Limits given as flags (or
// env twins) are kept: when they do not fit, it returns an error that says
// what to raise or lower. Limits left at their defaults are scaled down, by
// one factor, into what the given ones leave, and the returned warning says
// so ("" when nothing was changed).
func fitFiles(c serveConfig, limit, hard uint64) (serveConfig, string, error) {
	need := filesNeeded(c)
	if need <= limit {
		return c, "", nil
	}
	fixed, weights := uint64(fdReserve), uint64(0)
	var scaled []fdShare
	for _, s := range c.shares() {
		if s.given {
			fixed += uint64(*s.val) * uint64(s.per)
			continue
		}
		weights += uint64(s.def) * uint64(s.per)
		scaled = append(scaled, s)
	}
	min := uint64(0) // what the scaled ones need at one each
	for _, s := range scaled {
		min += uint64(s.per)
	}
	if len(scaled) == 0 || fixed+min > limit {
		return c, "", filesError(c, need, limit, hard)
	}
	f := float64(limit-fixed) / float64(weights)
	var set []string
	for _, s := range scaled {
		*s.val = max(1, int(math.Floor(float64(s.def)*f)))
		set = append(set, fmt.Sprintf("--%s %d", s.flag, *s.val))
	}
	return c, fmt.Sprintf("the open files limit (ulimit -n) is %d, below the %d descriptors the default limits need: serving with %s; "+
		"raise the limit (the hard limit is %d: ulimit -Hn as root, LimitNOFILE= in a systemd unit, docker run --ulimit nofile=N) or set these flags",
		limit, need, strings.Join(set, " "), hard), nil
}

// filesError says that the limits of c need more descriptors than limit.
func filesError(c serveConfig, need, limit, hard uint64) error {
	var parts, lower []string
	for _, s := range c.shares() {
		part := fmt.Sprintf("--%s %d", s.flag, *s.val)
		if s.per > 1 {
			part += fmt.Sprintf(" (%d descriptors each: %s)", s.per, s.why)
		}
		parts = append(parts, part)
		lower = append(lower, "--"+s.flag)
	}
	return fmt.Errorf("%s, and %d for the process, need %d file descriptors, but the open files limit (ulimit -n) is %d (hard limit %d): "+
		"raise it (ulimit -Hn as root, LimitNOFILE=%d in a systemd unit, docker run --ulimit nofile=%d) or lower %s",
		strings.Join(parts, ", "), fdReserve, need, limit, hard, need, need, strings.Join(lower, ", "))
}
