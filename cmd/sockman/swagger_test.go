package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Swagger UI's Authorize works with --token, in a real browser: the page
// loads without the token, an Execute before Authorize gets 401, and after
// the user types the token into Authorize the same Execute gets 200. The
// browser reaches only the service on 127.0.0.1.
func TestSwaggerUIAuthorizeWithToken(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; -short skips it")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if v := os.Getenv("SOCKMAN_REQUIRE_BROWSER"); v != "" && v != "0" {
			t.Fatalf("no chromium: %v", err)
		}
		t.Skipf("no chromium (%v); apt-get install chromium to run this test", err)
	}
	s := startService(t, []string{"--token", testToken})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1024))
	session, cancelSession := context.WithTimeout(context.Background(), 90*time.Second)
	alloc, cancelAlloc := chromedp.NewExecAllocator(session, opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelSession)
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(name string, sel chromedp.CSS) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return strings.TrimSpace(v)
	}

	const op = "#operations-servers-listServers "
	status := chromedp.CSS(op + ".live-responses-table tbody .response-col_status")
	step("open Swagger UI without the token",
		chromedp.Navigate(s.url+"/swagger/index.html"),
		chromedp.WaitVisible(chromedp.CSS(op)),
		chromedp.Click(chromedp.CSS(op+".opblock-summary-control")),
		chromedp.Click(chromedp.CSS(op+".try-out__btn")),
		chromedp.WaitVisible(chromedp.CSS(op+".execute")),
	)
	step("Execute GET /servers before Authorize",
		chromedp.Click(chromedp.CSS(op+".execute")),
		chromedp.WaitVisible(status),
	)
	if got := text("read the status", status); !strings.HasPrefix(got, "401") {
		t.Fatalf("before Authorize: the page shows %q, want 401", got)
	}

	token := chromedp.CSS(".modal-ux .auth-container input")
	step("Authorize with the token",
		chromedp.Click(chromedp.CSS(".auth-wrapper .btn.authorize")),
		chromedp.WaitVisible(token),
		chromedp.SendKeys(token, testToken),
		chromedp.Click(chromedp.CSS(".modal-ux .auth-btn-wrapper .authorize")),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux button[aria-label="Remove authorization"]`)),
		chromedp.Click(chromedp.CSS(".modal-ux .close-modal")),
		chromedp.WaitNotPresent(chromedp.CSS(".modal-ux")),
	)
	step("Execute GET /servers again",
		chromedp.Click(chromedp.CSS(op+".btn-clear")),
		chromedp.WaitNotPresent(status),
		chromedp.Click(chromedp.CSS(op+".execute")),
		chromedp.WaitVisible(status),
	)
	if got := text("read the status", status); !strings.HasPrefix(got, "200") {
		t.Fatalf("after Authorize: the page shows %q, want 200", got)
	}
	if curl := text("read the curl command", chromedp.CSS(op+".curl-command")); !strings.Contains(curl, "Authorization: Bearer "+testToken) {
		t.Errorf("the curl command shown lacks the bearer header:\n%s", curl)
	}
}
