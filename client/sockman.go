// Package client is a Go client of the sockman HTTP API.
//
// client.gen.go is generated from openapi.yaml by oapi-codegen (go generate
// in the module's root): a method per operation, on [Client] (the raw
// *http.Response) and on [ClientWithResponses] (the decoded answer, with a
// field per status). This file adds what the generated code leaves awkward:
// [New] with the base address and the token, problems as Go errors
// ([Problem] and [Check]), the raw read with its cursor and state
// ([Sockman.ReadRaw]), the bytes of a message or event whatever its encoding
// ([Message.DataBytes], [Event.DataBytes]), the event stream as NDJSON
// ([Sockman.Events]) and the WebSocket stream of a socket
// ([Sockman.DialStream]).
package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coder/websocket"
)

// Sockman is the generated client with the service's base address and
// token kept for what the generated code cannot do (the event stream, the
// WebSocket stream).
type Sockman struct {
	*ClientWithResponses
	// Base is the service's base URL, such as http://127.0.0.1:8080.
	Base string
	// HTTP is the client every request goes through.
	HTTP  *http.Client
	token string
}

// New returns a client of the service at base, a URL such as
// http://127.0.0.1:8080 or a bare host:port. token is the service's
// bearer token (--token-file), or empty when it has none. httpClient may
// be nil for http.DefaultClient.
func New(base, token string, httpClient *http.Client) (*Sockman, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("address %q: want host:port or http://host:port", base)
	}
	base = strings.TrimSuffix(u.String(), "/")
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	opts := []ClientOption{WithHTTPClient(httpClient)}
	if token != "" {
		opts = append(opts, WithRequestEditorFn(BearerToken(token)))
	}
	c, err := NewClientWithResponses(base, opts...)
	if err != nil {
		return nil, err
	}
	return &Sockman{ClientWithResponses: c, Base: base, HTTP: httpClient, token: token}, nil
}

// BearerToken is a request editor that sends token as the Authorization
// header, for NewClient and NewClientWithResponses (New adds it itself).
func BearerToken(token string) RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// Error makes a problem+json answer a Go error: its detail, or its title
// when it has none.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Detail
	}
	if p.Title != "" {
		return p.Title
	}
	return fmt.Sprintf("HTTP %d", p.Status)
}

// Answer is what every generated response has.
type Answer interface {
	StatusCode() int
	GetBody() []byte
	ContentType() string
}

// Check returns nil for a 2xx answer and a *Problem for any other: the
// problem+json the service sent, or one made of the status and the body
// when the answer is not one (a proxy's error page, say).
func Check(a Answer) error {
	return problemOf(a.StatusCode(), a.ContentType(), a.GetBody())
}

// OrCheck is Check after a call's error: err when the call failed, else
// what Check says of its answer. It reads
//
//	rsp, err := c.GetSocketWithResponse(ctx, id)
//	if err := client.OrCheck(rsp, err); err != nil { ... }
func OrCheck(a Answer, err error) error {
	if err != nil {
		return err
	}
	return Check(a)
}

// CheckResponse is Check for a raw *http.Response (from the methods of
// Client): on a non-2xx it reads the body (at most 64 KiB) and closes it.
func CheckResponse(r *http.Response) error {
	if r.StatusCode/100 == 2 {
		return nil
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	return problemOf(r.StatusCode, r.Header.Get("Content-Type"), body)
}

func problemOf(status int, contentType string, body []byte) error {
	if status/100 == 2 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/problem+json" || mt == "application/json" {
		var p Problem
		if json.Unmarshal(body, &p) == nil && (p.Type != "" || p.Detail != "") {
			if p.Status == 0 {
				p.Status = status
			}
			return &p
		}
	}
	detail := strings.TrimSpace(string(body))
	if len(detail) > 200 {
		detail = detail[:200] + "..."
	}
	if detail == "" {
		detail = http.StatusText(status)
	}
	return &Problem{Status: status, Title: http.StatusText(status), Detail: fmt.Sprintf("HTTP %d: %s", status, detail)}
}

// Bytes decodes the message's data per its encoding.
func (m Message) DataBytes() ([]byte, error) {
	return decode(string(m.Encoding), m.Data)
}

// Bytes decodes the data of a socket.received or socket.sent event asked
// for with data=true; nil when the event has none.
func (e Event) DataBytes() ([]byte, error) {
	if e.Data == nil {
		return nil, nil
	}
	enc := "utf8"
	if e.Encoding != nil {
		enc = string(*e.Encoding)
	}
	return decode(enc, *e.Data)
}

func decode(encoding, data string) ([]byte, error) {
	switch encoding {
	case "utf8", "":
		return []byte(data), nil
	case "base64":
		return base64.StdEncoding.DecodeString(data)
	case "hex":
		return hex.DecodeString(data)
	}
	return nil, fmt.Errorf("unknown encoding %q", encoding)
}

// RawRead is a read answered as application/octet-stream: the messages'
// bytes one after another, with the cursor and state of the JSON answer.
type RawRead struct {
	Data   []byte
	Cursor int
	// State is connected or closed; closed with no Data means the stream
	// has ended and everything was read.
	State MessageListState
}

// ReadRaw reads as GET /sockets/{id}/messages does, asking for the raw
// bytes (Accept: application/octet-stream).
func (c *Sockman) ReadRaw(ctx context.Context, id string, params *ReadParams) (*RawRead, error) {
	accept := func(_ context.Context, r *http.Request) error {
		r.Header.Set("Accept", "application/octet-stream")
		return nil
	}
	rsp, err := c.ReadWithResponse(ctx, id, params, accept)
	if err != nil {
		return nil, err
	}
	if err := Check(rsp); err != nil {
		return nil, err
	}
	h := rsp.HTTPResponse.Header
	cursor, err := strconv.Atoi(h.Get("Sockman-Cursor"))
	if err != nil {
		return nil, fmt.Errorf("read: the answer's Sockman-Cursor %q is not a number", h.Get("Sockman-Cursor"))
	}
	return &RawRead{Data: rsp.Body, Cursor: cursor, State: MessageListState(h.Get("Sockman-State"))}, nil
}

// EventStream is GET /events as NDJSON, one Event at a time.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Events opens the event stream with params' filters. Close it when done.
func (c *Sockman) Events(ctx context.Context, params *StreamEventsParams) (*EventStream, error) {
	rsp, err := c.StreamEvents(ctx, params, func(_ context.Context, r *http.Request) error {
		r.Header.Set("Accept", "application/x-ndjson")
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := CheckResponse(rsp); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(rsp.Body)
	// An event with data=true carries at most 256 KiB, encoded.
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &EventStream{body: rsp.Body, sc: sc}, nil
}

// Next returns the next event, or the event's line as it came (for
// printing it as the service sent it). It returns io.EOF when the stream
// ends.
func (s *EventStream) Next() (Event, []byte, error) {
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return Event{}, nil, fmt.Errorf("event stream: %w", err)
		}
		return e, line, nil
	}
	if err := s.sc.Err(); err != nil {
		return Event{}, nil, err
	}
	return Event{}, nil, io.EOF
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// DialStream opens GET /sockets/{id}/stream, the WebSocket to a socket
// (mode binary unless params say otherwise). A problem before the upgrade
// comes back as a *Problem.
func (c *Sockman) DialStream(ctx context.Context, id string, params *StreamSocketParams) (*websocket.Conn, error) {
	u, err := url.Parse(c.Base + "/sockets/" + url.PathEscape(id) + "/stream")
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	q := url.Values{}
	if params != nil {
		if params.After != nil {
			q.Set("after", strconv.Itoa(*params.After))
		}
		if params.Mode != nil {
			q.Set("mode", string(*params.Mode))
		}
		if params.Ack != nil {
			q.Set("ack", string(*params.Ack))
		}
		if params.Close != nil {
			q.Set("close", strconv.FormatBool(*params.Close))
		}
	}
	u.RawQuery = q.Encode()
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	conn, rsp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.HTTP, HTTPHeader: h})
	if err != nil {
		if rsp != nil && rsp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if rsp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(rsp.Body, 64<<10))
			}
			return nil, problemOf(rsp.StatusCode, rsp.Header.Get("Content-Type"), body)
		}
		return nil, err
	}
	return conn, nil
}

// AsProblem returns the *Problem in err's chain, or nil.
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}
