package ctl

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// samplePath returns the shared FOCUS 1.0 sample, or skips.
func samplePath(t testing.TB) string {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "data", "focus_sample.csv")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("FOCUS sample absent (%v): this test reads ../shared/data/focus_sample.csv from the repository root", err)
	}
	return path
}

// readFile reads every row of a file through openFOCUS.
func readFile(t *testing.T, path string) (*focusReader, []*focusRow, []RowProblem) {
	t.Helper()
	r, f, err := openFOCUS(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var rows []*focusRow
	var problems []RowProblem
	for {
		row, ps, err := r.next()
		if errors.Is(err, io.EOF) {
			return r, rows, problems
		}
		if err != nil {
			t.Fatal(err)
		}
		problems = append(problems, ps...)
		if row != nil {
			rows = append(rows, row)
		}
	}
}

// readCSVText reads a CSV file's header and rows as text.
func readCSVText(t *testing.T, path string) ([]string, [][]string) {
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

func gzipFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// parquetFile writes a CSV file's rows as a Parquet file of strings, NULL
// cells as nulls.
func parquetFile(t *testing.T, src, dst string) {
	t.Helper()
	header, rows := readCSVText(t, src)
	for _, r := range rows {
		for i := range r {
			if r[i] == "NULL" {
				r[i] = ""
			}
		}
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeParquetText(f, header, rows); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFocusSampleForms reads the shared sample as CSV, gzip-compressed CSV
// (with and without a .gz name) and Parquet: the same records, and the
// same batches' event_ids but for Parquet, whose rows without an Id would
// be "row-N" (the sample's all have one).
func TestFocusSampleForms(t *testing.T) {
	sample := samplePath(t)
	dir := t.TempDir()
	gz := filepath.Join(dir, "sample.csv.gz")
	gzipFile(t, sample, gz)
	gzNoName := filepath.Join(dir, "sample.bin")
	gzipFile(t, sample, gzNoName)
	pq := filepath.Join(dir, "sample.parquet")
	parquetFile(t, sample, pq)

	r, want, problems := readFile(t, sample)
	if len(problems) > 0 || len(want) != 1000 || r.version != Focus10 {
		t.Fatalf("the CSV sample: %d rows, version %s, problems %v", len(want), r.version, problems)
	}
	for _, path := range []string{gz, gzNoName, pq} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, got, problems := readFile(t, path)
			if len(problems) > 0 || len(got) != len(want) {
				t.Fatalf("%d rows, problems %v; want %d rows", len(got), problems, len(want))
			}
			for i := range want {
				// The same record but for its source, which names the
				// file and the line (CSV) or row (Parquet) it was read at.
				source := fmt.Sprintf("%s:%d", filepath.Base(path), i+2)
				if strings.HasSuffix(path, ".parquet") {
					source = fmt.Sprintf("%s:row %d", filepath.Base(path), i+1)
				}
				g := proto.CloneOf(got[i].record)
				if g.Source != source {
					t.Fatalf("row %d: source %q, want %q", i+1, g.Source, source)
				}
				g.Source = want[i].record.Source
				if !proto.Equal(g, want[i].record) {
					t.Fatalf("row %d: %v\nwant %v", i+1, got[i].record, want[i].record)
				}
			}
			if a, b := usageBatch(got).EventId, usageBatch(want).EventId; a != b {
				t.Errorf("event_id %s, the CSV's %s: the same rows would bill twice", a, b)
			}
			s, err := scanFOCUS(path, nil)
			if err != nil || s.rows != 1000 {
				t.Fatalf("scan: %v, %+v", err, s)
			}
		})
	}
}

// TestFocusVersions recognises each version from hand-made headers, and
// reads the provider from ProviderName or, in 1.4, ServiceProviderName.
func TestFocusVersions(t *testing.T) {
	base := "SubAccountId,ServiceName,ChargePeriodStart,ChargeCategory,BilledCost,BillingCurrency"
	cases := []struct {
		version, extra, cells string
	}{
		{Focus10, "ProviderName,PublisherName,x_Custom", "AWS,AWS,anything"},
		{Focus11, "ProviderName,CapacityReservationId,SkuMeter", "AWS,,m"},
		{Focus12, "ProviderName,InvoiceId,BillingAccountType,SubAccountType,ChargeClass", "AWS,INV-1,Billing Profile,Account,Correction"},
		{Focus13, "ProviderName,PublisherName,ServiceProviderName,HostProviderName,InvoiceId", "AWS,AWS,AWS,AWS,INV-1"},
		{Focus14, "ServiceProviderName,HostProviderName,InvoiceId,InvoiceDetailId,x_Tag", "Amazon Web Services,AWS,INV-1,INV-1-1,t"},
	}
	for _, c := range cases {
		t.Run(c.version, func(t *testing.T) {
			text := base + "," + c.extra + "\n1,Amazon EC2,2024-09-01,Usage,1.25,USD," + c.cells + "\n"
			r, err := newFocusReader(strings.NewReader(text), "v.csv")
			if err != nil {
				t.Fatal(err)
			}
			if r.version != c.version {
				t.Errorf("version %s, want %s", r.version, c.version)
			}
			row, problems, err := r.next()
			if err != nil || len(problems) > 0 {
				t.Fatalf("problems %v, err %v", problems, err)
			}
			if row.record.Vendor != "AWS" || row.record.Cost.Amount != "1.25" {
				t.Errorf("record %v", row.record)
			}
			if strings.Contains(c.extra, "InvoiceId") && row.record.InvoiceId != "INV-1" {
				t.Errorf("InvoiceId %q not kept", row.record.InvoiceId)
			}
		})
	}
	t.Run("no provider column", func(t *testing.T) {
		_, err := newFocusReader(strings.NewReader(base+",HostProviderName\n"), "v.csv")
		var fe *FileError
		if !errors.As(err, &fe) || len(fe.Problems) != 1 || fe.Problems[0].Column != colProviderName {
			t.Fatalf("err %v, want the missing provider column named", err)
		}
	})
}

// TestFocusCorrection reads a Correction row, which bills as late usage
// (by its charge period), and refuses a charge class FOCUS does not have.
func TestFocusCorrection(t *testing.T) {
	head := "SubAccountId,ProviderName,ServiceName,ChargePeriodStart,ChargeCategory,ChargeClass,BilledCost,BillingCurrency,InvoiceId\n"
	rows, problems, err := readAll(t, head+"1,AWS,Amazon EC2,2024-08-03,Usage,Correction,-2.50,USD,INV-2024-09\n")
	if err != nil || len(problems) > 0 || len(rows) != 1 {
		t.Fatalf("rows %v, problems %v, err %v", rows, problems, err)
	}
	if rows[0].month.String() != "2024-08" || rows[0].record.Cost.Amount != "-2.50" || rows[0].record.InvoiceId != "INV-2024-09" {
		t.Errorf("correction read as %v, month %s", rows[0].record, rows[0].month)
	}
	_, problems, _ = readAll(t, head+"1,AWS,Amazon EC2,2024-08-03,Usage,Refund,-2.50,USD,\n")
	if len(problems) != 1 || problems[0].Column != colChargeClass || problems[0].Line != 2 {
		t.Errorf("problems %v, want line 2, column ChargeClass", problems)
	}
}

// TestFocusDamagedFiles checks that a truncated gzip file, a corrupt
// Parquet file and a bad cell in a Parquet file are reported by row and
// column, as bad files.
func TestFocusDamagedFiles(t *testing.T) {
	sample := samplePath(t)
	dir := t.TempDir()
	gz := filepath.Join(dir, "sample.csv.gz")
	gzipFile(t, sample, gz)
	b, err := os.ReadFile(gz)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.csv.gz")
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = scanFOCUS(truncated, nil)
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "truncated") || fe.Problems[len(fe.Problems)-1].Line < 2 {
		t.Errorf("truncated gzip: %v", err)
	}

	pq := filepath.Join(dir, "sample.parquet")
	parquetFile(t, sample, pq)
	b, err = os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.parquet")
	if err := os.WriteFile(corrupt, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scanFOCUS(corrupt, nil); !errors.As(err, &fe) || !strings.Contains(err.Error(), "not a Parquet file") {
		t.Errorf("corrupt Parquet: %v", err)
	}

	noCost := filepath.Join(dir, "nocost.parquet")
	f, err := os.Create(noCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeParquetText(f, []string{"SubAccountId", "ProviderName", "ServiceName", "ChargePeriodStart", "ChargeCategory", "BillingCurrency"},
		[][]string{{"1", "AWS", "S3", "2024-09-01", "Usage", "USD"}}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := scanFOCUS(noCost, nil); !errors.As(err, &fe) || !strings.Contains(err.Error(), "schema, column BilledCost: the header has no such column") {
		t.Errorf("Parquet without BilledCost: %v", err)
	}

	header, rows := readCSVText(t, sample)
	costCol := slices.Index(header, colBilledCost)
	rows[41][costCol] = "12,5"
	bad := filepath.Join(dir, "bad.parquet")
	f, err = os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeParquetText(f, header, rows); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = scanFOCUS(bad, nil)
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "row 42, column BilledCost") {
		t.Errorf("bad cell in Parquet: %v", err)
	}
}

// TestParquetTypes reads the typed columns other writers use: a double
// cost, a DECIMAL cost and a TIMESTAMP start.
func TestParquetTypes(t *testing.T) {
	type row struct {
		SubAccountId      string    `parquet:"SubAccountId"`
		ProviderName      string    `parquet:"ProviderName"`
		ServiceName       string    `parquet:"ServiceName"`
		ChargePeriodStart time.Time `parquet:"ChargePeriodStart,timestamp(millisecond)"`
		// The legacy INT96 timestamp, as Spark writes it.
		ChargePeriodEnd deprecated.Int96 `parquet:"ChargePeriodEnd"`
		ChargeCategory  string           `parquet:"ChargeCategory"`
		BilledCost      int64            `parquet:"BilledCost,decimal(4:18)"`
		EffectiveCost   float64          `parquet:"EffectiveCost"`
		BillingCurrency string           `parquet:"BillingCurrency"`
	}
	path := filepath.Join(t.TempDir(), "typed.parquet")
	start := time.Date(2024, 9, 3, 10, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour + 500*time.Millisecond)
	days := end.Unix() / 86400
	nanos := uint64(end.Sub(time.Unix(days*86400, 0)))
	int96 := deprecated.Int96{uint32(nanos), uint32(nanos >> 32), uint32(days + 2440588)}
	if err := parquet.WriteFile(path, []row{{"1", "AWS", "S3", start, int96, "Usage", -12345, 0.1, "USD"}}); err != nil {
		t.Fatal(err)
	}
	_, rows, problems := readFile(t, path)
	if len(problems) > 0 || len(rows) != 1 {
		t.Fatalf("rows %v, problems %v", rows, problems)
	}
	r := rows[0].record
	if r.Cost.Amount != "-1.2345" || !r.ChargePeriodStart.AsTime().Equal(start) || !r.ChargePeriodEnd.AsTime().Equal(end) || r.RecordId != "row-1" {
		t.Errorf("record %v", r)
	}
}

// TestFocusRowsTotal exports an invoice with charges, an update and an
// intra-organization adjustment (which has no details): the rows sum to
// the total, update lines are Corrections, and a total the lines do not
// make is refused.
func TestFocusRowsTotal(t *testing.T) {
	usd := func(s string) *billingv1.Money { return &billingv1.Money{Amount: s, Currency: "USD"} }
	inv := &billingv1.Invoice{
		Ban: "BAN-1", OrgId: "acme", Month: "2025-03", Currency: "USD", Total: usd("10.05"),
		Lines: []*billingv1.InvoiceLine{
			{Kind: billingv1.LineKind_LINE_KIND_CHARGES, Vendor: "AWS", AccountId: "111", ForMonth: "2025-03", Amount: usd("12.00"),
				Details: []*billingv1.InvoiceLineDetail{
					{Service: "Amazon EC2", Region: "us-east-1", Amount: usd("11.99"), EventIds: []string{"u-1", "u-2"}},
					{Service: "Amazon S3", Amount: usd("0.01")},
				}},
			{Kind: billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT, Vendor: "Azure", AccountId: "222", Description: "Intra-Organization Adjustment", Amount: usd("-3.00")},
			{Kind: billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE, Vendor: "AWS", AccountId: "111", ForMonth: "2025-02", Service: "Amazon EC2",
				Description: "Update to Previous Month's Amazon EC2", Amount: usd("1.05"),
				Details: []*billingv1.InvoiceLineDetail{{Service: "Amazon EC2", Region: "us-east-1", Amount: usd("1.05"), EventIds: []string{"u-3"}}}},
		},
	}
	for _, version := range []string{Focus12, Focus14} {
		cols := focusExportColumns(version)
		rows, err := focusRows(inv, version, "Reseller Inc.")
		if err != nil {
			t.Fatal(err)
		}
		at := func(row []string, name string) string { return row[slices.Index(cols, name)] }
		var sum apd.Decimal
		for _, r := range rows {
			var d apd.Decimal
			if err := money.ParseDecimal(&d, at(r, "BilledCost")); err != nil {
				t.Fatal(err)
			}
			money.Add(&sum, &sum, &d)
			if at(r, "InvoiceId") != "BAN-1-2025-03" || at(r, "InvoiceIssuerName") != "Reseller Inc." {
				t.Errorf("row %v", r)
			}
		}
		if len(rows) != 4 || sum.Text('f') != "10.05" {
			t.Errorf("%s: %d rows summing to %s, want 4 summing to 10.05", version, len(rows), sum.Text('f'))
		}
		last := rows[3]
		if at(last, "ChargeClass") != "Correction" || at(last, "ChargePeriodStart") != "2025-02-01T00:00:00Z" || at(last, "x_EventIds") != "u-3" {
			t.Errorf("the update row %v", last)
		}
		if at(rows[2], "ChargeCategory") != "Adjustment" || at(rows[2], "BilledCost") != "-3.00" || at(rows[2], "SubAccountType") != "Subscription" {
			t.Errorf("the adjustment row %v", rows[2])
		}
		if version == Focus14 && (at(last, "InvoiceDetailId") != "BAN-1-2025-03-4" || slices.Contains(cols, "ProviderName")) {
			t.Errorf("1.4: columns %v, row %v", cols, last)
		}
	}
	wrong := proto.Clone(inv).(*billingv1.Invoice)
	wrong.Total = usd("10.06")
	if _, err := focusRows(wrong, Focus12, "x"); err == nil || !strings.Contains(err.Error(), "not written") {
		t.Errorf("a total the rows do not make: %v", err)
	}
}

// TestExportParquetReadBack writes export rows as Parquet and reads them
// back with the library's own reader, and with the import's.
func TestExportParquetReadBack(t *testing.T) {
	cols := focusExportColumns(Focus12)
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = "v-" + c
	}
	set := func(name, v string) { row[slices.Index(cols, name)] = v }
	set("BilledCost", "1.23")
	set("BillingCurrency", "EUR")
	set("ChargePeriodStart", "2025-01-01T00:00:00Z")
	set("ChargePeriodEnd", "2025-02-01T00:00:00Z")
	set("ChargeCategory", "Usage")
	set("ChargeClass", "")
	set("RegionId", "")
	set("ProviderName", "AWS")
	path := filepath.Join(t.TempDir(), "out.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeParquetText(f, cols, [][]string{row, row}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	type exported struct {
		InvoiceID  string  `parquet:"InvoiceId,optional"`
		BilledCost string  `parquet:"BilledCost,optional"`
		RegionID   *string `parquet:"RegionId,optional"`
	}
	got, err := parquet.ReadFile[exported](path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].BilledCost != "1.23" || got[0].InvoiceID != "v-InvoiceId" || got[0].RegionID != nil {
		t.Errorf("read back %+v", got)
	}
	_, rows, problems := readFile(t, path)
	if len(problems) > 0 || len(rows) != 2 || rows[1].record.Cost.Amount != "1.23" || rows[1].record.Region != "" {
		t.Errorf("import reads %v, %v", rows, problems)
	}
}

// FuzzParquetSource feeds damaged Parquet files to the import's reader:
// it must report them, never panic.
//
// Its workers once grew to gigabytes and stalled: the Parquet library
// allocated whatever a damaged footer or page header claimed (a footer of
// 4 GiB, a page of 2 GiB) and kept it in its buffer pools, so the memory
// of one input outlived it. The import now checks those sizes first
// (parquetcheck.go). Minimizing a new input of a kilobyte or more takes
// Go's fuzzer up to -fuzzminimizetime, 60 s by default, fuzzing nothing
// meanwhile: .ci/run bounds it.
func FuzzParquetSource(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.parquet")
	out, err := os.Create(seed)
	if err != nil {
		f.Fatal(err)
	}
	if err := writeParquetText(out, []string{"SubAccountId", "ProviderName", "ServiceName", "ChargePeriodStart", "ChargeCategory", "BilledCost", "BillingCurrency"},
		[][]string{{"1", "AWS", "S3", "2024-09-01", "Usage", "1.5", "USD"}, {"2", "Oracle", "Compute", "2024-09-02", "Usage", "", "USD"}}); err != nil {
		f.Fatal(err)
	}
	out.Close()
	b, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	// The target puts back the magic bytes that openFOCUS recognises a
	// Parquet file by, so the seeds are files without them.
	f.Add(b[4:])
	f.Add(b[4 : len(b)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		// In memory: the file system would only slow the fuzzing down.
		data = append([]byte("PAR1"), data...)
		r, err := newParquetReader(bytes.NewReader(data), int64(len(data)), "fuzz.parquet")
		if err != nil {
			return
		}
		for range 100 {
			if _, _, err := r.next(); err != nil {
				return
			}
		}
	})
}

// BenchmarkImportMillionRows reads a generated 1,000,000-row FOCUS file as
// an import does (the checking pass, then the publishing pass building
// every batch's message, without NATS) and reports the peak heap in use,
// sampled every millisecond: it must stay that of a batch, not grow with
// the file. LEDGER_BENCH_FORMAT=gzip or parquet reads that form instead
// of CSV.
//
//	go test -run '^$' -bench ImportMillionRows -benchtime 1x ./services/ctl
func BenchmarkImportMillionRows(b *testing.B) {
	const rows = 1_000_000
	dir := b.TempDir()
	header := []string{"SubAccountId", "ProviderName", "ServiceName", "RegionId", "ChargePeriodStart", "ChargeCategory", "BilledCost", "BillingCurrency", "Id", "x_Note"}
	cells := func(i int) []string {
		return []string{"acct-" + itoa(i%100), "AWS", "Amazon EC2", "us-east-1", "2024-09-" + pad2(1+i%28) + " 10:00:00", "Usage", "0." + pad2(i%100) + "1", "USD", "id-" + itoa(i), "ignored"}
	}
	path := filepath.Join(dir, "million.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	switch os.Getenv("LEDGER_BENCH_FORMAT") {
	case "parquet":
		// Written a row at a time: the generator must not hold the file
		// in memory either.
		path = filepath.Join(dir, "million.parquet")
		f.Close()
		if f, err = os.Create(path); err != nil {
			b.Fatal(err)
		}
		group := parquet.Group{}
		for _, name := range header {
			group[name] = parquet.Optional(parquet.String())
		}
		schema := parquet.NewSchema("focus", group)
		// Row groups of 100,000 rows, as writers of large files cut
		// them: a reader holds one group's pages at most.
		func() {
			pw := parquet.NewWriter(f, schema, parquet.MaxRowsPerRowGroup(100_000))
			row := make(parquet.Row, len(header))
			for i := range rows {
				for j, v := range cells(i) {
					c, _ := schema.Lookup(header[j])
					row[c.ColumnIndex] = parquet.ByteArrayValue([]byte(v)).Level(0, 1, c.ColumnIndex)
				}
				if _, err := pw.WriteRows([]parquet.Row{row}); err != nil {
					b.Fatal(err)
				}
			}
			if err := pw.Close(); err != nil {
				b.Fatal(err)
			}
		}()
	default:
		w := csv.NewWriter(f)
		w.Write(header)
		for i := range rows {
			w.Write(cells(i))
		}
		w.Flush()
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("LEDGER_BENCH_FORMAT") == "gzip" {
		gz := path + ".gz"
		gzipFile(b, path, gz)
		path = gz
	}
	info, _ := os.Stat(path)
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var m runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		})
		s, err := scanFOCUS(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		r, closer, err := openFOCUS(path)
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]*focusRow, 0, BatchRecordsMax)
		n := 0
		for {
			row, _, err := r.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, row)
			if len(batch) == BatchRecordsMax {
				proto.Marshal(usageBatch(batch))
				n += len(batch)
				batch = batch[:0]
			}
		}
		closer.Close()
		close(stop)
		wg.Wait()
		if s.rows != rows || n != rows {
			b.Fatalf("%d rows scanned, %d batched", s.rows, n)
		}
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(base.HeapInuse)/(1<<20), "base-heap-MiB")
		b.ReportMetric(float64(info.Size())/(1<<20), "file-MiB")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func pad2(i int) string { return fmt.Sprintf("%02d", i) }

// TestCheckingProgress checks that the first reading of a file shows how
// many rows it has read, and that scanFOCUS reports every row.
func TestCheckingProgress(t *testing.T) {
	var b strings.Builder
	p := &progress{w: &b, now: time.Now}
	p.checked(1_234)
	p.done()
	if !strings.Contains(b.String(), "checking: 1,234 rows read") {
		t.Errorf("progress %q", b.String())
	}
	path := filepath.Join(t.TempDir(), "f.csv")
	if err := os.WriteFile(path, []byte(focusHeader+"\n1,n,AWS,S,,2024-09-01,,Usage,1,USD,,,,,\n2,n,AWS,S,,2024-09-01,,Usage,1,USD,,,,,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	last := 0
	if _, err := scanFOCUS(path, func(rows int) { last = rows }); err != nil || last != 2 {
		t.Errorf("scan: %v, last count %d", err, last)
	}
}
