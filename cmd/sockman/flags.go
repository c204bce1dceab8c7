package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
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
	Addr            string
	Token           string
	TokenFile       string
	AllowedHosts    []string
	CORSOrigins     []string
	AllowConnect    []string
	AllowListen     []string
	BufferBytes     int64
	MaxBufferBytes  int64
	MaxBufferTotal  int64
	MaxSockets      int
	MaxServers      int
	MaxBody         int64
	MaxWait         time.Duration
	ConnectTimeout  time.Duration
	WriteTimeout    time.Duration
	ClosedRetention time.Duration
	ShutdownTimeout time.Duration
	LogLevel        string
}

// envName is the environment twin of a flag: --max-body is SOCKMAN_MAX_BODY.
func envName(flagName string) string {
	return "SOCKMAN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseServeFlags reads the serve flags; each flag's env twin sets it when
// the flag is not given. It returns errHelp after printing -h.
func parseServeFlags(args []string, lookupEnv func(string) (string, bool), out io.Writer) (serveConfig, error) {
	c := serveConfig{
		Addr:            "127.0.0.1:8080",
		BufferBytes:     sockets.DefaultBufferBytes,
		MaxBufferBytes:  sockets.DefaultMaxBufferBytes,
		MaxBufferTotal:  sockets.DefaultMaxBufferTotal,
		MaxSockets:      sockets.DefaultMaxSockets,
		MaxServers:      sockets.DefaultMaxServers,
		MaxBody:         api.DefaultMaxBody,
		MaxWait:         api.DefaultMaxWait,
		ConnectTimeout:  sockets.DefaultDialTimeout,
		WriteTimeout:    sockets.DefaultWriteTimeout,
		ClosedRetention: sockets.DefaultClosedRetention,
		ShutdownTimeout: 10 * time.Second,
		LogLevel:        "info",
	}
	fs := flag.NewFlagSet("sockman serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Addr, "addr", c.Addr, "HOST:PORT the API listens on; a non-loopback host needs --token")
	fs.StringVar(&c.Token, "token", "", "bearer token every route but /healthz requires (prefer --token-file or the env twin: flags show in ps)")
	fs.StringVar(&c.TokenFile, "token-file", "", "file holding the bearer token (surrounding white space is ignored)")
	fs.Var((*listFlag)(&c.AllowedHosts), "allowed-hosts", "extra Host header names the API answers (loopback names and the --addr host always); repeat or comma-separate")
	fs.Var((*listFlag)(&c.CORSOrigins), "cors-origin", "origins allowed to call the API from a browser (CORS); repeat or comma-separate; none by default")
	fs.Var((*listFlag)(&c.AllowConnect), "allow-connect", "rules ADDR[:PORTS] for outbound connects; once given, only what they match is allowed")
	fs.Var((*listFlag)(&c.AllowListen), "allow-listen", "rules ADDR[:PORTS] for listens; once given, only what they match is allowed")
	fs.Var((*sizeFlag)(&c.BufferBytes), "buffer-bytes", "receive buffer of a socket when the request names none (bytes, or with KiB/MiB/GiB)")
	fs.Var((*sizeFlag)(&c.MaxBufferBytes), "max-buffer-bytes", "largest buffer_bytes a request may ask for")
	fs.Var((*sizeFlag)(&c.MaxBufferTotal), "max-buffer-total", "bytes all sockets may hold together; past it reads pause and new sockets get 503")
	fs.IntVar(&c.MaxSockets, "max-sockets", c.MaxSockets, "open sockets (accepted and client) at most; past it connects get 503 and servers close new connections")
	fs.IntVar(&c.MaxServers, "max-servers", c.MaxServers, "listening servers at most")
	fs.Var((*sizeFlag)(&c.MaxBody), "max-body", "largest request body")
	fs.DurationVar(&c.MaxWait, "max-wait", c.MaxWait, "longest long poll (?wait=); longer waits are cut to it")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", c.ConnectTimeout, "connect timeout when a request names none")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "a write to a peer that takes no data for this long fails with 504")
	fs.DurationVar(&c.ClosedRetention, "closed-retention", c.ClosedRetention, "how long a closed socket and its unread data stay readable")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long SIGINT/SIGTERM waits for requests in flight")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
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
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return c, fmt.Errorf("--token-file: %v", err)
		}
		c.Token = strings.TrimSpace(string(b))
		if c.Token == "" {
			return c, fmt.Errorf("--token-file %s is empty", c.TokenFile)
		}
	}
	return c, nil
}

// listFlag collects repeated or comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
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
