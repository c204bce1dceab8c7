package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockman/sockman/client"
)

// newRulesCmd is `sockman rules`: the reply rules of a server (srv-N, for
// every socket it accepts) or of one socket, added, listed and removed.
func newRulesCmd(g *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Add, list and remove the reply rules of a server or a socket",
		Long: `Reply rules make a server (srv-N: every socket it accepts, now and later) or
one socket answer by itself: the first rule that matches a whole message
(a frame on a framed socket) answers it. A socket's own rules come before
its server's. The API reference is API.md; what each field means is the
API's (POST /servers/{id}/rules).`,
		Example: `  sockman rules add srv-1 --echo
  sockman rules add srv-1 --equals AT --reply 'OK\r\n' --escaped
  sockman rules add srv-1 --regex '^GET (\S+)' --reply 'you asked for $1\n' --escaped
  sockman rules add sock-3 --prefix QUIT --reply 'bye\n' --escaped --then close
  sockman rules ls srv-1
  sockman rules rm srv-1 rule-2`,
	}
	cmd.AddCommand(newRulesAddCmd(g), newRulesLsCmd(g), newRulesRmCmd(g))
	return cmd
}

// ruleMatchKinds are the match flags of rules add, in the API's names.
var ruleMatchKinds = []string{"equals", "prefix", "suffix", "contains", "regex"}

func newRulesAddCmd(g *cli) *cobra.Command {
	var (
		match         = map[string]*string{}
		reply, encode string
		hexEnc, esc   bool
		echo          bool
		delay         time.Duration
		then          string
		times         int
	)
	cmd := &cobra.Command{
		Use:   "add ID",
		Short: "Add a reply rule to a server (srv-N) or a socket",
		Long: `Add a rule: one match flag (--equals, --prefix, --suffix, --contains or
--regex, an RE2 expression whose groups go into the reply as $1 or ${name}),
and --reply, or --echo to answer with the message itself. --hex or --escaped
say how the pattern and the reply are written (as the API's encodings:
hex with any separators, or \r \n \t \0 \\ \xNN). --delay waits before the
answer, --then closes or resets the connection after it, --times bounds how
many messages it answers. It prints the rule.`,
		Example: `  sockman rules add srv-1 --equals AT --reply 'OK\r\n' --escaped
  sockman rules add srv-1 --prefix '' --reply 'ERROR\r\n' --escaped
  sockman rules add srv-1 --echo --times 3`,
		Args: args(1, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch {
			case hexEnc && esc:
				return usagef("--hex and --escaped: give one")
			case hexEnc:
				encode = "hex"
			case esc:
				encode = "escaped"
			}
			body := map[string]any{}
			m := map[string]any{}
			for _, k := range ruleMatchKinds {
				if p := match[k]; cmd.Flags().Changed(k) {
					m[k] = *p
				}
			}
			if len(m) > 1 {
				return usagef("one match flag at a time (--equals, --prefix, --suffix, --contains or --regex)")
			}
			if len(m) == 1 {
				if encode != "" {
					m["encoding"] = encode
				}
				body["match"] = m
			}
			if cmd.Flags().Changed("reply") {
				r := map[string]any{"data": reply}
				if encode != "" {
					r["encoding"] = encode
				}
				body["reply"] = r
			}
			if echo {
				body["echo"] = true
			}
			if delay != 0 {
				body["delay_ms"] = delay.Milliseconds()
			}
			if then != "" {
				body["then"] = then
			}
			if times != 0 {
				body["times"] = times
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			b, _ := json.Marshal(body)
			id := a[0]
			var raw []byte
			if isServerID(id) {
				rsp, err := c.CreateServerRuleWithBodyWithResponse(cmd.Context(), id, "application/json", bytes.NewReader(b))
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
				raw = rsp.Body
			} else {
				rsp, err := c.CreateSocketRuleWithBodyWithResponse(cmd.Context(), id, "application/json", bytes.NewReader(b))
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
				raw = rsp.Body
			}
			if g.json {
				return g.printRaw(raw)
			}
			var r client.Rule
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("the rule the service answered: %w", err)
			}
			_, err = fmt.Fprintf(g.stdout, "%s added to %s: %s\n", r.Id, id, describeRule(r))
			return err
		},
	}
	f := cmd.Flags()
	for _, k := range ruleMatchKinds {
		match[k] = f.String(k, "", "match: the message "+map[string]string{
			"equals": "is", "prefix": "starts with", "suffix": "ends with", "contains": "holds", "regex": "matches this RE2 expression",
		}[k]+" PATTERN")
	}
	f.StringVar(&reply, "reply", "", "answer with DATA")
	f.BoolVar(&echo, "echo", false, "answer with the message itself")
	f.BoolVar(&hexEnc, "hex", false, "the pattern and the reply are hex")
	f.BoolVar(&esc, "escaped", false, `the pattern and the reply use \r \n \t \0 \\ \xNN`)
	f.DurationVar(&delay, "delay", 0, "wait this long before the answer")
	f.StringVar(&then, "then", "", "after the answer: close or reset the connection")
	f.IntVar(&times, "times", 0, "answer at most this many messages (0: no end)")
	return cmd
}

func newRulesLsCmd(g *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "ls ID",
		Short:   "List the reply rules of a server or a socket, with their hits",
		Long:    `List the rules of a server (srv-N) or a socket in the order they are tried, with how many messages each answered.`,
		Example: "  sockman rules ls srv-1\n  sockman rules ls sock-2 --json",
		Args:    args(1, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			id := a[0]
			var raw []byte
			if isServerID(id) {
				rsp, err := c.ListServerRulesWithResponse(cmd.Context(), id)
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
				raw = rsp.Body
			} else {
				rsp, err := c.ListSocketRulesWithResponse(cmd.Context(), id)
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
				raw = rsp.Body
			}
			if g.json {
				return g.printRaw(raw)
			}
			var list client.RuleList
			if err := json.Unmarshal(raw, &list); err != nil {
				return fmt.Errorf("the rules the service answered: %w", err)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tHITS\tRULE")
			for _, r := range list.Rules {
				fmt.Fprintf(w, "%s\t%d\t%s\n", r.Id, r.Hits, describeRule(r))
			}
			return w.Flush()
		},
	}
}

func newRulesRmCmd(g *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID RULE_ID",
		Short:   "Remove a reply rule",
		Example: "  sockman rules rm srv-1 rule-2",
		Args:    args(2, "ID and RULE_ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			id, rule := a[0], a[1]
			if isServerID(id) {
				rsp, err := c.DeleteServerRuleWithResponse(cmd.Context(), id, rule)
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
			} else {
				rsp, err := c.DeleteSocketRuleWithResponse(cmd.Context(), id, rule)
				if err := client.OrCheck(rsp, err); err != nil {
					return err
				}
			}
			if !g.json {
				fmt.Fprintf(g.stdout, "%s removed from %s\n", rule, id)
			}
			return nil
		},
	}
}

// isServerID says whether id names a server (srv-N) rather than a socket.
func isServerID(id string) bool { return strings.HasPrefix(id, "srv-") }

// describeRule is a rule in one line: what it matches and what it does.
func describeRule(r client.Rule) string {
	var parts []string
	if m := r.Match; m != nil {
		for k, p := range map[string]*string{"equals": m.Equals, "prefix": m.Prefix, "suffix": m.Suffix, "contains": m.Contains, "regex": m.Regex} {
			if p != nil {
				parts = append(parts, fmt.Sprintf("%s %q", k, *p))
			}
		}
	} else {
		parts = append(parts, "every message")
	}
	if r.Echo != nil && *r.Echo {
		parts = append(parts, "-> echo")
	}
	if r.Reply != nil {
		parts = append(parts, fmt.Sprintf("-> %q", r.Reply.Data))
	}
	if r.DelayMs != nil && *r.DelayMs > 0 {
		parts = append(parts, fmt.Sprintf("after %dms", *r.DelayMs))
	}
	if r.Then != nil {
		parts = append(parts, "then "+string(*r.Then))
	}
	if r.Times != nil && *r.Times > 0 {
		parts = append(parts, fmt.Sprintf("at most %d times", *r.Times))
	}
	return strings.Join(parts, " ")
}
