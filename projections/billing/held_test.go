package billing

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ledger-billing/ledger/projections/snapcodec"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// TestHeldUsage: usage of an account nobody registered is listed once per
// account, month, currency and reason, naming its first event, however
// many records and messages are behind it (DESIGN 6.1); a registration
// from mid-month places each held charge at its own instant, and what it
// does not cover stays listed, with its own first event.
func TestHeldUsage(t *testing.T) {
	l := newLedger(t)
	acme(l, "USD") // events ev-0001 to ev-0005
	// Ten messages of 30 records of account 111, March and April, two
	// services, charges on the 1st to the 28th: 10.00 a day of March.
	for i := range 10 {
		var recs []*billingv1.UsageRecord
		for j := range 30 {
			day := 1 + (i*30+j)%28
			recs = append(recs, rec("AWS", "111", []string{"EC2", "S3"}[j%2], "", fmt.Sprintf("2018-%02d-%02dT10:00:00Z", 3+j%2, day), "0.50", "USD"))
		}
		l.apply(usage(recs...)) // ev-0006 to ev-0015
	}
	ex, _ := l.p.Exceptions("")
	if len(ex) != 2 {
		t.Fatalf("exceptions = %+v, want one for March and one for April", ex)
	}
	for i, m := range []string{"2018-03", "2018-04"} {
		e := ex[i]
		if e.Kind != UnassignedUsage || e.Month != month(m) || e.EventID != "ev-0006" || e.Currency != "USD" || e.AccountID != "111" {
			t.Fatalf("exception %d = %+v, want %s's unassigned usage from ev-0006", i, e, m)
		}
		wantAmount(t, m+" held", &e.Amount, "75.00") // 150 records of 0.50
	}

	// Registered from 15 March: the charges of the 15th on are billed, each
	// at its instant; those of the 1st to the 14th still wait.
	l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", "2018-03-15T00:00:00Z"))
	ex, _ = l.p.Exceptions("")
	if len(ex) != 1 || ex[0].Month != month("2018-03") || ex[0].EventID != "ev-0006" {
		t.Fatalf("exceptions after the registration = %+v, want March before the 15th", ex)
	}
	var before, after int
	for i := range 300 {
		if j := i % 30; j%2 == 0 {
			if 1+i%28 < 15 {
				before++
			} else {
				after++
			}
		}
	}
	wantAmount(t, "March before the 15th", &ex[0].Amount, fmt.Sprintf("%d.%02d", before/2, before%2*50))
	wantAmount(t, "March billed", l.bill("acme", "2018-03"), fmt.Sprintf("%d.%02d", after/2, after%2*50))
	wantAmount(t, "April billed", l.bill("acme", "2018-04"), "75.00")

	// Registered from the beginning: nothing waits.
	l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
	if ex, _ := l.p.Exceptions(""); len(ex) != 0 {
		t.Fatalf("exceptions after the second registration = %+v", ex)
	}
	wantAmount(t, "March billed", l.bill("acme", "2018-03"), "75.00")
}

// TestHeldChargesAlikeLeaveAsOne: records alike (one account, month,
// service, region, instant, event and currency) wait and leave as one
// charge, as the queue has always handed them to their cell.
func TestHeldChargesAlikeLeaveAsOne(t *testing.T) {
	l := newLedger(t)
	acme(l, "USD")
	r := rec("AWS", "111", "EC2", "", "2018-03-01T10:00:00Z", "1.25", "USD")
	l.apply(usage(r, rec("AWS", "111", "EC2", "", "2018-03-01T10:00:00Z", "2.50", "USD"), rec("AWS", "111", "EC2", "", "2018-03-02T10:00:00Z", "4.00", "USD")))
	l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
	if l.p.cells.n != 1 {
		t.Fatalf("%d cells, want 1", l.p.cells.n)
	}
	c := l.p.cells.at(0)
	if c.n != 2 {
		t.Fatalf("the cell holds %d charges, want 2: the two alike as one", c.n)
	}
	got := c.charges()
	wantAmount(t, "the charges alike", &got[0].amount, "3.75")
	wantAmount(t, "the other", &got[1].amount, "4.00")
}

// TestSnapshotChecksHeldLogs: reading a snapshot decodes each held log
// (its cursor is where the decoding ends), so a log that does not decode,
// or names an event the snapshot does not know, is an error then, not a
// broken invariant at the next registration.
func TestSnapshotChecksHeldLogs(t *testing.T) {
	for name, damage := range map[string]func(l []byte) []byte{
		"cut":           func(l []byte) []byte { return l[:len(l)-1] },
		"unknown group": func(l []byte) []byte { return append([]byte{99}, l[1:]...) },
		"unknown event": func(l []byte) []byte {
			var cur logCursor
			return append(slices.Clone(l), appendCharge([]byte{0}, &cur, 0, 1_000_000, amt(t, "1"))...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			l := newLedger(t)
			l.apply(usage(rec("AWS", "1", "Amazon EC2", "us-east-1", "2018-01-02T00:00:00Z", "1.25", "USD"),
				rec("AWS", "1", "Amazon EC2", "us-east-1", "2018-01-03T00:00:00Z", "2.5", "USD")))
			q := &l.p.exceptions.unassigned
			if len(q.accounts) != 1 {
				t.Fatalf("%d accounts held, want 1", len(q.accounts))
			}
			if _, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, l.p))); err != nil {
				t.Fatalf("the snapshot before any damage: %v", err)
			}
			for _, ha := range q.accounts {
				ha.log = damage(ha.log)
			}
			if _, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, l.p))); !errors.Is(err, snapcodec.ErrCorrupt) {
				t.Fatalf("ReadSnapshot: %v, want ErrCorrupt", err)
			}
		})
	}
}
