package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockman/sockman/client"
)

// Exit codes of the client commands, one per class of problem. CLI.md has
// the same table (TestExitCodesDocumented checks it).
const (
	exitOK          = 0
	exitError       = 1 // anything else: an unexpected answer, an I/O error
	exitUsage       = 2 // a bad command line, or a request the API calls invalid (400, 413, 415)
	exitNotFound    = 3 // 404: no such server or socket
	exitConflict    = 4 // 409: address in use, socket closed, socket busy
	exitRefused     = 5 // 401, 403: no or a wrong token, the Host check, the connect or listen policy
	exitUnavailable = 6 // 502, 503, 504: the target refused or timed out, a limit reached, shutting down
	exitNoService   = 7 // the service cannot be reached at --addr
	exitInterrupted = 130
)

// exitCodesHelp is the table in every client command's help.
const exitCodesHelp = `Exit codes:
  0  done
  1  any other error (an unexpected answer, an I/O error)
  2  usage: a bad command line, or a request the API calls invalid (400, 413, 415)
  3  not found (404): no such server or socket
  4  conflict (409): address in use, socket closed, socket busy
  5  refused (401, 403): no or a wrong token, Host check, connect or listen policy
  6  unavailable (502, 503, 504): target refused or timed out, a limit, shutting down
  7  the service cannot be reached at --addr
  130 interrupted (Ctrl-C) while following`

// usageError is a bad command line: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// unreachableError is a request that found no service at --addr.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// exitCode is the exit code of err, returned by a command.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	var un unreachableError
	if errors.As(err, &un) {
		return exitNoService
	}
	if p := client.AsProblem(err); p != nil {
		switch {
		case p.Status == http.StatusNotFound:
			return exitNotFound
		case p.Status == http.StatusConflict:
			return exitConflict
		case p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden:
			return exitRefused
		case p.Status == http.StatusBadGateway || p.Status == http.StatusServiceUnavailable || p.Status == http.StatusGatewayTimeout:
			return exitUnavailable
		case p.Status/100 == 4:
			return exitUsage
		}
		return exitError
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	return exitError
}

// cli is what every client command shares: the global flags and the
// client made of them.
type cli struct {
	addr      string
	token     string
	tokenFile string
	json      bool

	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)

	c *client.Sockman
}

// client returns the API client of the global flags, made once.
func (g *cli) client() (*client.Sockman, error) {
	if g.c != nil {
		return g.c, nil
	}
	token := g.token
	if g.tokenFile != "" {
		if token != "" {
			return nil, usagef("both a token (--token or SOCKMAN_TOKEN) and --token-file are set; give one")
		}
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return nil, usagef("--token-file: %v", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, usagef("--token-file %s is empty", g.tokenFile)
		}
	}
	// No timeout on the whole request: reads long-poll and streams last.
	// Dialing the service is bounded, and nothing goes through a proxy.
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		ResponseHeaderTimeout: 0,
		MaxIdleConnsPerHost:   4,
	}
	c, err := client.New(g.addr, token, &http.Client{Transport: &reachTransport{tr}})
	if err != nil {
		return nil, usagef("--addr: %v", err)
	}
	g.c = c
	return c, nil
}

// reachTransport marks an error of the round trip itself (nothing
// listening at --addr, say) as the service being out of reach.
type reachTransport struct{ http.RoundTripper }

func (t *reachTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rsp, err := t.RoundTripper.RoundTrip(r)
	if err != nil && r.Context().Err() == nil {
		return nil, unreachableError{fmt.Errorf("no sockman at %s (%w): is 'sockman serve' running there? (--addr, SOCKMAN_ADDR)", r.URL.Host, err)}
	}
	return rsp, err
}

// printJSON writes v as one line of JSON on stdout.
func (g *cli) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "%s\n", b)
	return err
}

// printRaw writes an answer's JSON body as it came, as one line.
func (g *cli) printRaw(body []byte) error {
	_, err := fmt.Fprintf(g.stdout, "%s\n", strings.TrimRight(string(body), "\n"))
	return err
}

// newRoot returns the sockman command with every subcommand.
func newRoot(ctx context.Context, g *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "sockman",
		Short: "Drive TCP sockets over HTTP",
		Long: `sockman drives TCP sockets over HTTP: listen, connect, send, read, watch.

'sockman serve' runs the service; every other command is a client of a running
one, at --addr (SOCKMAN_ADDR, default 127.0.0.1:8080), with the token of
--token (SOCKMAN_TOKEN) or --token-file (SOCKMAN_TOKEN_FILE) when it has one.
--json prints the API's JSON instead of text. See CLI.md.`,
		Example: `  sockman serve &
  sockman listen 9000                 # srv-1 listening on 127.0.0.1:9000
  nc 127.0.0.1 9000                   # in another terminal: sock-1 connects
  sockman ls
  sockman send sock-1 'hello\n' --escaped
  sockman read -f sock-1
  sockman attach sock-1               # like nc, over the WebSocket stream`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetContext(ctx)
	addr := "127.0.0.1:8080"
	if v, ok := g.getenv("SOCKMAN_ADDR"); ok && v != "" {
		addr = v
	}
	token, _ := g.getenv("SOCKMAN_TOKEN")
	tokenFile, _ := g.getenv("SOCKMAN_TOKEN_FILE")
	pf := root.PersistentFlags()
	pf.StringVar(&g.addr, "addr", addr, "address of the sockman service, host:port or a URL (env SOCKMAN_ADDR)")
	pf.StringVar(&g.token, "token", token, "bearer token of the service (env SOCKMAN_TOKEN; flags show in ps, prefer the env or --token-file)")
	pf.StringVar(&g.tokenFile, "token-file", tokenFile, "file holding the bearer token (env SOCKMAN_TOKEN_FILE)")
	pf.BoolVar(&g.json, "json", false, "print the API's JSON instead of text")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)

	root.AddCommand(
		newServeCmd(g),
		newListenCmd(g),
		newConnectCmd(g),
		newLsCmd(g),
		newSendCmd(g),
		newReadCmd(g),
		newCloseCmd(g),
		newEventsCmd(g),
		newAttachCmd(g),
		newRulesCmd(g),
		newVersionCmd(g),
	)
	for _, c := range root.Commands() {
		if c.Name() != "serve" {
			c.Long = strings.TrimSpace(c.Long) + "\n\n" + exitCodesHelp
		}
	}
	return root
}

// args checks the number of positional arguments, as a usage error.
func args(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			if n == 0 {
				return usagef("takes no arguments, got %d", len(a))
			}
			return usagef("want %s, got %d argument(s)", names, len(a))
		}
		return nil
	}
}

func newVersionCmd(g *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Long:    "Print the version of this sockman binary.",
		Example: "  sockman version\n  sockman version --json",
		Args:    args(0, "nothing"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.json {
				return g.printJSON(map[string]string{"version": version})
			}
			_, err := fmt.Fprintln(g.stdout, "sockman", version)
			return err
		},
	}
}

// newServeCmd is `sockman serve`: its flags are parsed by parseServeFlags,
// as they always were (FLAGS.md lists them), not by cobra.
func newServeCmd(g *cli) *cobra.Command {
	return &cobra.Command{
		Use:                "serve [flags]",
		Short:              "Run the HTTP API (sockman serve -h lists its flags)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, a []string) error {
			cfg, err := parseServeFlags(a, os.LookupEnv, g.stderr)
			if err != nil {
				if err == errHelp {
					return nil
				}
				return serveError{fmt.Errorf("sockman serve: %v", err), exitUsage}
			}
			if err := serve(cmd.Context(), cfg, g.stderr, nil); err != nil {
				return serveError{fmt.Errorf("sockman serve: %v", err), exitError}
			}
			return nil
		},
	}
}

// serveError is serve's failure, printed as it always was.
type serveError struct {
	err  error
	code int
}

func (e serveError) Error() string { return e.err.Error() }
