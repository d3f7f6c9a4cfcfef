package synth_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/services/synth"
)

// TestHistoryIsValidAndDeterministic folds a small generated history into
// the real billing projection: every message must be accepted, the usage
// must land on invoices rather than in exceptions, and the same config must
// give the same messages.
func TestHistoryIsValidAndDeterministic(t *testing.T) {
	cfg := synth.Config{Seed: 1, Orgs: 3, AccountsPerOrg: 40, Months: 3, RecordsPerMessage: 50}
	history := func() []proto.Message {
		g := synth.New(cfg)
		out := g.Hierarchy()
		for range 20 {
			out = append(out, g.Usage())
		}
		for _, m := range g.Months() {
			out = append(out, g.Extras(m)...)
		}
		return out
	}
	a, b := history(), history()
	if len(a) != len(b) {
		t.Fatalf("%d then %d messages", len(a), len(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("message %d differs between two runs of one config", i)
		}
	}
	p := billing.New()
	for i, m := range a {
		if _, err := p.Apply(uint64(i+1), m); err != nil {
			t.Fatalf("message %d (%T) refused: %v", i, m, err)
		}
	}
	ex, err := p.Exceptions("")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ex {
		if e.Kind != billing.PendingBenefit {
			t.Fatalf("exception %+v: generated usage should all be billable", e)
		}
	}
	g := synth.New(cfg)
	m := g.Months()[0]
	inv, err := p.Invoice(g.BAN(0), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Lines) == 0 || inv.Total.Sign() <= 0 {
		t.Fatalf("invoice of %s %s has %d lines, total %s", g.BAN(0), m, len(inv.Lines), inv.Total.String())
	}
}
