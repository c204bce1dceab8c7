// Command sockman drives TCP sockets over HTTP.
//
//	sockman serve [flags]    run the HTTP API (see sockman serve -h)
//	sockman listen PORT      and the other client commands (see CLI.md)
//	sockman version          print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

var version = "dev"

func main() {
	os.Exit(mainCode(os.Args[1:]))
}

// mainCode is main's work without the exit: the signals and run.
func mainCode(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful shutdown; from then on the
	// signals have their default effect, so a second one ends the process
	// at once (for a shutdown that waits longer than its user will).
	context.AfterFunc(ctx, stop)
	return runCLI(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
}

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runCLI(ctx, args, os.Stdin, stdout, stderr, os.LookupEnv)
}

// runError is an error of a command's own work (not of its command line).
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

func runCLI(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	g := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(ctx, g)
	if len(args) == 0 {
		root.SetOut(stderr)
		root.Usage()
		return exitUsage
	}
	var wrap func(*cobra.Command)
	wrap = func(c *cobra.Command) {
		if f := c.RunE; f != nil {
			c.RunE = func(cmd *cobra.Command, a []string) error {
				if err := f(cmd, a); err != nil {
					return runError{err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var se serveError
	if errors.As(err, &se) {
		fmt.Fprintln(stderr, se.err)
		return se.code
	}
	name := "sockman"
	if cmd != nil && cmd != root {
		name = "sockman " + cmd.Name()
	}
	var re runError
	if !errors.As(err, &re) {
		// The command line itself: an unknown command or flag, a wrong
		// number of arguments.
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", name, err, name)
		return exitUsage
	}
	code := exitCode(ctx, re.err)
	if code == exitInterrupted {
		return code
	}
	msg := re.err
	var un unreachableError
	if errors.As(msg, &un) {
		msg = un // without the request's URL around it
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, msg)
	if code == exitUsage {
		var u usageError
		if errors.As(re.err, &u) {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", name)
		}
	}
	return code
}
