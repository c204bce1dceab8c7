package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseWithEnv(t *testing.T, args ...string) (serveConfig, error) {
	t.Helper()
	return parseServeFlags(args, os.LookupEnv, io.Discard)
}

// Every security and limit flag has an env twin SOCKMAN_<NAME>.
func TestEnvTwinsSetFlags(t *testing.T) {
	t.Setenv("SOCKMAN_ADDR", "127.0.0.1:9999")
	t.Setenv("SOCKMAN_TOKEN", "env-token")
	t.Setenv("SOCKMAN_ALLOWED_HOSTS", "a.test, b.test")
	t.Setenv("SOCKMAN_CORS_ORIGIN", "http://app.test:3000")
	t.Setenv("SOCKMAN_ALLOW_CONNECT", "127.0.0.1:1000-2000")
	t.Setenv("SOCKMAN_ALLOW_LISTEN", "127.0.0.2")
	t.Setenv("SOCKMAN_MAX_SOCKETS", "7")
	t.Setenv("SOCKMAN_MAX_SERVERS", "3")
	t.Setenv("SOCKMAN_MAX_API_CONNS", "11")
	t.Setenv("SOCKMAN_MAX_BUFFER_TOTAL", "8MiB")
	t.Setenv("SOCKMAN_MAX_BODY", "1KiB")
	t.Setenv("SOCKMAN_MAX_WAIT", "3s")
	t.Setenv("SOCKMAN_CONNECT_TIMEOUT", "2s")
	t.Setenv("SOCKMAN_MAX_CONNECT_TIMEOUT", "9s")
	t.Setenv("SOCKMAN_WRITE_TIMEOUT", "4s")
	t.Setenv("SOCKMAN_READ_HEADER_TIMEOUT", "5s")
	c, err := parseWithEnv(t)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.Addr, c.Token, c.AllowedHosts, c.CORSOrigins, c.AllowConnect, c.AllowListen, c.MaxSockets, c.MaxServers, c.MaxAPIConns,
		c.MaxBufferTotal, c.MaxBody, c.MaxWait, c.ConnectTimeout, c.MaxConnectTimeout, c.WriteTimeout, c.ReadHeaderTimeout, c.tokenOnCommandLine}
	want := []any{"127.0.0.1:9999", "env-token", []string{"a.test", "b.test"}, []string{"http://app.test:3000"}, []string{"127.0.0.1:1000-2000"},
		[]string{"127.0.0.2"}, 7, 3, 11, int64(8 << 20), int64(1 << 10), 3 * time.Second, 2 * time.Second, 9 * time.Second, 4 * time.Second, 5 * time.Second, false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// A flag beats its env twin; a list flag replaces the env list, not adds to it.
func TestFlagsOverrideEnv(t *testing.T) {
	t.Setenv("SOCKMAN_MAX_SOCKETS", "7")
	t.Setenv("SOCKMAN_ALLOWED_HOSTS", "env.test")
	c, err := parseWithEnv(t, "--max-sockets", "9", "--allowed-hosts", "a.test", "--allowed-hosts", "b.test")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxSockets != 9 || !reflect.DeepEqual(c.AllowedHosts, []string{"a.test", "b.test"}) {
		t.Errorf("got max-sockets %d, allowed-hosts %q; want 9, [a.test b.test]", c.MaxSockets, c.AllowedHosts)
	}
}

func TestTokenSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env           string
		args          []string
		want, wantErr string
		onCommandLine bool
	}{
		"flag":               {"", []string{"--token", "flag-token"}, "flag-token", "", true},
		"env":                {"env-token", nil, "env-token", "", false},
		"file, trimmed":      {"", []string{"--token-file", file}, "file-token", "", false},
		"empty file":         {"", []string{"--token-file", empty}, "", "is empty", false},
		"missing file":       {"", []string{"--token-file", filepath.Join(dir, "nosuch")}, "", "--token-file", false},
		"flag and file":      {"", []string{"--token", "x", "--token-file", file}, "", "give one", false},
		"env and file":       {"env-token", []string{"--token-file", file}, "", "give one", false},
		"no token at all":    {"", nil, "", "", false},
		"flag overrides env": {"env-token", []string{"--token", "flag-token"}, "flag-token", "", true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("SOCKMAN_TOKEN", tt.env)
			}
			c, err := parseWithEnv(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Token != tt.want || c.tokenOnCommandLine != tt.onCommandLine {
				t.Errorf("got token %q (on the command line: %v), want %q (%v)", c.Token, c.tokenOnCommandLine, tt.want, tt.onCommandLine)
			}
		})
	}
}

// Values that cannot work are refused at start with the flag named.
func TestFlagValuesChecked(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"zero max-wait":               {[]string{"--max-wait", "0s"}, "--max-wait"},
		"negative write-timeout":      {[]string{"--write-timeout", "-1s"}, "--write-timeout"},
		"zero read-header-timeout":    {[]string{"--read-header-timeout", "0s"}, "--read-header-timeout"},
		"connect above its max":       {[]string{"--connect-timeout", "3m"}, "--max-connect-timeout"},
		"buffer above its max":        {[]string{"--buffer-bytes", "2MiB", "--max-buffer-bytes", "1MiB"}, "--max-buffer-bytes"},
		"zero max-sockets":            {[]string{"--max-sockets", "0"}, "--max-sockets"},
		"negative max-servers":        {[]string{"--max-servers", "-1"}, "--max-servers"},
		"zero max-body":               {[]string{"--max-body", "0"}, "positive byte count"},
		"negative shutdown-timeout":   {[]string{"--shutdown-timeout", "-1s"}, "--shutdown-timeout"},
		"unexpected argument":         {[]string{"extra"}, "unexpected argument"},
		"zero max-connect-timeout":    {[]string{"--max-connect-timeout", "0s"}, "--max-connect-timeout"},
		"zero closed-retention":       {[]string{"--closed-retention", "0s"}, "--closed-retention"},
		"size without a number (env)": {nil, "SOCKMAN_MAX_BODY"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if tt.args == nil {
				t.Setenv("SOCKMAN_MAX_BODY", "MiB")
			}
			_, err := parseWithEnv(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// -h lists the security flags and says that env twins exist.
func TestHelpListsFlags(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseServeFlags([]string{"-h"}, func(string) (string, bool) { return "", false }, &out); err != errHelp {
		t.Fatalf("got %v, want errHelp", err)
	}
	for _, want := range []string{"SOCKMAN_MAX_BODY", "-token-file", "-allowed-hosts", "-cors-origin", "-allow-connect", "-allow-listen",
		"-max-sockets", "-max-servers", "-max-buffer-total", "-max-body", "-max-wait", "-connect-timeout", "-max-connect-timeout",
		"-write-timeout", "-read-header-timeout"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q", want)
		}
	}
}

// --answer-stall-timeout: a duration, with its env twin, that must be positive.
func TestAnswerStallTimeoutFlag(t *testing.T) {
	c, err := parseWithEnv(t)
	if err != nil || c.AnswerStall != 15*time.Second {
		t.Fatalf("default: got %v, %v; want 15s, nil", c.AnswerStall, err)
	}
	t.Setenv("SOCKMAN_ANSWER_STALL_TIMEOUT", "3s")
	if c, err = parseWithEnv(t); err != nil || c.AnswerStall != 3*time.Second {
		t.Fatalf("SOCKMAN_ANSWER_STALL_TIMEOUT=3s: got %v, %v; want 3s, nil", c.AnswerStall, err)
	}
	if c, err = parseWithEnv(t, "--answer-stall-timeout", "250ms"); err != nil || c.AnswerStall != 250*time.Millisecond {
		t.Fatalf("--answer-stall-timeout 250ms: got %v, %v; want 250ms, nil", c.AnswerStall, err)
	}
	for _, v := range []string{"0s", "-1s"} {
		if _, err := parseWithEnv(t, "--answer-stall-timeout", v); err == nil || !strings.Contains(err.Error(), "--answer-stall-timeout") {
			t.Errorf("--answer-stall-timeout %s: got %v, want an error naming the flag", v, err)
		}
	}
}
