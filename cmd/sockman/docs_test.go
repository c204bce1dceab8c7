package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/sockman/sockman/internal/doccheck"
)

// FLAGS.md lists every flag serve defines, with its env twin and its
// default, and no flag that does not exist. A default is written `VALUE`
// (what the flag would take: 4MiB, 60s) or "none" for an empty one.
func TestFlagsDocumented(t *testing.T) {
	c := defaultServeConfig()
	defined := serveFlags(&c, io.Discard)
	rows := doccheck.Table(t, doccheck.Read(t, "FLAGS.md"), "Flag")
	documented := map[string]bool{}
	for _, row := range rows {
		if len(row) != 4 {
			t.Errorf("FLAGS.md row %q: want 4 cells (flag, env, default, meaning)", row)
			continue
		}
		name := strings.TrimPrefix(strings.Trim(row[0], "`"), "--")
		if documented[name] {
			t.Errorf("FLAGS.md lists --%s twice", name)
		}
		documented[name] = true
		f := defined.Lookup(name)
		if f == nil {
			t.Errorf("FLAGS.md lists %s, which sockman serve does not define", row[0])
			continue
		}
		if want := "`" + envName(name) + "`"; row[1] != want {
			t.Errorf("FLAGS.md --%s: env twin %s, want %s", name, row[1], want)
		}
		if row[3] == "" {
			t.Errorf("FLAGS.md --%s: no meaning given", name)
		}
		checkDefault(t, f, row[2])
	}
	defined.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("--%s (%s) is missing from FLAGS.md: add its row", f.Name, f.Usage)
		}
	})
}

// checkDefault reports whether the default written in FLAGS.md is the
// flag's: the written value, set on a fresh flag, must read back as the
// flag's default does.
func checkDefault(t *testing.T, f *flag.Flag, written string) {
	t.Helper()
	if written == "none" {
		if f.DefValue != "" {
			t.Errorf("FLAGS.md --%s: default none, but it is %q", f.Name, f.DefValue)
		}
		return
	}
	code := doccheck.Code(written)
	if len(code) != 1 || "`"+code[0]+"`" != written {
		t.Errorf("FLAGS.md --%s: default %q: write it as `VALUE` or none", f.Name, written)
		return
	}
	c := defaultServeConfig()
	fresh := serveFlags(&c, io.Discard).Lookup(f.Name)
	if err := fresh.Value.Set(code[0]); err != nil {
		t.Errorf("FLAGS.md --%s: default %s is not a value of the flag: %v", f.Name, written, err)
		return
	}
	if got := fresh.Value.String(); got != f.DefValue {
		t.Errorf("FLAGS.md --%s: default %s is %q, but the flag's is %q", f.Name, written, got, f.DefValue)
	}
}

// The limits table of SECURITY.md names only flags that exist.
func TestSecurityLimitsNameFlags(t *testing.T) {
	c := defaultServeConfig()
	defined := serveFlags(&c, io.Discard)
	rows := doccheck.Table(t, doccheck.Read(t, "SECURITY.md"), "Flag")
	if len(rows) == 0 {
		t.Fatal("SECURITY.md: the limits table is empty")
	}
	for _, row := range rows {
		for _, code := range doccheck.Code(row[0]) {
			if defined.Lookup(strings.TrimPrefix(code, "--")) == nil {
				t.Errorf("SECURITY.md limits: %s is not a flag of sockman serve", code)
			}
		}
	}
}
