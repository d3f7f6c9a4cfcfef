package billing

import "testing"

// TestFoldRecordDoesNotAllocate: folding a usage record into a cell that
// exists, for an account already resolved, allocates nothing, because the
// hot path reuses its scratch values; only the cell's charge log grows now
// and then, by an eighth, which averages out below one allocation a record.
func TestFoldRecordDoesNotAllocate(t *testing.T) {
	l := newLedger(t)
	l.apply(org("acme", "BAN-A", "USD"))
	l.apply(provider("acme", "p1", "ws", "AWS", "111", ""))
	r := rec("AWS", "111", "EC2", "eu-west-1", "2018-03-01T10:00:00Z", "1.23456789", "USD")
	l.apply(usage(r))
	ev := l.p.ids.event("ev-0003")
	allocs := testing.AllocsPerRun(1000, func() { l.p.foldRecord(ev, r) })
	if allocs != 0 {
		t.Fatalf("foldRecord allocates %.1f times a record, want 0", allocs)
	}
	if got := l.bill("acme", "2018-03"); got.Text('f') != "1237.04" { // 1002 records of 1.23456789, rounded once
		t.Fatalf("bill after folding 1002 records = %s", got.Text('f'))
	}
}
