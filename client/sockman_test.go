package client_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sockman/sockman/client"
	"github.com/sockman/sockman/internal/doccheck"
)

type answer struct {
	status int
	ct     string
	body   string
}

func (a answer) StatusCode() int     { return a.status }
func (a answer) GetBody() []byte     { return []byte(a.body) }
func (a answer) ContentType() string { return a.ct }

func TestCheck(t *testing.T) {
	if err := client.Check(answer{status: 204}); err != nil {
		t.Fatalf("Check(204) = %v, want nil", err)
	}
	err := client.Check(answer{409, "application/problem+json", `{"type":"urn:sockman:problem:socket-busy","title":"Socket busy","status":409,"detail":"a stream is attached"}`})
	p := client.AsProblem(err)
	if p == nil || p.Status != 409 || p.Type != "urn:sockman:problem:socket-busy" || err.Error() != "a stream is attached" {
		t.Fatalf("Check(problem) = %#v, want the problem with its detail as the error", err)
	}
	// Not a problem (a proxy's page): still a *Problem, with the status and
	// the body's start.
	err = client.Check(answer{502, "text/html", "<h1>bad gateway</h1>"})
	if p := client.AsProblem(err); p == nil || p.Status != 502 || p.Type != "" || err.Error() != "HTTP 502: <h1>bad gateway</h1>" {
		t.Fatalf("Check(html 502) = %#v", err)
	}
}

func TestDataBytes(t *testing.T) {
	for _, c := range []struct {
		enc, data, want string
	}{{"utf8", "hé", "hé"}, {"base64", "AP8=", "\x00\xff"}, {"hex", "00ff", "\x00\xff"}} {
		got, err := client.Message{Encoding: client.MessageEncoding(c.enc), Data: c.data}.DataBytes()
		if err != nil || string(got) != c.want {
			t.Errorf("Message{%s %q}.DataBytes() = %q, %v; want %q", c.enc, c.data, got, err, c.want)
		}
	}
	if _, err := (client.Message{Encoding: "rot13", Data: "x"}).DataBytes(); err == nil {
		t.Error("an unknown encoding decoded without an error")
	}
	enc := client.EventEncodingBase64
	data := "AP8="
	got, err := client.Event{Encoding: &enc, Data: &data}.DataBytes()
	if err != nil || string(got) != "\x00\xff" {
		t.Errorf("Event.DataBytes() = %q, %v", got, err)
	}
}

func TestNewAddress(t *testing.T) {
	for _, a := range []string{"127.0.0.1:8080", "http://127.0.0.1:8080/", "https://localhost:8443"} {
		if _, err := client.New(a, "", nil); err != nil {
			t.Errorf("New(%q) = %v", a, err)
		}
	}
	for _, a := range []string{"ftp://127.0.0.1", "http://", ":"} {
		if _, err := client.New(a, "", nil); err == nil {
			t.Errorf("New(%q) took it, want an error", a)
		}
	}
}

// A stream of an unknown socket is refused before the upgrade: the
// problem comes back as the error.
func TestDialStreamProblem(t *testing.T) {
	c, err := client.New(addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	conn, err := c.DialStream(ctx, "sock-424242", nil)
	if conn != nil {
		conn.CloseNow()
	}
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 404 || p.Type != "urn:sockman:problem:socket-not-found" {
		t.Fatalf("DialStream(unknown) = %v, want the 404 socket-not-found problem", err)
	}
}

// API.md shows Example as it is (with the service's default address).
func TestAPIExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "func Example() {\n")
	body, _, ok2 := strings.Cut(body, "\t// Output:")
	if !ok || !ok2 {
		t.Fatal("example_test.go has no Example with an Output")
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	code := strings.Replace(strings.Join(lines, "\n"), "client.New(addr,", `client.New("127.0.0.1:8080",`, 1)
	if !strings.Contains(doccheck.Read(t, "API.md"), "```go\n"+code+"\n```") {
		t.Errorf("API.md does not show Example of client/example_test.go as it is; its body, with addr as \"127.0.0.1:8080\":\n%s", code)
	}
}
