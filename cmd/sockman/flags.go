package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/sockets"
)

var errHelp = errors.New("help requested")

// serveConfig is everything `sockman serve` is told by flags and env.
type serveConfig struct {
	Addr              string
	Token             string
	TokenFile         string
	AllowedHosts      []string
	CORSOrigins       []string
	AllowConnect      []string
	AllowListen       []string
	BufferBytes       int64
	MaxBufferBytes    int64
	MaxBufferTotal    int64
	MaxSockets        int
	MaxServers        int
	MaxNameBytes      int
	MaxAPIConns       int
	MaxBody           int64
	MaxWait           time.Duration
	ConnectTimeout    time.Duration
	MaxConnectTimeout time.Duration
	WriteTimeout      time.Duration
	AnswerStall       time.Duration
	ReadHeaderTimeout time.Duration
	ClosedRetention   time.Duration
	ShutdownTimeout   time.Duration
	LogLevel          string
	LogMaxSimilar     int
	LogFormat         string
	MetricsAddr       string // "": no metrics listener of its own
	PprofAddr         string // "": no pprof
	EventHistory      int
	EventHistoryBytes int64
	MaxSubscribers    int
	EventHeartbeat    time.Duration
	MaxStreams        int

	// Mock devices.
	MaxRules          int
	MaxSchedules      int
	MaxPatternBytes   int64
	MaxReplyBytes     int64
	MinInterval       time.Duration
	MaxPendingReplies int

	// tokenOnCommandLine: --token was given as a flag, where other users of
	// the machine can read it (ps); serve warns.
	tokenOnCommandLine bool
	// given names the flags set on the command line or by their env twin:
	// serve scales down the descriptor limits that were not given when they
	// do not fit RLIMIT_NOFILE, and refuses those that were.
	given map[string]bool
	// fileLimit, when not 0, stands for RLIMIT_NOFILE in tests.
	fileLimit uint64
	// resolver resolves names for connects and listens; nil is Go's default.
	// Tests set it to a fake DNS server so that no name leaves the machine.
	resolver *net.Resolver
}

// Defaults of the HTTP server that have no flag.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	idleTimeout              = 2 * time.Minute
	maxHeaderBytes           = 64 << 10
	defaultLogMaxSimilar     = 10
	defaultMaxAPIConns       = 1024
	maxEventHistory          = 1 << 20
)

// envName is the environment twin of a flag: --max-body is SOCKMAN_MAX_BODY.
func envName(flagName string) string {
	return "SOCKMAN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// defaultServeConfig is the configuration of serve without flags or env.
func defaultServeConfig() serveConfig {
	return serveConfig{
		Addr:              "127.0.0.1:8080",
		BufferBytes:       sockets.DefaultBufferBytes,
		MaxBufferBytes:    sockets.DefaultMaxBufferBytes,
		MaxBufferTotal:    sockets.DefaultMaxBufferTotal,
		MaxSockets:        sockets.DefaultMaxSockets,
		MaxServers:        sockets.DefaultMaxServers,
		MaxNameBytes:      sockets.DefaultMaxNameBytes,
		MaxAPIConns:       defaultMaxAPIConns,
		MaxBody:           api.DefaultMaxBody,
		MaxWait:           api.DefaultMaxWait,
		ConnectTimeout:    sockets.DefaultDialTimeout,
		MaxConnectTimeout: sockets.DefaultMaxDialTimeout,
		WriteTimeout:      sockets.DefaultWriteTimeout,
		AnswerStall:       api.DefaultAnswerStallTimeout,
		ReadHeaderTimeout: defaultReadHeaderTimeout,
		ClosedRetention:   sockets.DefaultClosedRetention,
		ShutdownTimeout:   10 * time.Second,
		LogLevel:          "info",
		LogMaxSimilar:     defaultLogMaxSimilar,
		LogFormat:         "text",
		EventHistory:      sockets.DefaultEventHistory,
		EventHistoryBytes: sockets.DefaultEventHistoryBytes,
		MaxSubscribers:    sockets.DefaultMaxSubscribers,
		EventHeartbeat:    api.DefaultEventHeartbeat,
		MaxStreams:        api.DefaultMaxStreams,
		MaxRules:          sockets.DefaultMaxRules,
		MaxSchedules:      sockets.DefaultMaxSchedules,
		MaxPatternBytes:   sockets.DefaultMaxPatternBytes,
		MaxReplyBytes:     sockets.DefaultMaxReplyBytes,
		MinInterval:       sockets.DefaultMinInterval,
		MaxPendingReplies: sockets.DefaultMaxPendingReplies,
	}
}

// serveFlags defines the serve flags on c, whose fields hold the defaults.
// FLAGS.md lists every one: TestFlagsDocumented fails on a flag missing there.
func serveFlags(c *serveConfig, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sockman serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: sockman serve [flags]\n\nEvery flag can also be set by its environment twin: --max-body is SOCKMAN_MAX_BODY.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Addr, "addr", c.Addr, "HOST:PORT the API listens on; a host other than a loopback address or localhost needs a token")
	fs.StringVar(&c.Token, "token", "", "bearer token every route but /healthz and the docs requires (prefer --token-file or SOCKMAN_TOKEN: flags show in ps)")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding the bearer token (surrounding white space is ignored)")
	fs.Var(&listFlag{vals: &c.AllowedHosts}, "allowed-hosts", "more Host header names the API answers to, besides loopback names and the --addr host; '*' turns the check off (needs a token); repeat or comma-separate")
	fs.Var(&listFlag{vals: &c.CORSOrigins}, "cors-origin", "browser origins (scheme://host[:port]) that may call the API from their pages (CORS); repeat or comma-separate; none by default")
	fs.Var(&listFlag{vals: &c.AllowConnect}, "allow-connect", "rules ADDR[:PORTS] for outbound connects, e.g. 10.0.0.0/8:1-1024; once given, only what they match is allowed")
	fs.Var(&listFlag{vals: &c.AllowListen}, "allow-listen", "rules ADDR[:PORTS] for listens, e.g. 127.0.0.1:20000-20010; once given, only what they match is allowed")
	fs.Var((*sizeFlag)(&c.BufferBytes), "buffer-bytes", "receive buffer of a socket when the request names none (bytes, or with KiB/MiB/GiB)")
	fs.Var((*sizeFlag)(&c.MaxBufferBytes), "max-buffer-bytes", "largest buffer_bytes a request may ask for")
	fs.Var((*sizeFlag)(&c.MaxBufferTotal), "max-buffer-total", "bytes all sockets may hold together; past it reads pause and new sockets get 503")
	fs.IntVar(&c.MaxSockets, "max-sockets", c.MaxSockets, "open sockets (accepted and client) at most; past it connects get 503 and servers close new connections at once")
	fs.IntVar(&c.MaxServers, "max-servers", c.MaxServers, "listening servers at most; past it listens get 503")
	fs.IntVar(&c.MaxAPIConns, "max-api-conns", c.MaxAPIConns, "API connections held at once; at it, the oldest connection that is idle or has sent no request yet is closed to make room, and more wait in the listen backlog")
	fs.Var((*sizeFlag)(&c.MaxBody), "max-body", "largest request body; larger ones get 413")
	fs.DurationVar(&c.MaxWait, "max-wait", c.MaxWait, "longest long poll (?wait=); longer waits are cut to it")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", c.ConnectTimeout, "connect timeout when a request names none")
	fs.DurationVar(&c.MaxConnectTimeout, "max-connect-timeout", c.MaxConnectTimeout, "longest connect timeout (timeout_ms) a request may ask for")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "a write to a peer that takes no data for this long fails with 504")
	fs.DurationVar(&c.AnswerStall, "answer-stall-timeout", c.AnswerStall, "a read whose client takes none of its answer for this long has its connection closed, and the memory the answer holds goes back")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time an API client has to send its request headers; slower connections are closed")
	fs.IntVar(&c.MaxNameBytes, "max-name-bytes", c.MaxNameBytes, "longest name label of a server or client, in bytes; longer ones (and ?name= filters) get 400")
	fs.DurationVar(&c.ClosedRetention, "closed-retention", c.ClosedRetention, "how long a closed socket and its unread data stay readable")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long SIGINT/SIGTERM waits for requests in flight")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.IntVar(&c.LogMaxSimilar, "log-max-similar", c.LogMaxSimilar, "log lines of one kind (level and message) written per second at most; the others are counted in one summary line; 0: no limit")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json (one JSON object a line)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "loopback HOST:PORT that serves GET /metrics without the token, for a local scraper; empty: only the API's /metrics")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "loopback HOST:PORT that serves net/http/pprof under /debug/pprof/; empty: none")
	fs.IntVar(&c.EventHistory, "event-history", c.EventHistory, "events kept for GET /events to resume from (Last-Event-ID) and for streams that fall behind; older ones are reported as events.lost")
	fs.Var((*sizeFlag)(&c.EventHistoryBytes), "event-history-bytes", "bytes of message data (GET /events?data=true) kept with the event history; the oldest events' bytes go first")
	fs.IntVar(&c.MaxSubscribers, "max-subscribers", c.MaxSubscribers, "open GET /events streams at most; past it they get 503")
	fs.IntVar(&c.MaxStreams, "max-streams", c.MaxStreams, "open GET /sockets/{id}/stream WebSockets at most; past it they get 503")
	fs.DurationVar(&c.EventHeartbeat, "event-heartbeat", c.EventHeartbeat, "how often an idle GET /events stream gets a ': ping' comment")
	fs.IntVar(&c.MaxRules, "max-rules", c.MaxRules, "reply rules of one server, and of one socket, at most; past it adding one gets 503")
	fs.IntVar(&c.MaxSchedules, "max-schedules", c.MaxSchedules, "schedules of one server, and of one socket, at most; past it adding one gets 503")
	fs.Var((*sizeFlag)(&c.MaxPatternBytes), "max-rule-pattern-bytes", "longest match pattern of a reply rule; longer ones get 400")
	fs.Var((*sizeFlag)(&c.MaxReplyBytes), "max-reply-bytes", "longest reply of a rule, greeting and scheduled data; longer ones get 400 (a regex reply is cut there)")
	fs.DurationVar(&c.MinInterval, "min-schedule-interval", c.MinInterval, "shortest interval_ms of a schedule; shorter ones get 400")
	fs.IntVar(&c.MaxPendingReplies, "max-pending-replies", c.MaxPendingReplies, "answers of reply rules one socket queues; past it the socket stops reading until one is sent (TCP slows the peer)")
	return fs
}

// parseServeFlags reads the serve flags; each flag's env twin sets it when
// the flag is not given (a list flag given on the command line replaces its
// env twin's list). It reads --token-file and checks that the values go
// together. It returns errHelp after printing -h.
func parseServeFlags(args []string, lookupEnv func(string) (string, bool), out io.Writer) (serveConfig, error) {
	c := defaultServeConfig()
	fs := serveFlags(&c, out)

	var envErr error
	c.given = map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookupEnv(envName(f.Name)); ok && envErr == nil {
			c.given[f.Name] = true
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %v", envName(f.Name), err) // not the value: it may be the token
			}
			if l, ok := f.Value.(*listFlag); ok {
				l.fromEnv = true
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errHelp
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		c.given[f.Name] = true
		if f.Name == "token" {
			c.tokenOnCommandLine = true
		}
	})
	if c.TokenFile != "" {
		if c.Token != "" {
			return c, errors.New("both a token (--token or SOCKMAN_TOKEN) and --token-file are set; give one")
		}
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return c, fmt.Errorf("--token-file: %v", err)
		}
		c.Token = strings.TrimSpace(string(b))
		if c.Token == "" {
			return c, fmt.Errorf("--token-file %s is empty", c.TokenFile)
		}
	}
	return c, c.check()
}

// check reports values that cannot go together, naming the flags.
func (c serveConfig) check() error {
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"--max-wait", c.MaxWait}, {"--connect-timeout", c.ConnectTimeout}, {"--max-connect-timeout", c.MaxConnectTimeout},
		{"--write-timeout", c.WriteTimeout}, {"--answer-stall-timeout", c.AnswerStall}, {"--read-header-timeout", c.ReadHeaderTimeout}, {"--closed-retention", c.ClosedRetention},
		{"--event-heartbeat", c.EventHeartbeat},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("%s %v: want a positive duration such as 10s", p.name, p.d)
		}
	}
	switch {
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("--shutdown-timeout %v: want 0 or more", c.ShutdownTimeout)
	case c.ConnectTimeout > c.MaxConnectTimeout:
		return fmt.Errorf("--connect-timeout %v is longer than --max-connect-timeout %v", c.ConnectTimeout, c.MaxConnectTimeout)
	case c.BufferBytes > c.MaxBufferBytes:
		return fmt.Errorf("--buffer-bytes %d is larger than --max-buffer-bytes %d", c.BufferBytes, c.MaxBufferBytes)
	case c.MaxSockets <= 0 || c.MaxServers <= 0 || c.MaxAPIConns <= 0:
		return errors.New("--max-sockets, --max-servers and --max-api-conns must be positive")
	case c.MaxNameBytes <= 0:
		return fmt.Errorf("--max-name-bytes %d: want a positive number of bytes", c.MaxNameBytes)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	case c.LogMaxSimilar < 0:
		return fmt.Errorf("--log-max-similar %d: want 0 (no limit) or more", c.LogMaxSimilar)
	case c.EventHistory <= 0 || c.MaxSubscribers <= 0:
		return errors.New("--event-history and --max-subscribers must be positive")
	case c.MaxStreams <= 0:
		return errors.New("--max-streams must be positive")
	case c.MaxRules <= 0 || c.MaxSchedules <= 0 || c.MaxPendingReplies <= 0:
		return errors.New("--max-rules, --max-schedules and --max-pending-replies must be positive")
	case c.MaxPatternBytes > 1<<20 || c.MaxReplyBytes > 16<<20:
		return fmt.Errorf("--max-rule-pattern-bytes %d or --max-reply-bytes %d is too large: at most 1MiB and 16MiB", c.MaxPatternBytes, c.MaxReplyBytes)
	case c.MinInterval < time.Millisecond:
		return fmt.Errorf("--min-schedule-interval %v: want at least 1ms", c.MinInterval)
	case c.EventHistory > maxEventHistory:
		// The history is allocated whole at the start, about 280 bytes an event.
		return fmt.Errorf("--event-history %d is more than %d events (about 280 bytes each, held from the start)", c.EventHistory, maxEventHistory)
	}
	return nil
}

// listFlag collects repeated or comma-separated values. The first value given
// on the command line replaces those its env twin gave.
type listFlag struct {
	vals    *[]string
	fromEnv bool
}

func (l *listFlag) String() string {
	if l.vals == nil { // the zero value flag.PrintDefaults makes
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l *listFlag) Set(v string) error {
	if l.fromEnv {
		*l.vals, l.fromEnv = nil, false
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l.vals = append(*l.vals, s)
		}
	}
	return nil
}

// sizeFlag is a byte count, plain or with a KiB, MiB or GiB suffix.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			v, mult = strings.TrimSuffix(v, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("want a positive byte count such as 4194304 or 4MiB")
	}
	*s = sizeFlag(n * mult)
	return nil
}
