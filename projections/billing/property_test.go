package billing

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// randomHistory writes a random but plausible history: organizations (one
// in JPY) with cost centers on the default BAN and on their own, hundreds
// of accounts of which some are registered late or moved mid-month, usage
// with negative lines and many decimals, late usage for closed months,
// reconciliations and re-reconciliations, RI purchases and benefits (some
// before the purchase, some across organizations), stray currencies, and
// closes and finalizations in order. It calls check after every close.
func randomHistory(seed uint64, l *ledger, check func(closed calendar.Month)) {
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	type acct struct {
		id, org, currency string
		registered        bool
	}
	orgs := []struct{ id, currency string }{{"o1", "USD"}, {"o2", "USD"}, {"o3", "JPY"}, {"o4", "EUR"}}
	for _, o := range orgs {
		l.apply(org(o.id, "BAN-"+o.id, o.currency))
		l.apply(costCenter(o.id, "cc-default", "", ""))
		l.apply(costCenter(o.id, "cc-own", "BAN-"+o.id+"-own", ""))
		l.apply(workspace(o.id, "ws-default", "cc-default", ""))
		l.apply(workspace(o.id, "ws-own", "cc-own", ""))
	}
	const nAccounts = 240
	accounts := make([]*acct, nAccounts)
	for i := range accounts {
		o := orgs[rng.IntN(len(orgs))]
		accounts[i] = &acct{id: fmt.Sprintf("%06d", rng.IntN(1_000_000)), org: o.id, currency: o.currency}
		accounts[i].id = fmt.Sprintf("%s-%03d", accounts[i].id, i)
	}
	register := func(a *acct, effective string) {
		ws := "ws-default"
		if rng.IntN(3) == 0 {
			ws = "ws-own"
		}
		l.apply(provider(a.org, "p-"+a.id, ws, []string{"AWS", "aws", "Aws"}[rng.IntN(3)], a.id, effective))
		a.registered = true
	}
	for _, a := range accounts {
		if rng.IntN(10) > 0 {
			register(a, "")
		}
	}
	services := []string{"Amazon EC2", "Amazon S3", "Amazon RDS"}
	regions := []string{"us-east-1", "eu-west-1", ""}
	amount := func() string {
		cents := rng.Int64N(200_000) - 20_000 // some negative
		return fmt.Sprintf("%d.%06d", cents/100, rng.IntN(1_000_000))
	}
	start := month("2018-01")
	type unpurchased struct{ ri, buyer string }
	var later []unpurchased
	riN := 0
	for m := start; m < start+6; m++ {
		// Usage of the month and some late usage of earlier months.
		for range 6 {
			var recs []*billingv1.UsageRecord
			for range 40 {
				a := accounts[rng.IntN(nAccounts)]
				um := m
				if m > start && rng.IntN(6) == 0 {
					um = m - 1 - calendar.Month(rng.IntN(int(m-start)))
				}
				day := 1 + rng.IntN(28)
				cur := a.currency
				if rng.IntN(100) == 0 {
					cur = "GBP"
				}
				recs = append(recs, rec("AWS", a.id, services[rng.IntN(3)], regions[rng.IntN(3)],
					fmt.Sprintf("%s-%02dT%02d:00:00Z", um, day, rng.IntN(24)), amount(), cur))
			}
			l.apply(usage(recs...))
		}
		// Late registrations, some from mid-month, and moves.
		for range 4 {
			a := accounts[rng.IntN(nAccounts)]
			switch {
			case !a.registered && rng.IntN(2) == 0:
				register(a, fmt.Sprintf("%s-15T00:00:00Z", m-calendar.Month(rng.IntN(2))))
			case !a.registered:
				register(a, "")
			case rng.IntN(4) == 0:
				// To another organization, perhaps in another currency:
				// its charges from then on, in the old currency, wait as
				// mismatches until it comes back.
				o := orgs[rng.IntN(len(orgs))]
				a.org, a.currency = o.id, o.currency
				register(a, fmt.Sprintf("%s-%02dT00:00:00Z", m, 1+rng.IntN(28)))
			default:
				register(a, fmt.Sprintf("%s-%02dT00:00:00Z", m, 10+rng.IntN(10)))
			}
		}
		// Back-dated changes over usage already folded: a workspace
		// re-pointed at the other cost center, a cost center given another
		// BAN, from a day of this month or the last.
		if rng.IntN(2) == 0 {
			o := orgs[rng.IntN(len(orgs))]
			from := fmt.Sprintf("%s-%02dT00:00:00Z", m-calendar.Month(rng.IntN(2)), 1+rng.IntN(28))
			if rng.IntN(2) == 0 {
				l.apply(workspace(o.id, "ws-own", []string{"cc-own", "cc-default"}[rng.IntN(2)], from))
			} else {
				l.apply(costCenter(o.id, "cc-own", fmt.Sprintf("BAN-%s-own-%d", o.id, rng.IntN(2)), from))
			}
		}
		// RIs: purchases, and benefits before or after them.
		for range 3 {
			buyer := accounts[rng.IntN(nAccounts)]
			riN++
			ri := fmt.Sprintf("ri-%d", riN)
			var bs []*billingv1.ReservedInstanceBenefit
			for range 1 + rng.IntN(4) {
				c := accounts[rng.IntN(nAccounts)]
				if c.currency != buyer.currency {
					continue
				}
				bs = append(bs, riBenefit(ri, c.id, fmt.Sprintf("%d.%03d", rng.IntN(500), rng.IntN(1000)), c.currency))
			}
			if rng.IntN(2) == 0 {
				l.apply(purchase(ri, "AWS", buyer.id, services[0], regions[rng.IntN(3)]))
			} else {
				later = append(later, unpurchased{ri, buyer.id})
			}
			if len(bs) > 0 {
				l.apply(benefits(m.String(), bs...))
			}
		}
		waiting := later[:0]
		for _, u := range later {
			if rng.IntN(2) == 0 {
				l.apply(purchase(u.ri, "AWS", u.buyer, services[0], ""))
				continue
			}
			waiting = append(waiting, u)
		}
		later = waiting
		// Reconciliations of earlier months, sometimes repeated.
		if m > start {
			for range 2 {
				rm := m - 1 - calendar.Month(rng.IntN(int(m-start)))
				var lines []*billingv1.ReconciliationLine
				for range 5 {
					a := accounts[rng.IntN(nAccounts)]
					lines = append(lines, reconLine(a.id, services[rng.IntN(3)], fmt.Sprintf("%d.%02d", rng.IntN(3000), rng.IntN(100)), a.currency))
				}
				l.apply(reconciliation("AWS", rm.String(), lines...))
			}
		}
		l.apply(closeCycle(m.String(), (m+1).String()+"-01T00:00:00Z"))
		check(m)
		if m > start && rng.IntN(3) > 0 {
			if l.p.CanFinalize(m-1) == nil {
				l.apply(finalize((m - 1).String(), m.String()+"-10T00:00:00Z"))
			}
		}
	}
}

func TestPropertiesOverRandomHistories(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			l := newLedger(t)
			randomHistory(seed, l, func(closed calendar.Month) {
				checkConservation(t, l, closed)
				checkAdjustmentsBalance(t, l, closed)
			})
			for _, invs := range l.issued {
				for _, inv := range invs {
					checkFoots(t, inv)
					if again, err := l.p.Invoice(inv.BAN, inv.Month); err != nil || text(again) != text(inv) {
						t.Fatalf("invoice %s %s changed after issue: %v", inv.BAN, inv.Month, err)
					}
				}
			}
			checkReplay(t, l)
			// The history must exercise what it claims to.
			ex, _ := l.p.Exceptions("")
			kinds := make(map[ExceptionKind]bool)
			for _, e := range ex {
				kinds[e.Kind] = true
			}
			updates, postBill := 0, 0
			for _, invs := range l.issued {
				for _, inv := range invs {
					for _, line := range inv.Lines {
						if line.Kind == PreviousMonthUpdate {
							updates++
						}
					}
				}
			}
			for _, v := range l.p.cycles.vendor {
				for _, line := range v.Lines {
					if line.Kind == PostBillUpdate {
						postBill++
					}
				}
			}
			if !kinds[CurrencyMismatch] || !kinds[UnassignedUsage] || updates == 0 || postBill == 0 {
				t.Fatalf("history too tame: exceptions %v, %d update lines, %d post-bill lines", kinds, updates, postBill)
			}
			t.Logf("%d events, %d update lines, %d post-bill lines, %d exceptions", len(l.history), updates, postBill, len(ex))
		})
	}
}

// checkConservation: for every month M up to the close of N, per BAN, the
// lines for M on all invoices issued so far sum to V(M, C_N).
func checkConservation(t *testing.T, l *ledger, n calendar.Month) {
	t.Helper()
	type key struct {
		ban   string
		month calendar.Month
	}
	billed := make(map[key]*apd.Decimal)
	add := func(m map[key]*apd.Decimal, k key, x *apd.Decimal) {
		if m[k] == nil {
			m[k] = new(apd.Decimal)
		}
		money.Add(m[k], m[k], x)
	}
	for _, invs := range l.issued {
		for _, inv := range invs {
			for i := range inv.Lines {
				add(billed, key{inv.BAN, inv.Lines[i].ForMonth}, &inv.Lines[i].Amount)
			}
		}
	}
	value := make(map[key]*apd.Decimal)
	for _, o := range l.p.orgIDs() {
		for m := month("2017-01"); m <= n; m++ {
			lines, err := l.p.bill(o, m)
			if err != nil {
				t.Fatal(err)
			}
			for i := range lines {
				add(value, key{lines[i].BAN, m}, &lines[i].Amount)
			}
		}
	}
	for k, v := range value {
		b := billed[k]
		if b == nil {
			b = new(apd.Decimal)
		}
		if b.Cmp(v) != 0 {
			t.Fatalf("after closing %s: %s %s billed %s, V = %s", n, k.ban, k.month, b.Text('f'), v.Text('f'))
		}
	}
	for k, b := range billed {
		if value[k] == nil && !b.IsZero() {
			t.Fatalf("after closing %s: %s %s billed %s, V = 0", n, k.ban, k.month, b.Text('f'))
		}
	}
}

// checkAdjustmentsBalance: intra-organization adjustments sum to zero per
// organization and month, inter-customer ones to zero overall.
func checkAdjustmentsBalance(t *testing.T, l *ledger, n calendar.Month) {
	t.Helper()
	for m := month("2018-01"); m <= n+1; m++ {
		var inter apd.Decimal
		for _, o := range l.p.orgIDs() {
			lines, err := l.p.bill(o, m)
			if err != nil {
				t.Fatal(err)
			}
			var intra apd.Decimal
			for i := range lines {
				switch lines[i].Kind {
				case IntraOrgAdjustment:
					money.Add(&intra, &intra, &lines[i].Amount)
				case InterCustomerAdjustment:
					money.Add(&inter, &inter, &lines[i].Amount)
				}
			}
			if !intra.IsZero() {
				t.Fatalf("intra-organization adjustments of %s %s sum to %s", o, m, intra.Text('f'))
			}
		}
		if !inter.IsZero() {
			t.Fatalf("inter-customer adjustments of %s sum to %s", m, inter.Text('f'))
		}
	}
}

// checkFoots: the total is the sum of the lines, each line the sum of its
// details, every amount in whole minor units.
func checkFoots(t *testing.T, inv *Invoice) {
	t.Helper()
	var total apd.Decimal
	for _, l := range inv.Lines {
		money.Add(&total, &total, &l.Amount)
		if l.Amount.IsZero() {
			t.Fatalf("zero line in\n%s", text(inv))
		}
		if len(l.Details) == 0 {
			continue
		}
		var sum apd.Decimal
		for _, d := range l.Details {
			money.Add(&sum, &sum, &d.Amount)
			var r apd.Decimal
			money.Round(&r, &d.Amount, inv.Currency)
			if r.Cmp(&d.Amount) != 0 {
				t.Fatalf("detail %s not in minor units in\n%s", d.Amount.Text('f'), text(inv))
			}
		}
		if sum.Cmp(&l.Amount) != 0 {
			t.Fatalf("line %s does not foot (%s) in\n%s", l.Amount.Text('f'), sum.Text('f'), text(inv))
		}
	}
	if total.Cmp(&inv.Total) != 0 {
		t.Fatalf("total %s, lines sum to %s in\n%s", inv.Total.Text('f'), total.Text('f'), text(inv))
	}
}

// checkReplay folds the same history into a new projection at the same
// positions and compares every document.
func checkReplay(t *testing.T, l *ledger) {
	t.Helper()
	p := New()
	pos := uint64(0)
	for _, msg := range l.history {
		pos += 10
		if _, err := p.Apply(pos, proto.Clone(msg)); err != nil {
			t.Fatalf("replay: %v", err)
		}
	}
	for _, invs := range l.issued {
		for _, inv := range invs {
			again, err := p.Invoice(inv.BAN, inv.Month)
			if err != nil || text(again) != text(inv) {
				t.Fatalf("replay differs for %s %s: %v\n%s\nwas\n%s", inv.BAN, inv.Month, err, text(again), text(inv))
			}
		}
	}
	for k, v := range l.p.cycles.vendor {
		again, err := p.VendorView(k.ban, k.month)
		if err != nil || text(again) != text(v) {
			t.Fatalf("replay differs for vendor view %s %s: %v", k.ban, k.month, err)
		}
	}
}

// TestAttributionFollowsTheHierarchyNotArrivalOrder: a charge goes where the
// hierarchy says it goes at its instant (docs/architecture.md,
// "Attribution"), however late the hierarchy event that says so arrives. The
// random histories register and move providers after usage of the same months
// was folded; folding every hierarchy event first must give the same bill for
// every organization and month, detail by detail, with the same lineage.
func TestAttributionFollowsTheHierarchyNotArrivalOrder(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			l := newLedger(t)
			randomHistory(seed, l, func(calendar.Month) {})
			var hierarchyFirst, rest []proto.Message
			for _, msg := range l.history {
				switch msg.(type) {
				case *billingv1.OrganizationRegistered, *billingv1.CostCenterCreated, *billingv1.WorkspaceCreated, *billingv1.ProviderRegistered:
					hierarchyFirst = append(hierarchyFirst, msg)
				case *billingv1.BillingCycleClosed, *billingv1.VendorCycleFinalized:
					// Closes freeze documents; V(M, p) does not depend on them.
				default:
					rest = append(rest, msg)
				}
			}
			q := New()
			for i, msg := range append(hierarchyFirst, rest...) {
				if _, err := q.Apply(uint64(i+1), proto.Clone(msg)); err != nil {
					t.Fatalf("fold with the hierarchy first: %v", err)
				}
			}
			moved := 0
			for _, o := range l.p.orgIDs() {
				for m := month("2017-12"); m <= month("2018-07"); m++ {
					got, err := l.p.bill(o, m)
					if err != nil {
						t.Fatal(err)
					}
					want, err := q.bill(o, m)
					if err != nil {
						t.Fatal(err)
					}
					if g, w := billText(got), billText(want); g != w {
						t.Fatalf("V(%s, %s) in log order:\n%s\nwith the hierarchy first:\n%s", o, m, g, w)
					}
				}
			}
			if g, w := exceptionsText(t, l.p), exceptionsText(t, q); g != w {
				t.Fatalf("exceptions in log order:\n%s\nwith the hierarchy first:\n%s", g, w)
			}
			for i := range l.p.cells.n {
				if l.p.cells.at(i).empty() {
					moved++
				}
			}
			if moved == 0 {
				t.Fatalf("no cell was emptied by a back-dated move: the history does not exercise re-attribution")
			}
			t.Logf("%d cells emptied by back-dated moves", moved)
		})
	}
}

// billText renders bill lines with their details and lineage.
func billText(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s %s %s cc=%q %s %s\n", l.BAN, l.Kind, l.AccountID, l.ProviderName, l.CostCenterID, l.Service, l.Amount.Text('f'))
		for _, d := range l.Details {
			fmt.Fprintf(&b, "    %s %q %s %s %v\n", d.Service, d.Region, d.Description, d.Amount.Text('f'), d.EventIDs)
		}
	}
	return b.String()
}

// exceptionsText renders the exceptions as a sorted list, vendors by
// comparison key: the order of equal-ranked exceptions and the spelling of
// a vendor follow the order events were folded in.
func exceptionsText(t *testing.T, p *Projection) string {
	ex, err := p.Exceptions("")
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(ex))
	for i, e := range ex {
		lines[i] = fmt.Sprintf("%s %s %s/%s %s %s %s %s %q", e.Month, e.Kind, e.OrgID, hierarchy.VendorKey(e.Vendor), e.AccountID, e.EventID, e.Amount.Text('f'), e.Currency, e.Reason)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
