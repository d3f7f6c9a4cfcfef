package document

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/synth"
)

// BenchmarkDigestOf digests an issued invoice of 1,000 lines (about 16
// details each, 765 KB in protobuf), ledgerbench's: what the first digest
// of each issued document costs (DigestOf keeps it for the others).
func BenchmarkDigestOf(b *testing.B) {
	inv := issuedInvoice(b, 1000)
	for b.Loop() {
		if _, err := digestOf(inv); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCanonicalizeInvoice holds Canonicalize to the reference on the
// protojson of a real invoice, the text every digest is made of.
func TestCanonicalizeInvoice(t *testing.T) {
	text, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(Invoice(issuedInvoice(t, 50), true))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Canonicalize(text)
	want, refErr := canonicalizeReference(text)
	if err != nil || refErr != nil || !bytes.Equal(got, want) {
		t.Fatalf("Canonicalize of an invoice's protojson differs from the reference (%v, %v)", err, refErr)
	}
}

// issuedInvoice returns the issued invoice of synth's first BAN with the
// given number of accounts, 100,000 usage records over them in one month.
func issuedInvoice(tb testing.TB, accounts int) *billing.Invoice {
	tb.Helper()
	gen := synth.New(synth.Config{Seed: 1, Orgs: 1, AccountsPerOrg: accounts, Months: 1, RecordsPerMessage: 1000})
	p := billing.New()
	pos := uint64(0)
	for _, m := range gen.Hierarchy() {
		pos++
		if _, err := p.Apply(pos, m); err != nil {
			tb.Fatal(err)
		}
	}
	for range 100 {
		pos++
		if _, err := p.Apply(pos, gen.Usage()); err != nil {
			tb.Fatal(err)
		}
	}
	month := gen.Months()[0]
	pos++
	if _, err := p.Apply(pos, &billingv1.BillingCycleClosed{EventId: "close", Month: month.String(), ClosedAt: timestamppb.New(month.End().Add(time.Hour))}); err != nil {
		tb.Fatal(err)
	}
	inv, err := p.Invoice(gen.BAN(0), month)
	if err != nil || inv.Status != billing.Issued || len(inv.Lines) < accounts {
		tb.Fatalf("invoice of %d accounts: %v", accounts, err)
	}
	return inv
}
