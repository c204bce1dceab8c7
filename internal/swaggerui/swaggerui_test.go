package swaggerui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/api"
	"github.com/sockman/sockman/internal/contract"
	"github.com/sockman/sockman/sockets"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requireBrowserEnv, set to anything but "" or "0", makes a missing chromium
// a failure instead of a skip. .ci/run sets it.
const requireBrowserEnv = "SOCKMAN_REQUIRE_BROWSER"

const (
	// sessionTimeout bounds the whole browser session: the browser is
	// killed when it ends. A run takes about 10 s on an idle machine with
	// two cores and 20 to 25 s on one that runs other tests as well.
	sessionTimeout = 90 * time.Second
	// stepTimeout bounds one step, so that a step that hangs fails with its
	// name while the browser can still take a screenshot of the page.
	stepTimeout = 20 * time.Second
)

// TestSwaggerUITryItOut does in Swagger UI what a user does: open a server,
// connect a client to it, send from the client, read on the accepted socket,
// close all three, with "Try it out", typing and "Execute" only, and checks
// the status and body that the page shows for each answer. Every request the
// page sends to the API, and every answer, is also checked against
// openapi.yaml.
func TestSwaggerUITryItOut(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; -short skips it")
	}
	chromium := chromiumPath(t)
	base, reg := startApp(t)
	p := openBrowser(t, chromium, base)

	// / redirects to Swagger UI, which loads /openapi.yaml.
	p.do("open / and wait for Swagger UI to render the operations",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#operations-servers-createServer")),
	)
	if loc := run(p, "read the page's URL", chromedp.Location()); loc != base+"/swagger/index.html" {
		t.Errorf("/ led to %s, want %s/swagger/index.html", loc, base)
	}
	if url := run(p, "read the definition's URL", chromedp.Text(chromedp.CSS(".info .url"))); strings.TrimSpace(url) != "/openapi.yaml" {
		t.Errorf("Swagger UI shows the definition %q, want /openapi.yaml", url)
	}
	if errs := run(p, "look for errors in the definition", chromedp.Evaluate[string](`(document.querySelector(".errors-wrapper") || {}).innerText || ""`)); errs != "" {
		t.Errorf("Swagger UI reports errors in openapi.yaml:\n%s", errs)
	}
	checkAuthorizeDialog(p)

	// The groups come in the order a user works in: the global tags list.
	tags := run(p, "read the order of the groups", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(".opblock-tag-section .opblock-tag")).map(e => e.getAttribute("data-tag"))`))
	if want := []string{"service", "servers", "clients", "sockets", "events", "rules", "schedules"}; !slices.Equal(tags, want) {
		t.Errorf("Swagger UI shows the groups %q, want %q", tags, want)
	}

	// POST /servers: listen on an ephemeral port. Try it out fills in an
	// ephemeral port, so that executing it twice does not conflict.
	createServer := p.tryOut("servers", "createServer", "POST /servers")
	prefilled := run(p, "POST /servers: read the body Try it out fills in", chromedp.Value(createServer.css("textarea.body-param__text")))
	var prefill struct{ Port *int }
	if err := json.Unmarshal([]byte(prefilled), &prefill); err != nil || prefill.Port == nil || *prefill.Port != 0 {
		t.Errorf("POST /servers: Try it out fills in %s, want port 0 (%v)", prefilled, err)
	}
	createServer.body(`{"port":0}`)
	var srv api.Server
	createServer.execute("/servers", http.StatusCreated, &srv)
	createServer.collapse()
	host, port, err := net.SplitHostPort(srv.Address)
	if err != nil || host != "127.0.0.1" || port == "0" || srv.State != "listening" {
		t.Fatalf("POST /servers showed server %+v, want a listening server on 127.0.0.1 and a real port", srv)
	}

	// POST /clients: connect to it.
	createClient := p.tryOut("clients", "createClient", "POST /clients")
	createClient.body(fmt.Sprintf(`{"host":%q,"port":%s}`, host, port))
	var client api.Socket
	createClient.execute("/clients", http.StatusCreated, &client)
	createClient.collapse()
	if client.Kind != "client" || client.State != "connected" || client.RemoteAddress != srv.Address {
		t.Fatalf("POST /clients showed socket %+v, want a connected client socket to %s", client, srv.Address)
	}

	// POST /sockets/{id}/messages: send from the client.
	const message = "hello from Swagger UI"
	send := p.tryOut("sockets", "send", "POST /sockets/{id}/messages")
	send.param("id", client.ID)
	send.body(fmt.Sprintf(`{"data":%q}`, message))
	var sent api.SendResult
	// frame is a boolean with a default: the page sends it as shown.
	send.execute("/sockets/"+client.ID+"/messages?frame=true", http.StatusOK, &sent)
	send.collapse()
	if sent.Bytes != int64(len(message)) {
		t.Fatalf("POST /sockets/%s/messages showed %d bytes sent, want %d", client.ID, sent.Bytes, len(message))
	}

	// GET /sockets?server_id=: find the socket the server accepted. The
	// accept loop may register it a moment after the client's connect
	// returned: like a user, execute again until it is listed.
	listSockets := p.tryOut("sockets", "listSockets", "GET /sockets")
	listSockets.param("server_id", srv.ID)
	var accepted api.Socket
	for {
		var list api.SocketList
		listSockets.execute("/sockets?server_id="+srv.ID, http.StatusOK, &list)
		if len(list.Sockets) > 0 {
			if len(list.Sockets) != 1 {
				t.Fatalf("GET /sockets?server_id=%s showed %d sockets, want 1: %+v", srv.ID, len(list.Sockets), list.Sockets)
			}
			accepted = list.Sockets[0]
			break
		}
		if p.ctx.Err() != nil {
			t.Fatalf("GET /sockets?server_id=%s showed no socket until the session ended", srv.ID)
		}
	}
	listSockets.collapse()
	if accepted.Kind != "accepted" || accepted.ServerID != srv.ID || accepted.RemoteAddress != client.LocalAddress {
		t.Fatalf("GET /sockets?server_id=%s showed %+v, want the socket accepted from %s", srv.ID, accepted, client.LocalAddress)
	}

	// GET /sockets/{id}/messages: read the message on the accepted socket.
	read := p.tryOut("sockets", "read", "GET /sockets/{id}/messages")
	read.param("id", accepted.ID)
	read.param("wait", "5s")
	var got api.MessageList
	read.execute("/sockets/"+accepted.ID+"/messages?wait=5s&encoding=auto", http.StatusOK, &got)
	read.collapse()
	// TCP keeps no write boundaries: the bytes may come as more than one
	// message, in practice never for so few on loopback.
	var data strings.Builder
	for _, m := range got.Messages {
		if m.Encoding != "utf8" {
			t.Errorf("GET /sockets/%s/messages showed message %d in %s, want utf8", accepted.ID, m.Seq, m.Encoding)
		}
		data.WriteString(m.Data)
	}
	if got.SocketID != accepted.ID || len(got.Messages) == 0 || data.String() != message || got.Messages[0].Seq != 1 || got.Cursor != uint64(len(got.Messages)) {
		t.Fatalf("GET /sockets/%s/messages?wait=5s showed %+v, want %q from seq 1, and the last seq as cursor", accepted.ID, got, message)
	}

	// DELETE both sockets, then the server.
	deleteSocket := p.tryOut("sockets", "deleteSocket", "DELETE /sockets/{id}")
	for _, id := range []string{client.ID, accepted.ID} {
		deleteSocket.param("id", id)
		deleteSocket.execute("/sockets/"+id+"?reset=false", http.StatusNoContent, nil)
	}
	deleteSocket.collapse()
	deleteServer := p.tryOut("servers", "deleteServer", "DELETE /servers/{id}")
	deleteServer.param("id", srv.ID)
	deleteServer.execute("/servers/"+srv.ID+"?close_sockets=false", http.StatusNoContent, nil)

	if n, m := len(reg.Servers()), len(reg.Sockets(sockets.SocketFilter{})); n != 0 || m != 0 {
		t.Errorf("after the deletes the registry holds %d servers and %d sockets, want none", n, m)
	}
	// The page did all of this under sockman's Content-Security-Policy,
	// which refused nothing it needs.
	if v := run(p, "read the policy violations", chromedp.Evaluate[string](`JSON.stringify(window.__cspViolations || ["the recorder did not run"])`)); v != "[]" {
		t.Errorf("the Content-Security-Policy refused what the page needs: %s", v)
	}
}

// recordViolations is run in every document before its own scripts: it
// keeps the Content-Security-Policy violations for the test to read.
const recordViolations = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e =>
	window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`

// checkAuthorizeDialog opens Swagger UI's Authorize dialog and checks that it
// offers the bearer scheme of openapi.yaml, then closes it.
func checkAuthorizeDialog(p *page) {
	p.t.Helper()
	p.do("open the Authorize dialog",
		chromedp.Click(chromedp.CSS(".auth-wrapper .btn.authorize")),
		chromedp.WaitVisible(chromedp.CSS(".modal-ux .auth-container")),
	)
	text := run(p, "read the Authorize dialog", chromedp.Text(chromedp.CSS(".modal-ux .auth-container")))
	for _, want := range []string{"BearerAuth", "http, Bearer", "--token"} {
		if !strings.Contains(text, want) {
			p.t.Errorf("the Authorize dialog does not show %q:\n%s", want, text)
		}
	}
	p.do("close the Authorize dialog",
		chromedp.Click(chromedp.CSS(".modal-ux .close-modal")),
		chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")),
	)
}

// chromiumPath returns the chromium to drive. Without one the test skips,
// or fails when requireBrowserEnv says the browser is required.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("Swagger UI browser test: no chromium found (%v); install Debian's chromium (apt-get install chromium) to run it", err)
	if v := os.Getenv(requireBrowserEnv); v != "" && v != "0" {
		t.Fatalf("%s; %s=%s makes this test required", msg, requireBrowserEnv, v)
	}
	t.Skip(msg)
	return ""
}

// startApp serves the real API on loopback, as sockman serve does, and
// returns its base URL and registry. Requests to the API and their answers
// are checked against openapi.yaml; a mismatch fails the test.
func startApp(t *testing.T) (string, *sockets.Registry) {
	t.Helper()
	reg := sockets.New(sockets.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	e := api.New(reg, api.Options{OpenAPI: sockman.OpenAPI})

	v, err := contract.New(sockman.OpenAPI)
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	// Swagger UI's files and the browser's favicon request are not in the
	// document; /openapi.yaml is.
	v.Ignore("/swagger/", "/favicon.ico")
	checked := v.Middleware(func(err error) {
		t.Errorf("Swagger UI's exchange does not match openapi.yaml: %v", err)
	})(e)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" { // the redirect to Swagger UI
			e.ServeHTTP(w, r)
			return
		}
		checked.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, reg
}

// page is the browser tab that shows Swagger UI.
type page struct {
	t    *testing.T
	ctx  context.Context // the tab; ends with the session
	base string          // the API's URL
}

// openBrowser starts chromium, headless, with a fresh profile, and returns
// its tab. The browser is closed and waited for when the test ends.
func openBrowser(t *testing.T, chromium, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1024),
	)
	sessionCtx, cancelSession := context.WithTimeout(context.Background(), sessionTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(sessionCtx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	// Cleanups run last in, first out: close the tab and the browser, wait
	// for the browser process, then release the session's timer.
	t.Cleanup(cancelSession)
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelTab)

	// The first action starts the browser and binds it to the context it
	// gets: give it the tab's own context, not a step's shorter one.
	start := time.Now()
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	t.Logf("started %s (%v)", chromium, time.Since(start).Round(time.Millisecond))
	p := &page{t: t, ctx: tabCtx, base: base}
	p.do("record policy violations", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: recordViolations})
		return chromedp.Void{}, err
	})
	return p
}

// do runs actions as one step, within stepTimeout. On failure it saves what
// the page shows and ends the test.
func (p *page) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail(step, err)
	}
	p.t.Logf("%s (%v)", step, time.Since(start).Round(time.Millisecond))
}

// run runs an action that returns a value as one step, as page.do does.
func run[T any](p *page, step string, action chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		p.fail(step, err)
	}
	return v
}

// fail saves a screenshot and the HTML of the page in the test's artifact
// directory and ends the test.
func (p *page) fail(step string, err error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	dir := p.t.ArtifactDir()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "page.png"), png, 0o644)
	}
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "page.html"), []byte(html), 0o644)
	}
	p.t.Fatalf("%s: %v\n(the page as it was is in %s; go test -artifacts keeps it)", step, err, dir)
}

// operation is one operation of the page, after "Try it out".
type operation struct {
	p        *page
	sel      string // CSS selector of its block, #operations-<tag>-<operationId>
	name     string // method and path, for messages
	answered bool   // the page shows the answer to an earlier Execute
}

// tryOut expands an operation and clicks its "Try it out".
func (p *page) tryOut(tag, operationID, name string) *operation {
	p.t.Helper()
	op := &operation{p: p, sel: "#operations-" + tag + "-" + operationID, name: name}
	p.do(name+": expand and click Try it out",
		chromedp.Click(op.css(".opblock-summary-control")),
		chromedp.Click(op.css(".try-out__btn")),
		chromedp.WaitVisible(op.css(".execute")),
	)
	return op
}

func (op *operation) css(sel string) chromedp.CSS {
	return chromedp.CSS(op.sel + " " + sel)
}

// param types value into the input of a parameter.
func (op *operation) param(name, value string) {
	op.p.t.Helper()
	op.fill(fmt.Sprintf(`tr[data-param-name=%q] input`, name), value)
}

// body types a request body into the body editor.
func (op *operation) body(value string) {
	op.p.t.Helper()
	op.fill("textarea.body-param__text", value)
}

// fill replaces the text of a field as a user does: click it, select all
// with Ctrl+A, type. Swagger UI keeps field values in React state, which
// only sees real input events; setting the DOM value would not reach it.
func (op *operation) fill(field, value string) {
	op.p.t.Helper()
	sel := op.css(field)
	op.p.do(fmt.Sprintf("%s: type %s into %s", op.name, value, field),
		chromedp.Click(sel),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl), selectAllCommand),
		chromedp.SendKeys(sel, value),
	)
	if got := run(op.p, op.name+": read "+field, chromedp.Value(sel)); got != value {
		op.p.t.Fatalf("%s: %s holds %q after typing, want %q", op.name, field, got, value)
	}
}

// selectAllCommand makes the key down of Ctrl+A run the editing command
// selectAll, which the browser binds to Ctrl+A only on some platforms.
func selectAllCommand(k *input.DispatchKeyEventParams) {
	if k.Type == input.DispatchKeyEventTypeKeyDown || k.Type == input.DispatchKeyEventTypeRawKeyDown {
		k.Commands = []string{"selectAll"}
	}
}

// execute clicks Execute and waits for the answer the page shows under
// "Server response". It checks the request URL shown (path and query, as
// wantRequest) and the status; when out is not nil it decodes the response
// body shown into out.
func (op *operation) execute(wantRequest string, wantStatus int, out any) {
	op.p.t.Helper()
	if op.answered {
		// The page shows the last answer until Clear: clear it, so that
		// the answer read next is the new one.
		op.p.do(op.name+": clear the last answer",
			chromedp.Click(op.css(".btn-clear")),
			chromedp.WaitNotPresent(op.css(".live-responses-table")),
		)
	}
	status := op.css(".live-responses-table tbody .response-col_status")
	op.p.do(op.name+": Execute",
		chromedp.Click(op.css(".execute")),
		chromedp.WaitVisible(status),
	)
	op.answered = true

	url := run(op.p, op.name+": read the request URL", chromedp.Text(op.css(".request-url pre")))
	if got := strings.TrimPrefix(strings.TrimSpace(url), op.p.base); got != wantRequest {
		op.p.t.Errorf("%s: the page sent %s, want %s", op.name, got, wantRequest)
	}
	shown := strings.TrimSpace(run(op.p, op.name+": read the status", chromedp.Text(status)))
	code, err := strconv.Atoi(strings.Fields(shown + " x")[0])
	if err != nil || code != wantStatus {
		body, _ := op.responseBody()
		op.p.t.Fatalf("%s: the page shows status %q, want %d; response body:\n%s", op.name, shown, wantStatus, body)
	}
	if strings.Contains(shown, "Undocumented") {
		op.p.t.Errorf("%s: the page marks status %d as undocumented", op.name, code)
	}
	if out == nil {
		return
	}
	body, err := op.responseBody()
	if err != nil {
		op.p.fail(op.name+": read the response body", err)
	}
	if err := json.Unmarshal([]byte(body), out); err != nil {
		op.p.t.Fatalf("%s: the response body shown is not the JSON wanted (%v):\n%s", op.name, err, body)
	}
}

// collapse closes the operation, as a user does once done with it. It keeps
// the page short, and so quick to render.
func (op *operation) collapse() {
	op.p.t.Helper()
	op.p.do(op.name+": collapse",
		chromedp.Click(op.css(".opblock-summary-control")),
		chromedp.WaitNotPresent(op.css(".opblock-body")),
	)
}

// responseBody returns the response body the page shows for the last answer.
func (op *operation) responseBody() (string, error) {
	ctx, cancel := context.WithTimeout(op.p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Text(op.css(".live-responses-table .response-col_description .highlight-code pre")))
}
