package main

import (
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/parquet-go/parquet-go"

	"github.com/ledger-billing/ledger/services/testkit"
)

// The forms a FOCUS file comes in.
var focusFormats = []string{"csv", "gzip", "parquet"}

// matrixCostScale is the scale of the DECIMAL BilledCost column of the
// generated Parquet files: the generator writes at most that many digits.
const matrixCostScale = 6

// generateFOCUS returns a FOCUS file of the given version as a header and
// rows of text: accounts named after prefix at two providers, services
// with and without a region, sub-cent costs, credits, Corrections of the
// same month, rows with and without an Id, and the columns of the
// version, x_ and unknown ones among them.
func generateFOCUS(version, prefix string, n int) ([]string, [][]string) {
	header := []string{"BillingAccountId", "BillingAccountName", "BillingAccountType", "InvoiceId", "SubAccountId", "SubAccountName", "SubAccountType"}
	switch version {
	case "1.2":
		header = append(header, "ProviderName", "PublisherName", "InvoiceIssuerName")
	case "1.3":
		header = append(header, "ProviderName", "PublisherName", "ServiceProviderName", "HostProviderName", "InvoiceIssuerName")
	case "1.4":
		header = append(header, "ServiceProviderName", "HostProviderName", "InvoiceIssuerName", "InvoiceDetailId")
	}
	header = append(header, "ServiceName", "ServiceCategory", "RegionId", "ChargePeriodStart", "ChargePeriodEnd",
		"ChargeCategory", "ChargeClass", "ChargeDescription", "BilledCost", "EffectiveCost", "BillingCurrency",
		"ConsumedQuantity", "ConsumedUnit", "Id", "x_CostCenter", "SomeFutureColumn")
	var rows [][]string
	for i := range n {
		provider, account, service, region := "AWS", prefix+"-aws-1", "Amazon EC2", "us-east-1"
		switch i % 4 {
		case 1:
			account = prefix + "-aws-2"
		case 2:
			service, region = "Amazon S3", "" // a global service
		case 3:
			provider, account, service, region = "Microsoft", prefix+"-azure", "Virtual Machines", "westeurope"
		}
		category, class := "Usage", ""
		// Costs of up to matrixCostScale digits, so that details round.
		cost := fmt.Sprintf("%d.%06d", i%7, (i*7919)%1_000_000)
		switch {
		case i%50 == 7:
			category, cost = "Credit", "-"+cost
		case i%40 == 5:
			class, cost = "Correction", "-0.125" // a Correction of the same month, billed as usage of it
		}
		id := fmt.Sprintf("%s-row-%d", prefix, i)
		if i%5 == 0 {
			id = "" // known by its line (or row) and content
		}
		day := 1 + i%30
		start := time.Date(2024, 9, day, i%24, 0, 0, 0, time.UTC)
		cells := map[string]string{
			"BillingAccountId": "B-" + prefix, "BillingAccountName": "Billing " + prefix, "BillingAccountType": "Billing Profile",
			"InvoiceId": "INV-" + prefix + "-2024-09", "SubAccountId": account, "SubAccountName": "Account " + account, "SubAccountType": "Account",
			"ProviderName": provider, "PublisherName": provider, "ServiceProviderName": provider, "HostProviderName": provider,
			"InvoiceIssuerName": provider, "InvoiceDetailId": fmt.Sprintf("INV-%s-%d", prefix, i+1),
			"ServiceName": service, "ServiceCategory": "Compute", "RegionId": region,
			"ChargePeriodStart": start.Format(time.RFC3339), "ChargePeriodEnd": start.Add(time.Hour).Format(time.RFC3339),
			"ChargeCategory": category, "ChargeClass": class, "ChargeDescription": "generated, row " + fmt.Sprint(i+1),
			"BilledCost": cost, "EffectiveCost": cost, "BillingCurrency": "USD",
			"ConsumedQuantity": "1", "ConsumedUnit": "Hours", "Id": id, "x_CostCenter": "cc-" + fmt.Sprint(i%3), "SomeFutureColumn": "ignored",
		}
		row := make([]string, len(header))
		for j, name := range header {
			row[j] = cells[name]
		}
		rows = append(rows, row)
	}
	return header, rows
}

// writeFOCUSForm writes a header and rows as a file of a form: CSV, gzip-
// compressed CSV, or Parquet whose BilledCost is a DECIMAL and
// ChargePeriodStart a TIMESTAMP, as typed writers make them, the other
// columns strings, empty cells null. It returns the file's path.
func writeFOCUSForm(t *testing.T, dir, name, form string, header []string, rows [][]string) string {
	t.Helper()
	switch form {
	case "csv", "gzip":
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Write(header)
		w.WriteAll(rows)
		if err := w.Error(); err != nil {
			t.Fatal(err)
		}
		if form == "csv" {
			path := filepath.Join(dir, name+".csv")
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}
		path := filepath.Join(dir, name+".csv.gz")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		zw.Write([]byte(b.String()))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	group := parquet.Group{}
	for _, col := range header {
		switch col {
		case "BilledCost":
			group[col] = parquet.Optional(parquet.Decimal(matrixCostScale, 18, parquet.Int64Type))
		case "ChargePeriodStart":
			group[col] = parquet.Optional(parquet.Timestamp(parquet.Millisecond))
		default:
			group[col] = parquet.Optional(parquet.String())
		}
	}
	schema := parquet.NewSchema("focus", group)
	path := filepath.Join(dir, name+".parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw := parquet.NewWriter(f, schema)
	for _, cells := range rows {
		row := make(parquet.Row, len(header))
		for j, v := range cells {
			c, _ := schema.Lookup(header[j])
			i := c.ColumnIndex
			switch {
			case v == "":
				row[i] = parquet.NullValue().Level(0, 0, i)
			case header[j] == "BilledCost":
				d, _, err := apd.NewFromString(v)
				if err != nil {
					t.Fatal(err)
				}
				var unscaled apd.Decimal
				if _, err := apd.BaseContext.WithPrecision(40).Quantize(&unscaled, d, -matrixCostScale); err != nil {
					t.Fatal(err)
				}
				u := unscaled.Coeff.Int64()
				if unscaled.Negative {
					u = -u
				}
				row[i] = parquet.Int64Value(u).Level(0, 1, i)
			case header[j] == "ChargePeriodStart":
				at, err := time.Parse(time.RFC3339, v)
				if err != nil {
					t.Fatal(err)
				}
				row[i] = parquet.Int64Value(at.UnixMilli()).Level(0, 1, i)
			default:
				row[i] = parquet.ByteArrayValue([]byte(v)).Level(0, 1, i)
			}
		}
		if _, err := pw.WriteRows([]parquet.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readFOCUSText reads back a file of any form as text cells, without the
// code under test: CSV through encoding/csv (and compress/gzip), Parquet
// through the library's own reader, a DECIMAL BilledCost at the scale
// the generator wrote.
func readFOCUSText(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		return readCSV(t, zr)
	case strings.HasSuffix(path, ".csv"):
		return readCSV(t, f)
	}
	return readParquet(t, path, func(column string, v parquet.Value) string {
		switch column {
		case "BilledCost":
			return apd.New(v.Int64(), -matrixCostScale).Text('f')
		case "ChargePeriodStart":
			return time.UnixMilli(v.Int64()).UTC().Format(time.RFC3339)
		}
		return string(v.ByteArray())
	})
}

// TestImportFOCUSMatrix imports a generated FOCUS 1.2, 1.3 and 1.4 file in
// every form (CSV, gzip-compressed CSV, Parquet), each into its own
// organization of one ledgerd, closes the month, and checks each
// account's charges and each invoice's total against the sums the test
// computes from the file it wrote.
func TestImportFOCUSMatrix(t *testing.T) {
	l := newLedger(t)
	dir := t.TempDir()
	type imported struct {
		name, path string
		rows       int
	}
	var done []imported
	for _, version := range []string{"1.2", "1.3", "1.4"} {
		for _, form := range focusFormats {
			name := "m" + strings.ReplaceAll(version, ".", "") + form
			t.Run(version+" "+form, func(t *testing.T) {
				// 1,234 rows: two batches, the second partial.
				header, rows := generateFOCUS(version, name, 1234)
				path := writeFOCUSForm(t, dir, name, form, header, rows)
				s := importFOCUS(t, l, path, "--org", name, "--register")
				if s.FocusVersion != version || s.Rows != len(rows) || s.Batches != 2 || s.Accounts != 3 || !slices.Equal(s.Months, []string{"2024-09"}) {
					t.Fatalf("summary %+v", s)
				}
				if len(s.Lineage) != 2 || !slices.Equal(s.Lineage[0].InvoiceIDs, []string{"INV-" + name + "-2024-09"}) {
					t.Errorf("lineage %+v", s.Lineage)
				}
				done = append(done, imported{name, path, len(rows)})
			})
		}
	}
	l.must(t, "cycle", "close", "2024-09")
	for _, im := range done {
		t.Run("totals "+im.name, func(t *testing.T) {
			header, rows := readFOCUSText(t, im.path)
			if len(rows) != im.rows {
				t.Fatalf("read back %d rows, wrote %d", len(rows), im.rows)
			}
			want := totalsOf(t, header, rows)
			inv := issuedInvoice(t, l, "BAN-"+im.name, "2024-09")
			if len(want) != 3 || len(chargesByAccount(inv)) != 3 {
				t.Fatalf("%d accounts in the file, %d charged: want 3", len(want), len(chargesByAccount(inv)))
			}
			var all []string
			for a, w := range want {
				all = append(all, w)
				if got := chargesByAccount(inv)[a]; got != w {
					t.Errorf("account %s: charges %q, want %s", a, got, w)
				}
			}
			if got, w := inv.GetTotal().GetAmount(), sumDecimals(t, all...); got != w {
				t.Errorf("invoice total %s, want %s", got, w)
			}
		})
	}
}

// TestImportFOCUSMalformed imports damaged files of every form: each is
// refused naming the line (CSV) or row (Parquet) and the column at fault,
// and nothing is published.
func TestImportFOCUSMalformed(t *testing.T) {
	l := newLedger(t)
	dir := t.TempDir()
	header, good := generateFOCUS("1.4", "bad", 30)
	col := func(name string) int { return slices.Index(header, name) }
	type damage struct {
		name string
		// change damages a copy of the header and rows.
		change func(h []string, rows [][]string) ([]string, [][]string)
		// says is what stderr names, by form.
		says map[string]string
	}
	damages := []damage{
		{"missing BilledCost", func(h []string, rows [][]string) ([]string, [][]string) {
			i := col("BilledCost")
			h = slices.Delete(slices.Clone(h), i, i+1)
			for j := range rows {
				rows[j] = slices.Delete(rows[j], i, i+1)
			}
			return h, rows
		}, map[string]string{
			"csv": "line 1, column BilledCost: the header has no such column", "gzip": "line 1, column BilledCost: the header has no such column",
			"parquet": "schema, column BilledCost: the header has no such column",
		}},
		{"bad decimal", func(h []string, rows [][]string) ([]string, [][]string) {
			rows[11][col("BilledCost")] = "1,25"
			return h, rows
		}, map[string]string{
			"csv": `line 13, column BilledCost: "1,25" is not a decimal amount`, "gzip": `line 13, column BilledCost: "1,25" is not a decimal amount`,
			"parquet": `row 12, column BilledCost: "1,25" is not a decimal amount`,
		}},
		{"bad date", func(h []string, rows [][]string) ([]string, [][]string) {
			rows[20][col("ChargePeriodStart")] = "31/09/2024"
			return h, rows
		}, map[string]string{
			"csv": `line 22, column ChargePeriodStart: "31/09/2024" is not a date-time`, "gzip": `line 22, column ChargePeriodStart: "31/09/2024" is not a date-time`,
			"parquet": `row 21, column ChargePeriodStart: "31/09/2024" is not a date-time`,
		}},
	}
	_, js := testkit.JetStream(t, l.d.NATSURL())
	stream, err := js.Stream(t.Context(), "BILLING_IN")
	if err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, path, says string) {
		t.Helper()
		r := l.ctl(t.Context(), "import", "focus", path, "--org", "bad", "--register")
		if r.code != 1 || !strings.Contains(r.stderr, path+": ") || !strings.Contains(r.stderr, says) || !strings.Contains(r.stderr, "nothing was published") {
			t.Errorf("exit %d, stderr %q; want exit 1 naming %q", r.code, r.stderr, says)
		}
	}
	for _, d := range damages {
		for _, form := range focusFormats {
			t.Run(d.name+" "+form, func(t *testing.T) {
				rows := make([][]string, len(good))
				for i := range good {
					rows[i] = slices.Clone(good[i])
				}
				h, rows := d.change(slices.Clone(header), rows)
				// Strings throughout, so that a Parquet file can hold the
				// bad cell: the typed form is TestImportFOCUSMatrix's.
				name := strings.ReplaceAll(d.name, " ", "-") + "-" + form
				var path string
				if form == "parquet" {
					path = writeParquetStrings(t, filepath.Join(dir, name+".parquet"), h, rows)
				} else {
					path = writeFOCUSForm(t, dir, name, form, h, rows)
				}
				refused(t, path, d.says[form])
			})
		}
	}
	t.Run("truncated gzip", func(t *testing.T) {
		path := writeFOCUSForm(t, dir, "whole", "gzip", header, good)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cut := filepath.Join(dir, "cut.csv.gz")
		if err := os.WriteFile(cut, b[:len(b)*2/3], 0o644); err != nil {
			t.Fatal(err)
		}
		refused(t, cut, "the compressed file ends early: truncated")
	})
	t.Run("corrupt Parquet", func(t *testing.T) {
		path := writeFOCUSForm(t, dir, "whole", "parquet", header, good)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(dir, "corrupt.parquet")
		if err := os.WriteFile(bad, b[:len(b)-64], 0o644); err != nil {
			t.Fatal(err)
		}
		refused(t, bad, "not a Parquet file")
	})
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A work queue drops what ledgerd handled: the last sequence tells
	// whether anything was ever published.
	if info.State.LastSeq != 0 {
		t.Errorf("BILLING_IN reached sequence %d after refused imports: something was published", info.State.LastSeq)
	}
}

// writeParquetStrings writes rows as a Parquet file of optional strings,
// empty cells and the FOCUS sample's "NULL" null.
func writeParquetStrings(t *testing.T, path string, header []string, rows [][]string) string {
	t.Helper()
	group := parquet.Group{}
	for _, col := range header {
		group[col] = parquet.Optional(parquet.String())
	}
	schema := parquet.NewSchema("focus", group)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	pw := parquet.NewWriter(f, schema)
	for _, cells := range rows {
		row := make(parquet.Row, len(header))
		for j, v := range cells {
			c, _ := schema.Lookup(header[j])
			if v == "" || v == "NULL" {
				row[c.ColumnIndex] = parquet.NullValue().Level(0, 0, c.ColumnIndex)
			} else {
				row[c.ColumnIndex] = parquet.ByteArrayValue([]byte(v)).Level(0, 1, c.ColumnIndex)
			}
		}
		if _, err := pw.WriteRows([]parquet.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
