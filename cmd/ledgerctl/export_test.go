package main

import (
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/testkit"
)

// readExport reads an exported CSV file as its header and rows.
func readExport(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readCSV(t, f)
}

// readCSV reads CSV text as its header and rows.
func readCSV(t *testing.T, r io.Reader) ([]string, [][]string) {
	t.Helper()
	all, err := csv.NewReader(r).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("a CSV file without a header")
	}
	return all[0], all[1:]
}

// TestExportFOCUS exports the demo's March invoice of BAN-1001, which has
// update lines, as FOCUS 1.2 and 1.4 CSV and as Parquet: the columns, the
// InvoiceId, BilledCost summing to the total, the lineage, and
// Correction rows for the updates. Then it imports the export into a
// fresh ledgerd and closes its months: the invoices there add up to the
// same total.
func TestExportFOCUS(t *testing.T) {
	l := demoLedger(t)
	const ban, month = "BAN-1001", "2025-03"
	resp, err := getInvoice(l.svc, t.Context(), &billingv1.GetInvoiceRequest{Ban: ban, Month: month})
	if err != nil {
		t.Fatal(err)
	}
	inv := resp.GetInvoice()
	updates := 0
	for _, line := range inv.GetLines() {
		if line.GetKind() == billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE {
			updates += max(len(line.GetDetails()), 1)
		}
	}
	if updates == 0 {
		t.Fatal("the demo's March invoice has no update lines: the test needs one")
	}
	dir := t.TempDir()

	for _, version := range []string{"1.2", "1.4"} {
		t.Run("csv "+version, func(t *testing.T) {
			path := filepath.Join(dir, "inv-"+version+".csv")
			r := l.ctl(t.Context(), "export", "focus", "--ban", ban, "--month", month, "--focus-version", version, "-o", path, "--issuer", "Reseller Inc.")
			if r.code != 0 || !strings.Contains(r.stderr, "Wrote "+path) {
				t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
			}
			header, rows := readExport(t, path)
			col := func(name string) int {
				i := slices.Index(header, name)
				if i < 0 {
					t.Fatalf("no column %s in %v", name, header)
				}
				return i
			}
			for _, name := range []string{"InvoiceId", "BillingAccountId", "BillingAccountName", "BillingAccountType", "SubAccountId", "SubAccountName",
				"SubAccountType", "InvoiceIssuerName", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
				"ChargeCategory", "ChargeClass", "ChargeDescription", "ServiceName", "RegionId", "BilledCost", "BillingCurrency", "x_EventIds"} {
				col(name)
			}
			if version == "1.4" {
				col("ServiceProviderName")
				col("HostProviderName")
				col("InvoiceDetailId")
				if slices.Contains(header, "ProviderName") {
					t.Error("1.4 has ProviderName")
				}
			} else {
				col("ProviderName")
				col("PublisherName")
			}
			var costs []string
			corrections := 0
			for _, row := range rows {
				costs = append(costs, row[col("BilledCost")])
				if row[col("InvoiceId")] != ban+"-"+month || row[col("BillingAccountId")] != ban || row[col("InvoiceIssuerName")] != "Reseller Inc." ||
					row[col("BillingCurrency")] != inv.GetCurrency() {
					t.Errorf("row %v", row)
				}
				if row[col("ChargeCategory")] == "Usage" && row[col("x_EventIds")] == "" {
					t.Errorf("a usage row without lineage: %v", row)
				}
				if row[col("ChargeClass")] == "Correction" {
					corrections++
					if row[col("ChargePeriodStart")] >= "2025-03" {
						t.Errorf("a correction charged in March: %v", row)
					}
				}
			}
			if got := sumDecimals(t, costs...); got != inv.GetTotal().GetAmount() {
				t.Errorf("BilledCost sums to %s, the invoice's total is %s", got, inv.GetTotal().GetAmount())
			}
			if corrections != updates {
				t.Errorf("%d Correction rows, want %d (the update lines' details)", corrections, updates)
			}
		})
	}

	t.Run("parquet", func(t *testing.T) {
		path := filepath.Join(dir, "inv.parquet")
		l.must(t, "export", "focus", "--ban", ban, "--month", month, "--format", "parquet", "-o", path)
		type row struct {
			InvoiceID  string `parquet:"InvoiceId,optional"`
			BilledCost string `parquet:"BilledCost,optional"`
			EventIDs   string `parquet:"x_EventIds,optional"`
		}
		rows, err := parquet.ReadFile[row](path)
		if err != nil {
			t.Fatal(err)
		}
		var costs []string
		for _, r := range rows {
			costs = append(costs, r.BilledCost)
			if r.InvoiceID != ban+"-"+month {
				t.Errorf("row %+v", r)
			}
		}
		if got := sumDecimals(t, costs...); got != inv.GetTotal().GetAmount() {
			t.Errorf("BilledCost sums to %s, the invoice's total is %s", got, inv.GetTotal().GetAmount())
		}
	})

	t.Run("vendor view to stdout", func(t *testing.T) {
		const feb = "2025-02"
		um, err := getUsageMonth(l.svc, t.Context(), &billingv1.GetUsageMonthRequest{OrgId: inv.GetOrgId(), Month: feb, View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		postBill := 0
		for _, line := range um.GetMonth().GetLines() {
			if line.GetBan() == ban {
				want = append(want, line.GetAmount().GetAmount())
				if line.GetKind() == billingv1.LineKind_LINE_KIND_POST_BILL_UPDATE {
					postBill++
				}
			}
		}
		out := l.must(t, "export", "focus", "--ban", ban, "--month", feb, "--view", "vendor", "--focus-version", "1.4")
		path := filepath.Join(dir, "vendor.csv")
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		header, rows := readExport(t, path)
		cost, class := slices.Index(header, "BilledCost"), slices.Index(header, "ChargeClass")
		var costs []string
		corrections := 0
		for _, r := range rows {
			costs = append(costs, r[cost])
			if r[class] == "Correction" {
				corrections++
			}
		}
		if got, w := sumDecimals(t, costs...), sumDecimals(t, want...); got != w {
			t.Errorf("the vendor view's rows sum to %s, its lines to %s", got, w)
		}
		if postBill == 0 || corrections < postBill {
			t.Errorf("%d Correction rows for %d post-bill lines", corrections, postBill)
		}
	})

	// Exported and imported into a fresh ledgerd's organization, as CSV
	// (FOCUS 1.2) and as Parquet (1.4), the invoice bills the same total,
	// its corrections in the months they correct.
	for _, form := range []struct{ format, version string }{{"csv", "1.2"}, {"parquet", "1.4"}} {
		t.Run("round trip "+form.format+" "+form.version, func(t *testing.T) {
			path := filepath.Join(dir, "trip-"+form.version+"."+form.format)
			l.must(t, "export", "focus", "--ban", ban, "--month", month, "--format", form.format, "--focus-version", form.version, "-o", path)
			fresh := newLedger(t)
			s := importFOCUS(t, fresh, path, "--org", "copy", "--register")
			if len(s.Months) < 2 || s.FocusVersion != form.version {
				t.Fatalf("summary %+v: want the invoice's month and the months its updates correct", s)
			}
			var totals []string
			for _, m := range s.Months {
				fresh.must(t, "cycle", "close", m)
				totals = append(totals, issuedInvoice(t, fresh, "BAN-copy", m).GetTotal().GetAmount())
			}
			if got := sumDecimals(t, totals...); got != inv.GetTotal().GetAmount() {
				t.Errorf("imported back, the invoices of %v total %s, the exported invoice %s", s.Months, got, inv.GetTotal().GetAmount())
			}
		})
	}

	// Every issued invoice of the demo, in both versions and both forms:
	// the version's columns, its InvoiceId, and BilledCost summing to its
	// total exactly.
	t.Run("every demo invoice", func(t *testing.T) {
		invoices := issuedInvoices(t, l)
		if len(invoices) < 6 {
			t.Fatalf("%d issued invoices in the demo", len(invoices))
		}
		for key, want := range invoices {
			for _, version := range []string{"1.2", "1.4"} {
				for _, format := range []string{"csv", "parquet"} {
					path := filepath.Join(dir, strings.ReplaceAll(key, " ", "-")+"-"+version+"."+format)
					l.must(t, "export", "focus", "--ban", want.GetBan(), "--month", want.GetMonth(), "--format", format, "--focus-version", version, "-o", path)
					header, rows := readExportForm(t, path)
					provider := "ProviderName"
					if version == "1.4" {
						provider = "ServiceProviderName"
					}
					for _, name := range []string{"InvoiceId", "BillingAccountId", "SubAccountId", provider, "ChargePeriodStart", "ChargeClass", "BilledCost", "BillingCurrency", "x_EventIds"} {
						if !slices.Contains(header, name) {
							t.Fatalf("%s: no column %s in %v", path, name, header)
						}
					}
					at := func(row []string, name string) string { return row[slices.Index(header, name)] }
					var costs []string
					for _, row := range rows {
						costs = append(costs, at(row, "BilledCost"))
						if at(row, "InvoiceId") != want.GetBan()+"-"+want.GetMonth() {
							t.Errorf("%s: row %v", path, row)
						}
					}
					if got := sumDecimals(t, costs...); got != want.GetTotal().GetAmount() {
						t.Errorf("%s: BilledCost sums to %s, the invoice's total is %s", path, got, want.GetTotal().GetAmount())
					}
				}
			}
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"--ban", ban, "--month", month, "--focus-version", "1.0"},
			{"--ban", ban, "--month", month, "--format", "xlsx"},
			{"--month", month},
		} {
			if r := l.ctl(t.Context(), append([]string{"export", "focus"}, args...)...); r.code != 2 {
				t.Errorf("%v: exit %d, stderr %s", args, r.code, r.stderr)
			}
		}
	})
}

// TestImportFOCUSForms imports the shared sample as gzip-compressed CSV
// and as Parquet, each into its own ledgerd: the same messages as the CSV
// (the same event_ids), and the same totals.
func TestImportFOCUSForms(t *testing.T) {
	sample := filepath.Join(moduleRoot(t), "..", "shared", "data", "focus_sample.csv")
	if _, err := os.Stat(sample); err != nil {
		t.Skipf("FOCUS sample absent (%v): this test reads ../shared/data/focus_sample.csv from the repository root", err)
	}
	dir := t.TempDir()
	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, "sample.csv.gz")
	f, err := os.Create(gz)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write(b)
	zw.Close()
	f.Close()

	header, rows := readExport(t, sample)
	pq := writeParquetStrings(t, filepath.Join(dir, "sample.parquet"), header, rows)

	want := expectedTotals(t, sample)
	var csvIDs []string
	for _, path := range []string{sample, gz, pq} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			l := newLedger(t)
			s := importFOCUS(t, l, path, "--org", "sunbird", "--register")
			if s.Rows != 1000 {
				t.Fatalf("summary %+v", s)
			}
			if csvIDs == nil {
				csvIDs = s.EventIDs
			} else if !slices.Equal(s.EventIDs, csvIDs) {
				t.Errorf("event_ids %v, the CSV's %v", s.EventIDs, csvIDs)
			}
			l.must(t, "cycle", "close", "2024-09")
			got := chargesByAccount(issuedInvoice(t, l, "BAN-sunbird", "2024-09"))
			for a, w := range want {
				if g, ok := got[a]; (ok || w != "0.00") && g != w {
					t.Errorf("account %s: %q, want %s", a, g, w)
				}
			}
		})
	}
}

// TestImportFOCUSVersions imports a generated FOCUS 1.2 file (gzip) and
// then a 1.4 file (Parquet) whose Correction row belongs to the month
// already closed: it is billed as late usage, an update line on the next
// invoice. Damaged files are refused naming where, publishing nothing.
func TestImportFOCUSVersions(t *testing.T) {
	l := newLedger(t)
	dir := t.TempDir()

	// FOCUS 1.2, gzip-compressed, with InvoiceId and its account types.
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"BillingAccountId", "BillingAccountType", "InvoiceId", "SubAccountId", "SubAccountName", "SubAccountType", "ProviderName", "PublisherName",
		"ServiceName", "RegionId", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "BilledCost", "BillingCurrency", "x_Team"})
	want := map[string][]string{}
	for i := range 300 {
		account, cost := "111", "0.25"
		if i%3 == 0 {
			account, cost = "222", "1.10"
		}
		want[account] = append(want[account], cost)
		w.Write([]string{"B-1", "Billing Profile", "INV-2024-09", account, "Account " + account, "Account", "AWS", "AWS",
			"Amazon S3", "us-east-1", fmt.Sprintf("2024-09-%02dT00:00:00Z", 1+i%28), "", "Usage", "", cost, "USD", "team"})
	}
	w.Flush()
	gz := filepath.Join(dir, "v12.csv.gz")
	f, err := os.Create(gz)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte(b.String()))
	zw.Close()
	f.Close()

	s := importFOCUS(t, l, gz, "--org", "v", "--register")
	if s.Rows != 300 || len(s.Lineage) != 1 || !slices.Equal(s.Lineage[0].InvoiceIDs, []string{"INV-2024-09"}) || s.FocusVersion != "1.2" {
		t.Fatalf("summary %+v", s)
	}
	// The history keeps each row's InvoiceId and where it was read: the
	// stored event, read with the official client, says so.
	stored := storedUsage(t, l, s.EventIDs[0])
	if n := len(stored.GetRecords()); n != 300 {
		t.Fatalf("the stored batch has %d records, want 300", n)
	}
	for i, rec := range stored.GetRecords() {
		if want := fmt.Sprintf("v12.csv.gz:%d", i+2); rec.GetInvoiceId() != "INV-2024-09" || rec.GetSource() != want {
			t.Fatalf("stored record %d: invoice_id %q, source %q; want INV-2024-09 and %s", i, rec.GetInvoiceId(), rec.GetSource(), want)
		}
	}
	l.must(t, "cycle", "close", "2024-09")
	got := chargesByAccount(issuedInvoice(t, l, "BAN-v", "2024-09"))
	for account, costs := range want {
		if w := sumDecimals(t, costs...); got[account] != w {
			t.Errorf("2024-09, account %s: %s, want %s", account, got[account], w)
		}
	}

	// FOCUS 1.4 as Parquet: October usage and a Correction of September.
	type row14 struct {
		InvoiceDetailID     string    `parquet:"InvoiceDetailId"`
		SubAccountID        string    `parquet:"SubAccountId"`
		ServiceProviderName string    `parquet:"ServiceProviderName"`
		HostProviderName    string    `parquet:"HostProviderName"`
		ServiceName         string    `parquet:"ServiceName"`
		RegionID            string    `parquet:"RegionId"`
		ChargePeriodStart   time.Time `parquet:"ChargePeriodStart,timestamp(millisecond)"`
		ChargeCategory      string    `parquet:"ChargeCategory"`
		ChargeClass         *string   `parquet:"ChargeClass,optional"`
		BilledCost          float64   `parquet:"BilledCost"`
		BillingCurrency     string    `parquet:"BillingCurrency"`
	}
	correction := "Correction"
	pq := filepath.Join(dir, "v14.parquet")
	if err := parquet.WriteFile(pq, []row14{
		{"d-1", "111", "Amazon Web Services", "AWS", "Amazon S3", "us-east-1", time.Date(2024, 10, 2, 0, 0, 0, 0, time.UTC), "Usage", nil, 4.5, "USD"},
		{"d-2", "111", "Amazon Web Services", "AWS", "Amazon S3", "us-east-1", time.Date(2024, 9, 15, 0, 0, 0, 0, time.UTC), "Usage", &correction, -1.25, "USD"},
	}); err != nil {
		t.Fatal(err)
	}
	s = importFOCUS(t, l, pq, "--org", "v")
	if s.Rows != 2 || s.FocusVersion != "1.4" {
		t.Fatalf("summary %+v", s)
	}
	// The 1.2 file again under another name: its rows have no Id, so its
	// batch has the same event_id (the file's name is no part of it), and
	// records that name another source: a conflict, reported, and nothing
	// billed twice (October's invoice below has no other update).
	renamed := filepath.Join(dir, "v12-again.csv.gz")
	if zb, err := os.ReadFile(gz); err != nil || os.WriteFile(renamed, zb, 0o644) != nil {
		t.Fatal("copy the 1.2 file")
	}
	if r := l.ctl(t.Context(), "import", "focus", renamed, "--org", "v"); r.code != 1 || !strings.Contains(r.stderr, "event_id_conflict") {
		t.Errorf("the 1.2 file renamed: exit %d, stderr %q; want a conflict", r.code, r.stderr)
	}
	if recs := storedUsage(t, l, s.EventIDs[0]).GetRecords(); len(recs) != 2 || recs[1].GetSource() != "v14.parquet:row 2" || recs[1].GetInvoiceId() != "" {
		t.Errorf("stored Parquet records %v: want the second's source v14.parquet:row 2 and no invoice_id", recs)
	}
	l.must(t, "cycle", "close", "2024-10")
	oct := issuedInvoice(t, l, "BAN-v", "2024-10")
	var update, charges string
	for _, line := range oct.GetLines() {
		switch line.GetKind() {
		case billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE:
			update = line.GetForMonth() + " " + line.GetAmount().GetAmount()
		case billingv1.LineKind_LINE_KIND_CHARGES:
			charges = line.GetAmount().GetAmount()
		}
	}
	if update != "2024-09 -1.25" || charges != "4.50" {
		t.Errorf("October: update %q, charges %q; want the correction of 2024-09 as an update of -1.25 and 4.50 of charges", update, charges)
	}

	// FOCUS 1.3 as plain CSV: the provider columns of 1.3 beside
	// ProviderName, November usage.
	b.Reset()
	w = csv.NewWriter(&b)
	w.Write([]string{"BillingAccountId", "InvoiceId", "SubAccountId", "ProviderName", "PublisherName", "ServiceProviderName", "HostProviderName",
		"ServiceName", "RegionId", "ChargePeriodStart", "ChargeCategory", "ChargeClass", "BilledCost", "BillingCurrency"})
	var nov []string
	for i := range 40 {
		cost := fmt.Sprintf("0.%02d", 10+i)
		nov = append(nov, cost)
		w.Write([]string{"B-1", "INV-2024-11", "222", "AWS", "AWS", "Amazon Web Services", "AWS",
			"Amazon EC2", "eu-west-1", fmt.Sprintf("2024-11-%02dT08:00:00Z", 1+i%28), "Usage", "", cost, "USD"})
	}
	w.Flush()
	v13 := filepath.Join(dir, "v13.csv")
	if err := os.WriteFile(v13, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	s = importFOCUS(t, l, v13, "--org", "v")
	if s.Rows != 40 || s.FocusVersion != "1.3" {
		t.Fatalf("summary %+v", s)
	}
	l.must(t, "cycle", "close", "2024-11")
	if got, want := chargesByAccount(issuedInvoice(t, l, "BAN-v", "2024-11"))["222"], sumDecimals(t, nov...); got != want {
		t.Errorf("2024-11, account 222: %s, want %s", got, want)
	}

	// Damaged files publish nothing.
	_, js := testkit.JetStream(t, l.d.NATSURL())
	stream, err := js.Stream(t.Context(), "BILLING_IN")
	if err != nil {
		t.Fatal(err)
	}
	before, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	zb, _ := os.ReadFile(gz)
	truncated := filepath.Join(dir, "truncated.csv.gz")
	os.WriteFile(truncated, zb[:len(zb)/2], 0o644)
	pb, _ := os.ReadFile(pq)
	corrupt := filepath.Join(dir, "corrupt.parquet")
	os.WriteFile(corrupt, pb[:len(pb)-40], 0o644)
	for path, says := range map[string]string{truncated: "truncated", corrupt: "not a Parquet file"} {
		r := l.ctl(t.Context(), "import", "focus", path, "--org", "v")
		if r.code != 1 || !strings.Contains(r.stderr, path) || !strings.Contains(r.stderr, says) || !strings.Contains(r.stderr, "nothing was published") {
			t.Errorf("%s: exit %d, stderr %q", filepath.Base(path), r.code, r.stderr)
		}
	}
	after, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// BILLING_IN is a work queue: ingested messages leave it, so what was
	// published shows in its last sequence, not in its count.
	if after.State.LastSeq != before.State.LastSeq {
		t.Errorf("BILLING_IN went from sequence %d to %d with damaged files", before.State.LastSeq, after.State.LastSeq)
	}
}

// storedUsage reads the UsageReported that ledgerd stored for an event_id,
// from its stream in the store (docs/architecture.md: usage-<event_id>),
// with the store's official client.
func storedUsage(t *testing.T, l *ledger, eventID string) *billingv1.UsageReported {
	t.Helper()
	evs, err := testkit.ReadStream(t.Context(), testkit.Client(t, l.d.EventstoreURL()), "usage-"+eventID, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read stream usage-%s: %d events, %v", eventID, len(evs), err)
	}
	var msg billingv1.UsageReported
	if err := proto.Unmarshal(evs[0].Event.Data, &msg); err != nil {
		t.Fatalf("decode usage-%s: %v", eventID, err)
	}
	return &msg
}

// readExportForm reads an exported file, CSV or Parquet (read with the
// library's own reader, null cells as empty), as its header and rows.
func readExportForm(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	if !strings.HasSuffix(path, ".parquet") {
		return readExport(t, path)
	}
	return readParquet(t, path, func(_ string, v parquet.Value) string { return string(v.ByteArray()) })
}

// readParquet reads a Parquet file with the library's own reader as its
// header and rows, each non-null value written by cell (given its
// column's name), null ones empty.
func readParquet(t *testing.T, path string, cell func(column string, v parquet.Value) string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	for _, p := range pf.Schema().Columns() {
		header = append(header, p[0])
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	var rows [][]string
	buf := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			cells := make([]string, len(header))
			for _, v := range row {
				if !v.IsNull() {
					cells[v.Column()] = cell(header[v.Column()], v)
				}
			}
			rows = append(rows, cells)
		}
		if errors.Is(err, io.EOF) {
			return header, rows
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
