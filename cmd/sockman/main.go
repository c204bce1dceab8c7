// Command sockman drives TCP sockets over HTTP.
//
//	sockman serve [flags]    run the HTTP API (see sockman serve -h)
//	sockman version          print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful shutdown; from then on the
	// signals have their default effect, so a second one ends the process
	// at once (for a shutdown that waits longer than its user will).
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServeFlags(args[1:], os.LookupEnv, stderr)
		if err != nil {
			if err == errHelp {
				return 0
			}
			fmt.Fprintf(stderr, "sockman serve: %v\n", err)
			return 2
		}
		if err := serve(ctx, cfg, stderr, nil); err != nil {
			fmt.Fprintf(stderr, "sockman serve: %v\n", err)
			return 1
		}
		return 0
	case "version":
		fmt.Fprintln(stdout, "sockman", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "sockman: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: sockman <command> [flags]

commands:
  serve     run the HTTP API (sockman serve -h lists its flags)
  version   print the version
`)
}
