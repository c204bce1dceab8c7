package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockman/sockman/client"
)

func newSendCmd(g *cli) *cobra.Command {
	var asHex, asBase64, asEscaped, noFrame bool
	var file string
	cmd := &cobra.Command{
		Use:   "send ID DATA",
		Short: "Send data to a socket, or to every socket of a server",
		Long: `Send DATA to a socket (POST /sockets/{id}/messages) as given: no newline is
added, unless the socket is framed (lines adds \n, a delimiter its delimiter,
length_prefix its header; --no-frame sends the bytes as they are). DATA - reads
stdin; --file sends a file's bytes. --hex, --base64 and --escaped say how DATA
is written (escaped: \n, \r, \t, \0, \\, \xHH). A server id (srv-N) sends
to every connected socket of the server (POST /servers/{id}/messages).`,
		Example: `  sockman send sock-1 'AT'
  sockman send sock-1 'hello\r\n' --escaped
  sockman send sock-1 00ff10 --hex
  sockman send sock-1 --file firmware.bin
  printf 'line\n' | sockman send sock-1 -
  sockman send srv-1 'to everyone'`,
		Args: func(cmd *cobra.Command, a []string) error {
			if file != "" {
				return args(1, "ID with --file")(cmd, a)
			}
			return args(2, "ID DATA")(cmd, a)
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			var encoding string
			n := 0
			for _, f := range []struct {
				on  bool
				enc string
			}{{asHex, "hex"}, {asBase64, "base64"}, {asEscaped, "escaped"}} {
				if f.on {
					encoding, n = f.enc, n+1
				}
			}
			if n > 1 {
				return usagef("give one of --hex, --base64 and --escaped")
			}
			// Raw bytes from a file or stdin go as they are read (the service
			// bounds a body with --max-body); an encoded text is read whole.
			var src io.Reader
			switch {
			case file != "":
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				src = f
			case a[1] == "-":
				src = g.stdin
			default:
				src = strings.NewReader(a[1])
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, id := cmd.Context(), a[0]
			body := src
			contentType := "application/octet-stream"
			if encoding != "" {
				data, err := io.ReadAll(io.LimitReader(src, maxEncodedSend+1))
				if err != nil {
					return err
				}
				if len(data) > maxEncodedSend {
					return usagef("more than %d MiB of %s text: send the bytes raw (without --%s)", maxEncodedSend>>20, encoding, encoding)
				}
				text := string(data)
				if encoding != "escaped" {
					text = strings.TrimSpace(text) // a file or a pipe ends with a newline
				}
				body, contentType = jsonBody(client.SendRequest{Data: text, Encoding: (*client.SendRequestEncoding)(&encoding)})
			}
			var frame *bool
			if noFrame {
				f := false
				frame = &f
			}
			if strings.HasPrefix(id, "srv-") {
				rsp, err := c.BroadcastWithBodyWithResponse(ctx, id, &client.BroadcastParams{Frame: frame}, contentType, body)
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
				if g.json {
					return g.printRaw(rsp.Body)
				}
				_, err = fmt.Fprintf(g.stdout, "sent %d bytes to %d sockets of %s\n", rsp.JSON200.Bytes, rsp.JSON200.Sockets, id)
				return err
			}
			rsp, err := c.SendWithBodyWithResponse(ctx, id, &client.SendParams{Frame: frame}, contentType, body)
			if err := client.OrCheck(rsp, err); err != nil {
				return err
			}
			if g.json {
				return g.printRaw(rsp.Body)
			}
			_, err = fmt.Fprintf(g.stdout, "sent %d bytes to %s\n", rsp.JSON200.Bytes, id)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asHex, "hex", false, "DATA is hex (00ff10)")
	f.BoolVar(&asBase64, "base64", false, "DATA is base64")
	f.BoolVar(&asEscaped, "escaped", false, `DATA has escapes: \n \r \t \0 \\ \xHH`)
	f.StringVar(&file, "file", "", "send the bytes of this file (no DATA then)")
	f.BoolVar(&noFrame, "no-frame", false, "on a framed socket, send the bytes as they are")
	return cmd
}

// maxEncodedSend bounds the text send reads whole to encode as JSON.
const maxEncodedSend = 256 << 20

type readFlags struct {
	follow     bool
	hex        bool
	timestamps bool
	peek       bool
	after      int
	wait       time.Duration
	encoding   string
}

func newReadCmd(g *cli) *cobra.Command {
	var o readFlags
	cmd := &cobra.Command{
		Use:   "read ID",
		Short: "Print what a socket received",
		Long: `Print what a socket received (GET /sockets/{id}/messages), the bytes as they
came, and acknowledge it: the service frees what was printed. --peek prints
what is held without freeing it (one answer). With -f it follows: it
long-polls for more and exits 0 once the socket has closed and everything is
printed, each byte exactly once.

--hex prints a hexdump -C view (offsets in the stream, hex, ASCII; repeated
lines are not squeezed); -t puts a line with the time each message arrived
(and its seq and size) before it. --json prints each answer of the API as a
line (--encoding utf8, base64, hex, or auto: UTF-8 when valid, else base64).`,
		Example: `  sockman read sock-1
  sockman read -f sock-1
  sockman read -f --hex sock-1
  sockman read -t sock-1
  sockman read --json --encoding base64 sock-1 | jq -r '.messages[].data'`,
		Args: args(1, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if o.peek && o.follow {
				return usagef("--peek reads once: it cannot follow")
			}
			return o.run(cmd.Context(), g, c, a[0], cmd.Flags().Changed("after"))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "follow until the socket closes")
	f.BoolVar(&o.hex, "hex", false, "a hexdump -C view: offsets, hex and ASCII")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "a line with each message's arrival time, seq and size before it")
	f.BoolVar(&o.peek, "peek", false, "print what is held, once, and free nothing")
	f.IntVar(&o.after, "after", 0, "start after this seq (and free everything up to it)")
	f.DurationVar(&o.wait, "wait", 30*time.Second, "with -f, how long each long poll waits (the service cuts it to its --max-wait)")
	f.StringVar(&o.encoding, "encoding", "auto", "with --json: utf8, base64, hex or auto")
	return cmd
}

func (o *readFlags) run(ctx context.Context, g *cli, c *client.Sockman, id string, afterGiven bool) error {
	var after *int
	if afterGiven {
		a := o.after
		after = &a
	}
	var dump *hexDumper
	if o.hex && !g.json {
		dump = &hexDumper{w: g.stdout}
	}
	out := func(p []byte) error {
		if dump != nil {
			return dump.write(p)
		}
		_, err := g.stdout.Write(p)
		return err
	}
	lastNL := true // the last byte written ended a line (for -t)
	for {
		p := &client.ReadParams{After: after}
		if o.follow {
			w := o.wait.String()
			p.Wait = &w
		}
		var n int
		var cursor int
		var state client.MessageListState
		switch {
		case !g.json && !o.timestamps:
			r, err := c.ReadRaw(ctx, id, p)
			if err != nil {
				return err
			}
			if err := out(r.Data); err != nil {
				return err
			}
			n, cursor, state = len(r.Data), r.Cursor, r.State
		default:
			enc := client.ReadParamsEncoding(o.encoding)
			if !g.json {
				enc = client.ReadParamsEncodingBase64
			}
			p.Encoding = &enc
			rsp, err := c.ReadWithResponse(ctx, id, p)
			if err := client.OrCheck(rsp, err); err != nil {
				return err
			}
			l := rsp.JSON200
			n, cursor, state = len(l.Messages), l.Cursor, l.State
			if g.json {
				if n > 0 || state == client.MessageListStateClosed || o.peek {
					if err := g.printRaw(rsp.Body); err != nil {
						return err
					}
				}
				break
			}
			for _, m := range l.Messages {
				b, err := m.DataBytes()
				if err != nil {
					return err
				}
				if dump == nil && !lastNL {
					fmt.Fprintln(g.stdout)
				}
				partial := ""
				if m.Partial != nil && *m.Partial {
					partial = ", partial"
				}
				fmt.Fprintf(g.stdout, "[%s] seq %d, %d bytes%s\n", m.ReceivedAt.UTC().Format(time.RFC3339Nano), m.Seq, m.Size, partial)
				if err := out(b); err != nil {
					return err
				}
				lastNL = len(b) == 0 || b[len(b)-1] == '\n'
			}
		}
		if o.peek {
			break
		}
		if n == 0 && (state == client.MessageListStateClosed || !o.follow) {
			break
		}
		after = &cursor
	}
	if o.timestamps && dump == nil && !lastNL && !g.json {
		fmt.Fprintln(g.stdout)
	}
	if dump != nil {
		return dump.close()
	}
	return nil
}

// hexDumper writes the stream as hexdump -C does: the offset, 16 bytes in
// hex in two groups of 8, and the printable ones between bars. Bytes are
// written as they come, so a line may end short (an answer ended there);
// the next answer's first line then repeats that line's offset, with its
// bytes in their columns and blanks before them.
type hexDumper struct {
	w   io.Writer
	off int64
	buf []byte
}

func (d *hexDumper) write(p []byte) error {
	d.buf = d.buf[:0]
	for len(p) > 0 {
		col := int(d.off % 16)
		n := min(16-col, len(p))
		line := p[:n]
		p = p[n:]
		d.buf = fmt.Appendf(d.buf, "%08x  ", d.off-int64(col))
		for i := range 16 {
			switch {
			case i >= col && i < col+n:
				d.buf = fmt.Appendf(d.buf, "%02x ", line[i-col])
			default:
				d.buf = append(d.buf, "   "...)
			}
			if i == 7 {
				d.buf = append(d.buf, ' ')
			}
		}
		d.buf = append(d.buf, " |"...)
		for _, b := range line {
			if b < 32 || b > 126 {
				b = '.'
			}
			d.buf = append(d.buf, b)
		}
		d.buf = append(d.buf, "|\n"...)
		d.off += int64(n)
	}
	_, err := d.w.Write(d.buf)
	return err
}

// close writes the last line, the length of the stream, as hexdump -C does.
func (d *hexDumper) close() error {
	if d.off == 0 {
		return nil
	}
	_, err := fmt.Fprintf(d.w, "%08x\n", d.off)
	return err
}
