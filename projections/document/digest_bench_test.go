package document

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/synth"
)

// BenchmarkDigestOf digests an issued invoice of 1,000 lines (about 16
// details each, 765 KB in protobuf), ledgerbench's: what the first digest
// of each issued document costs (DigestOf keeps it for the others).
func BenchmarkDigestOf(b *testing.B) {
	gen := synth.New(synth.Config{Seed: 1, Orgs: 1, AccountsPerOrg: 1000, Months: 1, RecordsPerMessage: 1000})
	p := billing.New()
	pos := uint64(0)
	for _, m := range gen.Hierarchy() {
		pos++
		if _, err := p.Apply(pos, m); err != nil {
			b.Fatal(err)
		}
	}
	for range 100 {
		pos++
		if _, err := p.Apply(pos, gen.Usage()); err != nil {
			b.Fatal(err)
		}
	}
	month := gen.Months()[0]
	pos++
	if _, err := p.Apply(pos, &billingv1.BillingCycleClosed{EventId: "close", Month: month.String(), ClosedAt: timestamppb.New(month.End().Add(time.Hour))}); err != nil {
		b.Fatal(err)
	}
	inv, err := p.Invoice(gen.BAN(0), month)
	if err != nil || inv.Status != billing.Issued || len(inv.Lines) < 1000 {
		b.Fatalf("invoice: %v, %v", inv, err)
	}
	for b.Loop() {
		if _, err := digestOf(inv); err != nil {
			b.Fatal(err)
		}
	}
}
