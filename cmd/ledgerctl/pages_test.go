package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
	"github.com/ledger-billing/ledger/services/wire"
)

// The tests read documents whole, as ledgerctl does: a first page alone
// would pass for the document until one grew past wire.PageSizeDefault.
var (
	getInvoice      = pages.Client(pages.Invoice, billingv1.BillingServiceClient.GetInvoice)
	getUsageMonth   = pages.Client(pages.UsageMonth, billingv1.BillingServiceClient.GetUsageMonth)
	listInvoices    = pages.Client(pages.Invoices, billingv1.BillingServiceClient.ListInvoices)
	listExceptions  = pages.Client(pages.Exceptions, billingv1.BillingServiceClient.ListExceptions)
	listAdjustments = pages.Client(pages.Adjustments, billingv1.BillingServiceClient.ListAdjustments)
)

// TestWholeDocuments: ledgerctl shows, prints as JSON and exports an
// invoice of more lines than a page holds by default, whole.
func TestWholeDocuments(t *testing.T) {
	const accounts = wire.PageSizeDefault + 150
	path := filepath.Join(t.TempDir(), "wide.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"SubAccountId", "ProviderName", "ServiceName", "RegionId", "ChargePeriodStart", "ChargeCategory", "BilledCost", "BillingCurrency", "Id"})
	for a := range accounts {
		w.Write([]string{fmt.Sprintf("acct-%04d", a), "AWS", "Amazon EC2", "us-east-1", "2024-09-02 10:00:00", "Usage", "1.00", "USD", fmt.Sprint(a)})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	l := newLedger(t)
	l.must(t, "import", "focus", path, "--org", "wide", "--register")
	l.must(t, "cycle", "close", "2024-09")

	first, err := l.svc.GetInvoice(t.Context(), &billingv1.GetInvoiceRequest{Ban: "BAN-wide", Month: "2024-09"})
	if err != nil || len(first.GetInvoice().GetLines()) != wire.PageSizeDefault || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %d lines, next_page_token %q, %v; want %d and a token (the test needs more than a page)",
			len(first.GetInvoice().GetLines()), first.GetNextPageToken(), err, wire.PageSizeDefault)
	}
	wantTotal := fmt.Sprintf("%d.00", accounts)

	t.Run("text", func(t *testing.T) {
		out := l.must(t, "invoice", "get", "--ban", "BAN-wide", "--month", "2024-09")
		for _, a := range []int{0, wire.PageSizeDefault - 1, wire.PageSizeDefault, accounts - 1} {
			if !strings.Contains(out, fmt.Sprintf("acct-%04d", a)) {
				t.Errorf("invoice get lacks acct-%04d", a)
			}
		}
		n := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "acct-") {
				n++
			}
		}
		if n != accounts || !strings.Contains(out, wantTotal) {
			t.Errorf("invoice get shows %d lines of accounts, want %d, and the total %s", n, accounts, wantTotal)
		}
	})
	t.Run("json", func(t *testing.T) {
		for _, args := range [][]string{
			{"--json", "invoice", "get", "--ban", "BAN-wide", "--month", "2024-09"},
			{"--json", "usage", "--org", "wide", "--month", "2024-09"},
		} {
			out := l.must(t, args...)
			var lines []*billingv1.InvoiceLine
			var total, token string
			if args[1] == "invoice" {
				var resp billingv1.GetInvoiceResponse
				if err := protojson.Unmarshal([]byte(out), &resp); err != nil {
					t.Fatal(err)
				}
				lines, total, token = resp.GetInvoice().GetLines(), resp.GetInvoice().GetTotal().GetAmount(), resp.GetNextPageToken()
			} else {
				var resp billingv1.GetUsageMonthResponse
				if err := protojson.Unmarshal([]byte(out), &resp); err != nil {
					t.Fatal(err)
				}
				lines, total, token = resp.GetMonth().GetLines(), resp.GetMonth().GetTotal().GetAmount(), resp.GetNextPageToken()
			}
			if len(lines) != accounts || total != wantTotal || token != "" {
				t.Errorf("%s: %d lines, total %s, next_page_token %q; want %d, %s, none", strings.Join(args, " "), len(lines), total, token, accounts, wantTotal)
			}
		}
	})
	t.Run("export", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "wide-focus.csv")
		l.must(t, "export", "focus", "--ban", "BAN-wide", "--month", "2024-09", "-o", out)
		if _, rows := readExport(t, out); len(rows) != accounts {
			t.Errorf("the FOCUS export has %d rows, want %d", len(rows), accounts)
		}
	})
}
