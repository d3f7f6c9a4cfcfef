package billing

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

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

// randomCharges returns n random entries of a month starting at ms, with
// instants on the hour, on the second or neither, events equal to,
// after and before the one before, and amounts of every sign, scale and
// size, including coefficients beyond 64 bits.
func randomCharges(rng *rand.Rand, ms int64, n int) []chargeEntry {
	out := make([]chargeEntry, n)
	ev := uint32(rng.Uint64N(1 << 32))
	for i := range out {
		e := &out[i]
		off := rng.Int64N(maxOffset)
		switch rng.IntN(3) {
		case 0:
			off -= off % int64(time.Hour)
		case 1:
			off -= off % int64(time.Second)
		}
		switch rng.IntN(6) {
		case 0: // the same event
		case 1:
			ev = uint32(rng.Uint64N(1 << 32))
		case 2:
			ev = [...]uint32{0, math.MaxUint32}[rng.IntN(2)]
		case 3:
			ev -= min(ev, uint32(rng.IntN(100)))
		default:
			ev += min(math.MaxUint32-ev, uint32(rng.IntN(3000)))
		}
		e.at, e.event = ms+off, ev
		switch rng.IntN(4) {
		case 0:
			e.amount.Coeff.SetUint64(rng.Uint64N(1000))
		case 1:
			e.amount.Coeff.SetUint64(rng.Uint64())
		case 2:
			e.amount.Coeff.SetUint64(rng.Uint64N(500_000_000_000))
		default:
			var b [20]byte
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			e.amount.Coeff.SetBytes(b[:1+rng.IntN(len(b))])
		}
		e.amount.Negative = rng.IntN(4) == 0
		e.amount.Exponent = int32(rng.IntN(40)) - 30
		if rng.IntN(50) == 0 {
			e.amount.Exponent = [...]int32{math.MinInt32, math.MaxInt32}[rng.IntN(2)]
		}
	}
	return out
}

func sameEntry(a, b *chargeEntry) bool {
	return a.at == b.at && a.event == b.event && a.amount.Negative == b.amount.Negative &&
		a.amount.Exponent == b.amount.Exponent && a.amount.Coeff.Cmp(&b.amount.Coeff) == 0 && a.amount.Form == b.amount.Form
}

// TestChargeLogRandomRoundTrip: random entries come back exactly, in the
// same form (sign, exponent and coefficient, not only the same value),
// from a log started at zero (a held log) or from a cell's first charge.
func TestChargeLogRandomRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 15))
	ms := calendar.New(2025, 1).Start().UnixNano()
	for i := range 200 {
		want := randomCharges(rng, ms, 1+rng.IntN(50))
		start := logCursor{}
		if i%2 == 1 {
			start = logCursor{latest: want[0].at - ms, event: want[0].event} // as a cell's logStart
			want = want[1:]
		}
		var l chargeLog
		cur := start
		for j := range want {
			l = appendCharge(l, &cur, want[j].at-ms, want[j].event, &want[j].amount)
		}
		j := 0
		err := l.each(ms, start, func(e *chargeEntry) {
			if j >= len(want) || !sameEntry(e, &want[j]) {
				t.Fatalf("log %d entry %d = (%d, %d, %v), want (%d, %d, %v)", i, j, e.at-ms, e.event, &e.amount, want[j].at-ms, want[j].event, &want[j].amount)
			}
			j++
		})
		if err != nil || j != len(want) {
			t.Fatalf("log %d: decoded %d of %d entries: %v", i, j, len(want), err)
		}
		k := 0
		err = l.scan(ms, start, func(at int64, ev uint32) {
			if at != want[k].at || ev != want[k].event {
				t.Fatalf("log %d scan %d = (%d, %d), want (%d, %d)", i, k, at-ms, ev, want[k].at-ms, want[k].event)
			}
			k++
		})
		if err != nil || k != len(want) {
			t.Fatalf("log %d: scanned %d of %d entries: %v", i, k, len(want), err)
		}
	}
}

// TestChargeLogSmall: the entries vendors' feeds make, an hourly charge of
// ten fraction digits in the event before's or the next, take the bytes
// the encoding promises (chargeLog).
func TestChargeLogSmall(t *testing.T) {
	cur := logCursor{latest: 3 * int64(time.Hour), event: 1000}
	for _, tc := range []struct {
		at     time.Duration
		event  uint32
		amount string
		size   int
	}{
		{4 * time.Hour, 1000, "12.3456789012", 1 + 1 + 1 + 5},
		{4 * time.Hour, 1001, "0.0000000001", 1 + 1 + 1 + 1},
		{2 * time.Hour, 990, "-3.5", 1 + 1 + 1 + 1},
		{26*24*time.Hour + 5*time.Second, 990, "49.9999999999", 4 + 1 + 1 + 5},    // 26 days of seconds on from 04:00
		{26*24*time.Hour + 5*time.Second + 1, 990, "1E+3", 1 + 1 + 1 + 1 + 1 + 1}, // nanoseconds; an exponent the header cannot hold
	} {
		a, _, err := apd.NewFromString(tc.amount)
		if err != nil {
			t.Fatal(err)
		}
		if l := appendCharge(nil, &cur, int64(tc.at), tc.event, a); len(l) != tc.size {
			t.Errorf("(%v, %d, %s) took %d bytes, want %d", tc.at, tc.event, tc.amount, len(l), tc.size)
		}
	}
}

// TestChargeLogCorrupt: a log cut anywhere but between entries, or with a
// byte changed, is errCorrupt or decodes to something; it never panics.
func TestChargeLogCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	ms := calendar.New(2025, 2).Start().UnixNano()
	for range 50 {
		want := randomCharges(rng, ms, 1+rng.IntN(20))
		var l chargeLog
		var cur logCursor
		ends := map[int]bool{0: true}
		for j := range want {
			l = appendCharge(l, &cur, want[j].at-ms, want[j].event, &want[j].amount)
			ends[len(l)] = true
		}
		for n := range len(l) {
			err := l[:n].each(ms, logCursor{}, func(*chargeEntry) {})
			if ends[n] != (err == nil) {
				t.Fatalf("cut at %d of %d (between entries: %v): %v", n, len(l), ends[n], err)
			}
		}
		for range 100 {
			bad := slices.Clone(l)
			bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
			if err := bad.each(ms, logCursor{}, func(*chargeEntry) {}); err != nil && !errors.Is(err, errCorrupt) {
				t.Fatalf("a changed byte: %v, want errCorrupt or nil", err)
			}
		}
	}
}

// FuzzChargeLog: whatever the bytes, decoding a log returns errCorrupt or
// entries in their months, never panics; entries it decodes encode again
// to a log that decodes to the same.
func FuzzChargeLog(f *testing.F) {
	ms := calendar.New(2024, 2).Start().UnixNano()
	rng := rand.New(rand.NewPCG(15, 17))
	for range 8 {
		var l chargeLog
		var cur logCursor
		for _, e := range randomCharges(rng, ms, 1+rng.IntN(5)) {
			l = appendCharge(l, &cur, e.at-ms, e.event, &e.amount)
		}
		f.Add([]byte(l), int64(0), uint32(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, latest int64, event uint32) {
		start := logCursor{latest: min(max(latest, 0), maxOffset-1), event: event}
		var got []chargeEntry
		err := chargeLog(b).each(ms, start, func(e *chargeEntry) {
			if e.at < ms || e.at >= ms+maxOffset {
				t.Fatalf("an entry %d ns from its month's start", e.at-ms)
			}
			got = append(got, chargeEntry{at: e.at, event: e.event})
			got[len(got)-1].amount.Set(&e.amount)
		})
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("%v, want errCorrupt", err)
			}
			return
		}
		var l chargeLog
		cur := start
		for i := range got {
			l = appendCharge(l, &cur, got[i].at-ms, got[i].event, &got[i].amount)
		}
		i := 0
		if err := l.each(ms, start, func(e *chargeEntry) {
			if !sameEntry(e, &got[i]) {
				t.Fatalf("entry %d = (%d, %d, %v) encoded again, was (%d, %d, %v)", i, e.at-ms, e.event, &e.amount, got[i].at-ms, got[i].event, &got[i].amount)
			}
			i++
		}); err != nil || i != len(got) {
			t.Fatalf("encoded again: %d of %d entries: %v", i, len(got), err)
		}
	})
}
