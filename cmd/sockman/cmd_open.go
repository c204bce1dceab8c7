package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sockman/sockman/client"
)

// openFlags are the options listen and connect share: what the sockets
// receive with, and their connection control.
type openFlags struct {
	framing     string
	bufferBytes int
	overflow    string
	name        string
	halfClose   bool
	keepalive   string
}

func (o *openFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&o.framing, "framing", "", "cut what is received into messages: raw, lines, delimiter:DELIM (escaped, e.g. 'delimiter:\\r\\n'), fixed:SIZE, length_prefix:HEADER_BYTES, or the API's JSON object (FRAMING.md)")
	fs.IntVar(&o.bufferBytes, "buffer-bytes", 0, "per-socket buffer of unread data (0: the service's --buffer-bytes)")
	fs.StringVar(&o.overflow, "overflow", "", "when the buffer is full: block (slow the peer, the default) or drop_oldest")
	fs.StringVar(&o.name, "name", "", "a label, for ls and the ?name= filters")
	fs.BoolVar(&o.halfClose, "half-close", false, "the peer's FIN does not close the socket: it can still send")
	fs.StringVar(&o.keepalive, "keepalive", "", "TCP keepalive idle time and interval, such as 10s, or 0 for off (default 30s)")
}

// parseFraming reads --framing: a short form or the API's JSON object.
func parseFraming(s string) (*client.Framing, error) {
	if s == "" {
		return nil, nil
	}
	var f client.Framing
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			return nil, usagef("--framing: %v", err)
		}
		return &f, nil
	}
	kind, arg, hasArg := strings.Cut(s, ":")
	f.Type = client.FramingType(kind)
	switch f.Type {
	case client.Raw, client.Lines:
		if hasArg {
			return nil, usagef("--framing %s takes no argument", kind)
		}
	case client.Delimiter:
		if arg == "" {
			return nil, usagef("--framing delimiter needs the delimiter: delimiter:DELIM, escaped (delimiter:\\r\\n)")
		}
		enc := client.FramingEncoding("escaped")
		f.Delimiter, f.Encoding = &arg, &enc
	case client.Fixed:
		n, err := strconv.Atoi(arg)
		if err != nil {
			return nil, usagef("--framing fixed needs the frame size in bytes: fixed:SIZE")
		}
		f.Size = &n
	case client.LengthPrefix:
		if hasArg {
			n, err := strconv.Atoi(arg)
			if err != nil {
				return nil, usagef("--framing length_prefix:HEADER_BYTES takes 1, 2, 4 or 8")
			}
			hb := client.FramingHeaderBytes(n)
			f.HeaderBytes = &hb
		}
	default:
		return nil, usagef("--framing %q: want raw, lines, delimiter:DELIM, fixed:SIZE, length_prefix[:HEADER_BYTES] or a JSON object", s)
	}
	return &f, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func optTrue(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

// splitPort reads [HOST:]PORT.
func splitPort(s string, hostRequired bool) (host string, port int, err error) {
	p := s
	if strings.Contains(s, ":") {
		host, p, err = net.SplitHostPort(s)
		if err != nil {
			return "", 0, usagef("%q: want HOST:PORT ([::1]:PORT for IPv6)", s)
		}
	} else if hostRequired {
		return "", 0, usagef("%q: want HOST:PORT", s)
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		return "", 0, usagef("%q: the port %q is not a number", s, p)
	}
	return host, port, nil
}

func newListenCmd(g *cli) *cobra.Command {
	var o openFlags
	cmd := &cobra.Command{
		Use:   "listen [HOST:]PORT",
		Short: "Start a server listening on a TCP port",
		Long: `Start a server: POST /servers. It prints the server and exits; the server
keeps listening in the service, and the sockets it accepts show in 'sockman ls'.
HOST defaults to 127.0.0.1; PORT 0 picks a free port (the answer says which).`,
		Example: `  sockman listen 9000
  sockman listen 0.0.0.0:2323 --name modem --framing lines
  sockman listen [::1]:0 --framing 'delimiter:\r\n' --json`,
		Args: args(1, "[HOST:]PORT"),
		RunE: func(cmd *cobra.Command, a []string) error {
			host, port, err := splitPort(a[0], false)
			if err != nil {
				return err
			}
			framing, err := parseFraming(o.framing)
			if err != nil {
				return err
			}
			body := client.ServerCreate{
				Host: optString(host), Port: port, Framing: framing,
				BufferBytes: optInt(o.bufferBytes), Name: optString(o.name),
				HalfClose: optTrue(o.halfClose), Keepalive: optString(o.keepalive),
			}
			if o.overflow != "" {
				ov := client.ServerCreateOverflow(o.overflow)
				body.Overflow = &ov
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rsp, err := c.CreateServerWithResponse(cmd.Context(), body)
			if err := client.OrCheck(rsp, err); err != nil {
				return err
			}
			if g.json {
				return g.printRaw(rsp.Body)
			}
			_, err = fmt.Fprintf(g.stdout, "%s listening on %s\n", rsp.JSON201.Id, rsp.JSON201.Address)
			return err
		},
	}
	o.add(cmd.Flags())
	return cmd
}

func newConnectCmd(g *cli) *cobra.Command {
	var o openFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "connect HOST:PORT",
		Short: "Connect a client socket to a TCP server",
		Long: `Connect a client socket: POST /clients. It prints the socket and exits; the
socket stays open in the service, for send, read, attach and close.`,
		Example: `  sockman connect 127.0.0.1:7000
  sockman connect localhost:7000 --timeout 2s --framing length_prefix:2
  sockman connect [::1]:7000 --json`,
		Args: args(1, "HOST:PORT"),
		RunE: func(cmd *cobra.Command, a []string) error {
			host, port, err := splitPort(a[0], true)
			if err != nil {
				return err
			}
			framing, err := parseFraming(o.framing)
			if err != nil {
				return err
			}
			if timeout < 0 || (timeout > 0 && timeout < time.Millisecond) {
				return usagef("--timeout %v: want at least 1ms", timeout)
			}
			body := client.ClientCreate{
				Host: host, Port: port, Framing: framing,
				BufferBytes: optInt(o.bufferBytes), Name: optString(o.name),
				HalfClose: optTrue(o.halfClose), Keepalive: optString(o.keepalive),
				TimeoutMs: optInt(int(timeout / time.Millisecond)),
			}
			if o.overflow != "" {
				ov := client.ClientCreateOverflow(o.overflow)
				body.Overflow = &ov
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rsp, err := c.CreateClientWithResponse(cmd.Context(), body)
			if err := client.OrCheck(rsp, err); err != nil {
				return err
			}
			if g.json {
				return g.printRaw(rsp.Body)
			}
			s := rsp.JSON201
			_, err = fmt.Fprintf(g.stdout, "%s connected %s -> %s\n", s.Id, s.LocalAddress, s.RemoteAddress)
			return err
		},
	}
	o.add(cmd.Flags())
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "connect timeout (0: the service's --connect-timeout)")
	return cmd
}
