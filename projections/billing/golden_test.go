package billing

import (
	"errors"
	"strings"
	"testing"
)

// TestWorkedExampleCycles is the first worked example of the documents
// (docs/architecture.md, "Documents"): late December usage becomes an update
// line on January's invoice, and January's reconciliation a post-bill update
// on its vendor view and an update line on February's invoice.
func TestWorkedExampleCycles(t *testing.T) {
	l := newLedger(t)
	l.apply(org("acme", "BAN-100", "USD"))
	l.apply(provider("acme", "prod", "ws", "AWS", "111111111111", ""))
	l.apply(usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2017-12-05T00:00:00Z", "10.00", "USD")))
	dec := l.apply(closeCycle("2017-12", "2018-01-01T00:00:00Z"))
	l.apply(usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2017-12-20T00:00:00Z", "1.00", "USD")))
	l.apply(usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2018-01-10T00:00:00Z", "3.00", "USD")))
	jan := l.apply(closeCycle("2018-01", "2018-02-01T00:00:00Z"))
	l.apply(reconciliation("AWS", "2018-01", reconLine("111111111111", "Amazon EC2", "5.00", "USD")))
	_, err := l.p.VendorView("BAN-100", month("2018-01"))
	var nf *NotFinalizedError
	if !errors.As(err, &nf) || !nf.AvailableFrom.Equal(ts("2018-02-10T00:00:00Z").AsTime()) {
		t.Fatalf("vendor view before finalization: error = %v, want a *NotFinalizedError saying from 2018-02-10", err)
	}
	fin := l.apply(finalize("2018-01", "2018-02-10T00:00:00Z"))
	l.apply(usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2018-02-03T00:00:00Z", "7.00", "USD")))
	feb := l.apply(closeCycle("2018-02", "2018-03-01T00:00:00Z"))

	if len(dec.Issued) != 1 || len(jan.Issued) != 1 || len(feb.Issued) != 1 || len(fin.Finalized) != 1 {
		t.Fatalf("issued %d, %d, %d invoices and %d vendor views; want one each", len(dec.Issued), len(jan.Issued), len(feb.Issued), len(fin.Finalized))
	}
	wantAmount(t, "invoice 2018-01 total", &jan.Issued[0].Total, "4.00")
	wantAmount(t, "update for 2017-12", lineAmount(t, jan.Issued[0], PreviousMonthUpdate, "111111111111", "2017-12", "Amazon EC2"), "1.00")
	wantAmount(t, "vendor view 2018-01 total", &fin.Finalized[0].Total, "5.00")
	wantAmount(t, "post-bill update", lineAmount(t, fin.Finalized[0], PostBillUpdate, "111111111111", "2018-01", "Amazon EC2"), "2.00")
	wantAmount(t, "update for 2018-01 on February", lineAmount(t, feb.Issued[0], PreviousMonthUpdate, "111111111111", "2018-01", "Amazon EC2"), "2.00")

	var b strings.Builder
	for _, inv := range []*Invoice{dec.Issued[0], jan.Issued[0], fin.Finalized[0], feb.Issued[0]} {
		b.WriteString(text(inv))
	}
	golden(t, "worked_example_cycles", b.String())
}

// TestWorkedExampleIntraOrg is the second worked example of the documents
// (docs/architecture.md, "Documents"): an RI bought by A and used by B, C and
// D (another organization).
func TestWorkedExampleIntraOrg(t *testing.T) {
	l := newLedger(t)
	l.apply(org("org1", "BAN-1", "USD"))
	l.apply(org("org2", "BAN-2", "USD"))
	for _, a := range []string{"A", "B", "C"} {
		l.apply(provider("org1", "p"+a, "ws", "AWS", a, ""))
	}
	l.apply(provider("org2", "pD", "ws", "AWS", "D", ""))
	l.apply(purchase("r1", "AWS", "A", "Amazon EC2", "us-east-1"))
	fee := rec("AWS", "A", "Amazon EC2", "us-east-1", "2018-03-01T00:00:00Z", "300.00", "USD")
	fee.ChargeCategory, fee.CommitmentId = "Purchase", "r1"
	l.apply(usage(fee,
		rec("AWS", "B", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "700.00", "USD"),
		rec("AWS", "C", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "300.00", "USD"),
	))
	l.apply(benefits("2018-03", riBenefit("r1", "B", "400.00", "USD"), riBenefit("r1", "C", "200.00", "USD"), riBenefit("r1", "D", "100.00", "USD")))
	closed := l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))

	org1 := closed.Issued[0]
	if org1.BAN != "BAN-1" {
		t.Fatalf("first invoice is %s", org1.BAN)
	}
	for _, c := range []struct {
		kind    LineKind
		account string
		want    string
	}{
		{InterCustomerAdjustment, "A", "-700.00"},
		{InterCustomerAdjustment, "B", "400.00"},
		{InterCustomerAdjustment, "C", "200.00"},
		{IntraOrgAdjustment, "A", "400.00"},
		{IntraOrgAdjustment, "B", "-275.00"},
		{IntraOrgAdjustment, "C", "-125.00"},
	} {
		wantAmount(t, c.kind.String()+" "+c.account, lineAmount(t, org1, c.kind, c.account, "", ""), c.want)
	}
	wantAmount(t, "org1 bill", &org1.Total, "1200.00")
	wantAmount(t, "D's inter-customer adjustment", lineAmount(t, closed.Issued[1], InterCustomerAdjustment, "D", "", ""), "100.00")

	adj, err := l.p.Adjustments("org1", month("2018-03"), InterCustomerAdjustment)
	if err != nil || len(adj) != 5 {
		t.Fatalf("inter-customer ledger = %+v, %v; want 5 entries", adj, err)
	}
	var b strings.Builder
	for _, inv := range closed.Issued {
		b.WriteString(text(inv))
	}
	for _, kind := range []LineKind{InterCustomerAdjustment, IntraOrgAdjustment} {
		entries, err := l.p.Adjustments("org1", month("2018-03"), kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b.WriteString(e.Kind.String() + " " + e.Vendor + " " + e.AccountID + " counterparty=" + e.CounterpartyAccountID + " ri=" + e.RIID + " " + e.Amount.Text('f') + " " + e.Description + "\n")
		}
	}
	golden(t, "worked_example_intra_org", b.String())
}
