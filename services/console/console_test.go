package console_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
	"github.com/ledger-billing/ledger/services/token"
)

// TestAccessPages checks who gets which page: 401 with a sign-in page
// without a token, 403 pages for a role or an organization not the
// caller's, and the sign-in page and assets open.
func TestAccessPages(t *testing.T) {
	r := demoRig(t)
	globexAdmin := r.iss.Token(t, token.OrgAdmin, "globex")
	invoicing := r.iss.Token(t, token.Invoicing)
	for _, tc := range []struct {
		name, tok, path string
		code            int
		// text is in the page's main text.
		text string
	}{
		{"no token", "", "/dashboard?org=acme", 401, "Sign in"},
		{"bad token", "not-a-token", "/dashboard?org=acme", 401, "Sign in"},
		{"invoicing", invoicing, "/", 403, "Not allowed"},
		{"another organization", globexAdmin, "/dashboard?org=acme", 403, "Not allowed"},
		{"another organization's usage", globexAdmin, "/usage?org=acme&month=2025-01", 403, "Not allowed"},
		{"another organization's BAN", globexAdmin, "/invoice?ban=BAN-1001&month=2025-01", 403, "Not allowed"},
		// The same answer as for another's: nothing is learnt of what exists.
		{"an organization of none", globexAdmin, "/dashboard?org=nobody", 403, "Not allowed"},
		{"own organization", globexAdmin, "/dashboard?org=globex", 200, "Billing Dashboard"},
		{"operator, unknown organization", r.operator, "/dashboard?org=nobody", 404, "not a registered organization"},
		{"sign-in page", "", "/signin", 200, "Bearer token"},
		{"bad range", r.operator, "/dashboard?org=acme&months=5", 400, "months"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.fetch(t, tc.tok, tc.path)
			if resp.code != tc.code {
				t.Fatalf("status %d, want %d\n%s", resp.code, tc.code, resp.body)
			}
			if resp.doc == nil {
				t.Fatalf("not an HTML page: %s %q", resp.header.Get("Content-Type"), resp.body)
			}
			main := find(resp.doc, func(n *html.Node) bool { return n.Data == "main" })
			if len(main) != 1 || !strings.Contains(text(main[0]), tc.text) {
				t.Errorf("the page does not say %q:\n%s", tc.text, resp.body)
			}
			if tc.code == 401 && len(find(resp.doc, func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == "/signin" })) == 0 {
				t.Error("a 401 page without a link to the sign-in page")
			}
		})
	}
	t.Run("API clients get the guard's text", func(t *testing.T) {
		resp, err := http.Get(r.base + "/dashboard?org=acme")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

// TestSignIn signs in with a token: the cookie is Secure, HttpOnly and
// SameSite=Strict, and a request with it alone is let in.
func TestSignIn(t *testing.T) {
	r := demoRig(t)
	tok := r.iss.Token(t, token.OrgAdmin, "acme")
	req, _ := http.NewRequest(http.MethodPost, r.base+"/signin", strings.NewReader(url.Values{"token": {tok}, "next": {"/dashboard?org=acme"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard?org=acme" {
		t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	c := cookies[0]
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value != tok {
		t.Errorf("cookie %v: want Secure, HttpOnly, SameSite=Strict", c)
	}
	get, _ := http.NewRequest(http.MethodGet, r.base+"/dashboard?org=acme", nil)
	get.Header.Set("Accept", "text/html")
	get.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	if page := do(t, get); page.code != 200 {
		t.Errorf("with the cookie: status %d", page.code)
	}
	t.Run("no open redirect", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, r.base+"/signin", strings.NewReader(url.Values{"token": {tok}, "next": {"//evil.example/"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Location") != "/" {
			t.Errorf("Location %q", resp.Header.Get("Location"))
		}
	})
}

// TestDashboard checks the chart against GetDashboard: one bar per month,
// each amount the service's, heights in proportion, the open month's
// draft drawn distinctly, each bar a link to its month's usage history.
func TestDashboard(t *testing.T) {
	r := demoRig(t)
	for _, months := range []int{3, 6, 12, 24} {
		t.Run(strconv.Itoa(months), func(t *testing.T) {
			resp := r.fetch(t, r.operator, "/dashboard?org=acme&months="+strconv.Itoa(months))
			if resp.code != 200 {
				t.Fatalf("status %d: %s", resp.code, resp.body)
			}
			bars := find(resp.doc, byClass("rect", "bar"))
			if len(bars) != months {
				t.Fatalf("%d bars, want %d", len(bars), months)
			}
			from, to := attr(bars[0], "data-month"), attr(bars[len(bars)-1], "data-month")
			want, err := r.client.GetDashboard(as(t.Context(), r.operator), &billingv1.GetDashboardRequest{OrgId: "acme", FromMonth: from, ToMonth: to})
			if err != nil {
				t.Fatal(err)
			}
			maxAmount, maxHeight := 0.0, 0.0
			for i, b := range bars {
				w := want.GetBars()[i]
				if attr(b, "data-month") != w.GetMonth() || attr(b, "data-amount") != w.GetAmount().GetAmount() {
					t.Errorf("bar %d: %s %s, want %s %s", i, attr(b, "data-month"), attr(b, "data-amount"), w.GetMonth(), w.GetAmount().GetAmount())
				}
				a, _ := strconv.ParseFloat(w.GetAmount().GetAmount(), 64)
				h, _ := strconv.ParseFloat(attr(b, "height"), 64)
				if a > maxAmount {
					maxAmount, maxHeight = a, h
				}
			}
			for i, b := range bars {
				a, _ := strconv.ParseFloat(attr(b, "data-amount"), 64)
				h, _ := strconv.ParseFloat(attr(b, "height"), 64)
				if want := a / maxAmount * maxHeight; h < want-0.2 || h > want+0.2 {
					t.Errorf("bar %d (%s): height %.1f, want %.1f", i, attr(b, "data-amount"), h, want)
				}
				link := b.Parent
				href, _ := url.Parse(attr(link, "href"))
				if link.Data != "a" || href.Path != "/usage" || href.Query().Get("month") != attr(b, "data-month") || href.Query().Get("org") != "acme" {
					t.Errorf("bar %d leads to %q", i, attr(link, "href"))
				}
			}
			// The demo's open month is the last, its draft.
			if !hasClass(bars[len(bars)-1], "draft") || hasClass(bars[0], "draft") {
				t.Error("the open month's draft is not drawn distinctly, or a closed month is")
			}
			// The range dropdown says what is shown.
			sel := find(resp.doc, func(n *html.Node) bool { return n.Data == "option" && attr(n, "value") == strconv.Itoa(months) })
			if len(sel) != 1 || !hasAttr(sel[0], "selected") {
				t.Error("the dropdown does not show the range")
			}
		})
	}
	t.Run("cost center", func(t *testing.T) {
		resp := r.fetch(t, r.operator, "/dashboard?org=acme&months=3&cost_center=cc-data")
		bars := find(resp.doc, byClass("rect", "bar"))
		want, err := r.client.GetDashboard(as(t.Context(), r.operator), &billingv1.GetDashboardRequest{OrgId: "acme", CostCenterId: "cc-data", FromMonth: attr(bars[0], "data-month"), ToMonth: attr(bars[2], "data-month")})
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range bars {
			if attr(b, "data-amount") != want.GetBars()[i].GetAmount().GetAmount() {
				t.Errorf("bar %d: %s, want %s", i, attr(b, "data-amount"), want.GetBars()[i].GetAmount().GetAmount())
			}
		}
	})
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// TestUsage checks the Usage History against the query service: the
// months and totals, and a month's line items and details, in both
// views, amounts right-aligned.
func TestUsage(t *testing.T) {
	r := demoRig(t)
	for _, tc := range []struct {
		view string
		pv   billingv1.BillingView
	}{
		{"billing", billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE},
		{"vendor", billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE},
	} {
		t.Run(tc.view, func(t *testing.T) {
			resp := r.fetch(t, r.operator, "/usage?org=acme&month=2025-02&view="+tc.view)
			if resp.code != 200 {
				t.Fatalf("status %d: %s", resp.code, resp.body)
			}
			want, err := pages.Client(pages.UsageMonth, billingv1.BillingServiceClient.GetUsageMonth)(r.client, as(t.Context(), r.operator), &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2025-02", View: tc.pv})
			if err != nil {
				t.Fatal(err)
			}
			lines := find(resp.doc, byClass("tbody", "line"))
			if len(lines) != len(want.GetMonth().GetLines()) {
				t.Fatalf("%d lines, want %d", len(lines), len(want.GetMonth().GetLines()))
			}
			postBill := false
			for i, l := range lines {
				wl := want.GetMonth().GetLines()[i]
				amt := find(l, byClass("td", "line-amount"))
				if len(amt) != 1 || text(amt[0]) != wl.GetAmount().GetAmount() || !hasClass(amt[0], "num") {
					t.Errorf("line %d: amount cell %v, want %s", i, amt, wl.GetAmount().GetAmount())
				}
				details := find(l, byClass("tr", "detail"))
				if len(details) != len(wl.GetDetails()) {
					t.Errorf("line %d: %d details, want %d", i, len(details), len(wl.GetDetails()))
				}
				if len(wl.GetDetails()) > 0 && len(find(l, func(n *html.Node) bool { return n.Data == "summary" })) == 0 {
					t.Errorf("line %d has details and no summary to expand them", i)
				}
				postBill = postBill || wl.GetKind() == billingv1.LineKind_LINE_KIND_POST_BILL_UPDATE
			}
			if total := find(resp.doc, byClass("td", "month-total")); len(total) != 1 || text(total[0]) != want.GetMonth().GetTotal().GetAmount() {
				t.Errorf("total %v, want %s", total, want.GetMonth().GetTotal().GetAmount())
			}
			if tc.view == "vendor" && (!postBill || !strings.Contains(resp.body, "Post-Bill Update")) {
				t.Error("the vendor view shows no Post-Bill Update line")
			}
		})
	}
	t.Run("months", func(t *testing.T) {
		resp := r.fetch(t, r.operator, "/usage?org=acme&months=3")
		links := find(resp.doc, byClass("a", "month-link"))
		if len(links) != 3 {
			t.Fatalf("%d months, want 3", len(links))
		}
		for _, a := range links {
			href, _ := url.Parse(attr(a, "href"))
			if href.Query().Get("month") != text(a) || href.Fragment != "month-detail" {
				t.Errorf("month %s links to %s", text(a), attr(a, "href"))
			}
		}
	})
	t.Run("lineage for the auditor, not for an org_admin", func(t *testing.T) {
		aud := r.fetch(t, r.iss.Token(t, token.Auditor), "/usage?org=acme&month=2025-02&lineage=1")
		if len(find(aud.doc, byClass("details", "lineage"))) == 0 {
			t.Error("no lineage for the auditor")
		}
		adm := r.fetch(t, r.iss.Token(t, token.OrgAdmin, "acme"), "/usage?org=acme&month=2025-02&lineage=1")
		if adm.code != 200 || len(find(adm.doc, byClass("details", "lineage"))) != 0 {
			t.Errorf("status %d; lineage shown to an org_admin", adm.code)
		}
	})
}

// TestEscaping checks that what the history says is shown as text: an
// organization named with markup, and a BAN that closes an attribute.
func TestEscaping(t *testing.T) {
	r := demoRig(t)
	for _, path := range []string{"/", "/dashboard?org=evil", "/usage?org=evil"} {
		t.Run(path, func(t *testing.T) {
			resp := r.fetch(t, r.operator, path)
			if resp.code != 200 {
				t.Fatalf("status %d: %s", resp.code, resp.body)
			}
			if strings.Contains(resp.body, "<script>alert") || strings.Contains(resp.body, "<img src=x") || strings.Contains(resp.body, "<b>x</b>") {
				t.Errorf("markup from the history in the page:\n%s", resp.body)
			}
			if scripts := find(resp.doc, func(n *html.Node) bool { return n.Data == "script" && attr(n, "src") != "/static/console.js" }); len(scripts) > 0 {
				t.Errorf("%d script elements of the history's", len(scripts))
			}
			if !strings.Contains(text(resp.doc), hostileName) {
				t.Errorf("the name is not shown as text")
			}
		})
	}
}

// TestOrganizations checks the list: the operator's every organization,
// an org_admin's its own.
func TestOrganizations(t *testing.T) {
	r := demoRig(t)
	orgsOf := func(tok string) []string {
		var ids []string
		for _, row := range find(r.fetch(t, tok, "/").doc, byClass("tr", "org")) {
			ids = append(ids, text(find(row, func(n *html.Node) bool { return n.Data == "th" })[0]))
		}
		return ids
	}
	if got := strings.Join(orgsOf(r.operator), " "); got != "acme evil globex" {
		t.Errorf("operator sees %s", got)
	}
	if got := strings.Join(orgsOf(r.iss.Token(t, token.OrgAdmin, "globex")), " "); got != "globex" {
		t.Errorf("org_admin of globex sees %s", got)
	}
}

// TestInvoice checks the printable invoice and its CSV against GetInvoice.
func TestInvoice(t *testing.T) {
	r := demoRig(t)
	want, err := pages.Client(pages.Invoice, billingv1.BillingServiceClient.GetInvoice)(r.client, as(t.Context(), r.operator), &billingv1.GetInvoiceRequest{Ban: "BAN-1001", Month: "2025-02"})
	if err != nil {
		t.Fatal(err)
	}
	resp := r.fetch(t, r.operator, "/invoice?ban=BAN-1001&month=2025-02")
	if total := find(resp.doc, byClass("td", "invoice-total")); len(total) != 1 || text(total[0]) != want.GetInvoice().GetTotal().GetAmount() {
		t.Errorf("total %v, want %s", total, want.GetInvoice().GetTotal().GetAmount())
	}
	csv := r.fetch(t, r.operator, "/invoice.csv?ban=BAN-1001&month=2025-02")
	rows := strings.Split(strings.TrimSpace(csv.body), "\n")
	if csv.code != 200 || !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") || len(rows) != len(want.GetInvoice().GetLines())+1 {
		t.Fatalf("status %d, %s, %d rows for %d lines", csv.code, csv.header.Get("Content-Type"), len(rows), len(want.GetInvoice().GetLines()))
	}
	for i, l := range want.GetInvoice().GetLines() {
		if !strings.HasSuffix(rows[i+1], ","+l.GetAmount().GetAmount()+",USD") {
			t.Errorf("row %d %q, want amount %s", i+1, rows[i+1], l.GetAmount().GetAmount())
		}
	}
}

// TestOtherPages checks that the adjustments and exceptions pages draw.
func TestOtherPages(t *testing.T) {
	r := demoRig(t)
	for _, path := range []string{"/adjustments?org=acme&month=2025-01", "/exceptions", "/exceptions?org=globex", "/invoices?ban=BAN-1001&months=12"} {
		if resp := r.fetch(t, r.operator, path); resp.code != 200 {
			t.Errorf("%s: status %d: %s", path, resp.code, resp.body)
		}
	}
}
