package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

func TestTableAlignsAmountsRight(t *testing.T) {
	tb := newTable("MONTH", "TOTAL", "NOTE").alignRight(1)
	tb.add("2025-01", "5.00 USD", "a")
	tb.add("2025-02", "1200.00 USD", "")
	var b bytes.Buffer
	if err := tb.write(&b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"MONTH          TOTAL  NOTE\n" +
		"2025-01     5.00 USD  a\n" +
		"2025-02  1200.00 USD\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestTableKeepsColumnsAcrossEmptyCells checks that a row whose last
// cells are empty (a lineage row under a detail) neither ends the columns
// for the rows below it nor leaves trailing blanks.
func TestTableKeepsColumnsAcrossEmptyCells(t *testing.T) {
	tb := newTable("DESCRIPTION", "AMOUNT").alignRight(1)
	tb.add("Charges", "5.00 USD")
	tb.add("  event a-rather-long-event-id", "")
	tb.add("Update", "1.00 USD")
	var b bytes.Buffer
	if err := tb.write(&b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"DESCRIPTION                       AMOUNT\n" +
		"Charges                         5.00 USD\n" +
		"  event a-rather-long-event-id\n" +
		"Update                          1.00 USD\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestBar(t *testing.T) {
	peak := apd.New(98000, -2)
	for _, c := range []struct {
		amount string
		width  int
	}{{"980.00", barWidthMax}, {"490.00", barWidthMax / 2}, {"0.01", 1}, {"0.00", 0}, {"-5.00", 0}} {
		d, _, _ := apd.NewFromString(c.amount)
		if got := len([]rune(bar(d, peak))); got != c.width {
			t.Errorf("bar(%s) has %d marks, want %d", c.amount, got, c.width)
		}
	}
}

func TestSum(t *testing.T) {
	got, err := sum("USD", &billingv1.Money{Amount: "0.10", Currency: "USD"}, &billingv1.Money{Amount: "0.20", Currency: "USD"}, &billingv1.Money{Amount: "-1.05", Currency: "USD"})
	if err != nil || got.GetAmount() != "-0.75" || got.GetCurrency() != "USD" {
		t.Errorf("sum = %v, %v; want -0.75 USD", got, err)
	}
	got, err = sum("JPY")
	if err != nil || got.GetAmount() != "0" {
		t.Errorf("empty sum = %v, %v; want 0 JPY", got, err)
	}
}

func TestDetailName(t *testing.T) {
	for _, c := range []struct {
		d    *billingv1.InvoiceLineDetail
		want string
	}{
		{&billingv1.InvoiceLineDetail{Service: "Amazon EC2", Region: "us-east-1"}, "Amazon EC2 (us-east-1)"},
		{&billingv1.InvoiceLineDetail{Service: "Route 53"}, "Route 53 (global)"},
		{&billingv1.InvoiceLineDetail{Service: "Amazon EC2", Description: "Vendor reconciliation"}, "Amazon EC2 (Vendor reconciliation)"},
	} {
		if got := detailName(c.d); got != c.want {
			t.Errorf("detailName = %q, want %q", got, c.want)
		}
	}
}

func TestRenderProgress(t *testing.T) {
	got := renderProgress(2500, 10000, 3, 2*time.Second)
	want := "[#######-----------------------]  25%  2,500/10,000 rows  3 batches  1,250 rows/s"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := renderProgress(1, 1, 1, 0); got != "[##############################] 100%  1/1 rows  1 batch" {
		t.Errorf("got %q", got)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands64(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestProgressRedraws checks that the bar is redrawn in place, at most
// every redrawEvery but always at the end, and that done ends the line.
func TestProgressRedraws(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(Config{Err: &b, Progress: true, Now: func() time.Time { return now }})
	p := c.newProgress(3000)
	p.rows(1000, 1)
	p.rows(2000, 2) // too soon: not drawn
	now = now.Add(time.Second)
	p.rows(3000, 3) // the last: drawn
	p.ingested(3, 3)
	p.done()
	out := b.String()
	if n := strings.Count(out, "\r"); n != 3 {
		t.Errorf("%d redraws in %q, want 3", n, out)
	}
	if strings.Contains(out, "2,000/3,000") || !strings.Contains(out, "3,000/3,000 rows  3 batches  3,000 rows/s") ||
		!strings.Contains(out, "waiting for ledgerd: 3/3 messages ingested") || !strings.HasSuffix(out, "\n") {
		t.Errorf("progress output %q", out)
	}
	var quiet *progress // Progress off: nothing drawn, nothing panics
	quiet.rows(1, 1)
	quiet.done()
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"Production":            "Production",
		"Ünïcödé ✓":             "Ünïcödé ✓",
		"two\nlines":            `two\nlines`,
		"tab\there":             `tab\there`,
		"\x1b[31mred\x1b[0m":    `\x1b[31mred\x1b[0m`,
		"bad \xff byte":         `bad \xff byte`,
		"bell\a and del\x7f":    `bell\a and del\x7f`,
		"next line \u0085 here": `next line \u0085 here`,
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTableEscapesCells(t *testing.T) {
	tb := newTable("NAME", "AMOUNT").alignRight(1)
	tb.add("evil\x1b[2J\nname", "1.00 USD")
	var out strings.Builder
	if err := tb.write(&out); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b") || strings.Count(out.String(), "\n") != 2 {
		t.Fatalf("table holds raw control characters:\n%q", out.String())
	}
}
