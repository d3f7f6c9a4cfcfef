package billing

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// acme is an organization with a default BAN, a cost center on it and a
// cost center with its own BAN, and a workspace in each.
func acme(l *ledger, currency string) {
	l.apply(org("acme", "BAN-A", currency))
	l.apply(costCenter("acme", "shared", "", ""))
	l.apply(costCenter("acme", "research", "BAN-R", ""))
	l.apply(workspace("acme", "ws-shared", "shared", ""))
	l.apply(workspace("acme", "ws-research", "research", ""))
}

func TestRules(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, l *ledger)
	}{
		{"provider moved mid-month bills each half to its BAN", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(provider("acme", "p1", "ws-research", "AWS", "111", "2018-03-15T00:00:00Z"))
			l.apply(usage(
				rec("AWS", "111", "EC2", "eu-west-1", "2018-03-14T23:00:00Z", "10.00", "USD"),
				rec("AWS", "111", "EC2", "eu-west-1", "2018-03-15T00:00:00Z", "20.00", "USD"),
			))
			l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
			wantAmount(t, "default BAN", &l.invoice("BAN-A", "2018-03").Total, "10.00")
			wantAmount(t, "research BAN", &l.invoice("BAN-R", "2018-03").Total, "20.00")
			if cc := l.invoice("BAN-R", "2018-03").Lines[0].CostCenterID; cc != "research" {
				t.Fatalf("cost center of the research line = %q", cc)
			}
		}},
		{"a move back-dated over folded charges re-attributes them before the close", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "eu-west-1", "2018-03-14T23:00:00Z", "10.00", "USD"),
				rec("AWS", "111", "EC2", "eu-west-1", "2018-03-15T00:00:00Z", "20.00", "USD"),
				rec("AWS", "111", "EC2", "eu-west-1", "2018-03-20T00:00:00Z", "0.005", "USD"),
			))
			l.apply(provider("acme", "p1", "ws-research", "AWS", "111", "2018-03-15T00:00:00Z"))
			l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
			a, r := l.invoice("BAN-A", "2018-03"), l.invoice("BAN-R", "2018-03")
			wantAmount(t, "default BAN", &a.Total, "10.00")
			wantAmount(t, "research BAN", &r.Total, "20.01") // 20.005 rounded once, as one detail
			if got := r.Lines[0].Details[0].EventIDs; len(got) != 1 || got[0] != "ev-0007" {
				t.Fatalf("lineage of the moved detail = %v, want the usage event", got)
			}
		}},
		{"a move back-dated over a closed month is an update line on both BANs", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(provider("acme", "p2", "ws-shared", "AWS", "222", ""))
			l.apply(purchase("r1", "AWS", "222", "EC2", "eu-west-1"))
			l.apply(usage(
				rec("AWS", "111", "EC2", "eu-west-1", "2018-03-10T00:00:00Z", "10.00", "USD"),
				rec("AWS", "111", "EC2", "eu-west-1", "2018-03-20T00:00:00Z", "20.00", "USD"),
				rec("AWS", "222", "EC2", "eu-west-1", "2018-03-20T00:00:00Z", "100.00", "USD"),
			))
			l.apply(benefits("2018-03", riBenefit("r1", "111", "4.00", "USD")))
			l.apply(reconciliation("AWS", "2018-03", reconLine("111", "EC2", "31.00", "USD")))
			march := text(l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z")).Issued[0])
			wantAmount(t, "March on the default BAN", &l.invoice("BAN-A", "2018-03").Total, "131.00")

			// In April we learn that 111 moved to research on 15 March.
			l.apply(provider("acme", "p1", "ws-research", "AWS", "111", "2018-03-15T00:00:00Z"))
			if got := text(l.invoice("BAN-A", "2018-03")); got != march {
				t.Fatalf("the issued March invoice changed:\n%s\nwas:\n%s", got, march)
			}
			apr := l.apply(closeCycle("2018-04", "2018-05-01T00:00:00Z"))
			var a, r *Invoice
			for _, inv := range apr.Issued {
				switch inv.BAN {
				case "BAN-A":
					a = inv
				case "BAN-R":
					r = inv
				}
			}
			// The charge of the 20th, the reconciliation's true-up and the
			// RI debit (both at the end of March) move; the charge of the
			// 10th stays.
			wantAmount(t, "EC2 update on the default BAN", lineAmount(t, a, PreviousMonthUpdate, "111", "2018-03", "EC2"), "-21.00")
			wantAmount(t, "EC2 update on research", lineAmount(t, r, PreviousMonthUpdate, "111", "2018-03", "EC2"), "21.00")
			wantAmount(t, "RI debit update on the default BAN", lineAmount(t, a, PreviousMonthUpdate, "111", "2018-03", "Inter-Customer Adjustment"), "-4.00")
			wantAmount(t, "RI debit update on research", lineAmount(t, r, PreviousMonthUpdate, "111", "2018-03", "Inter-Customer Adjustment"), "4.00")
			wantAmount(t, "the organization's March, unchanged", l.bill("acme", "2018-03"), "131.00")
		}},
		{"a provider re-pointed at another account leaves the old account's later charges unassigned", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "1.00", "USD"),
				rec("AWS", "111", "EC2", "", "2018-03-21T00:00:00Z", "2.00", "USD"),
			))
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "999", "2018-03-21T00:00:00Z"))
			ex, _ := l.p.Exceptions("")
			if len(ex) != 1 || ex[0].Kind != UnassignedUsage || ex[0].AccountID != "111" {
				t.Fatalf("exceptions = %+v, want 111's charge of the 21st unassigned", ex)
			}
			wantAmount(t, "unassigned", &ex[0].Amount, "2.00")
			wantAmount(t, "March", l.bill("acme", "2018-03"), "1.00")
		}},
		{"a move to an organization in another currency holds the charges as mismatches until it is undone", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(org("tokyo", "BAN-T", "JPY"))
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "1.00", "USD"),
				rec("AWS", "111", "EC2", "", "2018-03-20T00:00:00Z", "2.00", "USD"),
			))
			l.apply(reconciliation("AWS", "2018-03", reconLine("111", "EC2", "3.50", "USD")))
			wantAmount(t, "March before the move", l.bill("acme", "2018-03"), "3.50")
			l.apply(provider("tokyo", "t1", "ws", "AWS", "111", "2018-03-10T00:00:00Z"))
			wantAmount(t, "acme's March after the move", l.bill("acme", "2018-03"), "1.00")
			ex, _ := l.p.Exceptions("tokyo")
			if len(ex) != 2 || ex[0].Kind != CurrencyMismatch || ex[1].Kind != CurrencyMismatch {
				t.Fatalf("tokyo's exceptions = %+v, want the usage of the 20th and the reconciliation", ex)
			}
			// Registered in error: the account is acme's again.
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", "2018-03-10T00:00:00Z"))
			if ex, _ := l.p.Exceptions(""); len(ex) != 0 {
				t.Fatalf("exceptions after the move back = %+v", ex)
			}
			wantAmount(t, "acme's March again", l.bill("acme", "2018-03"), "3.50")
		}},
		{"cost center without BAN bills the org default, with one its own", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(provider("acme", "p2", "ws-research", "AWS", "222", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "1.00", "USD"),
				rec("AWS", "222", "EC2", "", "2018-03-01T00:00:00Z", "2.00", "USD"),
			))
			a := l.invoice("BAN-A", "2018-03")
			if a.Status != Draft {
				t.Fatalf("open month status = %v, want DRAFT", a.Status)
			}
			wantAmount(t, "111 on the default BAN", lineAmount(t, a, Charges, "111", "", ""), "1.00")
			noLine(t, a, Charges, "222")
			wantAmount(t, "222 on its cost center's BAN", lineAmount(t, l.invoice("BAN-R", "2018-03"), Charges, "222", "", ""), "2.00")
			bars, err := l.p.Dashboard("acme", "research", month("2018-03"), month("2018-03"))
			if err != nil || len(bars) != 1 {
				t.Fatalf("Dashboard = %v, %v", bars, err)
			}
			wantAmount(t, "research bar", &bars[0].Amount, "2.00")
		}},
		{"unassigned usage attributed before the close", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(usage(rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "4.00", "USD")))
			ex, _ := l.p.Exceptions("")
			if len(ex) != 1 || ex[0].Kind != UnassignedUsage || ex[0].AccountID != "111" || ex[0].EventID != "ev-0006" {
				t.Fatalf("exceptions = %+v, want the unassigned usage", ex)
			}
			wantAmount(t, "unassigned amount", &ex[0].Amount, "4.00")
			l.apply(provider("acme", "p1", "ws-shared", "aws", "111", ""))
			if ex, _ := l.p.Exceptions(""); len(ex) != 0 {
				t.Fatalf("exceptions after registration = %+v", ex)
			}
			issued := l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
			wantAmount(t, "March", &issued.Issued[0].Total, "4.00")
		}},
		{"unassigned usage attributed after the close is an update line", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p0", "ws-shared", "AWS", "000", ""))
			l.apply(usage(rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "4.00", "USD")))
			l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
			wantAmount(t, "March without the unassigned usage", &l.invoice("BAN-A", "2018-03").Total, "0.00")
			// Registered from the 2nd only: the charge of the 1st still waits.
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", "2018-03-02T00:00:00Z"))
			if ex, _ := l.p.Exceptions(""); len(ex) != 1 {
				t.Fatalf("exceptions = %+v, want the charge still unassigned", ex)
			}
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			apr := l.apply(closeCycle("2018-04", "2018-05-01T00:00:00Z"))
			wantAmount(t, "update for March", lineAmount(t, apr.Issued[0], PreviousMonthUpdate, "111", "2018-03", "EC2"), "4.00")
			wantAmount(t, "V(March) now", l.bill("acme", "2018-03"), "4.00")
		}},
		{"a reconciliation replaces usage and a later one replaces it again", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "us-east-1", "2018-03-01T00:00:00Z", "1.004", "USD"),
				rec("AWS", "111", "EC2", "us-west-2", "2018-03-01T00:00:00Z", "2.004", "USD"),
				rec("AWS", "111", "S3", "us-east-1", "2018-03-01T00:00:00Z", "0.50", "USD"),
			))
			l.apply(reconciliation("AWS", "2018-03", reconLine("111", "EC2", "5.00", "USD")))
			wantAmount(t, "after the first", l.bill("acme", "2018-03"), "5.50")
			l.apply(reconciliation("AWS", "2018-03", reconLine("111", "EC2", "2.995", "USD")))
			wantAmount(t, "after the second", l.bill("acme", "2018-03"), "3.50") // 2.995 rounds to 3.00
			l.apply(usage(rec("AWS", "111", "EC2", "us-east-1", "2018-03-20T00:00:00Z", "7.00", "USD")))
			wantAmount(t, "usage after the reconciliation", l.bill("acme", "2018-03"), "3.50")
			inv := l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z")).Issued[0]
			wantAmount(t, "EC2 charges", lineAmount(t, inv, Charges, "111", "", ""), "3.50")
			var trueUp *Detail
			for i, d := range inv.Lines[0].Details {
				if d.Description == "Vendor reconciliation" {
					trueUp = &inv.Lines[0].Details[i]
				}
			}
			if trueUp == nil || trueUp.Region != "" || trueUp.Service != "EC2" {
				t.Fatalf("no reconciliation detail with an empty region in\n%s", text(inv))
			}
			wantAmount(t, "true-up", &trueUp.Amount, "-7.00")
		}},
		{"an RI benefit before its purchase waits", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(provider("acme", "p2", "ws-shared", "AWS", "222", ""))
			l.apply(usage(rec("AWS", "222", "EC2", "", "2018-03-01T00:00:00Z", "50.00", "USD")))
			l.apply(benefits("2018-03", riBenefit("r9", "222", "10.00", "USD")))
			ex, _ := l.p.Exceptions("")
			if len(ex) != 1 || ex[0].Kind != PendingBenefit || !strings.Contains(ex[0].Reason, "r9") {
				t.Fatalf("exceptions = %+v, want the pending benefit", ex)
			}
			wantAmount(t, "before the purchase", l.bill("acme", "2018-03"), "50.00")
			l.apply(purchase("r9", "AWS", "111", "EC2", "us-east-1"))
			if ex, _ := l.p.Exceptions(""); len(ex) != 0 {
				t.Fatalf("exceptions after the purchase = %+v", ex)
			}
			inv := l.invoice("BAN-A", "2018-03")
			wantAmount(t, "consumer", lineAmount(t, inv, InterCustomerAdjustment, "222", "", ""), "10.00")
			wantAmount(t, "purchaser", lineAmount(t, inv, InterCustomerAdjustment, "111", "", ""), "-10.00")
			wantAmount(t, "total", &inv.Total, "50.00")
		}},
		{"an RI used by its purchaser has no inter-customer adjustment", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(purchase("r1", "AWS", "111", "EC2", "us-east-1"))
			l.apply(usage(rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "30.00", "USD")))
			l.apply(benefits("2018-03", riBenefit("r1", "111", "30.00", "USD")))
			inv := l.invoice("BAN-A", "2018-03")
			noLine(t, inv, InterCustomerAdjustment, "111")
			wantAmount(t, "total", &inv.Total, "30.00")
		}},
		{"a consumer in another organization", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(org("other", "BAN-O", "USD"))
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(provider("other", "p9", "ws", "AWS", "999", ""))
			l.apply(purchase("r1", "AWS", "111", "EC2", "us-east-1"))
			l.apply(usage(
				rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "100.00", "USD"),
				rec("AWS", "999", "EC2", "", "2018-03-01T00:00:00Z", "5.00", "USD"),
			))
			l.apply(benefits("2018-03", riBenefit("r1", "999", "40.005", "USD")))
			wantAmount(t, "consumer org", &l.invoice("BAN-O", "2018-03").Total, "45.01")
			wantAmount(t, "purchaser org", &l.invoice("BAN-A", "2018-03").Total, "59.99")
			noLine(t, l.invoice("BAN-A", "2018-03"), IntraOrgAdjustment, "111")
		}},
		{"an intra-org credit larger than the positive total is capped", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(org("other", "BAN-O", "USD"))
			l.apply(provider("acme", "pa", "ws-shared", "AWS", "a", ""))
			l.apply(provider("acme", "pb", "ws-shared", "AWS", "b", ""))
			l.apply(provider("other", "pd", "ws", "AWS", "d", ""))
			l.apply(purchase("r1", "AWS", "a", "EC2", ""))
			l.apply(usage(
				rec("AWS", "a", "EC2", "", "2018-03-01T00:00:00Z", "100.00", "USD"),
				rec("AWS", "b", "EC2", "", "2018-03-01T00:00:00Z", "300.00", "USD"),
			))
			l.apply(benefits("2018-03", riBenefit("r1", "d", "1100.00", "USD")))
			inv := l.invoice("BAN-A", "2018-03")
			// a: 100 - 1100 = -1000; b: 300. R = 300: b back to zero.
			wantAmount(t, "b", lineAmount(t, inv, IntraOrgAdjustment, "b", "", ""), "-300.00")
			wantAmount(t, "a", lineAmount(t, inv, IntraOrgAdjustment, "a", "", ""), "300.00")
			wantAmount(t, "org bill", &inv.Total, "-700.00")
		}},
		{"leftover cents go to the smaller account id", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(org("other", "BAN-O", "USD"))
			for _, a := range []string{"a3", "a1", "a2", "r"} {
				l.apply(provider("acme", "p"+a, "ws-shared", "AWS", a, ""))
			}
			l.apply(provider("other", "pd", "ws", "AWS", "d", ""))
			l.apply(purchase("r1", "AWS", "r", "EC2", ""))
			l.apply(usage(
				rec("AWS", "a3", "EC2", "", "2018-03-01T00:00:00Z", "50.00", "USD"),
				rec("AWS", "a1", "EC2", "", "2018-03-01T00:00:00Z", "50.00", "USD"),
				rec("AWS", "a2", "EC2", "", "2018-03-01T00:00:00Z", "50.00", "USD"),
			))
			l.apply(benefits("2018-03", riBenefit("r1", "d", "100.00", "USD")))
			inv := l.invoice("BAN-A", "2018-03")
			for a, want := range map[string]string{"a1": "-33.34", "a2": "-33.33", "a3": "-33.33", "r": "100.00"} {
				wantAmount(t, "intra "+a, lineAmount(t, inv, IntraOrgAdjustment, a, "", ""), want)
			}
		}},
		{"negative usage lines", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(provider("acme", "p2", "ws-shared", "AWS", "222", ""))
			credit := rec("AWS", "111", "Support", "", "2018-03-01T00:00:00Z", "-12.345", "USD")
			credit.ChargeCategory = "Credit"
			l.apply(usage(credit, rec("AWS", "222", "EC2", "", "2018-03-01T00:00:00Z", "10.00", "USD")))
			inv := l.invoice("BAN-A", "2018-03")
			wantAmount(t, "credit line", lineAmount(t, inv, Charges, "111", "", ""), "-12.35")
			// 111 is negative: 222's 10.00 absorbs it, both spread to zero
			// and what is left stays with 111.
			wantAmount(t, "intra 222", lineAmount(t, inv, IntraOrgAdjustment, "222", "", ""), "-10.00")
			wantAmount(t, "intra 111", lineAmount(t, inv, IntraOrgAdjustment, "111", "", ""), "10.00")
			wantAmount(t, "total", &inv.Total, "-2.35")
		}},
		{"a JPY organization rounds to whole yen", func(t *testing.T, l *ledger) {
			acme(l, "JPY")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "ap-northeast-1", "2018-03-01T00:00:00Z", "1199.5", "JPY"),
				rec("AWS", "111", "S3", "ap-northeast-1", "2018-03-01T00:00:00Z", "0.49", "JPY"),
			))
			inv := l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z")).Issued[0]
			if inv.Currency.Code() != "JPY" || inv.Total.Text('f') != "1200" {
				t.Fatalf("JPY invoice total = %s %s, want 1200 JPY\n%s", inv.Total.Text('f'), inv.Currency, text(inv))
			}
		}},
		{"a currency mismatch is an exception, not a charge", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "9.00", "EUR"),
				rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "1.00", "USD"),
			))
			wantAmount(t, "billed", &l.invoice("BAN-A", "2018-03").Total, "1.00")
			ex, err := l.p.Exceptions("acme")
			if err != nil || len(ex) != 1 || ex[0].Kind != CurrencyMismatch || ex[0].Currency != "EUR" || ex[0].OrgID != "acme" {
				t.Fatalf("exceptions = %+v, %v; want one EUR mismatch", ex, err)
			}
			wantAmount(t, "mismatch", &ex[0].Amount, "9.00")
		}},
		{"each detail is rounded, the line is the sum of rounded details", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(
				rec("AWS", "111", "EC2", "a", "2018-03-01T00:00:00Z", "0.005", "USD"),
				rec("AWS", "111", "EC2", "b", "2018-03-01T00:00:00Z", "0.005", "USD"),
				rec("AWS", "111", "EC2", "c", "2018-03-01T00:00:00Z", "0.0025", "USD"),
				rec("AWS", "111", "EC2", "c", "2018-03-02T00:00:00Z", "0.0025", "USD"),
			))
			wantAmount(t, "line", lineAmount(t, l.invoice("BAN-A", "2018-03"), Charges, "111", "", ""), "0.03")
		}},
		{"issued invoices are frozen", func(t *testing.T, l *ledger) {
			acme(l, "USD")
			l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
			l.apply(usage(rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "1.00", "USD")))
			issued := l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z")).Issued
			before := text(issued[0])
			l.apply(usage(rec("AWS", "111", "EC2", "", "2018-03-02T00:00:00Z", "1.00", "USD")))
			l.apply(reconciliation("AWS", "2018-03", reconLine("111", "EC2", "9.00", "USD")))
			if got := text(l.invoice("BAN-A", "2018-03")); got != before {
				t.Fatalf("issued invoice changed:\n%s\nwas:\n%s", got, before)
			}
			wantAmount(t, "the draft of April carries the change", lineAmount(t, l.invoice("BAN-A", "2018-04"), PreviousMonthUpdate, "111", "2018-03", "EC2"), "8.00")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newLedger(t))
		})
	}
}

// bill returns the total of V(M, now) of an organization.
func (l *ledger) bill(orgID, m string) *apd.Decimal {
	l.t.Helper()
	total := new(apd.Decimal)
	lines, err := l.p.bill(orgID, month(m))
	if err != nil {
		l.t.Fatal(err)
	}
	for i := range lines {
		money.Add(total, total, &lines[i].Amount)
	}
	return total
}

func TestCycleOrder(t *testing.T) {
	l := newLedger(t)
	acme(l, "USD")
	if _, err := l.try(finalize("2018-03", "2018-04-10T00:00:00Z")); !errors.Is(err, ErrNotClosed) {
		t.Fatalf("finalize before close: %v", err)
	}
	l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
	for _, c := range []struct {
		msg  *billingv1.BillingCycleClosed
		want error
	}{
		{closeCycle("2018-03", "2018-04-01T00:00:00Z"), ErrAlreadyClosed},
		{closeCycle("2018-02", "2018-04-01T00:00:00Z"), ErrAlreadyClosed},
		{closeCycle("2018-05", "2018-06-01T00:00:00Z"), ErrOutOfOrder},
		{closeCycle("2018-5", "2018-06-01T00:00:00Z"), calendar.ErrMalformed},
	} {
		if err := l.p.CanClose(mustParseOrZero(c.msg.Month)); c.want != calendar.ErrMalformed && !errors.Is(err, c.want) {
			t.Errorf("CanClose(%s) = %v, want %v", c.msg.Month, err, c.want)
		}
		a, err := l.try(c.msg)
		if !errors.Is(err, c.want) || len(a.Issued) != 0 {
			t.Errorf("close %s: %v (%d issued), want %v", c.msg.Month, err, len(a.Issued), c.want)
		}
	}
	if err := l.p.CanClose(month("2018-04")); err != nil {
		t.Fatalf("CanClose(next month) = %v", err)
	}
	if _, err := l.try(finalize("2018-03", "2018-04-10T00:00:00Z")); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if err := l.p.CanFinalize(month("2018-03")); !errors.Is(err, ErrAlreadyFinalized) {
		t.Fatalf("CanFinalize again = %v", err)
	}
	if _, err := l.p.Apply(l.pos, usage()); !errors.Is(err, ErrStalePosition) {
		t.Fatalf("stale position: %v", err)
	}
	dup := usage(rec("AWS", "1", "EC2", "", "2018-03-01T00:00:00Z", "1", "USD"))
	dup.EventId = "ev-0001"
	if _, err := l.try(dup); !errors.Is(err, ErrDuplicateEvent) {
		t.Fatalf("duplicate event id: %v", err)
	}
}

func mustParseOrZero(s string) calendar.Month {
	m, _ := calendar.Parse(s)
	return m
}

func TestQueryErrors(t *testing.T) {
	l := newLedger(t)
	acme(l, "USD")
	l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
	if _, err := l.p.Invoice("BAN-NOPE", month("2018-03")); !errors.Is(err, ErrUnknownBAN) {
		t.Errorf("unknown BAN: %v", err)
	}
	if _, err := l.p.UsageHistory("nope", month("2018-01"), month("2018-03"), BillingCycle); !errors.Is(err, ErrUnknownOrganization) {
		t.Errorf("unknown org: %v", err)
	}
	if _, err := l.p.Dashboard("acme", "nope", month("2018-01"), month("2018-03")); !errors.Is(err, ErrUnknownCostCenter) {
		t.Errorf("unknown cost center: %v", err)
	}
	if _, err := l.p.Invoice("BAN-A", month("2018-02")); !errors.Is(err, ErrNotBilled) {
		t.Errorf("month before the first close: %v", err)
	}
	if _, err := l.p.Invoices("BAN-A", month("2018-03"), month("2018-01")); !errors.Is(err, calendar.ErrRange) {
		t.Errorf("reversed range: %v", err)
	}
	_, err := l.p.VendorView("BAN-A", month("2018-03"))
	var nf *NotFinalizedError
	if !errors.Is(err, ErrNotFinalized) || !errors.As(err, &nf) || nf.AvailableFrom.Format("2006-01-02") != "2018-04-10" || !nf.Closed {
		t.Errorf("vendor view before finalization: %v", err)
	}
	if _, err := l.try(&billingv1.ReservedInstanceBenefitReported{Month: "March"}); !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), "month") {
		t.Errorf("malformed month in an event: %v", err)
	}
	hist, err := l.p.UsageHistory("acme", month("2018-02"), month("2018-04"), BillingCycle)
	if err != nil || len(hist) != 3 || hist[0].Available || !hist[1].Available || !hist[2].Available {
		t.Errorf("usage history = %+v, %v", hist, err)
	}
}

func TestCurrency(t *testing.T) {
	l := newLedger(t)
	l.apply(org("acme", "BAN-A", "USD"))
	l.apply(org("tokyo", "BAN-T", "JPY"))
	// A second registration does not change the currency: invoices were
	// issued in the first.
	l.apply(org("tokyo", "BAN-T2", "EUR"))
	for _, tc := range []struct{ org, want string }{{"acme", "USD"}, {"tokyo", "JPY"}} {
		c, err := l.p.Currency(tc.org)
		if err != nil || c.Code() != tc.want || (tc.want == "JPY") != (c.Digits() == 0) {
			t.Errorf("Currency(%s) = %v (%d digits), %v; want %s", tc.org, c, c.Digits(), err, tc.want)
		}
	}
	if _, err := l.p.Currency("nobody"); !errors.Is(err, ErrUnknownOrganization) || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("Currency(nobody) = %v, want ErrUnknownOrganization naming it", err)
	}
}

// TestUsageMonthAvailability checks the one rule of UsageMonth,
// UsageHistory, Invoice and VendorView: a vendor cycle month not finalized
// is a *NotFinalizedError (saying whether its billing cycle is closed), not
// a month without lines; a billing cycle month before the first close has
// no lines and is not available.
func TestUsageMonthAvailability(t *testing.T) {
	l := newLedger(t)
	acme(l, "USD")
	l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
	l.apply(usage(
		rec("AWS", "111", "EC2", "", "2018-02-10T00:00:00Z", "2.00", "USD"),
		rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "5.00", "USD"),
	))
	l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
	l.apply(closeCycle("2018-04", "2018-05-01T00:00:00Z"))
	l.apply(finalize("2018-03", "2018-04-10T00:00:00Z"))

	for _, tc := range []struct {
		month  string
		closed bool
	}{{"2018-04", true}, {"2018-05", false}} {
		u, err := l.p.UsageMonth("acme", month(tc.month), VendorCycle)
		var nf *NotFinalizedError
		if !errors.As(err, &nf) || !errors.Is(err, ErrNotFinalized) || nf.Month != month(tc.month) || nf.Closed != tc.closed {
			t.Fatalf("UsageMonth(%s, vendor) = %+v, %v; want a *NotFinalizedError with Closed %v", tc.month, u, err, tc.closed)
		}
		_, viewErr := l.p.VendorView("BAN-A", month(tc.month))
		if viewErr == nil || viewErr.Error() != err.Error() {
			t.Errorf("VendorView(%s) = %v, UsageMonth says %v: one rule, one error", tc.month, viewErr, err)
		}
	}
	u, err := l.p.UsageMonth("acme", month("2018-03"), VendorCycle)
	// The vendor's March is March's own 5.00; February's 2.00 is an update
	// line on March's invoice only.
	if err != nil || len(u.Lines) != 1 || u.Total.Text('f') != "5.00" {
		t.Fatalf("UsageMonth(2018-03, vendor) = %+v, %v; want the finalized 5.00", u, err)
	}
	// Before the first close, in the billing cycle: no invoice of its own,
	// so no lines, and no error: its charges are on March's invoice.
	if u, err := l.p.UsageMonth("acme", month("2018-02"), BillingCycle); err != nil || len(u.Lines) != 0 {
		t.Fatalf("UsageMonth(2018-02, billing) = %+v, %v; want no lines", u, err)
	}

	for _, tc := range []struct {
		view View
		want string
	}{
		{BillingCycle, "2018-02 false 0.00, 2018-03 true 7.00, 2018-04 true 0.00, 2018-05 true 0.00"},
		{VendorCycle, "2018-02 false 0.00, 2018-03 true 5.00, 2018-04 false 0.00, 2018-05 false 0.00"},
	} {
		hist, err := l.p.UsageHistory("acme", month("2018-02"), month("2018-05"), tc.view)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hist {
			got = append(got, fmt.Sprintf("%s %v %s", h.Month, h.Available, h.Total.Text('f')))
		}
		if strings.Join(got, ", ") != tc.want {
			t.Errorf("UsageHistory(view %d) = %s, want %s", tc.view, strings.Join(got, ", "), tc.want)
		}
	}
}
