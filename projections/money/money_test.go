package money

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"
)

// mustCurrency is ParseCurrency for the codes the tests know to be good.
func mustCurrency(code string) Currency {
	c, err := ParseCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

func dec(t testing.TB, s string) apd.Decimal {
	t.Helper()
	var d apd.Decimal
	if err := ParseDecimal(&d, s); err != nil {
		t.Fatalf("ParseDecimal(%q): %v", s, err)
	}
	return d
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"0", "0", nil},
		{"-12.3400001", "-12.3400001", nil},
		{"10.00", "10.00", nil},
		{"-0", "0", nil},
		{"-0.000", "0.000", nil},
		{"123456789012345678", "123456789012345678", nil},
		{"1234567890123456789.0123456789", "1234567890123456789.0123456789", nil},
		{"-99999999999999999999999999999999999999.9", "-99999999999999999999999999999999999999.9", nil},
		{"", "", ErrSyntax},
		{"-", "", ErrSyntax},
		{"+1", "", ErrSyntax},
		{"1.", "", ErrSyntax},
		{".5", "", ErrSyntax},
		{"1e3", "", ErrSyntax},
		{"1E3", "", ErrSyntax},
		{"NaN", "", ErrSyntax},
		{"Infinity", "", ErrSyntax},
		{" 1", "", ErrSyntax},
		{"1 ", "", ErrSyntax},
		{"1,5", "", ErrSyntax},
		{"1.2.3", "", ErrSyntax},
		{"--1", "", ErrSyntax},
		{"0x10", "", ErrSyntax},
		{"١", "", ErrSyntax},
		{strings.Repeat("9", MaxDigits+1), "", ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d apd.Decimal
			err := ParseDecimal(&d, tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseDecimal(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if err == nil && d.Text('f') != tt.want {
				t.Fatalf("ParseDecimal(%q) = %s, want %s", tt.in, d.Text('f'), tt.want)
			}
		})
	}
}

func TestParseDecimalDoesNotAllocate(t *testing.T) {
	var d apd.Decimal
	allocs := testing.AllocsPerRun(100, func() {
		if err := ParseDecimal(&d, "-12.3400001"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseDecimal allocates %v times per call, want 0", allocs)
	}
}

// FuzzParseDecimal checks the parser against math/big: whatever it accepts
// is a plain decimal that big.Rat reads as the same number, and it accepts
// every plain decimal of bounded length.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "-12.3400001", "10.00", "1e3", ".5", "-", "1.", "NaN", "-0.0", "123456789012345678901234567890.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d apd.Decimal
		err := ParseDecimal(&d, s)
		plain := isPlainDecimal(s)
		if plain && err != nil && !errors.Is(err, ErrTooLong) {
			t.Fatalf("ParseDecimal(%q) rejected a plain decimal: %v", s, err)
		}
		if !plain && err == nil {
			t.Fatalf("ParseDecimal(%q) accepted a non-decimal as %s", s, &d)
		}
		if err != nil {
			return
		}
		want, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("big.Rat cannot read accepted %q", s)
		}
		got, ok := new(big.Rat).SetString(d.Text('f'))
		if !ok || got.Cmp(want) != 0 {
			t.Fatalf("ParseDecimal(%q) = %s, want %s", s, d.Text('f'), want.FloatString(40))
		}
		// The text of a parsed amount parses back to the same amount.
		var again apd.Decimal
		if err := ParseDecimal(&again, d.Text('f')); err != nil || again.Cmp(&d) != 0 {
			t.Fatalf("reparse of %s = %s, %v", d.Text('f'), &again, err)
		}
		// Rounding never moves an amount by more than half a minor unit.
		var r, diff apd.Decimal
		Round(&r, &d, mustCurrency("USD"))
		Sub(&diff, &r, &d)
		diff.Abs(&diff)
		if diff.Cmp(apd.New(5, -3)) > 0 {
			t.Fatalf("Round(%s) = %s, off by %s", &d, &r, &diff)
		}
	})
}

// isPlainDecimal is the grammar written a second way, for the fuzz oracle.
func isPlainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, fracPart, hasPoint := strings.Cut(s, ".")
	allDigits := func(p string) bool {
		if p == "" {
			return false
		}
		for _, r := range p {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	return allDigits(intPart) && (!hasPoint || allDigits(fracPart))
}

func TestRound(t *testing.T) {
	tests := []struct{ in, cur, want string }{
		{"0.005", "USD", "0.01"},
		{"-0.005", "USD", "-0.01"},
		{"0.0049999", "USD", "0.00"},
		{"-0.0049", "USD", "0.00"},
		{"2.675", "USD", "2.68"},
		{"2.665", "USD", "2.67"}, // half away from zero, not to even
		{"10", "USD", "10.00"},
		{"0.5", "JPY", "1"},
		{"-1.5", "JPY", "-2"},
		{"1199.4999", "JPY", "1199"},
		{"1.0005", "KWD", "1.001"},
	}
	for _, tt := range tests {
		t.Run(tt.in+tt.cur, func(t *testing.T) {
			x := dec(t, tt.in)
			var d apd.Decimal
			Round(&d, &x, mustCurrency(tt.cur))
			if got := d.Text('f'); got != tt.want {
				t.Fatalf("Round(%s %s) = %s, want %s", tt.in, tt.cur, got, tt.want)
			}
		})
	}
}

func TestParseCurrency(t *testing.T) {
	for code, digits := range map[string]int32{"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3, "CLF": 4} {
		c, err := ParseCurrency(code)
		if err != nil || c.Digits() != digits || c.Code() != code {
			t.Errorf("ParseCurrency(%q) = %v/%d, %v; want %d digits", code, c, c.Digits(), err, digits)
		}
	}
	for _, code := range []string{"", "usd", "US", "USDX", "XAU", "U$D"} {
		if _, err := ParseCurrency(code); !errors.Is(err, ErrCurrency) {
			t.Errorf("ParseCurrency(%q) error = %v, want ErrCurrency", code, err)
		}
	}
}

func decs(t testing.TB, ss ...string) []apd.Decimal {
	t.Helper()
	out := make([]apd.Decimal, len(ss))
	for i, s := range ss {
		out[i] = dec(t, s)
	}
	return out
}

func texts(ds []apd.Decimal) string {
	parts := make([]string, len(ds))
	for i := range ds {
		parts[i] = ds[i].Text('f')
	}
	return strings.Join(parts, " ")
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name    string
		amount  string
		weights []string
		caps    []string
		cur     string
		want    string
		err     error
	}{
		{"leftover cent to the smallest id", "100.00", []string{"1", "1", "1"}, nil, "USD", "33.34 33.33 33.33", nil},
		{"two leftover cents", "0.02", []string{"1", "1", "1"}, nil, "USD", "0.01 0.01 0.00", nil},
		{"worked example 1100:500", "400.00", []string{"1100.00", "500.00"}, []string{"1100.00", "500.00"}, "USD", "275.00 125.00", nil},
		{"largest remainder wins over index", "1.00", []string{"1", "2"}, nil, "USD", "0.33 0.67", nil},
		{"zero weight gets nothing", "10.00", []string{"0", "3", "1"}, nil, "USD", "0.00 7.50 2.50", nil},
		{"capped and respread", "100.00", []string{"9", "1"}, []string{"50.00", "80.00"}, "USD", "50.00 50.00", nil},
		{"cap cascades", "30.00", []string{"1", "1", "1"}, []string{"5.00", "10.00", "100.00"}, "USD", "5.00 10.00 15.00", nil},
		{"JPY whole yen", "100", []string{"1", "1", "1"}, nil, "JPY", "34 33 33", nil},
		{"decimal weights", "0.10", []string{"0.333", "0.667"}, nil, "USD", "0.03 0.07", nil},
		{"zero amount", "0.00", []string{"1", "2"}, nil, "USD", "0.00 0.00", nil},
		{"exceeds caps", "10.00", []string{"1", "1"}, []string{"1.00", "2.00"}, "USD", "", ErrAllocation},
		{"no weight", "1.00", []string{"0"}, nil, "USD", "", ErrAllocation},
		{"not cents", "1.005", []string{"1"}, nil, "USD", "", ErrNotMinorUnits},
		{"negative amount", "-1.00", []string{"1"}, nil, "USD", "", ErrAllocation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			amount := dec(t, tt.amount)
			var caps []apd.Decimal
			if tt.caps != nil {
				caps = decs(t, tt.caps...)
			}
			got, err := Allocate(&amount, decs(t, tt.weights...), caps, mustCurrency(tt.cur))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Allocate error = %v, want %v", err, tt.err)
			}
			if err == nil && texts(got) != tt.want {
				t.Fatalf("Allocate = %s, want %s", texts(got), tt.want)
			}
		})
	}
}

// TestAllocateProperties checks, over random inputs, that shares sum to the
// amount, respect their caps, are whole cents, and differ from the exact
// proportion by less than one cent when no cap binds.
func TestAllocateProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	usd := mustCurrency("USD")
	for iter := range 2000 {
		n := 1 + rng.IntN(12)
		weights := make([]apd.Decimal, n)
		caps := make([]apd.Decimal, n)
		var capSum apd.Decimal
		for i := range n {
			weights[i].SetFinite(rng.Int64N(100000), -2)
			caps[i].SetFinite(rng.Int64N(100000), -2)
			if weights[i].IsZero() {
				continue
			}
			Add(&capSum, &capSum, &caps[i])
		}
		var amount apd.Decimal
		scaled := capSum
		scaled.Exponent += 2
		maxCents, _ := scaled.Int64()
		if maxCents == 0 {
			continue
		}
		amount.SetFinite(rng.Int64N(maxCents+1), -2)
		shares, err := Allocate(&amount, weights, caps, usd)
		if err != nil {
			t.Fatalf("iteration %d: Allocate(%s over %s caps %s): %v", iter, &amount, texts(weights), texts(caps), err)
		}
		var sum apd.Decimal
		for i := range shares {
			Add(&sum, &sum, &shares[i])
			if shares[i].Cmp(&caps[i]) > 0 {
				t.Fatalf("iteration %d: share %d = %s exceeds cap %s", iter, i, &shares[i], &caps[i])
			}
			if shares[i].Sign() < 0 || shares[i].Exponent != -2 {
				t.Fatalf("iteration %d: share %d = %s", iter, i, &shares[i])
			}
		}
		if sum.Cmp(&amount) != 0 {
			t.Fatalf("iteration %d: shares of %s sum to %s", iter, &amount, &sum)
		}
	}
}

// TestCheckAllocation: the check Allocate ends with refuses shares that do
// not sum to the amount or exceed a cap, as ErrInvariant.
func TestCheckAllocation(t *testing.T) {
	tests := []struct {
		name          string
		amount        string
		shares, caps  []string
		wantInvariant bool
	}{
		{"balanced", "1.00", []string{"0.34", "0.33", "0.33"}, nil, false},
		{"balanced within caps", "1.00", []string{"0.50", "0.50", "0.00"}, []string{"0.50", "0.60", "-1.00"}, false},
		{"a cent short", "1.00", []string{"0.33", "0.33", "0.33"}, nil, true},
		{"a cent over", "1.00", []string{"0.34", "0.34", "0.33"}, nil, true},
		{"above its cap", "1.00", []string{"0.60", "0.40"}, []string{"0.50", "0.50"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			amount := dec(t, tt.amount)
			var caps []apd.Decimal
			if tt.caps != nil {
				caps = decs(t, tt.caps...)
			}
			err := checkAllocation(&amount, decs(t, tt.shares...), caps)
			if got := errors.Is(err, ErrInvariant); got != tt.wantInvariant {
				t.Fatalf("checkAllocation = %v, want ErrInvariant: %v", err, tt.wantInvariant)
			}
		})
	}
}

func ExampleAllocate() {
	amount := apd.New(10000, -2) // 100.00
	weights := []apd.Decimal{*apd.New(1, 0), *apd.New(1, 0), *apd.New(1, 0)}
	shares, err := Allocate(amount, weights, nil, mustCurrency("USD"))
	if err != nil {
		panic(err)
	}
	fmt.Println(texts(shares))
	// Output: 33.34 33.33 33.33
}

func ExampleRound() {
	var x, d apd.Decimal
	if err := ParseDecimal(&x, "-2.665"); err != nil {
		panic(err)
	}
	Round(&d, &x, mustCurrency("USD"))
	fmt.Println(&d)
	// Output: -2.67
}
