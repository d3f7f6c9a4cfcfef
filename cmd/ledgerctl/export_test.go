package main

import (
	"compress/gzip"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// readExport reads an exported CSV file as its header and rows.
func readExport(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
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
	resp, err := l.svc.GetInvoice(t.Context(), &billingv1.GetInvoiceRequest{Ban: ban, Month: month})
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

	t.Run("round trip", func(t *testing.T) {
		path := filepath.Join(dir, "inv-1.2.csv")
		if _, err := os.Stat(path); err != nil {
			t.Skip("the CSV export failed")
		}
		fresh := newLedger(t)
		s := importFOCUS(t, fresh, path, "--org", "copy", "--register")
		if len(s.Months) == 0 {
			t.Fatalf("summary %+v", s)
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
	schema := parquet.Group{}
	for _, name := range header {
		schema[name] = parquet.Optional(parquet.String())
	}
	ps := parquet.NewSchema("focus", schema)
	pq := filepath.Join(dir, "sample.parquet")
	pf, err := os.Create(pq)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewWriter(pf, ps)
	for _, r := range rows {
		row := make(parquet.Row, len(header))
		for i, v := range r {
			c, _ := ps.Lookup(header[i])
			if v == "NULL" || v == "" {
				row[c.ColumnIndex] = parquet.NullValue().Level(0, 0, c.ColumnIndex)
			} else {
				row[c.ColumnIndex] = parquet.ByteArrayValue([]byte(v)).Level(0, 1, c.ColumnIndex)
			}
		}
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pf.Close()

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
