package main

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Accounts of the demo, as services/ctl/demo.go registers them.
const (
	prod      = "111111111111"
	staging   = "222222222222"
	analytics = "333333333333"
	web       = "8f3c2a1e-4b5d-4c6e-9f70-112233445566"
	ml        = "acme-ml-prod"
	globex    = "999999999999"
)

// lineAmounts maps "kind account for_month service" to each line's amount.
func lineAmounts(lines []*billingv1.InvoiceLine) map[string]string {
	out := make(map[string]string)
	for _, l := range lines {
		key := strings.TrimPrefix(l.GetKind().String(), "LINE_KIND_") + " " + l.GetAccountId() + " " + l.GetForMonth()
		if l.GetService() != "" {
			key += " " + l.GetService()
		}
		out[key] = l.GetAmount().GetAmount()
	}
	return out
}

// TestDemo checks the demo's documents against figures derived by hand
// from its data (services/ctl/demo.go), by the rules of docs/architecture.md ("Rounding" to "Documents").
//
// January, acme. Charges: prod 300.00 RI fee - 20.00 credit = 280.00;
// staging 120.1234 + 129.8766 = 250.00; analytics 180.00 + 20.00 = 200.00;
// web 180.00 + 20.00 = 200.00; ml 100.00. The RI's benefits: staging
// 150.00, analytics 100.00, globex 50.00, so prod is credited 300.00.
// Totals: prod -20.00, staging 400.00, analytics 300.00, web 200.00,
// ml 100.00. R = 20.00 spread over 1000.00 in proportion: staging 8.00,
// analytics 6.00, web 4.00, ml 2.00, all exact; prod +20.00.
// BAN-1001 (cc-eng: prod, staging, web): 280 + 250 + 200 - 300 + 150 + 20
// - 8 - 4 = 588.00. BAN-1002 (cc-data: analytics, ml): 200 + 100 + 100 - 6
// - 2 = 392.00. globex: 75.00 + 50.00 = 125.00.
//
// February at its close: BAN-1001 60 + 210 + 170 = 440.00; BAN-1002 150.00
// + (60.0025 + 30.0025 = 90.005, rounded half away from zero) 90.01 =
// 240.01; globex 80.00. After the close: web's late Storage 12.50, and
// AWS's reconciliation of staging's EC2 at 215.00 (+5.00): the vendor view
// of February is 440.00 + 240.01 + 17.50 = 697.51, and they are updates on
// March's invoice: BAN-1001 65 + 220 + 175 + 5.00 + 12.50 = 477.50;
// BAN-1002 155 + 95 = 250.00; globex 90.00. The sandbox's 7.50 in March
// has no provider: an exception, on no invoice.
func TestDemo(t *testing.T) {
	l := demoLedger(t)
	ctx := t.Context()

	totals := map[string]string{}
	for _, ban := range []string{"BAN-1001", "BAN-1002", "BAN-2001"} {
		resp, err := listInvoices(l.svc, ctx, &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: "2025-01", ToMonth: "2025-03"})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.GetInvoices() {
			if s.GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED {
				t.Errorf("%s %s is %s", ban, s.GetMonth(), s.GetStatus())
			}
			totals[ban+" "+s.GetMonth()] = s.GetTotal().GetAmount()
		}
	}
	wantTotals := map[string]string{
		"BAN-1001 2025-01": "588.00", "BAN-1001 2025-02": "440.00", "BAN-1001 2025-03": "477.50",
		"BAN-1002 2025-01": "392.00", "BAN-1002 2025-02": "240.01", "BAN-1002 2025-03": "250.00",
		"BAN-2001 2025-01": "125.00", "BAN-2001 2025-02": "80.00", "BAN-2001 2025-03": "90.00",
	}
	if !maps.Equal(totals, wantTotals) {
		t.Errorf("invoice totals %v, want %v", totals, wantTotals)
	}

	invoice := func(ban, month string) *billingv1.Invoice {
		t.Helper()
		resp, err := getInvoice(l.svc, ctx, &billingv1.GetInvoiceRequest{Ban: ban, Month: month})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetInvoice()
	}
	for _, c := range []struct {
		ban, month string
		want       map[string]string
	}{
		{"BAN-1001", "2025-01", map[string]string{
			"CHARGES " + prod + " 2025-01": "280.00", "CHARGES " + staging + " 2025-01": "250.00", "CHARGES " + web + " 2025-01": "200.00",
			"INTER_CUSTOMER_ADJUSTMENT " + prod + " 2025-01": "-300.00", "INTER_CUSTOMER_ADJUSTMENT " + staging + " 2025-01": "150.00",
			"INTRA_ORG_ADJUSTMENT " + prod + " 2025-01": "20.00", "INTRA_ORG_ADJUSTMENT " + staging + " 2025-01": "-8.00",
			"INTRA_ORG_ADJUSTMENT " + web + " 2025-01": "-4.00",
		}},
		{"BAN-1002", "2025-01", map[string]string{
			"CHARGES " + analytics + " 2025-01": "200.00", "CHARGES " + ml + " 2025-01": "100.00",
			"INTER_CUSTOMER_ADJUSTMENT " + analytics + " 2025-01": "100.00",
			"INTRA_ORG_ADJUSTMENT " + analytics + " 2025-01":      "-6.00", "INTRA_ORG_ADJUSTMENT " + ml + " 2025-01": "-2.00",
		}},
		{"BAN-2001", "2025-01", map[string]string{
			"CHARGES " + globex + " 2025-01": "75.00", "INTER_CUSTOMER_ADJUSTMENT " + globex + " 2025-01": "50.00",
		}},
		{"BAN-1002", "2025-02", map[string]string{"CHARGES " + analytics + " 2025-02": "150.00", "CHARGES " + ml + " 2025-02": "90.01"}},
		{"BAN-1001", "2025-03", map[string]string{
			"CHARGES " + prod + " 2025-03": "65.00", "CHARGES " + staging + " 2025-03": "220.00", "CHARGES " + web + " 2025-03": "175.00",
			"PREVIOUS_MONTH_UPDATE " + staging + " 2025-02 Amazon EC2": "5.00", "PREVIOUS_MONTH_UPDATE " + web + " 2025-02 Storage": "12.50",
		}},
	} {
		if got := lineAmounts(invoice(c.ban, c.month).GetLines()); !maps.Equal(got, c.want) {
			t.Errorf("%s %s lines %v, want %v", c.ban, c.month, got, c.want)
		}
	}

	vendor, err := getUsageMonth(l.svc, ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2025-02", View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE})
	if err != nil {
		t.Fatal(err)
	}
	if got := vendor.GetMonth().GetTotal().GetAmount(); got != "697.51" {
		t.Errorf("vendor view of 2025-02 totals %s, want 697.51", got)
	}
	// Conservation: February's lines on all invoices so far (its own and
	// March's updates) add up to V(February, C_March), which after the
	// finalization is what the vendor charged for February.
	var febLines []string
	for _, ban := range []string{"BAN-1001", "BAN-1002"} {
		for _, month := range []string{"2025-02", "2025-03"} {
			for _, line := range invoice(ban, month).GetLines() {
				if line.GetForMonth() == "2025-02" {
					febLines = append(febLines, line.GetAmount().GetAmount())
				}
			}
		}
	}
	if got := sumDecimals(t, febLines...); got != "697.51" {
		t.Errorf("February's invoice lines sum to %s, want the vendor's 697.51", got)
	}

	dash, err := l.svc.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: "acme", FromMonth: "2025-01", ToMonth: "2025-03"})
	if err != nil {
		t.Fatal(err)
	}
	dashCC, err := l.svc.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: "acme", CostCenterId: "cc-data", FromMonth: "2025-01", ToMonth: "2025-03"})
	if err != nil {
		t.Fatal(err)
	}
	bars := func(r *billingv1.GetDashboardResponse) []string {
		var out []string
		for _, b := range r.GetBars() {
			out = append(out, b.GetMonth()+" "+b.GetAmount().GetAmount())
		}
		return out
	}
	if got, want := bars(dash), []string{"2025-01 980.00", "2025-02 680.01", "2025-03 727.50"}; !slices.Equal(got, want) {
		t.Errorf("dashboard %v, want %v", got, want)
	}
	if got, want := bars(dashCC), []string{"2025-01 392.00", "2025-02 240.01", "2025-03 250.00"}; !slices.Equal(got, want) {
		t.Errorf("dashboard of cc-data %v, want %v", got, want)
	}

	exc, err := listExceptions(l.svc, ctx, &billingv1.ListExceptionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(exc.GetExceptions()) != 1 || exc.GetExceptions()[0].GetAccountId() != "acme-sandbox" || exc.GetExceptions()[0].GetAmount().GetAmount() != "7.50" ||
		exc.GetExceptions()[0].GetKind() != billingv1.ExceptionKind_EXCEPTION_KIND_UNASSIGNED_USAGE {
		t.Errorf("exceptions %v, want the sandbox's unassigned 7.50", exc.GetExceptions())
	}

	// A second run publishes the same messages: ledgerd takes none of them
	// again, so its log does not grow, and the demo prints the same.
	before := exc.GetPosition()
	first := l.must(t, "demo")
	again := l.must(t, "demo")
	after, err := listExceptions(l.svc, ctx, &billingv1.ListExceptionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if after.GetPosition() != before {
		t.Errorf("running the demo again moved the log from position %d to %d", before, after.GetPosition())
	}
	if first != again {
		t.Errorf("second run printed\n%s\nfirst\n%s", again, first)
	}
}

// sumDecimals adds decimal strings exactly, with the test's own apd
// context: not with the code under test.
func sumDecimals(t *testing.T, amounts ...string) string {
	t.Helper()
	ctx := apd.BaseContext.WithPrecision(50)
	var total apd.Decimal
	for _, a := range amounts {
		d, _, err := apd.NewFromString(a)
		if err != nil {
			t.Fatalf("amount %q: %v", a, err)
		}
		if _, err := ctx.Add(&total, &total, d); err != nil {
			t.Fatal(err)
		}
	}
	return total.Text('f')
}
