package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/testkit"
)

// importSummary is the --json output of import focus.
type importSummary struct {
	FocusVersion           string   `json:"focus_version"`
	Rows                   int      `json:"rows"`
	Batches                int      `json:"batches"`
	EventIDs               []string `json:"event_ids"`
	Months                 []string `json:"months"`
	Accounts               int      `json:"accounts"`
	RegisteredOrganization bool     `json:"registered_organization"`
	RegisteredAccounts     int      `json:"registered_accounts"`
	Lineage                []struct {
		EventID    string   `json:"event_id"`
		FirstRow   int      `json:"first_row"`
		LastRow    int      `json:"last_row"`
		InvoiceIDs []string `json:"invoice_ids"`
	} `json:"lineage"`
}

func importFOCUS(t *testing.T, l *ledger, args ...string) importSummary {
	t.Helper()
	out := l.must(t, append([]string{"--json", "import", "focus"}, args...)...)
	var s importSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("import summary %q: %v", out, err)
	}
	return s
}

// expectedTotals computes, from a FOCUS CSV file and without the code
// under test, each account's billed total (totalsOf).
func expectedTotals(t *testing.T, path string) map[string]string {
	t.Helper()
	header, rows := readExport(t, path)
	return totalsOf(t, header, rows)
}

// totalsOf computes each account's billed total from a FOCUS file's rows
// of one month by docs/architecture.md, "Rounding": the exact sum per
// (account, service, region), rounded half away from zero to cents, then
// summed per account.
func totalsOf(t *testing.T, header []string, rows [][]string) map[string]string {
	t.Helper()
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	exact := apd.BaseContext.WithPrecision(100)
	type key struct{ account, service, region string }
	sums := map[key]*apd.Decimal{}
	for _, row := range rows {
		region := row[col["RegionId"]]
		if region == "NULL" {
			region = ""
		}
		k := key{row[col["SubAccountId"]], row[col["ServiceName"]], region}
		cost, _, err := apd.NewFromString(row[col["BilledCost"]])
		if err != nil {
			t.Fatalf("BilledCost %q: %v", row[col["BilledCost"]], err)
		}
		if sums[k] == nil {
			sums[k] = new(apd.Decimal)
		}
		if _, err := exact.Add(sums[k], sums[k], cost); err != nil {
			t.Fatal(err)
		}
	}
	round := apd.BaseContext.WithPrecision(100)
	round.Rounding = apd.RoundHalfUp // apd's half up is away from zero: it rounds magnitudes
	totals := map[string]*apd.Decimal{}
	for k, s := range sums {
		var cents apd.Decimal
		if _, err := round.Quantize(&cents, s, -2); err != nil {
			t.Fatal(err)
		}
		if totals[k.account] == nil {
			totals[k.account] = apd.New(0, -2)
		}
		if _, err := exact.Add(totals[k.account], totals[k.account], &cents); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]string{}
	for a, d := range totals {
		out[a] = d.Text('f')
	}
	return out
}

// chargesByAccount reads each account's charges line of an invoice.
func chargesByAccount(inv *billingv1.Invoice) map[string]string {
	out := map[string]string{}
	for _, l := range inv.GetLines() {
		if l.GetKind() == billingv1.LineKind_LINE_KIND_CHARGES {
			out[l.GetAccountId()] = l.GetAmount().GetAmount()
		}
	}
	return out
}

// issuedInvoice returns the invoice of ban for month, which must be issued
// already: `cycle close` returns once the projections have applied the
// close, so the next query reads it.
func issuedInvoice(t *testing.T, l *ledger, ban, month string) *billingv1.Invoice {
	t.Helper()
	resp, err := getInvoice(l.svc, t.Context(), &billingv1.GetInvoiceRequest{Ban: ban, Month: month})
	if err != nil {
		t.Fatalf("invoice %s %s right after cycle close: %v", ban, month, err)
	}
	if st := resp.GetInvoice().GetStatus(); st != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED {
		t.Fatalf("invoice %s %s right after cycle close is %s, want ISSUED", ban, month, st)
	}
	return resp.GetInvoice()
}

// TestImportFOCUSSample imports the shared FOCUS sample with --register,
// twice, closes its month and checks every account's total against the
// test's own computation; then imports it a third time and checks that
// nothing more is billed.
func TestImportFOCUSSample(t *testing.T) {
	path := filepath.Join(moduleRoot(t), "..", "shared", "data", "focus_sample.csv")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("FOCUS sample absent (%v): this test reads ../shared/data/focus_sample.csv from the repository root", err)
	}
	l := newLedger(t)
	first := importFOCUS(t, l, path, "--org", "sunbird", "--register")
	if first.Rows != 1000 || first.Batches != 1 || !first.RegisteredOrganization || first.RegisteredAccounts != first.Accounts ||
		!slices.Equal(first.Months, []string{"2024-09"}) {
		t.Fatalf("first import: %+v", first)
	}
	second := importFOCUS(t, l, path, "--org", "sunbird", "--register")
	if !slices.Equal(second.EventIDs, first.EventIDs) {
		t.Fatalf("second import published %v, the first %v: not the same messages", second.EventIDs, first.EventIDs)
	}

	l.must(t, "cycle", "close", "2024-09")
	inv := issuedInvoice(t, l, "BAN-sunbird", "2024-09")
	want := expectedTotals(t, path)
	if len(want) != first.Accounts {
		t.Fatalf("the file has %d accounts, the import says %d", len(want), first.Accounts)
	}
	got := chargesByAccount(inv)
	zero := 0
	for a, w := range want {
		g, ok := got[a]
		if !ok && w == "0.00" {
			// An invoice leaves lines of zero out (docs/architecture.md, "Documents").
			zero++
			continue
		}
		if g != w {
			t.Errorf("account %s: charges %q, want %s", a, g, w)
		}
	}
	if len(got)+zero != len(want) {
		t.Errorf("%d accounts billed and %d of zero, want %d accounts", len(got), zero, len(want))
	}
	// The adjustments within the organization sum to zero, so the invoice
	// is the sum of the accounts' charges.
	if got, want := inv.GetTotal().GetAmount(), sumDecimals(t, slices.Collect(maps.Values(want))...); got != want {
		t.Errorf("invoice total %s, want %s", got, want)
	}
	exc, err := listExceptions(l.svc, t.Context(), &billingv1.ListExceptionsRequest{})
	if err != nil || len(exc.GetExceptions()) != 0 {
		t.Errorf("exceptions %v, %v: every row should be billed", exc.GetExceptions(), err)
	}

	// A third import, after the close. Had it billed anything again, the
	// next invoice would carry it as an update of 2024-09; closing 2024-10
	// makes ledgerd apply everything ingested before, so its empty invoice
	// proves there was nothing.
	importFOCUS(t, l, path, "--org", "sunbird", "--register")
	l.must(t, "cycle", "close", "2024-10")
	if next := issuedInvoice(t, l, "BAN-sunbird", "2024-10"); len(next.GetLines()) != 0 {
		t.Errorf("after importing the file again, 2024-10 bills %v", next.GetLines())
	}
}

// writeFOCUS writes a FOCUS file of rows, each given as the cells of the
// header below.
func writeFOCUS(t *testing.T, rows [][]string) string {
	t.Helper()
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"SubAccountId", "SubAccountName", "ProviderName", "ServiceName", "RegionId", "ChargePeriodStart", "ChargePeriodEnd",
		"ChargeCategory", "BilledCost", "BillingCurrency", "Id", "ConsumedQuantity", "ConsumedUnit", "ChargeDescription", "CommitmentDiscountId"})
	for _, r := range rows {
		w.Write(r)
	}
	w.Flush()
	path := filepath.Join(t.TempDir(), "focus.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImportBatches imports 2,500 rows: three batches. Without --register
// the usage is unassigned (listed as exceptions); importing again with
// --register assigns it, billed once.
func TestImportBatches(t *testing.T) {
	var rows [][]string
	for i := range 2500 {
		// 1,500 rows of 0.001 at AWS (1.50) and 1,000 of 0.000125 at
		// Oracle (0.125, billed 0.13).
		provider, account, cost := "AWS", "100000000001", "0.001"
		if i >= 1500 {
			provider, account, cost = "Oracle", "ocid1.tenancy.oc1..a", "0.000125"
		}
		rows = append(rows, []string{account, "Account " + account, provider, "Compute", "us-east-1",
			fmt.Sprintf("2024-08-%02d 10:00:00", 1+i%28), "NULL", "Usage", cost, "USD", fmt.Sprint(i + 1), "1", "Hours", "compute", "NULL"})
	}
	path := writeFOCUS(t, rows)
	l := newLedger(t)

	r := l.ctl(t.Context(), "import", "focus", path, "--org", "initech")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	wantOut := fmt.Sprintf("Imported %s (FOCUS 1.0): 2,500 rows in 3 batches of UsageReported, for 2 accounts of organization initech.\n"+
		"ledgerd has stored and applied every message. Charges of 2024-08.\n\n"+
		"Next, once the month is over and complete:\n  ledgerctl cycle close 2024-08\n  ledgerctl usage --org initech --month 2024-08\n", filepath.Base(path))
	if r.stdout != wantOut {
		t.Errorf("stdout\n%s\nwant\n%s", r.stdout, wantOut)
	}
	// The import returns once ledgerd has applied every message, so the
	// unassigned usage is listed at once: one exception per account and
	// month, whatever the batches, each with the whole amount held.
	exc, err := listExceptions(l.svc, t.Context(), &billingv1.ListExceptionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]string{}
	for _, e := range exc.GetExceptions() {
		held[e.GetAccountId()] = e.GetAmount().GetAmount()
	}
	if want := map[string]string{"100000000001": "1.50", "ocid1.tenancy.oc1..a": "0.13"}; len(exc.GetExceptions()) != 2 || !maps.Equal(held, want) {
		t.Fatalf("right after the import, %v, want one exception per account: %v", exc.GetExceptions(), want)
	}

	s := importFOCUS(t, l, path, "--org", "initech", "--register", "--ban", "BAN-IT", "--name", "Initech")
	if s.Batches != 3 || s.Rows != 2500 || len(s.EventIDs) != 3 || s.RegisteredAccounts != 2 {
		t.Fatalf("summary %+v", s)
	}
	l.must(t, "cycle", "close", "2024-08")
	inv := issuedInvoice(t, l, "BAN-IT", "2024-08")
	if got, want := chargesByAccount(inv), map[string]string{"100000000001": "1.50", "ocid1.tenancy.oc1..a": "0.13"}; !maps.Equal(got, want) {
		t.Errorf("charges %v, want %v", got, want)
	}
	vendors := map[string]string{}
	for _, line := range inv.GetLines() {
		vendors[line.GetAccountId()] = line.GetVendor()
		if line.GetProviderName() != "Account "+line.GetAccountId() {
			t.Errorf("provider name %q: want the SubAccountName", line.GetProviderName())
		}
	}
	if vendors["ocid1.tenancy.oc1..a"] != "Oracle" || vendors["100000000001"] != "AWS" {
		t.Errorf("vendors %v", vendors)
	}
}

// TestImportBadRows checks that a file with bad rows is refused as a
// whole, naming each row and column, and publishes nothing.
func TestImportBadRows(t *testing.T) {
	good := []string{"1", "n", "AWS", "Amazon EC2", "us-east-1", "2024-09-01 00:00:00", "NULL", "Usage", "1.00", "USD", "1", "1", "Hours", "d", "NULL"}
	badCost := slices.Clone(good)
	badCost[8], badCost[10] = "1,00", "2"
	badDate := slices.Clone(good)
	badDate[5], badDate[10] = "yesterday", "3"
	path := writeFOCUS(t, [][]string{good, badCost, badDate})
	l := newLedger(t)

	r := l.ctl(t.Context(), "import", "focus", path, "--org", "acme", "--register")
	want := "ledgerctl: " + path + ": 2 bad rows; nothing was published\n" +
		"  line 3, column BilledCost: \"1,00\" is not a decimal amount\n" +
		"  line 4, column ChargePeriodStart: \"yesterday\" is not a date-time like 2024-09-01T00:00:00Z or 2024-09-01 00:00:00\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("exit %d\nstderr %q\nwant   %q", r.code, r.stderr, want)
	}
	_, js := testkit.JetStream(t, l.d.NATSURL())
	stream, err := js.Stream(t.Context(), "BILLING_IN")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A work queue drops what ledgerd handled: the last sequence tells
	// whether anything was ever published.
	if info.State.LastSeq != 0 {
		t.Errorf("BILLING_IN reached sequence %d after a refused import: something was published", info.State.LastSeq)
	}

	r = l.ctl(t.Context(), "import", "focus", filepath.Join(t.TempDir(), "missing.csv"), "--org", "acme")
	if r.code != 2 || !strings.Contains(r.stderr, "missing.csv: no such file") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}
