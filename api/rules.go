package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/sockets"
)

// Reply rules: the routes under /servers/{id}/rules and /sockets/{id}/rules.

// RuleMatch says what a rule matches: exactly one of its kinds, written in
// encoding.
type RuleMatch struct {
	// The whole message is these bytes.
	Equals *string `json:"equals,omitempty" example:"AT"`
	// The message starts with these bytes ("" matches every message).
	Prefix *string `json:"prefix,omitempty" example:"AT+"`
	// The message ends with these bytes.
	Suffix *string `json:"suffix,omitempty" example:"?"`
	// The message holds these bytes.
	Contains *string `json:"contains,omitempty" example:"ping"`
	// An RE2 regular expression (Go's regexp syntax) that matches somewhere in the message (anchor it with ^ and $); its groups go into the reply as $1 or ${name}.
	Regex *string `json:"regex,omitempty" example:"^SET (\\w+)=(\\d+)$"`
	// How the pattern is written: utf8 (default), base64, hex or escaped.
	Encoding string `json:"encoding,omitempty" enums:"utf8,base64,hex,escaped" example:"utf8"`
} // @name RuleMatch

// RuleReply is the bytes a rule answers with.
type RuleReply struct {
	// The bytes, written in encoding; with a regex match, $1, ${name} and $0 are its groups and $$ is a $ (Go's Regexp.Expand).
	Data string `json:"data" example:"OK\r\n" validate:"required"`
	// How data is written: utf8 (default), base64, hex or escaped.
	Encoding string `json:"encoding,omitempty" enums:"utf8,base64,hex,escaped" example:"utf8"`
} // @name RuleReply

// RuleCreate is the body of POST /servers/{id}/rules and POST
// /sockets/{id}/rules.
type RuleCreate struct {
	// What it matches; absent only with echo (then every message).
	Match *RuleMatch `json:"match,omitempty"`
	// What it answers.
	Reply *RuleReply `json:"reply,omitempty"`
	// Answer with the message itself (instead of a reply).
	Echo bool `json:"echo,omitempty" example:"false"`
	// Milliseconds between the message's arrival and the answer, at most 3600000; the socket reads on meanwhile, and later answers wait their turn.
	DelayMS int64 `json:"delay_ms,omitempty" example:"0" minimum:"0" maximum:"3600000"`
	// After the answer: close (FIN) or reset (RST) the connection.
	Then string `json:"then,omitempty" enums:"close,reset" example:"close"`
	// Answer at most this many messages; 0 or absent: no end.
	Times int64 `json:"times,omitempty" example:"0" minimum:"0"`
} // @name RuleCreate

// Rule is a reply rule.
type Rule struct {
	// Rule id, within its socket or server: use it in .../rules/{rule_id}.
	ID    string     `json:"id" example:"rule-1"`
	Match *RuleMatch `json:"match,omitempty"`
	Reply *RuleReply `json:"reply,omitempty"`
	Echo  bool       `json:"echo,omitempty" example:"false"`
	// Milliseconds before the answer.
	DelayMS int64  `json:"delay_ms,omitempty" example:"0"`
	Then    string `json:"then,omitempty" enums:"close,reset" example:"close"`
	Times   int64  `json:"times,omitempty" example:"0"`
	// Messages it answered.
	Hits int64 `json:"hits" example:"0"`
} // @name Rule

// RuleList is the body of GET .../rules.
type RuleList struct {
	// The rules in the order they are tried (a socket's own before its server's).
	Rules []Rule `json:"rules"`
} // @name RuleList

// spec checks the request and turns it into the engine's rule.
func (r RuleCreate) spec() (sockets.RuleSpec, error) {
	var s sockets.RuleSpec
	if m := r.Match; m != nil {
		kinds := []struct {
			name string
			v    *string
		}{{sockets.MatchEquals, m.Equals}, {sockets.MatchPrefix, m.Prefix}, {sockets.MatchSuffix, m.Suffix}, {sockets.MatchContains, m.Contains}, {sockets.MatchRegex, m.Regex}}
		for _, k := range kinds {
			if k.v == nil {
				continue
			}
			if s.Kind != "" {
				return s, badRequest("match has %s and %s: give one kind of match per rule", s.Kind, k.name)
			}
			p, err := decodeField("match "+k.name, *k.v, m.Encoding)
			if err != nil {
				return s, err
			}
			s.Kind, s.Pattern, s.PatternText, s.PatternEncoding = k.name, p, *k.v, m.Encoding
		}
		if s.Kind == "" {
			return s, badRequest("match needs one of equals, prefix, suffix, contains or regex (prefix \"\" matches every message)")
		}
	}
	if r.Reply != nil {
		p, err := decodeField("reply data", r.Reply.Data, r.Reply.Encoding)
		if err != nil {
			return s, err
		}
		s.Reply, s.HasReply, s.ReplyText, s.ReplyEncoding = p, true, r.Reply.Data, r.Reply.Encoding
	}
	if r.DelayMS < 0 || r.DelayMS > sockets.MaxRuleDelay.Milliseconds() {
		return s, badRequest("delay_ms %d is out of range 0 to %d (an hour)", r.DelayMS, sockets.MaxRuleDelay.Milliseconds())
	}
	s.Echo, s.Delay, s.Then, s.Times = r.Echo, time.Duration(r.DelayMS)*time.Millisecond, r.Then, r.Times
	return s, nil
}

func ruleOut(r sockets.RuleInfo) Rule {
	out := Rule{ID: r.ID, Echo: r.Echo, DelayMS: r.Delay.Milliseconds(), Then: r.Then, Times: r.Times, Hits: r.Hits}
	if r.Kind != "" {
		m := &RuleMatch{Encoding: r.PatternEncoding}
		p := &r.PatternText
		switch r.Kind {
		case sockets.MatchEquals:
			m.Equals = p
		case sockets.MatchPrefix:
			m.Prefix = p
		case sockets.MatchSuffix:
			m.Suffix = p
		case sockets.MatchContains:
			m.Contains = p
		case sockets.MatchRegex:
			m.Regex = p
		}
		out.Match = m
	}
	if r.HasReply {
		out.Reply = &RuleReply{Data: r.ReplyText, Encoding: r.ReplyEncoding}
	}
	return out
}

func ruleList(list []sockets.RuleInfo) RuleList {
	out := RuleList{Rules: make([]Rule, 0, len(list))}
	for _, r := range list {
		out.Rules = append(out.Rules, ruleOut(r))
	}
	return out
}

// addRule adds a rule to rs and answers with it.
func addRule(c echo.Context, rs *sockets.Rules, base string) error {
	var req RuleCreate
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	spec, err := req.spec()
	if err != nil {
		return err
	}
	info, err := rs.Add(spec)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, base+"/rules/"+info.ID)
	return c.JSON(http.StatusCreated, ruleOut(info))
}

// serverRules returns the rules of the server in the path.
func (h *handlers) serverRules(c echo.Context) (*sockets.Rules, error) {
	srv, err := h.reg.Server(c.Param("id"))
	if err != nil {
		return nil, err
	}
	return srv.Rules(), nil
}

// socketRules returns the rules of the socket in the path.
func (h *handlers) socketRules(c echo.Context) (*sockets.Rules, error) {
	s, err := h.reg.Socket(c.Param("id"))
	if err != nil {
		return nil, err
	}
	return s.Rules(), nil
}

// createServerRule adds a reply rule to a server.
//
//	@Summary		Add a reply rule to a server
//	@Description	Every socket the server accepted, before and after, answers the messages the rule matches by itself: with reply, or the message itself (echo), after delay_ms, then closes or resets if then says so. A message is a whole frame on a framed server, what one read returned otherwise. A socket's own rules are tried first, then its server's, in the order they were added: the first that matches answers, and a rule that answered times messages is passed over. Each answer is a socket.sent event with source rule.
//	@Description	For example {"match":{"equals":"AT"},"reply":{"data":"OK\r\n"}} on a lines server, {"match":{"regex":"^GET (\\S+)"},"reply":{"data":"you asked for $1\n"}}, or {"echo":true}.
//	@Tags			rules
//	@ID				createServerRule
//	@Accept			json
//	@Produce		json
//	@Param			id		path		string		true	"Server id"	example(srv-1)
//	@Param			rule	body		RuleCreate	true	"The rule"
//	@Success		201		{object}	Rule
//	@Header			201		{string}	Location	"/servers/{id}/rules/{rule_id}"
//	@Failure		400		{object}	Problem	"A regex that does not compile, a reply naming a group the regex does not have, no match kind or two, a pattern over --max-rule-pattern-bytes, a reply over --max-reply-bytes, a bad encoding, delay_ms, then or times"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404		{object}	Problem	"No such server"
//	@Failure		413		{object}	Problem	"Body too large"
//	@Failure		415		{object}	Problem	"Not JSON"
//	@Failure		503		{object}	Problem	"The server has --max-rules rules"
//	@Security		BearerAuth
//	@Router			/servers/{id}/rules [post]
func (h *handlers) createServerRule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	rs, err := h.serverRules(c)
	if err != nil {
		return err
	}
	return addRule(c, rs, "/servers/"+c.Param("id"))
}

// listServerRules lists a server's rules.
//
//	@Summary		List a server's reply rules
//	@Description	The server's rules in the order they are tried, with the messages each answered (hits).
//	@Tags			rules
//	@ID				listServerRules
//	@Produce		json
//	@Param			id	path		string	true	"Server id"	example(srv-1)
//	@Success		200	{object}	RuleList
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such server"
//	@Security		BearerAuth
//	@Router			/servers/{id}/rules [get]
func (h *handlers) listServerRules(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	rs, err := h.serverRules(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ruleList(rs.List()))
}

// deleteServerRule removes a server's rule.
//
//	@Summary		Remove a server's reply rule
//	@Description	The rule answers no more message; an answer it queued already is still sent.
//	@Tags			rules
//	@ID				deleteServerRule
//	@Param			id		path	string	true	"Server id"	example(srv-1)
//	@Param			rule_id	path	string	true	"Rule id"	example(rule-1)
//	@Success		204
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such server, or no such rule"
//	@Security		BearerAuth
//	@Router			/servers/{id}/rules/{rule_id} [delete]
func (h *handlers) deleteServerRule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	rs, err := h.serverRules(c)
	if err != nil {
		return err
	}
	if err := rs.Delete(c.Param("rule_id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// createSocketRule adds a reply rule to a socket.
//
//	@Summary		Add a reply rule to a socket
//	@Description	The socket answers the messages the rule matches by itself, as a server's rules do (see POST /servers/{id}/rules), before its server's rules are tried. A client socket takes rules too.
//	@Tags			rules
//	@ID				createSocketRule
//	@Accept			json
//	@Produce		json
//	@Param			id		path		string		true	"Socket id"	example(sock-1)
//	@Param			rule	body		RuleCreate	true	"The rule"
//	@Success		201		{object}	Rule
//	@Header			201		{string}	Location	"/sockets/{id}/rules/{rule_id}"
//	@Failure		400		{object}	Problem	"A regex that does not compile, a reply naming a group the regex does not have, no match kind or two, a pattern over --max-rule-pattern-bytes, a reply over --max-reply-bytes, a bad encoding, delay_ms, then or times"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404		{object}	Problem	"No such socket"
//	@Failure		413		{object}	Problem	"Body too large"
//	@Failure		415		{object}	Problem	"Not JSON"
//	@Failure		503		{object}	Problem	"The socket has --max-rules rules"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/rules [post]
func (h *handlers) createSocketRule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	rs, err := h.socketRules(c)
	if err != nil {
		return err
	}
	return addRule(c, rs, "/sockets/"+c.Param("id"))
}

// listSocketRules lists a socket's own rules.
//
//	@Summary		List a socket's reply rules
//	@Description	The socket's own rules in the order they are tried, with the messages each answered (hits); its server's come after them (GET /servers/{id}/rules).
//	@Tags			rules
//	@ID				listSocketRules
//	@Produce		json
//	@Param			id	path		string	true	"Socket id"	example(sock-1)
//	@Success		200	{object}	RuleList
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such socket"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/rules [get]
func (h *handlers) listSocketRules(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	rs, err := h.socketRules(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ruleList(rs.List()))
}

// deleteSocketRule removes a socket's rule.
//
//	@Summary		Remove a socket's reply rule
//	@Description	The rule answers no more message; an answer it queued already is still sent.
//	@Tags			rules
//	@ID				deleteSocketRule
//	@Param			id		path	string	true	"Socket id"	example(sock-1)
//	@Param			rule_id	path	string	true	"Rule id"	example(rule-1)
//	@Success		204
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such socket, or no such rule"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/rules/{rule_id} [delete]
func (h *handlers) deleteSocketRule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	rs, err := h.socketRules(c)
	if err != nil {
		return err
	}
	if err := rs.Delete(c.Param("rule_id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
