package api

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// The engine's errors carry facts (which limit, its value, which id); the
// words a user reads, with the flag to change and the route to call, are
// chosen here. detail returns the problem detail for err: the engine error
// it wraps rendered for the API, or err's own text.
func detail(err error) string {
	var (
		lim *sockets.LimitError
		nf  *sockets.NotFoundError
		rng *sockets.RangeError
		dto *sockets.DialTimeoutError
		bsy *sockets.BusyError
		inf *sockets.ItemNotFoundError
	)
	// Each detail starts with the sentinel's words, as every other
	// engine error's text does ("limit reached: ...").
	switch {
	case errors.As(err, &lim):
		return fmt.Sprintf("%v: %s", sockets.ErrLimit, limitDetail(lim))
	case errors.As(err, &nf):
		return fmt.Sprintf("%v: %s", nf.Unwrap(), notFoundDetail(nf))
	case errors.As(err, &rng):
		return fmt.Sprintf("%v: %s", sockets.ErrInvalid, rangeDetail(rng))
	case errors.As(err, &bsy):
		return fmt.Sprintf("%v: socket %s has a stream attached (GET /sockets/{id}/stream), its one consumer; close that stream first, or read without after to peek", sockets.ErrSocketBusy, bsy.ID)
	case errors.As(err, &inf):
		what := "rules"
		if inf.Schedule {
			what = "schedules"
		}
		return fmt.Sprintf("%v: %v; list them with GET /%ss/{id}/%s", inf.Unwrap(), inf, strings.Fields(inf.Owner)[0], what)
	case errors.As(err, &dto):
		return fmt.Sprintf("%v: %s did not answer within %v; check the host and port, or raise timeout_ms", sockets.ErrConnectTimeout, dto.Addr, dto.Timeout)
	}
	return err.Error()
}

func limitDetail(e *sockets.LimitError) string {
	switch e.Limit {
	case sockets.LimitSockets:
		return fmt.Sprintf("%d sockets are open, the most --max-sockets allows; close some (DELETE /sockets/{id})", e.Value)
	case sockets.LimitServers:
		return fmt.Sprintf("%d servers are listening, the most --max-servers allows; delete some (DELETE /servers/{id})", e.Value)
	case sockets.LimitBufferTotal:
		return fmt.Sprintf("sockets hold %d bytes, the most --max-buffer-total allows; read or delete sockets to free memory", e.Value)
	case sockets.LimitSubscribers:
		return fmt.Sprintf("%d event streams are open, the most --max-subscribers allows; close one (or raise --max-subscribers)", e.Value)
	case sockets.LimitRules:
		return fmt.Sprintf("it has %d reply rules, the most --max-rules allows; delete one (DELETE .../rules/{rule_id}) or join two into one regex", e.Value)
	case sockets.LimitSchedules:
		return fmt.Sprintf("it has %d schedules, the most --max-schedules allows; delete one (DELETE .../schedules/{schedule_id})", e.Value)
	case sockets.LimitFiles:
		return fmt.Sprintf("no file descriptor is left for a new socket (%v); close sockets (DELETE /sockets/{id}) or raise the open files limit (ulimit -n)", e.Cause)
	}
	return fmt.Sprintf("the %s limit (%d) is reached", e.Limit, e.Value)
}

func notFoundDetail(e *sockets.NotFoundError) string {
	switch {
	case e.Closing:
		what := "socket"
		if e.Server {
			what = "server"
		}
		return fmt.Sprintf("%s %s is closing", what, e.ID)
	case e.Server:
		return fmt.Sprintf("no server has id %s; list them with GET /servers", quote.String(e.ID))
	case e.Retention > 0:
		return fmt.Sprintf("no socket has id %s (closed sockets are forgotten %v after they close, or when deleted); list them with GET /sockets", quote.String(e.ID), e.Retention)
	}
	return fmt.Sprintf("no socket has id %s; list them with GET /sockets", quote.String(e.ID))
}

// rangeFields are the request fields and flags that set the engine's
// arguments and bounds.
var (
	rangeFields = map[sockets.Arg]string{
		sockets.ArgPort:          "port",
		sockets.ArgBufferBytes:   "buffer_bytes",
		sockets.ArgTimeout:       "timeout_ms",
		sockets.ArgPatternBytes:  "the match pattern's length in bytes",
		sockets.ArgReplyBytes:    "the length of data in bytes",
		sockets.ArgGreetingBytes: "the greeting's length in bytes",
	}
	boundFlags = map[string]string{
		"MaxBufferBytes":  "--max-buffer-bytes",
		"MaxDialTimeout":  "--max-connect-timeout",
		"MaxNameBytes":    "--max-name-bytes",
		"MaxPatternBytes": "--max-rule-pattern-bytes",
		"MaxReplyBytes":   "--max-reply-bytes",
		"MinInterval":     "--min-schedule-interval",
	}
)

func rangeDetail(e *sockets.RangeError) string {
	if e.Arg == sockets.ArgEventID {
		return fmt.Sprintf("event id %d (after or Last-Event-ID) is beyond the last event, %d; ids start again at 1 when the service restarts: start without after and Last-Event-ID to take events from now on", e.Value, e.Max)
	}
	switch e.Arg {
	case sockets.ArgName:
		return fmt.Sprintf("name is %d bytes, more than the %d that --max-name-bytes allows; use a shorter one", e.Value, e.Max)
	case sockets.ArgKeepAlive:
		return fmt.Sprintf("keepalive %v is out of range %v to %v (in whole seconds); \"0\" turns keepalive off", time.Duration(e.Value), time.Duration(e.Min), time.Duration(e.Max))
	}
	field := rangeFields[e.Arg]
	if field == "" {
		field = string(e.Arg)
	}
	lo, hi, v := e.Min, e.Max, e.Value
	if e.Arg == sockets.ArgTimeout {
		// timeout_ms is in milliseconds; a value that is not a whole
		// number of them cannot come from a request.
		lo, hi, v = lo/int64(time.Millisecond), hi/int64(time.Millisecond), v/int64(time.Millisecond)
	}
	d := fmt.Sprintf("%s %d is out of range %d to %d", field, v, lo, hi)
	switch flag := boundFlags[e.Bound]; {
	case flag == "":
	case e.Arg == sockets.ArgInterval:
		d += fmt.Sprintf(" (%s is %v); send less often", flag, time.Duration(e.Min)*time.Millisecond)
	case e.Arg == sockets.ArgTimeout:
		d += fmt.Sprintf(" (%s is %v)", flag, time.Duration(e.Max))
	default:
		d += " (" + flag + ")"
	}
	return d
}
