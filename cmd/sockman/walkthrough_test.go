package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/doccheck"
)

// walkStep is one paragraph of the README's walk-through: the commands, and
// the output the README shows after them ("..." stands for anything).
type walkStep struct {
	line     int // of the first command in README.md
	commands []string
	want     []string
}

// parseWalkthrough returns the steps of the first sh block under the
// heading (a line starting "## " and the heading's words). A paragraph (lines up to a blank one) is
// comment lines that explain, then command lines, then comment lines
// ("# " and the output) that show what the commands print.
func parseWalkthrough(t *testing.T, readme, heading string) []walkStep {
	t.Helper()
	lines := strings.Split(readme, "\n")
	i := 0
	for i < len(lines) && !strings.HasPrefix(lines[i], "## "+heading) {
		i++
	}
	for i < len(lines) && lines[i] != "```sh" {
		i++
	}
	if i == len(lines) {
		t.Fatalf("README.md: no ```sh block under a heading \"## %s\"", heading)
	}
	var steps []walkStep
	var cur *walkStep
	for i++; i < len(lines) && lines[i] != "```"; i++ {
		line := lines[i]
		comment := strings.HasPrefix(line, "#")
		switch {
		case strings.TrimSpace(line) == "":
			cur = nil
		case cur == nil && comment:
			// an explanation before the commands
		case cur == nil:
			steps = append(steps, walkStep{line: i + 1})
			cur = &steps[len(steps)-1]
			cur.commands = append(cur.commands, line)
		case comment:
			cur.want = append(cur.want, strings.TrimPrefix(strings.TrimPrefix(line, "#"), " "))
		case len(cur.want) > 0:
			t.Fatalf("README.md:%d: a command after the output of the one before it; leave a blank line between steps", i+1)
		default:
			cur.commands = append(cur.commands, line)
		}
	}
	if i == len(lines) {
		t.Fatal("README.md: the walk-through's sh block does not end")
	}
	return steps
}

// wildcard turns an output line shown in the README into a pattern that
// matches the whole line, "..." matching anything.
func wildcard(shown string) *regexp.Regexp {
	parts := strings.Split(shown, "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// The README's walk-through, and its example of whole messages, run as
// written, in order, each against a service of its own, and print what the
// README shows. Only the ports change: the API's 8080 and the examples'
// 9988 and 9989 become free ports. Each block runs in one bash, step by
// step, and each step's output (stdout and stderr) is compared line by
// line with the comments shown after it.
func TestReadmeWalkthrough(t *testing.T) {
	readme := doccheck.Read(t, "README.md")
	for _, word := range []string{"listen", "newConnection", "readyRead", "write", "connectToHost", "disconnected", "close", "frame.bin"} {
		if !strings.Contains(readme[strings.Index(readme, "## A walk-through"):], word) {
			t.Errorf("the walk-through no longer shows %s", word)
		}
	}
	for _, heading := range []string{"A walk-through", "Whole messages", "Mock devices"} {
		t.Run(strings.ReplaceAll(heading, " ", "-"), func(t *testing.T) { runReadmeBlock(t, readme, heading) })
	}
}

func runReadmeBlock(t *testing.T, readme, heading string) {
	bash, errBash := exec.LookPath("bash")
	_, errCurl := exec.LookPath("curl")
	if errBash != nil || errCurl != nil {
		if os.Getenv("SOCKMAN_REQUIRE_CURL") != "" {
			t.Fatalf("the walk-through needs bash and curl: %v %v", errBash, errCurl)
		}
		t.Skipf("the walk-through needs bash and curl: %v %v", errBash, errCurl)
	}
	steps := parseWalkthrough(t, readme, heading)
	block := ""
	for _, s := range steps {
		block += strings.Join(s.commands, "\n") + "\n"
	}
	if strings.Contains(block, "sleep") {
		t.Error("the walk-through sleeps; wait with a long poll (?wait=) instead")
	}

	svc := startService(t, nil)
	_, apiPort, _ := net.SplitHostPort(svc.addr)
	free := freePorts(t, 2)
	ports := strings.NewReplacer("8080", apiPort, "9988", free[0], "9989", free[1])

	dir := t.TempDir()
	cmd := exec.Command(bash, "--noprofile", "--norc")
	cmd.Dir = dir
	// Nothing of the machine's shell or curl setup: no rc files, no proxy.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CURL_HOME=" + dir, "XDG_CONFIG_HOME=" + dir,
		"TMPDIR=" + dir, "LC_ALL=C", "no_proxy=*", "NO_PROXY=*"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// A failed test kills bash; a command it started (curl) may still hold
	// the output open: Wait stops waiting for that after WaitDelay.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{}) // closed once bash has exited; exitErr is then set
	go func() { exitErr = cmd.Wait(); pw.Close(); close(exited) }()
	out := make(chan string)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out <- strings.TrimSuffix(sc.Text(), "\r")
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		if t.Failed() {
			cmd.Process.Kill()
		}
		for range out {
		}
		<-exited
	})
	fmt.Fprintf(stdin, "set -euo pipefail\n")

	for n, step := range steps {
		// A person gives the accept loop the moment it needs between two
		// commands; commands run back to back do not: wait for it.
		waitAccepted(t, svc)
		marker := "@@walkthrough-step-" + strconv.Itoa(n) + "@@"
		script := ports.Replace(strings.Join(step.commands, "\n"))
		fmt.Fprintf(stdin, "%s\nprintf '\\n%s\\n'\n", script, marker)
		var got []string
		timeout := time.After(guard)
	read:
		for {
			select {
			case line, ok := <-out:
				if !ok {
					<-exited
					t.Fatalf("README.md:%d: bash exited (%v) during\n%s\noutput:\n%s", step.line, exitErr, script, strings.Join(got, "\n"))
				}
				if line == marker {
					break read
				}
				got = append(got, line)
			case <-timeout:
				t.Fatalf("README.md:%d: no end within %v of\n%s\noutput so far:\n%s", step.line, guard, script, strings.Join(got, "\n"))
			}
		}
		for len(got) > 0 && got[len(got)-1] == "" {
			got = got[:len(got)-1]
		}
		if !matches(got, step.want, ports) {
			t.Errorf("README.md:%d:\n%s\nprinted:\n%s\nthe README shows:\n%s", step.line, script,
				strings.Join(got, "\n"), ports.Replace(strings.Join(step.want, "\n")))
		}
	}
}

func matches(got, want []string, ports *strings.Replacer) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if !wildcard(ports.Replace(want[i])).MatchString(got[i]) {
			return false
		}
	}
	return true
}

// freePorts returns n distinct TCP ports of 127.0.0.1 that nothing listened
// on a moment ago.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // all held until the last is taken: no port twice
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports
}

// waitAccepted waits until every client socket connected to one of the
// service's own servers has its accepted socket registered: a connect
// answers once the kernel has the connection, the accept loop registers
// it a moment later.
func waitAccepted(t *testing.T, svc *service) {
	t.Helper()
	waitFor(t, guard, func() bool {
		var servers struct{ Servers []struct{ Address string } }
		svc.do("GET", "/servers", nil).want(t, 200).decode(t, &servers)
		var list struct {
			Sockets []struct {
				Kind          string
				LocalAddress  string `json:"local_address"`
				RemoteAddress string `json:"remote_address"`
				State         string
			}
		}
		svc.do("GET", "/sockets", nil).want(t, 200).decode(t, &list)
		listening := map[string]bool{}
		for _, s := range servers.Servers {
			listening[s.Address] = true
		}
		accepted := map[string]bool{}
		for _, s := range list.Sockets {
			if s.Kind == "accepted" {
				accepted[s.RemoteAddress] = true
			}
		}
		for _, s := range list.Sockets {
			if s.Kind == "client" && s.State == "connected" && listening[s.RemoteAddress] && !accepted[s.LocalAddress] {
				return false
			}
		}
		return true
	})
}
