package console

import (
	"testing"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// TestSafeNext checks that the redirect after sign-in stays on this site.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/",
		"/usage?org=acme":         "/usage?org=acme",
		"//evil.example/":         "/",
		"https://evil.example/":   "/",
		"/\\evil.example":         "/",
		"javascript:alert(1)":     "/",
		"dashboard":               "/",
		"/dashboard?org=a#detail": "/dashboard?org=a#detail",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCell checks that texts from the history cannot be spreadsheet
// formulas in the CSV.
func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"Production":        "Production",
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")",
		"+1":                "'+1",
		"-1":                "'-1",
		"@SUM(A1)":          "'@SUM(A1)",
		"":                  "",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLayout checks the chart's geometry: heights in proportion, the
// largest bar the plot's height, a negative or zero month no height.
func TestLayout(t *testing.T) {
	bars := []*billingv1.DashboardBar{
		{Month: "2025-01", Amount: &billingv1.Money{Amount: "100.00", Currency: "USD"}},
		{Month: "2025-02", Amount: &billingv1.Money{Amount: "50.00", Currency: "USD"}},
		{Month: "2025-03", Amount: &billingv1.Money{Amount: "-5.00", Currency: "USD"}},
		{Month: "2025-04", Amount: &billingv1.Money{Amount: "0.00", Currency: "USD"}},
	}
	c := layout(bars, map[string]string{"2025-01": "issued", "2025-04": "draft"}, func(m string) string { return "/usage?month=" + m })
	plot := float64(chartHeight - chartTop - chartBottom)
	for i, want := range []float64{plot, plot / 2, 0, 0} {
		if b := c.Bars[i]; b.H != want || b.Y+b.H != c.Baseline {
			t.Errorf("bar %d: height %v at %v, want %v on the baseline %v", i, b.H, b.Y, want, c.Baseline)
		}
	}
	if !c.Bars[3].Draft || c.Bars[0].Draft || c.Bars[1].Href != "/usage?month=2025-02" {
		t.Errorf("bars %+v", c.Bars)
	}
	if empty := layout(nil, nil, nil); len(empty.Bars) != 0 {
		t.Error("bars without months")
	}
}
