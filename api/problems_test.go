package api

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/fakedns"
	"github.com/sockman/sockman/sockets"
)

// problemsSeen holds the type of every problem answer a test of this
// package received (the harness's tryDo records them): TestMain checks
// that each row of ProblemTypes is among them.
var problemsSeen sync.Map

// sawProblem records that a test received a problem of type typ.
func sawProblem(typ string) { problemsSeen.Store(typ, true) }

// recordProblem records the type of res's problem, if it is one.
func recordProblem(res response) {
	if mediaType(res.Header.Get("Content-Type")) != "application/problem+json" || len(res.body) == 0 {
		return
	}
	var p Problem
	if json.Unmarshal(res.body, &p) == nil {
		sawProblem(p.Type)
	}
}

// unsentProblems returns the rows of ProblemTypes that no test received.
// It is only meaningful after a run of the whole package.
func unsentProblems() []string {
	var missing []string
	for _, k := range ProblemTypes {
		if _, ok := problemsSeen.Load(k.Type); !ok {
			missing = append(missing, k.Type)
		}
	}
	return missing
}

// wholeRun reports whether this run runs every test of the package: no
// -run, -skip or -fuzz, and not -short.
func wholeRun() bool {
	for _, name := range []string{"test.run", "test.skip", "test.fuzz"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// problemCoverage runs the tests, then fails the run if a problem type of
// the table was sent by none of them: every row is something the service
// really answers.
type problemCoverage struct{ m *testing.M }

func (c problemCoverage) Run() int {
	code := c.m.Run()
	if code == 0 && wholeRun() {
		if missing := unsentProblems(); len(missing) > 0 {
			fmt.Printf("FAIL: no test received a problem of type %s; send each type of ProblemTypes in a test, or drop the row\n", strings.Join(missing, ", "))
			return 1
		}
	}
	return code
}

// TestProblemTypesTable: one row per type, each a sockman URN with the
// status's text as title and one sentence to act on, and the enum of
// Problem.type in openapi.yaml (its swag tag) lists the same types.
func TestProblemTypesTable(t *testing.T) {
	var types []string
	for _, k := range ProblemTypes {
		if !strings.HasPrefix(k.Type, problemPrefix) || slices.Contains(types, k.Type) {
			t.Errorf("type %q: want a unique %s... URN", k.Type, problemPrefix)
		}
		types = append(types, k.Type)
		if k.Title != http.StatusText(k.Status) || k.Status < 400 {
			t.Errorf("%s: got status %d title %q, want an error status and its text", k.Type, k.Status, k.Title)
		}
		if !strings.HasSuffix(k.Action, ".") || strings.Count(k.Action, ". ") > 0 || len(k.Action) < 20 {
			t.Errorf("%s: got action %q, want one sentence", k.Type, k.Action)
		}
	}
	f, _ := reflect.TypeFor[Problem]().FieldByName("Type")
	if enum := strings.Split(f.Tag.Get("enums"), ","); !slices.Equal(enum, types) {
		t.Errorf("Problem.Type's enums tag lists\n%v\nwant the types of ProblemTypes, in order:\n%v", enum, types)
	}
}

// TestProblemForAnswersFromTheTable maps every error the service can meet
// (each sentinel, wrapped; echo's errors; an unknown error) and wants a row
// of the table, with its status and title.
func TestProblemForAnswersFromTheTable(t *testing.T) {
	errs := []error{
		&http.MaxBytesError{Limit: 10}, context.Canceled, errors.New("unknown"),
		echo.ErrNotFound, echo.ErrMethodNotAllowed, echo.ErrBadRequest, echo.ErrUnsupportedMediaType,
		echo.ErrInternalServerError, echo.ErrTooManyRequests, echo.NewHTTPError(http.StatusTeapot),
		errBadRequest, errUnsupportedMedia, errTooLarge, errUnauthorized, errForbidden,
		sockets.ErrServerNotFound, sockets.ErrSocketNotFound, sockets.ErrInvalid, sockets.ErrAddrInUse,
		sockets.ErrSocketClosed, sockets.ErrForbidden, sockets.ErrConnectFailed, sockets.ErrConnectTimeout,
		sockets.ErrWriteTimeout, sockets.ErrLimit, sockets.ErrClosed, sockets.ErrWriteClosed, sockets.ErrSocketBusy, errUpgradeRequired,
		sockets.ErrRuleNotFound, sockets.ErrScheduleNotFound,
	}
	answered := map[string]bool{}
	for _, err := range errs {
		p := problemFor(fmt.Errorf("wrapped: %w", err))
		i := slices.IndexFunc(ProblemTypes, func(k ProblemType) bool { return k.Type == p.Type })
		if i < 0 {
			t.Errorf("%v: got type %q, which ProblemTypes lacks", err, p.Type)
			continue
		}
		if k := ProblemTypes[i]; p.Status != k.Status || p.Title != k.Title || p.Detail == "" {
			t.Errorf("%v: got %+v, want status %d and title %q of its row, and a detail", err, p, k.Status, k.Title)
		}
		answered[p.Type] = true
	}
	for _, k := range ProblemTypes {
		if !answered[k.Type] {
			t.Errorf("no error maps to %s", k.Type)
		}
	}
}

// TestInternalErrorIsAProblem: an error the table does not know is a 500
// problem of type internal-error with a generic detail; the cause is not
// in the answer. No route of the API fails this way on purpose, so the
// error handler is called directly.
func TestInternalErrorIsAProblem(t *testing.T) {
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/servers", nil), rec)
	var log syncLog
	errorHandler(slog.New(slog.NewTextHandler(&log, nil)))(errors.New("secret cause"), c)
	if rec.Code != http.StatusInternalServerError || mediaType(rec.Header().Get("Content-Type")) != "application/problem+json" {
		t.Fatalf("got %d %s, want a 500 problem", rec.Code, rec.Header().Get("Content-Type"))
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != typeInternal || strings.Contains(p.Detail, "secret") {
		t.Errorf("got %+v, want type %s and a detail without the cause", p, typeInternal)
	}
	sawProblem(p.Type)
	// The service's own fault: logged at ERROR, with the cause.
	if out := log.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "secret cause") {
		t.Errorf("got log %q, want an ERROR line with the cause", out)
	}
}

// syncLog is a log output that tests read while the service writes.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestClientOutcomesLogBelowError: a 502 (a refused connect) and a 503 (a
// limit reached) are outcomes the user is told of, not faults of the
// service: logged at INFO, never ERROR.
func TestClientOutcomesLogBelowError(t *testing.T) {
	t.Parallel()
	var log syncLog
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := newTestAPI(t, withOptions(func(o *Options) { o.Logger = logger }),
		withConfig(func(c *sockets.Config) { c.MaxServers = 1 }))
	a.call(http.MethodPost, "/clients", dialBody(t, "")).want(t, http.StatusBadGateway)
	a.listen(t)
	a.call(http.MethodPost, "/servers", `{"port":0}`).want(t, http.StatusServiceUnavailable)
	out := log.String()
	for _, want := range []string{`level=INFO msg="answered connect-failed"`, `level=INFO msg="answered limit-reached"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=ERROR") {
		t.Errorf("got an ERROR line for a client's outcome:\n%s", out)
	}
}

// TestShutdownCancelsAConnect: a connect under way when the service shuts
// down (its requests' base context ends) is answered 503 cancelled, not a
// failed connect.
func TestShutdownCancelsAConnect(t *testing.T) {
	t.Parallel()
	dns := fakedns.Start(t)
	dns.Drop("unanswered.test") // the lookup waits until cancelled
	base, shutdown := context.WithCancel(context.Background())
	defer shutdown()
	a := newTestAPI(t, withBaseContext(base), withConfig(func(c *sockets.Config) { c.Resolver = dns.Resolver() }))
	answer := make(chan response, 1)
	go func() {
		res, err := a.tryDo(a.newRequest(http.MethodPost, "/clients", `{"host":"unanswered.test","port":80}`))
		if err != nil {
			res.body = []byte(err.Error())
		}
		answer <- res
	}()
	waitFor(t, testTimeout, func() bool { return dns.Queries("unanswered.test") > 0 })
	shutdown()
	res := <-answer
	if res.Response == nil {
		t.Fatalf("the connect got no answer: %s", res.body)
	}
	if p := res.want(t, http.StatusServiceUnavailable).problem(t); p.Type != problemPrefix+"cancelled" {
		t.Errorf("got %+v, want type %scancelled", p, problemPrefix)
	}
}
