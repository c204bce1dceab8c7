package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockman/sockman/client"
)

type lsFlags struct {
	watch  bool
	kind   string
	server string
	state  string
	name   string
}

// listing is one look at the service: its servers and sockets, as decoded
// and as the API's JSON.
type listing struct {
	servers []client.Server
	sockets []client.Socket
	raw     map[string]json.RawMessage
}

func (o *lsFlags) list(ctx context.Context, c *client.Sockman) (*listing, error) {
	sp := &client.ListServersParams{Name: optString(o.name)}
	srv, err := c.ListServersWithResponse(ctx, sp)
	if err := client.OrCheck(srv, err); err != nil {
		return nil, err
	}
	kp := &client.ListSocketsParams{ServerId: optString(o.server), Name: optString(o.name)}
	if o.kind != "" {
		k := client.ListSocketsParamsKind(o.kind)
		kp.Kind = &k
	}
	if o.state != "" {
		s := client.ListSocketsParamsState(o.state)
		kp.State = &s
	}
	socks, err := c.ListSocketsWithResponse(ctx, kp)
	if err := client.OrCheck(socks, err); err != nil {
		return nil, err
	}
	l := &listing{servers: srv.JSON200.Servers, sockets: socks.JSON200.Sockets, raw: map[string]json.RawMessage{}}
	var a, b map[string]json.RawMessage
	if json.Unmarshal(srv.Body, &a) != nil || json.Unmarshal(socks.Body, &b) != nil {
		return nil, errors.New("the lists' answers are not JSON objects")
	}
	servers := a["servers"]
	if o.server != "" {
		// A socket filter by server shows that server only.
		var keep []json.RawMessage
		var all []json.RawMessage
		json.Unmarshal(servers, &all)
		var kept []client.Server
		for i, s := range l.servers {
			if s.Id == o.server && i < len(all) {
				keep = append(keep, all[i])
				kept = append(kept, s)
			}
		}
		if keep == nil {
			keep = []json.RawMessage{}
		}
		servers, _ = json.Marshal(keep)
		l.servers = kept
	}
	l.raw["servers"], l.raw["sockets"] = servers, b["sockets"]
	return l, nil
}

func (l *listing) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tADDRESS\tSTATE\tSOCKETS\tACCEPTED\tFRAMING\tNAME")
	for _, s := range l.servers {
		state := string(s.State)
		if s.Error != nil {
			state += " (" + *s.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Id, s.Address, state, len(s.Sockets), s.Accepted, s.Framing.Type, deref(s.Name))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SOCKET\tKIND\tSERVER\tLOCAL\tREMOTE\tSTATE\tRECEIVED\tSENT\tBUFFERED\tNAME")
	for _, s := range l.sockets {
		state := string(s.State)
		if s.CloseReason != nil {
			state += " (" + *s.CloseReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Id, s.Kind, or(deref(s.ServerId), "-"), s.LocalAddress, s.RemoteAddress, state, s.BytesReceived, s.BytesSent, s.BufferedBytes, deref(s.Name))
	}
	return tw.Flush()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newLsCmd(g *cli) *cobra.Command {
	var o lsFlags
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List servers and sockets",
		Long: `List the servers and the sockets as two tables (GET /servers and GET /sockets).
With --json, one object {"servers":[...],"sockets":[...]} with the API's
objects. With -w it lists again each time something happens (GET /events),
until interrupted.`,
		Example: `  sockman ls
  sockman ls --server srv-1 --state connected
  sockman ls -w
  sockman ls --json | jq -r '.sockets[].id'`,
		Args: args(0, "nothing"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			show := func(l *listing) error {
				if g.json {
					return g.printJSON(l.raw)
				}
				return l.print(g.stdout)
			}
			if !o.watch {
				l, err := o.list(ctx, c)
				if err != nil {
					return err
				}
				return show(l)
			}
			// Subscribe first, then list: nothing that happens between the two
			// is missed.
			events, err := c.Events(ctx, nil)
			if err != nil {
				return err
			}
			defer events.Close()
			next := make(chan error, 1)
			tick := make(chan struct{}, 1)
			go func() {
				for {
					if _, _, err := events.Next(); err != nil {
						next <- err
						return
					}
					select {
					case tick <- struct{}{}:
					default: // a listing is due already
					}
				}
			}()
			tty := isTerminal(g.stdout)
			for {
				l, err := o.list(ctx, c)
				if err != nil {
					return err
				}
				if tty && !g.json {
					fmt.Fprint(g.stdout, "\033[H\033[2J")
				} else if !g.json {
					fmt.Fprintf(g.stdout, "--- %s\n", time.Now().UTC().Format(time.RFC3339Nano))
				}
				if err := show(l); err != nil {
					return err
				}
				select {
				case <-tick:
				case err := <-next:
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if err == io.EOF {
						fmt.Fprintln(g.stderr, "the service ended the event stream (it is shutting down)")
						return nil
					}
					return err
				case <-ctx.Done():
					events.Close()
					<-next
					return ctx.Err()
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.watch, "watch", "w", false, "list again whenever something happens, until interrupted")
	f.StringVar(&o.kind, "kind", "", "only sockets of this kind: accepted or client")
	f.StringVar(&o.server, "server", "", "only this server and its sockets (srv-N)")
	f.StringVar(&o.state, "state", "", "only sockets in this state: connected or closed")
	f.StringVar(&o.name, "name", "", "only servers and sockets with this name")
	return cmd
}

func newCloseCmd(g *cli) *cobra.Command {
	var reset, keep, closeSockets bool
	cmd := &cobra.Command{
		Use:   "close ID",
		Short: "Close a socket, or stop a server",
		Long: `Close a socket and forget it (DELETE /sockets/{id}), or with --keep close it
and keep what it received readable (POST /sockets/{id}/close). --reset aborts
the connection with an RST instead of a FIN.

A server id (srv-N) stops the server listening (DELETE /servers/{id}); its
sockets stay open unless --close-sockets.`,
		Example: `  sockman close sock-1
  sockman close sock-1 --keep --reset
  sockman close srv-1 --close-sockets`,
		Args: args(1, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, id := cmd.Context(), a[0]
			if strings.HasPrefix(id, "srv-") {
				if reset || keep {
					return usagef("--reset and --keep are for sockets; a server takes --close-sockets")
				}
				rsp, err := c.DeleteServerWithResponse(ctx, id, &client.DeleteServerParams{CloseSockets: optTrue(closeSockets)})
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
				if !g.json {
					fmt.Fprintf(g.stdout, "%s stopped\n", id)
				}
				return nil
			}
			if closeSockets {
				return usagef("--close-sockets is for servers (srv-N)")
			}
			if keep {
				rsp, err := c.CloseSocketWithResponse(ctx, id, &client.CloseSocketParams{Reset: optTrue(reset)})
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
				if g.json {
					return g.printRaw(rsp.Body)
				}
				_, err = fmt.Fprintf(g.stdout, "%s closed (%s), kept: %d bytes unread\n", id, deref(rsp.JSON200.CloseReason), rsp.JSON200.BufferedBytes)
				return err
			}
			rsp, err := c.DeleteSocketWithResponse(ctx, id, &client.DeleteSocketParams{Reset: optTrue(reset)})
			if err := client.OrCheck(rsp, err); err != nil {
				return err
			}
			if !g.json {
				fmt.Fprintf(g.stdout, "%s closed\n", id)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&reset, "reset", false, "abort with an RST instead of a FIN")
	f.BoolVar(&keep, "keep", false, "keep the socket and what it received readable")
	f.BoolVar(&closeSockets, "close-sockets", false, "with a server id: close its sockets too")
	return cmd
}
