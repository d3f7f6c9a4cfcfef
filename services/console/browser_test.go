package console_test

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
	"github.com/ledger-billing/ledger/services/token"
)

// screenshots is where TestBrowser writes the README's screenshots:
//
//	go test ./services/console -run TestBrowser -screenshots ../../docs/console
var screenshots = flag.String("screenshots", "", "write PNG screenshots of the dashboard and the usage history into this directory")

// browserStepMax bounds each browser step: a page of the console draws in
// milliseconds, a stuck browser must not hold the test for ten minutes.
const browserStepMax = 30 * time.Second

// chromium returns the path of a Chromium or Chrome, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LEDGER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (apt-get install chromium, or set LEDGER_CHROMIUM): the browser tests are skipped")
	return ""
}

// newBrowser starts a headless Chromium for the test. The first call on
// a chromedp context starts the browser, bound to that call's context: it
// is made here, on the test's, and not on a step's bounded one.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900),
	)
	// A start is tried three times: Chromium's first start on a fresh
	// machine (its font cache) has been seen to exit before it listens.
	var err error
	for range 3 {
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		if _, err = chromedp.Call(ctx, network.Enable, network.EnableParams{}); err == nil {
			t.Cleanup(func() { cancel(); cancelAlloc() })
			return ctx
		}
		cancel()
		cancelAlloc()
	}
	t.Fatalf("start Chromium: %v", err)
	return nil
}

// browser starts a headless Chromium whose every request carries tok, as
// an authenticating proxy in front of ledgerd would set it.
func browser(t *testing.T, tok string) context.Context {
	t.Helper()
	ctx := newBrowser(t)
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + tok}}); err != nil {
		t.Fatalf("set the Authorization header: %v", err)
	}
	return ctx
}

// run runs browser steps, each bounded.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for _, a := range steps {
		sctx, cancel := context.WithTimeout(ctx, browserStepMax)
		err := chromedp.Do(sctx, a)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// get runs a browser step that gives a value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStepMax)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// drawnBar is a bar as the browser laid it out.
type drawnBar struct {
	Month  string  `json:"month"`
	Amount string  `json:"amount"`
	Height float64 `json:"height"`
	Draft  bool    `json:"draft"`
}

const barsJS = `Array.from(document.querySelectorAll('#chart rect.bar')).map(r => ({month: r.dataset.month, amount: r.dataset.amount, height: r.getBoundingClientRect().height, draft: r.classList.contains('draft')}))`

// checkBars checks what the browser drew against GetDashboard.
func checkBars(t *testing.T, r *rig, bars []drawnBar, n int) {
	t.Helper()
	if len(bars) != n {
		t.Fatalf("%d bars drawn, want %d", len(bars), n)
	}
	want, err := r.client.GetDashboard(as(t.Context(), r.operator), &billingv1.GetDashboardRequest{OrgId: "acme", FromMonth: bars[0].Month, ToMonth: bars[n-1].Month})
	if err != nil {
		t.Fatal(err)
	}
	maxAmount, maxHeight := 0.0, 0.0
	for i, b := range bars {
		if w := want.GetBars()[i]; b.Month != w.GetMonth() || b.Amount != w.GetAmount().GetAmount() {
			t.Errorf("bar %d: %s %s, want %s %s", i, b.Month, b.Amount, w.GetMonth(), w.GetAmount().GetAmount())
		}
		if a, _ := strconv.ParseFloat(b.Amount, 64); a > maxAmount {
			maxAmount, maxHeight = a, b.Height
		}
	}
	if maxHeight < 50 {
		t.Fatalf("the tallest bar is %.1f px", maxHeight)
	}
	for i, b := range bars {
		a, _ := strconv.ParseFloat(b.Amount, 64)
		// Within a pixel of the proportion, whatever the chart's scale.
		if want := a / maxAmount * maxHeight; b.Height < want-1 || b.Height > want+1 {
			t.Errorf("bar %d (%s): %.1f px high, want %.1f", i, b.Amount, b.Height, want)
		}
	}
	if !bars[n-1].Draft {
		t.Error("the open month is not drawn as a draft")
	}
}

// TestBrowser drives Chromium through the seeds' pages on a real ledgerd
// with the demo's history, as an operator behind an authenticating
// proxy would.
func TestBrowser(t *testing.T) {
	r := demoRig(t)
	ctx := browser(t, r.operator)

	// The dashboard: one bar per month of the default range.
	run(t, ctx, chromedp.Navigate(r.base+"/dashboard?org=acme"), chromedp.WaitReady(chromedp.ID("chart")))
	checkBars(t, r, get(t, ctx, chromedp.Evaluate[[]drawnBar](barsJS)), 6)
	if *screenshots != "" {
		shoot(t, ctx, filepath.Join(*screenshots, "dashboard.png"))
	}

	// Choosing 12 in the dropdown draws 12.
	run(t, ctx,
		// SetValue fires input and change, as a choice does; the page's
		// script submits the form on change.
		chromedp.SetValue(chromedp.ID("months"), "12"),
		chromedp.WaitReady(chromedp.CSS(`option[value="12"][selected]`)))
	checkBars(t, r, get(t, ctx, chromedp.Evaluate[[]drawnBar](barsJS)), 12)

	// Clicking a bar opens its month's usage history.
	run(t, ctx,
		chromedp.Click(chromedp.CSS(`#chart rect[data-month="2025-02"]`)),
		chromedp.WaitVisible(chromedp.ID("month-detail")))
	loc := get(t, ctx, chromedp.Location())
	heading := get(t, ctx, chromedp.Text(chromedp.ID("detail-title")))
	u, err := url.Parse(loc)
	if err != nil || u.Path != "/usage" || u.Query().Get("month") != "2025-02" || heading != "2025-02" {
		t.Fatalf("the bar of 2025-02 led to %s, headed %q", loc, heading)
	}

	// Clicking a month shows its line items, with GetUsageMonth's amounts.
	run(t, ctx,
		chromedp.Click(chromedp.Search(`//a[contains(@class,"month-link")][text()="2025-01"]`)),
		chromedp.WaitVisible(chromedp.Search(`//h2[@id="detail-title"][text()="2025-01"]`)))
	amounts := get(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('td.line-amount')).map(td => td.textContent.trim())`))
	want, err := pages.Client(pages.UsageMonth, billingv1.BillingServiceClient.GetUsageMonth)(r.client, as(t.Context(), r.operator), &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2025-01"})
	if err != nil {
		t.Fatal(err)
	}
	var wantAmounts []string
	for _, l := range want.GetMonth().GetLines() {
		wantAmounts = append(wantAmounts, l.GetAmount().GetAmount())
	}
	if len(wantAmounts) == 0 || strings.Join(amounts, " ") != strings.Join(wantAmounts, " ") {
		t.Errorf("line items %q, GetUsageMonth %q", amounts, wantAmounts)
	}

	// Expanding an item shows its service-by-region details.
	// checkVisibility is false for what a closed details element hides.
	const detailShown = `document.querySelector('details.line-details tr.detail').checkVisibility()`
	before := get(t, ctx, chromedp.Evaluate[bool](detailShown))
	run(t, ctx,
		chromedp.Click(chromedp.CSS(`details.line-details > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`details.line-details[open] tr.detail`)))
	if after := get(t, ctx, chromedp.Evaluate[bool](detailShown)); before || !after {
		t.Errorf("a detail row is visible before expanding: %v, after: %v", before, after)
	}
	if *screenshots != "" {
		shoot(t, ctx, filepath.Join(*screenshots, "usage.png"))
	}

	// The vendor view shows the "Post-Bill Update" lines.
	run(t, ctx,
		chromedp.Navigate(r.base+"/usage?org=acme&month=2025-02"),
		chromedp.Click(chromedp.ID("view-vendor")),
		chromedp.WaitVisible(chromedp.CSS(`tbody.line[data-kind="Post-Bill Update"]`)))
	if loc := get(t, ctx, chromedp.Location()); !strings.Contains(loc, "view=vendor") {
		t.Errorf("the vendor view is at %s", loc)
	}
}

// TestBrowserOtherOrganization checks that an org administrator of one
// organization gets the 403 page for another's.
func TestBrowserOtherOrganization(t *testing.T) {
	r := demoRig(t)
	ctx := browser(t, r.iss.Token(t, token.OrgAdmin, "globex"))
	run(t, ctx, chromedp.Navigate(r.base+"/dashboard?org=globex"))
	own := get(t, ctx, chromedp.Text(chromedp.CSS("h1")))
	run(t, ctx, chromedp.Navigate(r.base+"/dashboard?org=acme"))
	other := get(t, ctx, chromedp.Text(chromedp.CSS("h1")))
	if !strings.HasPrefix(own, "Billing Dashboard") || other != "Not allowed" {
		t.Errorf("own organization headed %q, another's %q", own, other)
	}
}

// shoot writes a screenshot of the whole page.
func shoot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png := get(t, ctx, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", path)
}

// TestBrowserSignIn signs in through the sign-in page, as a person
// without an authenticating proxy would: the token pasted into the form,
// the cookie kept by the browser (Chromium treats http://127.0.0.1 as
// secure, so the Secure cookie is kept there too), and the pages open.
func TestBrowserSignIn(t *testing.T) {
	r := demoRig(t)
	ctx := newBrowser(t)
	run(t, ctx, chromedp.Navigate(r.base+"/dashboard?org=acme"))
	if h := get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h != "Sign in" {
		t.Fatalf("without a token the dashboard is headed %q", h)
	}
	run(t, ctx,
		chromedp.Navigate(r.base+"/signin?next="+url.QueryEscape("/dashboard?org=acme")),
		chromedp.SetValue(chromedp.ID("token"), r.iss.Token(t, token.OrgAdmin, "acme")), // as pasted
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitReady(chromedp.ID("chart")))
	if h := get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); !strings.HasPrefix(h, "Billing Dashboard") {
		t.Errorf("after signing in the page is headed %q", h)
	}
	// Scripts cannot read the token.
	if c := get(t, ctx, chromedp.Evaluate[string](`document.cookie`)); strings.Contains(c, "ledger_token") {
		t.Errorf("document.cookie shows the token: %q", c)
	}
	// Signing out forgets it.
	run(t, ctx, chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitReady(chromedp.ID("token")),
		chromedp.Navigate(r.base+"/dashboard?org=acme"))
	if h := get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h != "Sign in" {
		t.Errorf("after signing out the dashboard is headed %q", h)
	}
}

// TestBrowserWithoutJavaScript uses the pages with JavaScript off: the
// range is chosen with the form's own button, and a month's details
// expand, as HTML alone does it.
func TestBrowserWithoutJavaScript(t *testing.T) {
	r := demoRig(t)
	ctx := browser(t, r.operator)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx,
		chromedp.Navigate(r.base+"/dashboard?org=acme"),
		chromedp.WaitReady(chromedp.ID("chart")),
		chromedp.SetValue(chromedp.ID("months"), "24"),
		chromedp.Click(chromedp.CSS(`form.controls button[type="submit"]`)),
		chromedp.WaitReady(chromedp.CSS(`option[value="24"][selected]`)))
	if bars := get(t, ctx, chromedp.Nodes(chromedp.CSSAll(`#chart rect.bar`))); len(bars) != 24 {
		t.Errorf("%d bars, want 24", len(bars))
	}
	run(t, ctx,
		chromedp.Click(chromedp.CSS(`#chart rect[data-month="2025-03"]`)),
		chromedp.WaitReady(chromedp.Search(`//h2[@id="detail-title"][text()="2025-03"]`)),
		chromedp.Click(chromedp.CSS(`details.line-details > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`details.line-details[open] tr.detail`)))
}
