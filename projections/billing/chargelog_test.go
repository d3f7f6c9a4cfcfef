package billing

import (
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
)

// TestChargeLogRoundTrip: every entry comes back exactly, whatever its
// sign, scale or size, including coefficients beyond 64 bits.
func TestChargeLogRoundTrip(t *testing.T) {
	m := calendar.New(2018, 3)
	ms := m.Start().UnixNano()
	entries := []struct {
		at     int64
		event  uint32
		amount string
	}{
		{ms, 0, "0"},
		{ms + 1, 1, "-0.00"},
		{ms + 3600e9, 7, "12.34"},
		{ms + 86400e9*30 + 999_999_999, 1 << 31, "-0.0000000001"},
		{ms + 5, 3, "123456789012345678901234567890.123456789"},
		{ms + 6, 3, "-18446744073709551616"}, // 2^64: the first that needs the big form
		{ms + 7, 4, "1E+5"},
	}
	parse := func(s string) *apd.Decimal {
		d, _, err := apd.NewFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var l chargeLog
	var cur logCursor
	for _, e := range entries {
		l = appendCharge(l, &cur, e.at-ms, e.event, parse(e.amount))
	}
	i := 0
	err := l.each(ms, logCursor{}, func(e *chargeEntry) {
		want := entries[i]
		if e.at != want.at || e.event != want.event || e.amount.Cmp(parse(want.amount)) != 0 || e.amount.Negative != parse(want.amount).Negative || e.amount.Exponent != parse(want.amount).Exponent {
			t.Errorf("entry %d = (%d, %d, %s), want (%d, %d, %s)", i, e.at-ms, e.event, e.amount.Text('f'), want.at-ms, want.event, want.amount)
		}
		i++
	})
	if err != nil || i != len(entries) {
		t.Fatalf("decoded %d of %d entries: %v", i, len(entries), err)
	}
	if err := l[:len(l)-1].each(ms, logCursor{}, func(*chargeEntry) {}); err == nil {
		t.Fatalf("a truncated log decoded without error")
	}
}
