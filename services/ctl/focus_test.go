package ctl

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/money"
)

const focusHeader = "SubAccountId,SubAccountName,ProviderName,ServiceName,RegionId,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BilledCost,BillingCurrency,Id,ConsumedQuantity,ConsumedUnit,ChargeDescription,CommitmentDiscountId"

// readAll reads every row of a FOCUS file given as text.
func readAll(t *testing.T, text string) ([]*focusRow, []RowProblem, error) {
	t.Helper()
	r, err := newFocusReader(strings.NewReader(text), "test.csv")
	if err != nil {
		return nil, nil, err
	}
	var rows []*focusRow
	var problems []RowProblem
	for {
		row, ps, err := r.next()
		if errors.Is(err, io.EOF) {
			return rows, problems, nil
		}
		if err != nil {
			return nil, nil, err
		}
		problems = append(problems, ps...)
		if row != nil {
			rows = append(rows, row)
		}
	}
}

func TestFocusRow(t *testing.T) {
	rows, problems, err := readAll(t, focusHeader+"\n"+
		`123,"Prod, main",Microsoft,Virtual Machines,NULL,2024-09-18 22:00:00,2024-09-18T23:00:00Z,usage,1.5E-7,usd,,NULL,Hours,"a ""quoted"" text",`+"\n")
	if err != nil || len(problems) > 0 {
		t.Fatalf("rows %v, problems %v, err %v", rows, problems, err)
	}
	r := rows[0].record
	checks := []struct{ name, got, want string }{
		{"vendor", r.Vendor, "Azure"},
		{"account", r.AccountId, "123"},
		{"account name", rows[0].accountName, "Prod, main"},
		{"service", r.Service, "Virtual Machines"},
		{"region (NULL)", r.Region, ""},
		{"category", r.ChargeCategory, "Usage"},
		{"start", r.ChargePeriodStart.AsTime().Format("2006-01-02T15:04:05Z07:00"), "2024-09-18T22:00:00Z"},
		{"end", r.ChargePeriodEnd.AsTime().Format("2006-01-02T15:04:05Z07:00"), "2024-09-18T23:00:00Z"},
		{"cost, exponent made plain", r.Cost.Amount, "0.00000015"},
		{"currency", r.Cost.Currency, "USD"},
		{"record id without Id", r.RecordId, "line-2"},
		{"quantity (NULL)", r.Quantity, ""},
		{"description", r.Description, `a "quoted" text`},
		{"month", rows[0].month.String(), "2024-09"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestVendor(t *testing.T) {
	for in, want := range map[string]string{
		"AWS": "AWS", "Amazon Web Services": "AWS", "Microsoft": "Azure", "microsoft azure": "Azure",
		"Google Cloud": "GCP", "Oracle": "Oracle", "Oracle Cloud Infrastructure": "Oracle", " Alibaba Cloud ": "Alibaba Cloud",
	} {
		if got := Vendor(in); got != want {
			t.Errorf("Vendor(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFocusProblems checks that each kind of bad cell is reported with
// its line and column, and that several problems of a row are all said.
func TestFocusProblems(t *testing.T) {
	good := []string{"1", "n", "AWS", "Amazon EC2", "us-east-1", "2024-09-01 00:00:00", "2024-09-01 01:00:00", "Usage", "1.00", "USD", "id-1", "1", "Hours", "d", ""}
	cases := []struct {
		name   string
		col    int // the cell replaced
		value  string
		column string // the column named; empty for a whole-row problem
		says   string
	}{
		{"bad cost", 8, "12,50", colBilledCost, `"12,50" is not a decimal amount`},
		{"empty cost", 8, "NULL", colBilledCost, "is empty"},
		{"NaN cost", 8, "NaN", colBilledCost, "not a decimal"},
		{"bad currency", 9, "dollars", colBillingCurrency, "not an ISO 4217"},
		{"bad category", 7, "Refund", colChargeCategory, "not a FOCUS charge category"},
		{"bad start", 5, "18/09/2024", colChargePeriodStart, "not a date-time"},
		{"empty start", 5, "", colChargePeriodStart, "is empty"},
		{"end before start", 6, "2024-08-31 00:00:00", colChargePeriodEnd, "is before ChargePeriodStart"},
		{"no account", 0, "NULL", colSubAccountID, "is empty"},
		{"no service", 3, "", colServiceName, "is empty"},
		{"bad quantity", 11, "lots", colConsumedQuantity, "not a decimal quantity"},
		{"control character", 0, "12\x01", colSubAccountID, "control characters"},
		{"id too long", 10, strings.Repeat("x", 300), colID, "at most 256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cells := append([]string(nil), good...)
			cells[c.col] = c.value
			text := focusHeader + "\n" + strings.Join(good, ",") + "\n" + csvLine(cells) + "\n"
			rows, problems, err := readAll(t, text)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || len(problems) != 1 {
				t.Fatalf("%d rows, problems %v; want the good row and one problem", len(rows), problems)
			}
			p := problems[0]
			if p.Line != 3 || p.Column != c.column || !strings.Contains(p.Reason, c.says) {
				t.Errorf("problem %q, want line 3, column %s, saying %q", p, c.column, c.says)
			}
		})
	}
	t.Run("several in a row", func(t *testing.T) {
		cells := append([]string(nil), good...)
		cells[8], cells[9] = "x", "y"
		_, problems, err := readAll(t, focusHeader+"\n"+csvLine(cells)+"\n")
		if err != nil || len(problems) != 2 {
			t.Fatalf("problems %v, err %v; want two", problems, err)
		}
	})
	t.Run("not CSV", func(t *testing.T) {
		_, problems, err := readAll(t, focusHeader+"\n"+strings.Join(good, ",")+",extra\n")
		if err != nil || len(problems) != 1 || problems[0].Line != 2 || !strings.Contains(problems[0].Reason, "not CSV") {
			t.Fatalf("problems %v, err %v; want line 2 not CSV", problems, err)
		}
	})
	t.Run("missing column", func(t *testing.T) {
		_, _, err := readAll(t, strings.Replace(focusHeader, "BilledCost", "Cost", 1)+"\n")
		var fe *FileError
		if !errors.As(err, &fe) || len(fe.Problems) != 1 || fe.Problems[0].Column != colBilledCost {
			t.Fatalf("err %v, want a FileError naming BilledCost", err)
		}
	})
}

func csvLine(cells []string) string {
	out := make([]string, len(cells))
	for i, c := range cells {
		if strings.ContainsAny(c, ",\"\n") {
			c = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
		}
		out[i] = c
	}
	return strings.Join(out, ",")
}

// TestScanFOCUS checks the first reading of a file: every bad row is
// reported, at most problemsMax of them listed, and an Id repeated within
// a batch is one of them.
func TestScanFOCUS(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(focusHeader + "\n")
	for i := range 30 {
		b.WriteString(csvLine([]string{"1", "n", "AWS", "Amazon EC2", "", "2024-09-01", "", "Usage", "oops", "USD", "id-" + string(rune('a'+i%26)), "", "", "", ""}) + "\n")
	}
	path := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := scanFOCUS(path, nil)
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, ErrBadFile) {
		t.Fatalf("err %v, want a FileError", err)
	}
	if len(fe.Problems) != problemsMax || fe.More != 30-problemsMax {
		t.Errorf("%d problems listed and %d more, want %d and %d", len(fe.Problems), fe.More, problemsMax, 30-problemsMax)
	}
	if !strings.Contains(err.Error(), "line 2, column BilledCost") || !strings.Contains(err.Error(), "nothing was published") {
		t.Errorf("message %q does not name line 2, BilledCost, and say nothing was published", err)
	}

	dup := focusHeader + "\n" +
		csvLine([]string{"1", "n", "AWS", "Amazon EC2", "", "2024-09-01", "", "Usage", "1", "USD", "same", "", "", "", ""}) + "\n" +
		csvLine([]string{"2", "n", "AWS", "Amazon EC2", "", "2024-09-01", "", "Usage", "1", "USD", "same", "", "", "", ""}) + "\n"
	if err := os.WriteFile(path, []byte(dup), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = scanFOCUS(path, nil)
	if !errors.As(err, &fe) || len(fe.Problems) != 1 || fe.Problems[0].Line != 3 || !strings.Contains(fe.Problems[0].Reason, "line 2") {
		t.Fatalf("err %v, want line 3 repeating the Id of line 2", err)
	}
}

// TestBatchEventID checks that a batch's event_id depends on its rows'
// identities, and on the content of rows without an Id, and on nothing
// else.
func TestBatchEventID(t *testing.T) {
	read := func(lines ...string) []*focusRow {
		rows, problems, err := readAll(t, focusHeader+"\n"+strings.Join(lines, "\n")+"\n")
		if err != nil || len(problems) > 0 {
			t.Fatalf("problems %v, err %v", problems, err)
		}
		return rows
	}
	withID := "1,n,AWS,Amazon EC2,,2024-09-01,,Usage,1.00,USD,id-1,,,,"
	withIDOtherCost := "1,n,AWS,Amazon EC2,,2024-09-01,,Usage,2.00,USD,id-1,,,,"
	withoutID := "1,n,AWS,Amazon EC2,,2024-09-01,,Usage,1.00,USD,,,,,"
	withoutIDOtherCost := "1,n,AWS,Amazon EC2,,2024-09-01,,Usage,2.00,USD,,,,,"
	otherProvider := "1,n,Oracle,Amazon EC2,,2024-09-01,,Usage,1.00,USD,id-1,,,,"

	id := func(lines ...string) string { return usageBatch(read(lines...)).EventId }
	if id(withID) != id(withID) {
		t.Error("the same rows give different event_ids")
	}
	if id(withID) != id(withIDOtherCost) {
		t.Error("a row restated under the same Id changed the event_id: it would bill twice instead of conflicting")
	}
	if id(withoutID) == id(withoutIDOtherCost) {
		t.Error("rows without an Id and with different content share an event_id")
	}
	if id(withID) == id(otherProvider) {
		t.Error("the same Id at another provider gives the same event_id")
	}
	// Where a row was read, and its InvoiceId, are lineage, not identity:
	// the same rows in a renamed file, or read by a ledgerctl from before
	// records carried them, make the same event_id.
	rows := read(withoutID)
	plain := usageBatch(rows).EventId
	rows[0].record.Source, rows[0].record.InvoiceId = "renamed.csv:2", "INV-1"
	if got := usageBatch(rows); got.EventId != plain || got.Records[0].Source != "renamed.csv:2" || got.Records[0].InvoiceId != "INV-1" {
		t.Errorf("event_id %s with a source and InvoiceId, %s without; record %v", got.EventId, plain, got.Records[0])
	}
	if got := id(withID); !strings.HasPrefix(got, "focus-") || len(got) != len("focus-")+32 {
		t.Errorf("event_id %q", got)
	}
}

func TestDecimal(t *testing.T) {
	for in, want := range map[string]string{
		"1.50": "1.50", "-0.001": "-0.001", "1E-7": "0.0000001", "2.5e3": "2500", "+1": "1", ".5": "0.5",
	} {
		got, err := decimal(in)
		if err != nil || got != want {
			t.Errorf("decimal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "NaN", "Infinity", "1,5", "1e400000"} {
		if got, err := decimal(in); err == nil {
			t.Errorf("decimal(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzFocusReader feeds arbitrary text to the reader: it must never panic,
// and every row it accepts must carry what ledgerd requires.
func FuzzFocusReader(f *testing.F) {
	f.Add(focusHeader + "\n1,n,AWS,Amazon EC2,us-east-1,2024-09-01 00:00:00,,Usage,1.00,USD,1,2,Hours,d,\n")
	f.Add(focusHeader + "\n\"unterminated\n")
	f.Add("SubAccountId\n1\n")
	f.Add(focusHeader + "\n1,n,AWS,S,,2024-09-01,,Credit,-1e-3,JPY,,NULL,,,\n")
	f.Fuzz(func(t *testing.T, text string) {
		r, err := newFocusReader(strings.NewReader(text), "fuzz.csv")
		if err != nil {
			return
		}
		for range 1000 {
			row, _, err := r.next()
			if err != nil {
				return
			}
			if row == nil {
				continue
			}
			rec := row.record
			var d apd.Decimal
			if err := money.ParseDecimal(&d, rec.Cost.Amount); err != nil {
				t.Fatalf("accepted cost %q: %v", rec.Cost.Amount, err)
			}
			if _, err := money.ParseCurrency(rec.Cost.Currency); err != nil {
				t.Fatalf("accepted currency %q: %v", rec.Cost.Currency, err)
			}
			if rec.AccountId == "" || rec.Service == "" || rec.Vendor == "" || rec.RecordId == "" || rec.ChargePeriodStart == nil {
				t.Fatalf("accepted a record without a required field: %v", rec)
			}
			if rec.ChargePeriodStart.CheckValid() != nil {
				t.Fatalf("accepted an invalid start %v", rec.ChargePeriodStart)
			}
		}
	})
}
