package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/sockman/sockman/client"
)

// jsonBody is v as a JSON request body.
func jsonBody(v any) (io.Reader, string) {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b), "application/json"
}

type eventsFlags struct {
	socket, server, types string
	data                  bool
	encoding              string
	after                 int
}

func newEventsCmd(g *cli) *cobra.Command {
	var o eventsFlags
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print events as they happen",
		Long: `Print every event as it happens (GET /events), one a line, until interrupted
or the service shuts down. Filters as the API's: --socket and --server take
comma-separated ids (a server covers its sockets), --types exact names,
socket.* or server.*. --data adds the bytes of socket.received and socket.sent.
--after N replays the history the service still holds after event N.
--json prints the API's NDJSON as it comes.`,
		Example: `  sockman events
  sockman events --socket sock-1 --data
  sockman events --types 'socket.*' --json
  sockman events --after 0 --types socket.closed`,
		Args: args(0, "nothing"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p := &client.StreamEventsParams{SocketId: optString(o.socket), ServerId: optString(o.server), Types: optString(o.types), Data: optTrue(o.data)}
			if cmd.Flags().Changed("after") {
				p.After = &o.after
			}
			if cmd.Flags().Changed("encoding") {
				e := client.StreamEventsParamsEncoding(o.encoding)
				p.Encoding = &e
			}
			ctx := cmd.Context()
			s, err := c.Events(ctx, p)
			if err != nil {
				return err
			}
			defer s.Close()
			for {
				e, line, err := s.Next()
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if err == io.EOF {
						return nil // the service shut down: the stream is over
					}
					return err
				}
				if g.json {
					if err := g.printRaw(line); err != nil {
						return err
					}
					continue
				}
				if _, err := fmt.Fprintln(g.stdout, formatEvent(e)); err != nil {
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.socket, "socket", "", "only these sockets (comma-separated ids)")
	f.StringVar(&o.server, "server", "", "only these servers and their sockets (comma-separated ids)")
	f.StringVar(&o.types, "types", "", "only these types (comma-separated; socket.*, server.*)")
	f.BoolVar(&o.data, "data", false, "add the bytes received and sent")
	f.StringVar(&o.encoding, "encoding", "auto", "with --data: utf8, base64, hex or auto")
	f.IntVar(&o.after, "after", 0, "replay the events after this id that the service still holds")
	return cmd
}

// formatEvent is an event as one line of text: its id, time, type, and
// what it says.
func formatEvent(e client.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-5d %s %-16s", e.Id, e.Time.UTC().Format("15:04:05.000000"), e.Type)
	id := deref(e.SocketId)
	if id == "" {
		id = deref(e.ServerId)
	}
	n := func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	}
	switch e.Type {
	case client.ServerListening:
		fmt.Fprintf(&b, " %s on %s", id, deref(e.Address))
	case client.ServerClosed:
		fmt.Fprintf(&b, " %s", id)
	case client.SocketConnected:
		kind := ""
		if e.Kind != nil {
			kind = string(*e.Kind)
		}
		fmt.Fprintf(&b, " %s %s %s <-> %s", id, kind, deref(e.LocalAddress), deref(e.RemoteAddress))
		if e.Kind != nil && *e.Kind == client.EventKindAccepted {
			fmt.Fprintf(&b, " (%s)", deref(e.ServerId))
		}
	case client.SocketReceived:
		fmt.Fprintf(&b, " %s %d bytes, seq %d", id, n(e.Size), n(e.Seq))
	case client.SocketSent:
		src := ""
		if e.Source != nil {
			src = ", from " + string(*e.Source)
		}
		fmt.Fprintf(&b, " %s %d bytes%s", id, n(e.Size), src)
	case client.SocketDropped:
		fmt.Fprintf(&b, " %s %d bytes, seq %d to %d", id, n(e.Bytes), n(e.FirstSeq), n(e.LastSeq))
	case client.SocketClosed:
		fmt.Fprintf(&b, " %s: %s (received %d, sent %d)", id, deref(e.Reason), n(e.BytesReceived), n(e.BytesSent))
	case client.EventsLost:
		fmt.Fprintf(&b, " %d events, %d to %d", n(e.Count), n(e.FirstId), n(e.LastId))
	default:
		if id != "" {
			fmt.Fprintf(&b, " %s", id)
		}
	}
	if e.Reason != nil && e.Type != client.SocketClosed {
		fmt.Fprintf(&b, ": %s", *e.Reason)
	}
	if data, err := e.DataBytes(); err == nil && data != nil {
		b.WriteString(" ")
		b.WriteString(quoteData(data))
		if e.DataTruncated != nil && *e.DataTruncated {
			b.WriteString(" (data truncated)")
		}
	}
	return b.String()
}

// quoteData is data as a Go string literal, at most 200 bytes of it.
func quoteData(data []byte) string {
	const max = 200
	if len(data) <= max {
		return strconv.Quote(string(data))
	}
	return strconv.Quote(string(data[:max])) + fmt.Sprintf("... (%d bytes)", len(data))
}

func newAttachCmd(g *cli) *cobra.Command {
	var closeOnDetach bool
	var after int
	cmd := &cobra.Command{
		Use:   "attach ID",
		Short: "Talk to a socket like nc: stdin to it, what it receives to stdout",
		Long: `Attach the terminal to a socket over its WebSocket stream
(GET /sockets/{id}/stream): what stdin gives goes to the peer, what the peer
sends comes out on stdout, byte for byte (binary safe: pipe files through it).
Nothing but the received bytes goes to stdout; messages go to stderr.

The end of stdin (Ctrl-D, or the end of a pipe) detaches: the socket stays open,
and what it received and was not yet printed stays in it, to read or attach
again (--close closes it instead). When the peer closes, attach prints what
is left and the reason (on stderr), and exits 0. While attached, the stream is
the socket's one consumer: a second attach, or a read, is refused (409).`,
		Example: `  sockman attach sock-1
  sockman attach sock-1 < request.bin > answer.bin
  sockman attach --close sock-1`,
		Args: args(1, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p := &client.StreamSocketParams{}
			mode, ack := client.StreamSocketParamsMode("json"), client.StreamSocketParamsAck("client")
			p.Mode, p.Ack = &mode, &ack
			if closeOnDetach {
				t := true
				p.Close = &t
			}
			if cmd.Flags().Changed("after") {
				p.After = &after
			}
			return attach(cmd.Context(), g, c, a[0], p)
		},
	}
	cmd.Flags().BoolVar(&closeOnDetach, "close", false, "close the socket when detaching")
	cmd.Flags().IntVar(&after, "after", 0, "start after this seq (and free everything up to it)")
	return cmd
}

// streamFrame is what the json stream sends: a message, or its last
// frame {"type":"closed","reason":...}.
type streamFrame struct {
	client.Message
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// attach runs the stream in json mode with ack=client: a message is
// acknowledged once its bytes are on stdout, so detaching at any moment
// leaves in the socket exactly what was not printed.
func attach(ctx context.Context, g *cli, c *client.Sockman, id string, p *client.StreamSocketParams) error {
	conn, err := c.DialStream(ctx, id, p)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20) // a message is at most 256 KiB, base64 in JSON
	fmt.Fprintf(g.stderr, "attached to %s; end stdin (Ctrl-D) to detach\n", id)

	// stdin to the socket, until its end. (The process exits when attach
	// returns: a Read of stdin still blocked then goes with it.)
	var detaching atomic.Bool
	detached := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := g.stdin.Read(buf)
			if n > 0 {
				var b []byte
				if utf8.Valid(buf[:n]) {
					b, _ = json.Marshal(client.SendRequest{Data: string(buf[:n])})
				} else {
					enc := client.SendRequestEncoding("base64")
					b, _ = json.Marshal(client.SendRequest{Data: base64.StdEncoding.EncodeToString(buf[:n]), Encoding: &enc})
				}
				if werr := conn.Write(ctx, websocket.MessageText, b); werr != nil {
					detached <- werr
					return
				}
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				detached <- err
				return
			}
		}
	}()

	// The socket to stdout, until the stream ends.
	received := make(chan error, 1)
	var reason string
	go func() {
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				received <- err
				return
			}
			var f streamFrame
			if err := json.Unmarshal(b, &f); err != nil {
				received <- fmt.Errorf("stream frame: %w", err)
				return
			}
			if f.Type == "closed" {
				reason = f.Reason
				continue
			}
			if detaching.Load() {
				// Not acknowledged: it stays in the socket for the next reader.
				continue
			}
			data, err := f.DataBytes()
			if err != nil {
				received <- err
				return
			}
			if _, err := g.stdout.Write(data); err != nil {
				received <- err
				return
			}
			ackb, _ := json.Marshal(map[string]int{"ack": f.Seq})
			if err := conn.Write(ctx, websocket.MessageText, ackb); err != nil {
				received <- err
				return
			}
		}
	}()

	select {
	case err := <-detached:
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("stdin: %w", err)
		}
		detaching.Store(true)
		// Detach: the service stops the stream; what was not acknowledged
		// stays in the socket. Close waits for the stream's own close, and
		// the reader sees it.
		conn.Close(websocket.StatusNormalClosure, "detached")
		<-received
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(g.stderr, "detached from %s; the socket stays open\n", id)
		return nil
	case err := <-received:
		conn.CloseNow()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch websocket.CloseStatus(err) {
		case websocket.StatusNormalClosure:
			fmt.Fprintf(g.stderr, "%s closed: %s\n", id, or(reason, "the stream ended"))
			return nil
		case websocket.StatusGoingAway:
			return &client.Problem{Status: 503, Type: "urn:sockman:problem:shutting-down", Detail: "the service is shutting down: the stream ended (the socket goes with it)"}
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return fmt.Errorf("the stream ended: %d %s", ce.Code, ce.Reason)
		}
		return fmt.Errorf("the stream: %w", err)
	}
}
