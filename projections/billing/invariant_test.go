package billing

import (
	"errors"
	"testing"

	"github.com/ledger-billing/ledger/projections/money"
)

// invariantPanic runs fn and returns the *InvariantError it panicked with,
// nil if it returned; any other panic fails the test.
func invariantPanic(t *testing.T, fn func()) (ie *InvariantError) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err, ok := r.(error)
		if !ok || !errors.As(err, &ie) {
			t.Fatalf("panicked with %T %v, want an *InvariantError", r, r)
		}
	}()
	fn()
	return nil
}

func TestInvariantErrorText(t *testing.T) {
	e := &InvariantError{Invariant: "document foots", Detail: "BAN-A 2018-03: total is 1.00, its lines sum to 2.00"}
	want := "billing: invariant broken: document foots: BAN-A 2018-03: total is 1.00, its lines sum to 2.00"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
}

// footingInvoice is a document that foots: a charges line of two details,
// an intra-organization line without details, and their total.
func footingInvoice(t *testing.T) *Invoice {
	t.Helper()
	usd, err := money.ParseCurrency("USD")
	if err != nil {
		t.Fatal(err)
	}
	detail := func(svc, amount string) Detail { return Detail{Service: svc, Amount: *amt(t, amount)} }
	inv := &Invoice{BAN: "BAN-A", Month: month("2018-03"), Currency: usd, Lines: []Line{
		{Kind: Charges, AccountID: "111", Amount: *amt(t, "3.00"), Details: []Detail{detail("EC2", "1.00"), detail("S3", "2.00")}},
		{Kind: IntraOrgAdjustment, AccountID: "111", Amount: *amt(t, "-0.50")},
	}}
	inv.Total.Set(amt(t, "2.50"))
	return inv
}

func TestCheckFoots(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(inv *Invoice)
	}{
		{"a line is not the sum of its details", func(inv *Invoice) { inv.Lines[0].Details[1].Amount.Set(amt(t, "2.01")) }},
		{"the total is not the sum of the lines", func(inv *Invoice) { inv.Total.Set(amt(t, "3.00")) }},
	}
	if e := invariantPanic(t, footingInvoice(t).checkFoots); e != nil {
		t.Fatalf("a document that foots: %v", e)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := footingInvoice(t)
			tt.spoil(inv)
			e := invariantPanic(t, inv.checkFoots)
			if e == nil || e.Invariant != invariantFoots {
				t.Fatalf("checkFoots of a document that does not foot: %v, want a %q *InvariantError", e, invariantFoots)
			}
			t.Log(e)
		})
	}
}

func TestCheckBalanced(t *testing.T) {
	adjustments := func(amounts ...string) []vdetail {
		out := make([]vdetail, len(amounts))
		for i, a := range amounts {
			out[i] = vdetail{key: detailKey{kind: IntraOrgAdjustment, acct: uint32(i)}}
			out[i].amount.Set(amt(t, a))
		}
		return out
	}
	if e := invariantPanic(t, func() { checkBalanced("acme", month("2018-03"), adjustments("-275.00", "-125.00", "400.00")) }); e != nil {
		t.Fatalf("balanced adjustments: %v", e)
	}
	e := invariantPanic(t, func() { checkBalanced("acme", month("2018-03"), adjustments("-275.00", "-125.01", "400.00")) })
	if e == nil || e.Invariant != invariantBalance {
		t.Fatalf("adjustments summing to -0.01: %v, want a %q *InvariantError", e, invariantBalance)
	}
}
