package sockets

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sockman/sockman/internal/quote"
)

// Reply rules: a socket's whole messages (frames on a framed socket, reads
// otherwise) are matched against its own rules, then against its server's;
// the first that matches answers. The read loop only matches and queues
// the answer (mock.submit): the socket's replier goroutine (replier.go)
// waits out a delay and writes it, so that a delay holds no lock and no
// read loop, and a peer sending fast meets a bounded queue.

// Match kinds, as RuleSpec.Kind names them.
const (
	MatchEquals   = "equals"
	MatchPrefix   = "prefix"
	MatchSuffix   = "suffix"
	MatchContains = "contains"
	MatchRegex    = "regex"
)

// MatchKinds are the match kinds, in the order of their documentation.
var MatchKinds = []string{MatchEquals, MatchPrefix, MatchSuffix, MatchContains, MatchRegex}

// What a rule does after its reply, as RuleSpec.Then names it.
const (
	ThenClose = "close"
	ThenReset = "reset"
)

// MaxRuleDelay is the longest delay_ms of a rule.
const MaxRuleDelay = time.Hour

// Retain says which messages a socket stores for its readers.
type Retain string

// Retain modes.
const (
	RetainAll       Retain = "all"       // every message (the default)
	RetainUnmatched Retain = "unmatched" // a message a rule answered is not stored
	RetainNone      Retain = "none"      // no message is stored: counters and events only
)

// ParseRetain checks a retain mode; "" is RetainAll.
func ParseRetain(s string) (Retain, error) {
	switch Retain(s) {
	case "", RetainAll:
		return RetainAll, nil
	case RetainUnmatched, RetainNone:
		return Retain(s), nil
	}
	return "", fmt.Errorf("%w: retain %s must be all, unmatched or none", ErrInvalid, quote.String(s))
}

// Errors and bounds of rules and schedules.
var (
	// ErrRuleNotFound: the socket or server has no rule with that id.
	ErrRuleNotFound = errors.New("rule not found")
	// ErrScheduleNotFound: the socket or server has no schedule with that id.
	ErrScheduleNotFound = errors.New("schedule not found")
)

// Limits of rules and schedules, as LimitError.Limit names them.
const (
	LimitRules     Limit = "rules"     // Config.MaxRules: rules of one socket or server
	LimitSchedules Limit = "schedules" // Config.MaxSchedules: schedules of one socket or server
)

// Args of rules and schedules, as RangeError.Arg names them.
const (
	ArgPatternBytes  Arg = "match pattern bytes" // RuleSpec.Pattern: its length
	ArgReplyBytes    Arg = "reply bytes"         // RuleSpec.Reply, ScheduleSpec.Data: its length
	ArgGreetingBytes Arg = "greeting bytes"      // ListenOptions.Greeting: its length
	ArgDelay         Arg = "delay_ms"            // RuleSpec.Delay, in milliseconds
	ArgTimes         Arg = "times"               // RuleSpec.Times
	ArgInterval      Arg = "interval_ms"         // ScheduleSpec.Interval, in milliseconds
	ArgCount         Arg = "count"               // ScheduleSpec.Count
)

// Defaults of the bounds of rules and schedules (Config).
const (
	DefaultMaxRules          = 64
	DefaultMaxSchedules      = 16
	DefaultMaxPatternBytes   = 4 << 10
	DefaultMaxReplyBytes     = 64 << 10
	DefaultMinInterval       = 10 * time.Millisecond
	DefaultMaxPendingReplies = 256
)

// ItemNotFoundError says that a socket or server has no rule or schedule
// with an id. It matches ErrRuleNotFound or ErrScheduleNotFound.
type ItemNotFoundError struct {
	Schedule bool   // a schedule's id; else a rule's
	Owner    string // the socket's or server's id
	ID       string
}

func (e *ItemNotFoundError) Error() string {
	what := "rule"
	if e.Schedule {
		what = "schedule"
	}
	return fmt.Sprintf("%s has no %s with id %s", e.Owner, what, quote.String(e.ID))
}

func (e *ItemNotFoundError) Unwrap() error {
	if e.Schedule {
		return ErrScheduleNotFound
	}
	return ErrRuleNotFound
}

// RuleSpec describes a reply rule. Kind and Pattern say what it matches
// (Kind "" matches every message, for an echo); the text and encoding
// fields keep what the request wrote, to show it back the same way.
type RuleSpec struct {
	Kind            string // one of MatchKinds, or "" (only with Echo)
	Pattern         []byte
	PatternText     string
	PatternEncoding string

	Echo          bool   // the reply is the message itself
	Reply         []byte // with Kind regex, a template: $1, ${name} (Regexp.Expand)
	HasReply      bool
	ReplyText     string
	ReplyEncoding string

	Delay time.Duration // between the message's arrival and the reply
	Then  string        // "", ThenClose or ThenReset, after the reply
	Times int64         // answers at most this many messages; 0: no end
}

// RuleInfo is a snapshot of a rule.
type RuleInfo struct {
	ID string
	RuleSpec
	Hits int64 // messages it answered
}

// replyRule is a checked RuleSpec.
type replyRule struct {
	id   string
	spec RuleSpec
	re   *regexp.Regexp
	tmpl []tmplPart // the reply of a regex rule, parsed
	hits atomic.Int64
}

// tmplPart is a piece of a regex rule's reply: literal bytes, or group
// (when lit is nil).
type tmplPart struct {
	lit   []byte
	group int
}

// Rules are the reply rules of one socket or server. The read loop reads
// the list without a lock (it is replaced, never changed).
type Rules struct {
	owner string
	cfg   *Config
	tally *mockTally // the registry's, for Metrics
	list  atomic.Pointer[[]*replyRule]

	mu   sync.Mutex // guards the following field and every change of list
	last uint64
}

func newRules(owner string, cfg *Config, tally *mockTally) *Rules {
	return &Rules{owner: owner, cfg: cfg, tally: tally}
}

// Add checks spec and appends it as the last rule.
func (rs *Rules) Add(spec RuleSpec) (RuleInfo, error) {
	r, err := compileRule(spec, rs.cfg)
	if err != nil {
		return RuleInfo{}, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var old []*replyRule
	if p := rs.list.Load(); p != nil {
		old = *p
	}
	if len(old) >= rs.cfg.MaxRules {
		return RuleInfo{}, &LimitError{Limit: LimitRules, Value: int64(rs.cfg.MaxRules)}
	}
	rs.last++
	r.id = "rule-" + strconv.FormatUint(rs.last, 10)
	list := append(append(make([]*replyRule, 0, len(old)+1), old...), r)
	rs.list.Store(&list)
	return r.info(), nil
}

// List returns the rules in the order they are tried.
func (rs *Rules) List() []RuleInfo {
	var out []RuleInfo
	if p := rs.list.Load(); p != nil {
		out = make([]RuleInfo, 0, len(*p))
		for _, r := range *p {
			out = append(out, r.info())
		}
	}
	return out
}

// Get returns the rule with that id.
func (rs *Rules) Get(id string) (RuleInfo, error) {
	if p := rs.list.Load(); p != nil {
		for _, r := range *p {
			if r.id == id {
				return r.info(), nil
			}
		}
	}
	return RuleInfo{}, &ItemNotFoundError{Owner: rs.owner, ID: id}
}

// Delete removes the rule with that id. A reply it queued already is
// still sent.
func (rs *Rules) Delete(id string) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if p := rs.list.Load(); p != nil {
		for i, r := range *p {
			if r.id == id {
				list := append(append(make([]*replyRule, 0, len(*p)-1), (*p)[:i]...), (*p)[i+1:]...)
				rs.list.Store(&list)
				return nil
			}
		}
	}
	return &ItemNotFoundError{Owner: rs.owner, ID: id}
}

func (r *replyRule) info() RuleInfo { return RuleInfo{ID: r.id, RuleSpec: r.spec, Hits: r.hits.Load()} }

// compileRule checks spec against the bounds of cfg.
func compileRule(spec RuleSpec, cfg *Config) (*replyRule, error) {
	r := &replyRule{spec: spec}
	switch spec.Kind {
	case "":
		if !spec.Echo {
			return nil, fmt.Errorf("%w: a rule needs a match (one of equals, prefix, suffix, contains, regex) or \"echo\": true", ErrInvalid)
		}
	case MatchEquals, MatchPrefix, MatchSuffix, MatchContains, MatchRegex:
	default:
		return nil, fmt.Errorf("%w: match kind %s is not one of equals, prefix, suffix, contains, regex", ErrInvalid, quote.String(spec.Kind))
	}
	if len(spec.Pattern) > cfg.MaxPatternBytes {
		return nil, &RangeError{Arg: ArgPatternBytes, Value: int64(len(spec.Pattern)), Min: 0, Max: int64(cfg.MaxPatternBytes), Bound: "MaxPatternBytes"}
	}
	if spec.Echo && spec.HasReply {
		return nil, fmt.Errorf("%w: a rule takes either reply or \"echo\": true, not both", ErrInvalid)
	}
	if len(spec.Reply) > cfg.MaxReplyBytes {
		return nil, &RangeError{Arg: ArgReplyBytes, Value: int64(len(spec.Reply)), Min: 0, Max: int64(cfg.MaxReplyBytes), Bound: "MaxReplyBytes"}
	}
	if spec.Delay < 0 || spec.Delay > MaxRuleDelay {
		return nil, &RangeError{Arg: ArgDelay, Value: spec.Delay.Milliseconds(), Min: 0, Max: MaxRuleDelay.Milliseconds()}
	}
	switch spec.Then {
	case "", ThenClose, ThenReset:
	default:
		return nil, fmt.Errorf("%w: then %s must be close or reset (or absent: the socket stays open)", ErrInvalid, quote.String(spec.Then))
	}
	if spec.Times < 0 {
		return nil, &RangeError{Arg: ArgTimes, Value: spec.Times, Min: 0, Max: 1<<63 - 1}
	}
	if !spec.Echo && !spec.HasReply && spec.Then == "" {
		return nil, fmt.Errorf("%w: a rule needs a reply, \"echo\": true or a then (close or reset)", ErrInvalid)
	}
	if spec.Kind == MatchRegex {
		if !utf8.Valid(spec.Pattern) {
			return nil, fmt.Errorf("%w: match regex is not UTF-8 text; write bytes in it as \\xNN (RE2 syntax)", ErrInvalid)
		}
		re, err := regexp.Compile(string(spec.Pattern))
		if err != nil {
			why := err.Error()
			if se, ok := err.(*syntax.Error); ok {
				why = fmt.Sprintf("%s in %s", se.Code, quote.String(se.Expr))
			}
			return nil, fmt.Errorf("%w: match regex %s does not compile as RE2 (Go's regexp syntax): %s", ErrInvalid, quote.String(string(spec.Pattern)), why)
		}
		r.re = re
		if spec.HasReply {
			tmpl, err := parseTemplate(spec.Reply, re)
			if err != nil {
				return nil, err
			}
			r.tmpl = tmpl
		}
	}
	return r, nil
}

// parseTemplate splits a regex rule's reply into literals and group
// references as Regexp.Expand reads them, and refuses a reference to a
// group the regex does not have (Expand would put nothing there) and a $
// that starts no reference (Expand would keep it).
func parseTemplate(t []byte, re *regexp.Regexp) ([]tmplPart, error) {
	var parts []tmplPart
	lit := []byte{}
	for i := 0; i < len(t); {
		if t[i] != '$' {
			lit = append(lit, t[i])
			i++
			continue
		}
		if i+1 < len(t) && t[i+1] == '$' {
			lit = append(lit, '$')
			i += 2
			continue
		}
		name, num, n, ok := extractRef(t[i+1:])
		if !ok {
			return nil, fmt.Errorf("%w: reply has a $ at byte %d that names no group (%s); write $$ for a $, or $1 / ${name} for a group of the regex", ErrInvalid, i, quote.String(string(t[i:min(len(t), i+16)])))
		}
		group := num
		if num < 0 {
			group = re.SubexpIndex(name)
			if group < 0 {
				hint := ""
				if name[0] >= '0' && name[0] <= '9' {
					hint = fmt.Sprintf(" ($%s is read as ${%s}: write ${%s}%s for group %s followed by text)", name, name, leadingDigits(name), name[len(leadingDigits(name)):], leadingDigits(name))
				}
				return nil, fmt.Errorf("%w: reply names group %s, which the regex does not have%s; its groups are %s", ErrInvalid, quote.String(name), hint, groupList(re))
			}
		} else if num > re.NumSubexp() {
			return nil, fmt.Errorf("%w: reply names group %d, which the regex does not have; its groups are %s", ErrInvalid, num, groupList(re))
		}
		if len(lit) > 0 {
			parts = append(parts, tmplPart{lit: lit})
			lit = []byte{}
		}
		parts = append(parts, tmplPart{group: group})
		i += 1 + n
	}
	if len(lit) > 0 {
		parts = append(parts, tmplPart{lit: lit})
	}
	return parts, nil
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// groupList names the groups of re for a detail: "$0 to $2, ${word}".
func groupList(re *regexp.Regexp) string {
	s := fmt.Sprintf("$0 to $%d", re.NumSubexp())
	if re.NumSubexp() == 0 {
		s = "only $0 (the whole match)"
	}
	for _, n := range re.SubexpNames() {
		if n != "" {
			s += ", ${" + n + "}"
		}
	}
	return s
}

// extractRef reads the reference after a $ as Regexp.Expand does: a name
// of letters, digits and _, in braces or not; num is its number, -1 when
// it is a name. n is the bytes it took.
func extractRef(t []byte) (name string, num, n int, ok bool) {
	brace := false
	s := t
	if len(s) > 0 && s[0] == '{' {
		brace = true
		s = s[1:]
	}
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRune(s[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		i += size
	}
	if i == 0 {
		return "", 0, 0, false
	}
	name = string(s[:i])
	if brace {
		if i >= len(s) || s[i] != '}' {
			return "", 0, 0, false
		}
		i++
	}
	num = 0
	for j := 0; j < len(name); j++ {
		if name[j] < '0' || name[j] > '9' || num >= 1e8 {
			num = -1
			break
		}
		num = num*10 + int(name[j]-'0')
	}
	if name[0] == '0' && len(name) > 1 {
		num = -1
	}
	n = i
	if brace {
		n++
	}
	return name, num, n, true
}

// matches reports whether msg matches r, and the submatches of a regex.
func (r *replyRule) matches(msg []byte) ([]int, bool) {
	p := r.spec.Pattern
	switch r.spec.Kind {
	case "":
		return nil, true
	case MatchEquals:
		return nil, bytes.Equal(msg, p)
	case MatchPrefix:
		return nil, bytes.HasPrefix(msg, p)
	case MatchSuffix:
		return nil, bytes.HasSuffix(msg, p)
	case MatchContains:
		return nil, bytes.Contains(msg, p)
	case MatchRegex:
		if r.tmpl == nil {
			return nil, r.re.Match(msg)
		}
		m := r.re.FindSubmatchIndex(msg)
		return m, m != nil
	}
	return nil, false
}

// take counts a hit unless the rule answered times messages already.
func (r *replyRule) take() bool {
	for {
		n := r.hits.Load()
		if r.spec.Times > 0 && n >= r.spec.Times {
			return false
		}
		if r.hits.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// reply returns the bytes r answers msg with (m: the submatches), a copy
// that outlives msg; an expanded template is cut at maxBytes.
func (r *replyRule) reply(msg []byte, m []int, maxBytes int) []byte {
	switch {
	case r.spec.Echo:
		return bytes.Clone(msg)
	case r.tmpl != nil:
		size := 0
		for _, p := range r.tmpl {
			if p.lit != nil {
				size += len(p.lit)
			} else if a := m[2*p.group]; a >= 0 {
				size += m[2*p.group+1] - a
			}
		}
		out := make([]byte, 0, min(size, maxBytes))
		for _, p := range r.tmpl {
			piece := p.lit
			if piece == nil {
				if a := m[2*p.group]; a >= 0 {
					piece = msg[a:m[2*p.group+1]]
				}
			}
			out = append(out, piece[:min(len(piece), maxBytes-len(out))]...)
		}
		return out
	}
	return r.spec.Reply // never changed: shared by every answer
}

// any reports whether rs has a rule.
func (rs *Rules) any() bool {
	if rs == nil {
		return false
	}
	p := rs.list.Load()
	return p != nil && len(*p) > 0
}

// find returns the first rule of rs that takes msg.
func (rs *Rules) find(msg []byte) (*replyRule, []int) {
	if rs == nil {
		return nil, nil
	}
	p := rs.list.Load()
	if p == nil {
		return nil, nil
	}
	for _, r := range *p {
		if m, ok := r.matches(msg); ok && r.take() {
			if rs.tally != nil {
				rs.tally.ruleHits.Add(1)
			}
			return r, m
		}
	}
	return nil, nil
}
