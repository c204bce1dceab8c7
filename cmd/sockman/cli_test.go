package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/sockman/sockman/internal/doccheck"
	"github.com/sockman/sockman/internal/testnet"
)

// cliChildEnv, set to 1, makes the test binary be sockman itself: TestMain
// runs main's work with the binary's arguments. (Not a SOCKMAN_ name:
// TestMain clears those.)
const cliChildEnv = "GO_WANT_SOCKMAN_CLI"

// cliRun is one finished run of the sockman command.
type cliRun struct {
	stdout, stderr string
	code           int
}

// sockmanCmd is `sockman args...` as a process, talking to s (SOCKMAN_ADDR,
// and SOCKMAN_TOKEN when s has a token), with env added.
func sockmanCmd(t *testing.T, s *service, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary to run as sockman: %v", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), cliChildEnv+"=1", "HOME="+t.TempDir())
	if s != nil {
		cmd.Env = append(cmd.Env, "SOCKMAN_ADDR="+s.addr)
		if s.token != "" {
			cmd.Env = append(cmd.Env, "SOCKMAN_TOKEN="+s.token)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runSockman runs `sockman args...` to its end, with stdin (nil: none).
func runSockman(t *testing.T, s *service, stdin io.Reader, args ...string) cliRun {
	t.Helper()
	return sockmanEnv(t, s, nil, stdin, args...)
}

func sockmanEnv(t *testing.T, s *service, env []string, stdin io.Reader, args ...string) cliRun {
	t.Helper()
	cmd := sockmanCmd(t, s, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(guard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("sockman %q: still running after %v; stderr %q", args, guard, stderr.String())
	}
	return cliRun{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// ok fails the test unless the run exited 0.
func (r cliRun) ok(t *testing.T, args ...string) cliRun {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("sockman %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r
}

// fails checks a run's exit code, and that its stderr names every want.
func (r cliRun) fails(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d; stdout %q, stderr %q", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q, want it to contain %q", r.stderr, w)
		}
	}
	if r.stdout != "" {
		t.Errorf("a failing run printed %q on stdout, want nothing", r.stdout)
	}
}

func (r cliRun) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
}

type cliServer struct {
	ID      string   `json:"id"`
	Address string   `json:"address"`
	State   string   `json:"state"`
	Sockets []string `json:"sockets"`
	Name    string   `json:"name"`
	Framing struct {
		Type string `json:"type"`
	} `json:"framing"`
}

type cliSocket struct {
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	ServerID      string `json:"server_id"`
	State         string `json:"state"`
	CloseReason   string `json:"close_reason"`
	LocalAddress  string `json:"local_address"`
	RemoteAddress string `json:"remote_address"`
	BufferedBytes int    `json:"buffered_bytes"`
	PeerSocketID  string `json:"peer_socket_id"`
}

// cliListen starts a server with `sockman listen 0 --json` and returns it.
func cliListen(t *testing.T, s *service, flags ...string) cliServer {
	t.Helper()
	var srv cliServer
	runSockman(t, s, nil, append([]string{"listen", "0", "--json"}, flags...)...).ok(t, "listen").decode(t, &srv)
	if srv.ID == "" || srv.State != "listening" {
		t.Fatalf("listen --json: %+v", srv)
	}
	return srv
}

// acceptedBy waits until the server has accepted a connection and
// returns that socket's id (through the API, not the CLI).
func acceptedBy(t *testing.T, s *service, srvID string) string {
	t.Helper()
	var id string
	waitFor(t, guard, func() bool {
		var l struct{ Sockets []cliSocket }
		s.do("GET", "/sockets?server_id="+srvID, nil).want(t, 200).decode(t, &l)
		if len(l.Sockets) == 1 {
			id = l.Sockets[0].ID
		}
		return id != ""
	})
	return id
}

func TestCLIUsage(t *testing.T) {
	r := runSockman(t, nil, nil)
	if r.code != 2 || !strings.Contains(r.stderr, "sockman [command]") || r.stdout != "" {
		t.Errorf("sockman with no arguments: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", r.code, r.stdout, r.stderr)
	}
	for _, h := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := runSockman(t, nil, nil, h...).ok(t, h...)
		for _, w := range []string{"serve", "listen", "connect", "attach", "Examples:"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("sockman %s: %q is not in %q", h, w, r.stdout)
			}
		}
	}
	runSockman(t, nil, nil, "bogus").fails(t, 2, `unknown command "bogus"`)
	runSockman(t, nil, nil, "ls", "--bogus").fails(t, 2, "unknown flag: --bogus", "sockman ls --help")
	runSockman(t, nil, nil, "read").fails(t, 2, "want ID, got 0")
	runSockman(t, nil, nil, "send", "sock-1", "x", "--hex", "--base64").fails(t, 2, "one of --hex")
	runSockman(t, nil, nil, "listen", "0", "--framing", "bogus").fails(t, 2, "--framing")
	runSockman(t, nil, nil, "connect", "9000").fails(t, 2, "HOST:PORT")
	runSockman(t, nil, nil, "ls", "--addr", "ftp://x").fails(t, 2, "--addr")

	if r := runSockman(t, nil, nil, "version").ok(t); r.stdout != "sockman dev\n" {
		t.Errorf("version: %q", r.stdout)
	}
	var v struct{ Version string }
	runSockman(t, nil, nil, "version", "--json").ok(t).decode(t, &v)
	if v.Version != "dev" {
		t.Errorf("version --json: %+v", v)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := runSockman(t, nil, nil, "completion", sh).ok(t, sh); !strings.Contains(r.stdout, "sockman") {
			t.Errorf("completion %s printed %q", sh, r.stdout)
		}
	}
	// Every client command's help has examples and the exit codes.
	for _, c := range []string{"listen", "connect", "ls", "send", "read", "close", "events", "attach", "version"} {
		r := runSockman(t, nil, nil, c, "--help").ok(t, c)
		for _, w := range []string{"Examples:", "Exit codes:", "3  not found", "--addr", "--json"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("sockman %s --help has no %q", c, w)
			}
		}
	}
}

// serve's own flag parser still answers -h, and rejects a bad flag with 2.
func TestCLIServeFlags(t *testing.T) {
	r := runSockman(t, nil, nil, "serve", "-h").ok(t)
	if !strings.Contains(r.stderr, "usage: sockman serve [flags]") || !strings.Contains(r.stderr, "-max-body") {
		t.Errorf("serve -h: stderr %q", r.stderr)
	}
	runSockman(t, nil, nil, "serve", "--max-body", "x").fails(t, 2, "sockman serve:")
}

func TestCLISocketLifecycle(t *testing.T) {
	s := startService(t, nil)

	r := runSockman(t, s, nil, "listen", "0", "--name", "modem", "--framing", "lines").ok(t)
	m := regexp.MustCompile(`^(srv-\d+) listening on (127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("listen printed %q", r.stdout)
	}
	lines := m[1]
	srv := cliListen(t, s, "--buffer-bytes", "65536", "--overflow", "drop_oldest")

	// connect, human and JSON.
	r = runSockman(t, s, nil, "connect", srv.Address).ok(t)
	if !regexp.MustCompile(`^sock-\d+ connected 127\.0\.0\.1:\d+ -> ` + regexp.QuoteMeta(srv.Address) + "\n$").MatchString(r.stdout) {
		t.Errorf("connect printed %q", r.stdout)
	}
	var cl cliSocket
	runSockman(t, s, nil, "connect", m[2], "--json", "--timeout", "5s").ok(t).decode(t, &cl)
	if cl.Kind != "client" || cl.State != "connected" || cl.RemoteAddress != m[2] {
		t.Fatalf("connect --json: %+v", cl)
	}
	acc := acceptedBy(t, s, lines)

	// ls: the table and the JSON.
	r = runSockman(t, s, nil, "ls").ok(t)
	for _, w := range []string{"SERVER", "SOCKET", lines, srv.ID, "modem", "lines", cl.ID, acc, "accepted", "client"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("ls: no %q in\n%s", w, r.stdout)
		}
	}
	var l struct {
		Servers []cliServer
		Sockets []cliSocket
	}
	runSockman(t, s, nil, "ls", "--json", "--server", lines).ok(t).decode(t, &l)
	if len(l.Servers) != 1 || l.Servers[0].ID != lines || len(l.Sockets) != 1 || l.Sockets[0].ID != acc {
		t.Errorf("ls --json --server %s: %+v", lines, l)
	}
	runSockman(t, s, nil, "ls", "--json", "--kind", "client", "--name", "nothing").ok(t).decode(t, &l)
	if len(l.Servers) != 0 || len(l.Sockets) != 0 {
		t.Errorf("ls --json --name nothing: %+v", l)
	}

	// send in every way, to the accepted socket of the lines server: each
	// send is framed (a \n added), so each is a message of its own on the
	// client's side... which is raw. Read it back there.
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args  []string
		stdin string
		n     int
	}{
		{[]string{acc, "plain"}, "", 6},
		{[]string{acc, `tab\there`, "--escaped"}, "", 9},
		{[]string{acc, "6869", "--hex"}, "", 3},
		{[]string{acc, "aGk=", "--base64"}, "", 3},
		{[]string{acc, "--file", file}, "", 12},
		{[]string{acc, "-"}, "stdin", 6},
		{[]string{acc, "raw", "--no-frame"}, "", 3},
	} {
		var res struct{ Bytes int }
		runSockman(t, s, strings.NewReader(c.stdin), append([]string{"send", "--json"}, c.args...)...).ok(t, c.args...).decode(t, &res)
		if res.Bytes != c.n {
			t.Errorf("send %q: %d bytes, want %d", c.args, res.Bytes, c.n)
		}
	}
	if r := runSockman(t, s, nil, "send", acc, "!").ok(t); r.stdout != "sent 2 bytes to "+acc+"\n" {
		t.Errorf("send printed %q", r.stdout)
	}
	want := "plain\ntab\there\nhi\nhi\nfrom a file\nstdin\nraw!\n"
	waitFor(t, guard, func() bool {
		var sock cliSocket
		s.do("GET", "/sockets/"+cl.ID, nil).want(t, 200).decode(t, &sock)
		return sock.BufferedBytes == len(want)
	})
	// --peek leaves it; read prints the bytes and frees them.
	var peek struct {
		Messages []struct{ Data, Encoding string }
		State    string
	}
	runSockman(t, s, nil, "read", "--peek", "--json", "--encoding", "base64", cl.ID).ok(t).decode(t, &peek)
	var got []byte
	for _, msg := range peek.Messages {
		b, _ := base64.StdEncoding.DecodeString(msg.Data)
		got = append(got, b...)
	}
	if string(got) != want || peek.State != "connected" {
		t.Errorf("read --peek --json: %q (%s), want %q", got, peek.State, want)
	}
	if r := runSockman(t, s, nil, "read", cl.ID).ok(t); r.stdout != want {
		t.Errorf("read printed %q, want %q", r.stdout, want)
	}
	if r := runSockman(t, s, nil, "read", cl.ID).ok(t); r.stdout != "" {
		t.Errorf("a second read printed %q, want nothing: the first freed it", r.stdout)
	}
	// A broadcast to the server's sockets, framed.
	var b struct{ Sockets, Bytes int }
	runSockman(t, s, nil, "send", lines, "all", "--json").ok(t).decode(t, &b)
	if b.Sockets != 1 || b.Bytes != 4 {
		t.Errorf("send %s (a broadcast): %+v", lines, b)
	}

	// close --keep: the socket stays, closed, with what it holds.
	var closed cliSocket
	runSockman(t, s, nil, "close", "--keep", "--json", acc).ok(t).decode(t, &closed)
	if closed.State != "closed" || closed.CloseReason != "closed through the API" {
		t.Errorf("close --keep --json: %+v", closed)
	}
	if r := runSockman(t, s, nil, "read", "-f", cl.ID).ok(t); r.stdout != "all\n" {
		t.Errorf("read -f of a closed socket printed %q, want what it held", r.stdout)
	}
	// close: forgotten.
	if r := runSockman(t, s, nil, "close", cl.ID).ok(t); r.stdout != cl.ID+" closed\n" {
		t.Errorf("close printed %q", r.stdout)
	}
	s.do("GET", "/sockets/"+cl.ID, nil).want(t, 404)
	if r := runSockman(t, s, nil, "close", "--json", acc, "--reset").ok(t); r.stdout != "" {
		t.Errorf("close --json printed %q: DELETE answers no JSON", r.stdout)
	}
	if r := runSockman(t, s, nil, "close", srv.ID, "--close-sockets").ok(t); r.stdout != srv.ID+" stopped\n" {
		t.Errorf("close %s printed %q", srv.ID, r.stdout)
	}
	s.do("GET", "/servers/"+srv.ID, nil).want(t, 404)

	// Problems: the detail on stderr, an exit code per class.
	runSockman(t, s, nil, "read", "sock-999999").fails(t, exitNotFound, "no socket has id")
	runSockman(t, s, nil, "close", "--json", "srv-999999").fails(t, exitNotFound, "srv-999999")
	runSockman(t, s, nil, "listen", m[2]).fails(t, exitConflict, "already")
	runSockman(t, s, nil, "connect", fmt.Sprintf("127.0.0.1:%d", testnet.RefusedPort(t))).fails(t, exitUnavailable, "refused")
	runSockman(t, s, nil, "connect", "127.0.0.1:99999").fails(t, exitUsage, "port")
	runSockman(t, s, nil, "send", lines, "x", "--hex").fails(t, exitUsage, "hex")
	runSockman(t, s, nil, "ls", "--state", "sleeping").fails(t, exitUsage, "state")
	runSockman(t, s, nil, "close", lines).ok(t)
	runSockman(t, s, nil, "send", lines, "x").fails(t, exitNotFound)
	r = sockmanEnv(t, nil, []string{"SOCKMAN_ADDR=" + fmt.Sprintf("127.0.0.1:%d", testnet.RefusedPort(t))}, nil, "ls")
	r.fails(t, exitNoService, "no sockman at", "SOCKMAN_ADDR")
}

func TestCLIToken(t *testing.T) {
	s := startService(t, []string{"--token", "cli-test-token-0123456789"})
	noToken := *s
	noToken.token = ""
	runSockman(t, &noToken, nil, "ls").fails(t, exitRefused, "token")
	runSockman(t, &noToken, nil, "ls", "--token", "wrong-token-9876543210").fails(t, exitRefused)
	runSockman(t, s, nil, "ls").ok(t) // SOCKMAN_TOKEN
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("cli-test-token-0123456789\n"), 0o600)
	runSockman(t, &noToken, nil, "ls", "--token-file", file).ok(t)
	runSockman(t, s, nil, "ls", "--token-file", file).fails(t, exitUsage, "give one")
	runSockman(t, &noToken, nil, "ls", "--token-file", filepath.Join(t.TempDir(), "none")).fails(t, exitUsage, "--token-file")
	// The stream sends the token too.
	srv := cliListen(t, s)
	var cl cliSocket
	runSockman(t, s, nil, "connect", srv.Address, "--json").ok(t).decode(t, &cl)
	runSockman(t, &noToken, strings.NewReader(""), "attach", cl.ID).fails(t, exitRefused, "token")
	if r := runSockman(t, s, strings.NewReader(""), "attach", cl.ID).ok(t); r.stdout != "" || !strings.Contains(r.stderr, "detached") {
		t.Errorf("attach with the token and an empty stdin: stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

// read -f follows a socket until its peer closes, printing every byte
// exactly once, and exits 0.
func TestCLIReadFollow(t *testing.T) {
	s := startService(t, nil)
	srv := cliListen(t, s)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	id := acceptedBy(t, s, srv.ID)

	cmd := sockmanCmd(t, s, nil, "read", "-f", "--wait", "2s", id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var want bytes.Buffer
	for i := range 50 {
		chunk := make([]byte, 1000+i*97)
		rand.Read(chunk)
		want.Write(chunk)
		if _, err := peer.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if i == 25 {
			// Let the follower catch up once, so that it long-polls on an
			// empty buffer for the rest.
			waitFor(t, guard, func() bool {
				var sock cliSocket
				s.do("GET", "/sockets/"+id, nil).want(t, 200).decode(t, &sock)
				return sock.BufferedBytes == 0
			})
		}
	}
	peer.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("read -f: %v; stderr %q", err, stderr.String())
		}
	case <-time.After(guard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("read -f still running %v after the peer closed", guard)
	}
	if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		t.Fatalf("read -f printed %d bytes, want the %d the peer sent, exactly once", stdout.Len(), want.Len())
	}
}

// read --hex is hexdump -C's view; -t marks each message with its time.
func TestCLIReadHexAndTimes(t *testing.T) {
	s := startService(t, nil)
	srv := cliListen(t, s)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	id := acceptedBy(t, s, srv.ID)
	data := []byte("hello, world\x00\x01\x02\xffsockman \x7f\x80 line\n")
	peer.Write(data)
	waitFor(t, guard, func() bool {
		var sock cliSocket
		s.do("GET", "/sockets/"+id, nil).want(t, 200).decode(t, &sock)
		return sock.BufferedBytes == len(data)
	})
	want := `00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 00 01 02 ff  |hello, world....|
00000010  73 6f 63 6b 6d 61 6e 20  7f 80 20 6c 69 6e 65 0a  |sockman .. line.|
00000020
`
	r := runSockman(t, s, nil, "read", "--peek", "--hex", id).ok(t)
	if r.stdout != want {
		t.Errorf("read --hex printed\n%s\nwant\n%s", r.stdout, want)
	}
	if path, err := exec.LookPath("hexdump"); err == nil {
		cmd := exec.Command(path, "-C")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != r.stdout {
			t.Errorf("hexdump -C prints\n%s\nread --hex\n%s", out, r.stdout)
		}
	}
	r = runSockman(t, s, nil, "read", "-t", "--peek", id).ok(t)
	if !regexp.MustCompile(`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z\] seq 1, 32 bytes\n`).MatchString(r.stdout) ||
		!strings.HasSuffix(r.stdout, string(data)) {
		t.Errorf("read -t printed %q", r.stdout)
	}
	// read -f --json: each answer a line, the last the closed state with
	// nothing more.
	peer.Close()
	r = runSockman(t, s, nil, "read", "-f", "--json", id).ok(t)
	answers := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	var first, last struct {
		Messages []struct{ Data, Encoding string }
		State    string
		Cursor   int
	}
	if err := json.Unmarshal([]byte(answers[0]), &first); err != nil {
		t.Fatalf("read -f --json: %q: %v", r.stdout, err)
	}
	json.Unmarshal([]byte(answers[len(answers)-1]), &last)
	if len(answers) != 2 || len(first.Messages) != 1 || first.Messages[0].Encoding != "base64" ||
		first.Messages[0].Data != base64.StdEncoding.EncodeToString(data) || last.State != "closed" || len(last.Messages) != 0 || last.Cursor != 1 {
		t.Errorf("read -f --json printed %q", r.stdout)
	}

	// A dump that goes on across answers keeps its offsets: the second
	// answer's bytes come in their columns.
	var buf bytes.Buffer
	d := &hexDumper{w: &buf}
	d.write([]byte("0123456789"))
	d.write([]byte("abcdefghij"))
	d.close()
	wantSplit := `00000000  30 31 32 33 34 35 36 37  38 39                    |0123456789|
00000000                                 61 62 63 64 65 66  |abcdef|
00000010  67 68 69 6a                                       |ghij|
00000014
`
	if buf.String() != wantSplit {
		t.Errorf("a dump across two writes:\n%s\nwant\n%s", buf.String(), wantSplit)
	}
}

// attach carries binary bytes both ways between stdin/stdout and a real TCP
// peer, prints nothing else on stdout, and detaching (the end of stdin)
// leaves the socket open with what it had not printed.
func TestCLIAttach(t *testing.T) {
	s := startService(t, nil)
	srv := cliListen(t, s)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	id := acceptedBy(t, s, srv.ID)

	cmd := sockmanCmd(t, s, nil, "attach", id)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A pipe of the test's own (Wait does not wait for it, nor close it),
	// so that reading never races with Wait.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd.Stdout = stdoutW
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdoutW.Close() // the child's copy stays open in it
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- cmd.Wait()
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()

	const size = 16 << 20
	up, down := make([]byte, size), make([]byte, size)
	rand.Read(up)
	rand.Read(down)
	// Both ways at once: stdin to the peer, the peer to stdout.
	errs := make(chan error, 4)
	go func() {
		_, err := stdin.Write(up)
		errs <- err
	}()
	go func() {
		_, err := peer.Write(down)
		errs <- err
	}()
	upGot := make(chan []byte, 1)
	go func() {
		peer.SetReadDeadline(time.Now().Add(guard))
		b := make([]byte, size)
		_, err := io.ReadFull(peer, b)
		errs <- err
		upGot <- b
	}()
	stdoutGot := make([]byte, size)
	if _, err := io.ReadFull(stdout, stdoutGot); err != nil {
		t.Fatalf("attach's stdout: %v; stderr %q", err, stderr.String())
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if sha256.Sum256(stdoutGot) != sha256.Sum256(down) {
		t.Error("attach's stdout differs from what the peer sent")
	}
	if sha256.Sum256(<-upGot) != sha256.Sum256(up) {
		t.Error("the peer received other bytes than attach's stdin")
	}

	// Detach: the end of stdin. attach exits 0, and stdout has nothing more.
	stdin.Close()
	restc := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(stdout)
		restc <- b
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("attach after the end of stdin: %v; stderr %q", err, stderr.String())
		}
	case <-time.After(guard):
		t.Fatalf("attach still running %v after the end of stdin", guard)
	}
	if rest := <-restc; len(rest) != 0 {
		t.Errorf("attach printed %d more bytes on stdout", len(rest))
	}
	if !strings.Contains(stderr.String(), "detached") {
		t.Errorf("stderr %q does not say it detached", stderr.String())
	}
	// The socket is still open both ways.
	var sock cliSocket
	s.do("GET", "/sockets/"+id, nil).want(t, 200).decode(t, &sock)
	if sock.State != "connected" {
		t.Fatalf("after detaching the socket is %s, want connected", sock.State)
	}
	peer.Write([]byte("after"))
	runSockman(t, s, nil, "send", id, "back").ok(t)
	peer.SetReadDeadline(time.Now().Add(guard))
	b := make([]byte, 4)
	if _, err := io.ReadFull(peer, b); err != nil || string(b) != "back" {
		t.Fatalf("the peer read %q, %v after the detach, want back", b, err)
	}
	// What the peer sent after the detach is in the socket.
	peer.Close()
	if r := runSockman(t, s, nil, "read", "-f", id).ok(t); r.stdout != "after" {
		t.Errorf("read -f after the detach printed %q, want after", r.stdout)
	}
}

// attach ends with 0 when the peer closes, after printing everything.
func TestCLIAttachPeerCloses(t *testing.T) {
	s := startService(t, nil)
	srv := cliListen(t, s)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	id := acceptedBy(t, s, srv.ID)
	peer.Write([]byte("bye\x00\xff"))
	peer.Close()
	cmd := sockmanCmd(t, s, nil, "attach", id)
	// stdin never ends: attach ends because the peer closed.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd.Stdin = pr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("attach: %v; stderr %q", err, stderr.String())
		}
	case <-time.After(guard):
		cmd.Process.Kill()
		<-done
		t.Fatal("attach still running after the peer closed")
	}
	if stdout.String() != "bye\x00\xff" || !strings.Contains(stderr.String(), "peer closed") {
		t.Errorf("attach: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	// A socket that is not there: 404, before any upgrade.
	runSockman(t, s, strings.NewReader(""), "attach", "sock-999999").fails(t, exitNotFound, "sock-999999")
}

// events prints each event as it happens, pretty or as the API's NDJSON,
// until interrupted (130); ls -w lists again when something happens.
func TestCLIEventsAndWatch(t *testing.T) {
	s := startService(t, nil)
	srv := cliListen(t, s)

	start := func(args ...string) (*exec.Cmd, *lineReader, chan error) {
		cmd := sockmanCmd(t, s, nil, args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		return cmd, newLineReader(out), done
	}
	interrupt := func(cmd *exec.Cmd, done chan error) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
			if c := cmd.ProcessState.ExitCode(); c != exitInterrupted {
				t.Errorf("%q after SIGINT: exit %d, want %d", cmd.Args[1:], c, exitInterrupted)
			}
		case <-time.After(guard):
			cmd.Process.Kill()
			<-done
			t.Errorf("%q still running after SIGINT", cmd.Args[1:])
		}
	}

	jsonEv, jsonLines, jsonDone := start("events", "--json", "--after", "0")
	prettyEv, prettyLines, prettyDone := start("events", "--data", "--after", "0")
	watch, watchLines, watchDone := start("ls", "-w")

	// Each has said what was there: the server listening, the first table.
	var e struct {
		ID       int    `json:"id"`
		Type     string `json:"type"`
		ServerID string `json:"server_id"`
	}
	if err := json.Unmarshal([]byte(jsonLines.next(t)), &e); err != nil || e.Type != "server.listening" || e.ServerID != srv.ID || e.ID != 1 {
		t.Errorf("events --json: first event %+v, %v", e, err)
	}
	if l := prettyLines.next(t); !regexp.MustCompile(`^1 +\d\d:\d\d:\d\d\.\d{6} server\.listening +` + srv.ID + ` on ` + regexp.QuoteMeta(srv.Address) + `$`).MatchString(l) {
		t.Errorf("events: first line %q", l)
	}
	watchLines.until(t, srv.ID)

	// Something happens: a connection with data.
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.Write([]byte("ping\n"))
	id := acceptedBy(t, s, srv.ID)
	jsonLines.until(t, `"type":"socket.received"`)
	prettyLines.until(t, "socket.connected "+id+" accepted")
	if l := prettyLines.until(t, "socket.received"); !strings.Contains(l, id+` 5 bytes, seq 1 "ping\n"`) {
		t.Errorf("events --data: %q", l)
	}
	watchLines.until(t, id)

	for _, p := range []struct {
		cmd  *exec.Cmd
		done chan error
	}{{jsonEv, jsonDone}, {prettyEv, prettyDone}, {watch, watchDone}} {
		interrupt(p.cmd, p.done)
	}
}

// lineReader reads a process's stdout a line at a time, failing the test
// when none comes within guard.
type lineReader struct {
	lines chan string
}

func newLineReader(r io.Reader) *lineReader {
	l := &lineReader{lines: make(chan string, 1024)}
	go func() {
		defer close(l.lines)
		b := make([]byte, 0, 4096)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b = append(b, buf[:n]...)
			for {
				i := bytes.IndexByte(b, '\n')
				if i < 0 {
					break
				}
				l.lines <- string(b[:i])
				b = b[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	return l
}

func (l *lineReader) next(t *testing.T) string {
	t.Helper()
	select {
	case s, ok := <-l.lines:
		if !ok {
			t.Fatal("the output ended")
		}
		return s
	case <-time.After(guard):
		t.Fatalf("no line within %v", guard)
	}
	return ""
}

// until returns the first line containing want.
func (l *lineReader) until(t *testing.T, want string) string {
	t.Helper()
	for {
		if s := l.next(t); strings.Contains(s, want) {
			return s
		}
	}
}

// CLI.md's table of exit codes is the one the commands use.
func TestExitCodesDocumented(t *testing.T) {
	rows := doccheck.Table(t, doccheck.Read(t, "CLI.md"), "exit code")
	got := map[int]bool{}
	for _, r := range rows {
		n, err := strconv.Atoi(r[0])
		if err != nil {
			t.Fatalf("CLI.md: exit code %q is not a number", r[0])
		}
		got[n] = true
		if !strings.Contains(exitCodesHelp, fmt.Sprintf("\n  %d ", n)) {
			t.Errorf("CLI.md has exit code %d, the commands' help does not", n)
		}
	}
	for _, c := range []int{exitOK, exitError, exitUsage, exitNotFound, exitConflict, exitRefused, exitUnavailable, exitNoService, exitInterrupted} {
		if !got[c] {
			t.Errorf("exit code %d is not in CLI.md", c)
		}
	}
}

// attach in a terminal, as a person uses it: a line typed goes to the peer,
// the peer's answer is printed, Ctrl-D detaches.
func TestCLIAttachTerminal(t *testing.T) {
	s := startService(t, nil)
	srv := cliListen(t, s)
	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	id := acceptedBy(t, s, srv.ID)

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	cmd := sockmanCmd(t, s, nil, "attach", id)
	var stderr syncBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		tty.Close()
		t.Fatal(err)
	}
	tty.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var screen syncBuffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(&screen, ptmx) // until the terminal's last holder goes (EIO)
	}()

	if _, err := ptmx.Write([]byte("AT+GMR\n")); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(guard))
	got := make([]byte, 7)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "AT+GMR\n" {
		t.Fatalf("the peer read %q, %v; want the typed line", got, err)
	}
	peer.Write([]byte("v1.2.3\nOK\n"))
	// The terminal turns \n into \r\n on the way out.
	waitFor(t, guard, func() bool { return strings.Contains(screen.String(), "v1.2.3\r\nOK\r\n") })

	ptmx.Write([]byte{4}) // Ctrl-D at the start of a line: the end of stdin
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("attach after Ctrl-D: %v; stderr %q", err, stderr.String())
		}
	case <-time.After(guard):
		cmd.Process.Kill()
		<-done
		t.Fatalf("attach still running after Ctrl-D; stderr %q", stderr.String())
	}
	<-read
	if !strings.Contains(stderr.String(), "detached") || strings.Contains(screen.String(), "attached") {
		t.Errorf("the messages go to stderr only: stderr %q, terminal %q", stderr.String(), screen.String())
	}
	var sock cliSocket
	s.do("GET", "/sockets/"+id, nil).want(t, 200).decode(t, &sock)
	if sock.State != "connected" {
		t.Errorf("after Ctrl-D the socket is %s, want connected", sock.State)
	}
}

func TestParseFraming(t *testing.T) {
	for in, want := range map[string]string{
		"raw":                                    `{"type":"raw"}`,
		"lines":                                  `{"type":"lines"}`,
		`delimiter:\r\n`:                         `{"delimiter":"\\r\\n","encoding":"escaped","type":"delimiter"}`,
		"fixed:16":                               `{"size":16,"type":"fixed"}`,
		"length_prefix":                          `{"type":"length_prefix"}`,
		"length_prefix:2":                        `{"header_bytes":2,"type":"length_prefix"}`,
		`{"type":"lines","keep_delimiter":true}`: `{"keep_delimiter":true,"type":"lines"}`,
	} {
		f, err := parseFraming(in)
		if err != nil {
			t.Errorf("parseFraming(%q): %v", in, err)
			continue
		}
		if b, _ := json.Marshal(f); string(b) != want {
			t.Errorf("parseFraming(%q) = %s, want %s", in, b, want)
		}
	}
	for _, in := range []string{"bogus", "lines:x", "delimiter", "delimiter:", "fixed:x", "length_prefix:two", `{"type":`} {
		if _, err := parseFraming(in); err == nil {
			t.Errorf("parseFraming(%q) took it", in)
		}
	}
}

// TestCLIRules: rules add, ls and rm on a server, answering a real peer;
// --json prints the API's objects; bad input is a usage error (exit 2)
// with the API's detail, an unknown rule a not found (exit 3).
func TestCLIRules(t *testing.T) {
	s := startService(t, nil)
	srv := cliListen(t, s, "--framing", "lines")

	r := runSockman(t, s, nil, "rules", "add", srv.ID, "--equals", "AT", "--reply", `OK\r\n`, "--escaped").ok(t)
	if want := `rule-1 added to ` + srv.ID + `: equals "AT" -> "OK\\r\\n"` + "\n"; r.stdout != want {
		t.Errorf("rules add printed %q, want %q", r.stdout, want)
	}
	var rule struct {
		ID    string `json:"id"`
		Hits  int    `json:"hits"`
		Times int    `json:"times"`
	}
	runSockman(t, s, nil, "rules", "add", srv.ID, "--prefix", "", "--reply", "4552524f520d0a", "--hex", "--times", "1", "--json").ok(t).decode(t, &rule)
	if rule.ID != "rule-2" || rule.Times != 1 {
		t.Errorf("rules add --json: %+v", rule)
	}

	peer, err := net.DialTimeout("tcp", srv.Address, guard)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write([]byte("AT\r\nATX\r\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("OK\r\nERROR\r\n"))
	peer.SetReadDeadline(time.Now().Add(guard))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "OK\r\nERROR\r\n" {
		t.Fatalf("the peer read %q (%v), want the two answers", got, err)
	}

	r = runSockman(t, s, nil, "rules", "ls", srv.ID).ok(t)
	for _, w := range []string{"ID", "HITS", "rule-1", "rule-2", `equals "AT"`, "at most 1 times"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("rules ls: no %q in\n%s", w, r.stdout)
		}
	}
	var list struct {
		Rules []struct {
			ID   string
			Hits int
		}
	}
	runSockman(t, s, nil, "rules", "ls", srv.ID, "--json").ok(t).decode(t, &list)
	if len(list.Rules) != 2 || list.Rules[0].Hits != 1 || list.Rules[1].Hits != 1 {
		t.Errorf("rules ls --json: %+v", list)
	}

	runSockman(t, s, nil, "rules", "rm", srv.ID, "rule-2").ok(t)
	runSockman(t, s, nil, "rules", "ls", srv.ID, "--json").ok(t).decode(t, &list)
	if len(list.Rules) != 1 || list.Rules[0].ID != "rule-1" {
		t.Errorf("after rules rm: %+v", list)
	}
	runSockman(t, s, nil, "rules", "rm", srv.ID, "rule-9").fails(t, exitNotFound, "rule-9")
	runSockman(t, s, nil, "rules", "add", srv.ID, "--regex", "(", "--reply", "x").fails(t, exitUsage, "regex")
	runSockman(t, s, nil, "rules", "add", srv.ID, "--equals", "a", "--prefix", "b").fails(t, exitUsage, "one match flag")
	runSockman(t, s, nil, "rules", "add", srv.ID, "--echo", "--hex", "--escaped").fails(t, exitUsage, "--hex and --escaped")
	runSockman(t, s, nil, "rules", "ls", "sock-99").fails(t, exitNotFound, "sock-99")
}
