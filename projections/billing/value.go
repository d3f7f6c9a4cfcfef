package billing

import (
	"cmp"
	"errors"
	"slices"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	"github.com/ledger-billing/ledger/projections/snapcodec"
)

// detailKey names one rounded figure of V(M, p): (kind, account,
// attribution (hence BAN), service, region), and whether it is a
// reconciliation true-up.
type detailKey struct {
	kind   LineKind // Charges, InterCustomerAdjustment or IntraOrgAdjustment
	acct   uint32
	target uint32
	svc    uint32
	region uint32
	trueUp bool
}

// vdetail is one rounded figure of V with its lineage (event indexes; the
// slice is shared with the cell and never written through).
type vdetail struct {
	key     detailKey
	amount  apd.Decimal
	lineage []uint32
}

// accountTotal gathers what intra-organization adjustments need of one
// account: total = charges + inter-customer adjustments, and the credits
// it got as an RI purchaser; home is the attribution its adjustment goes
// to (that of its latest charge, ties to the first attribution interned).
type accountTotal struct {
	acct    uint32
	total   apd.Decimal
	credits apd.Decimal
	home    uint32
	homeAt  int64
}

// value computes V(M, p) of one organization-month at the current position,
// sorted by cmpDetail (docs/architecture.md, "The month's bill").
func (p *Projection) value(om *orgMonth) []vdetail {
	cur := p.orgs[om.key.org].currency
	out := make([]vdetail, 0, len(om.cells)+len(om.recons)+len(om.benefits)+8)
	totals := make(map[uint32]*accountTotal)
	note := func(acct, tg uint32, at int64, amount *apd.Decimal) *accountTotal {
		t, ok := totals[acct]
		if !ok {
			t = &accountTotal{acct: acct, home: tg, homeAt: at}
			totals[acct] = t
		} else if at > t.homeAt || at == t.homeAt && tg < t.home {
			t.home, t.homeAt = tg, at
		}
		money.Add(&t.total, &t.total, amount)
		return t
	}

	// 1. Charges: every cell rounded once; then true-ups against the sum of
	// the rounded usage details of the reconciled (account, service).
	var usage map[reconKey]*apd.Decimal
	if len(om.recons) > 0 {
		usage = make(map[reconKey]*apd.Decimal, len(om.recons))
	}
	for _, ci := range om.cells {
		c := p.cells.at(ci)
		if c.empty() {
			continue // its charges moved to another attribution
		}
		out = append(out, vdetail{key: detailKey{kind: Charges, acct: c.key.acct, target: c.key.target, svc: c.key.svc, region: c.key.region}, lineage: c.lineage()})
		d := &out[len(out)-1]
		money.Round(&d.amount, &c.sum, cur)
		note(c.key.acct, c.key.target, c.latest, &d.amount)
		if usage != nil {
			rk := reconKey{month: om.key.month, acct: c.key.acct, svc: c.key.svc}
			if _, ok := om.recons[rk]; ok {
				u := usage[rk]
				if u == nil {
					u = new(apd.Decimal)
					usage[rk] = u
				}
				money.Add(u, u, &d.amount)
			}
		}
	}
	end := monthEnd(om.key.month)
	recons := make([]*recon, 0, len(om.recons))
	for _, r := range om.recons {
		recons = append(recons, r)
	}
	slices.SortFunc(recons, func(a, b *recon) int {
		return cmp.Or(cmp.Compare(a.key.acct, b.key.acct), cmp.Compare(a.key.svc, b.key.svc))
	})
	for _, r := range recons {
		out = append(out, vdetail{key: detailKey{kind: Charges, acct: r.key.acct, target: r.target, svc: r.key.svc, trueUp: true}, lineage: []uint32{r.event}})
		d := &out[len(out)-1]
		money.Round(&d.amount, &r.amount, cur)
		if u := usage[r.key]; u != nil {
			money.Sub(&d.amount, &d.amount, u)
		}
		note(r.key.acct, r.target, end, &d.amount)
	}

	// 2. Inter-customer adjustments, already rounded per benefit.
	inter := make(map[detailKey]int)
	for _, s := range om.benefits {
		k := detailKey{kind: InterCustomerAdjustment, acct: s.acct, target: s.target, svc: s.ri.svc, region: s.ri.region}
		i, ok := inter[k]
		if !ok {
			i = len(out)
			inter[k] = i
			out = append(out, vdetail{key: k})
		}
		d := &out[i]
		money.Add(&d.amount, &d.amount, &s.amount)
		d.lineage = addLineage(d.lineage, s.b.event, s.ri.event)
		t := note(s.acct, s.target, end, &s.amount)
		if s.purchaser {
			money.Add(&t.credits, &t.credits, &s.amount)
		}
	}

	// 3. Intra-organization adjustments.
	n := len(out)
	out = p.intraOrg(out, totals, cur)
	checkBalanced(p.orgs[om.key.org].id, om.key.month, out[n:])

	out = slices.DeleteFunc(out, func(d vdetail) bool { return d.amount.IsZero() })
	slices.SortFunc(out, func(a, b vdetail) int { return p.cmpDetail(&a.key, &b.key) })
	return out
}

func addLineage(l []uint32, events ...uint32) []uint32 {
	for _, e := range events {
		if !slices.Contains(l, e) {
			l = append(l, e)
		}
	}
	slices.Sort(l)
	return l
}

// intraOrg appends the intra-organization adjustments, step 3 of the month's
// bill (docs/architecture.md, "The month's bill"): the negative totals T are
// spread over the positive ones, up to their sum, in proportion to their
// totals without RI credits, floor and largest remainder, ties to the smaller
// account id, capped at each total.
func (p *Projection) intraOrg(out []vdetail, totals map[uint32]*accountTotal, cur money.Currency) []vdetail {
	var pos, neg []*accountTotal
	var t, s apd.Decimal
	for _, at := range totals {
		switch at.total.Sign() {
		case 1:
			pos = append(pos, at)
			money.Add(&s, &s, &at.total)
		case -1:
			neg = append(neg, at)
			money.Sub(&t, &t, &at.total)
		}
	}
	if len(pos) == 0 || len(neg) == 0 {
		return out
	}
	byID := func(a, b *accountTotal) int { return p.ids.cmpAccountID(a.acct, b.acct) }
	slices.SortFunc(pos, byID)
	slices.SortFunc(neg, byID)
	r := &t
	if s.Cmp(&t) < 0 {
		r = &s
	}

	weights := make([]apd.Decimal, len(pos))
	caps := make([]apd.Decimal, len(pos))
	for i, a := range pos {
		money.Sub(&weights[i], &a.total, &a.credits) // base(a): without RI credits
		if weights[i].Sign() < 0 {
			weights[i].SetInt64(0)
		}
		caps[i].Set(&a.total)
	}
	shares, err := money.Allocate(r, weights, caps, cur)
	if err != nil && !errors.Is(err, money.ErrInvariant) {
		// Only possible if every base is zero, which needs credits larger
		// than charges: then spread in proportion to the totals.
		shares, err = money.Allocate(r, caps, caps, cur)
	}
	if err != nil {
		// R is at most the sum of the caps, so it can always be spread.
		broken(invariantAllocation, "intra-organization credits of %s: %v", r, err)
	}
	for i, a := range pos {
		out = append(out, vdetail{key: detailKey{kind: IntraOrgAdjustment, acct: a.acct, target: a.home}})
		out[len(out)-1].amount.Neg(&shares[i])
	}

	debits := make([]apd.Decimal, len(neg))
	for i, a := range neg {
		debits[i].Neg(&a.total)
	}
	if r != &t {
		// R < T: the negative accounts share R in proportion to -total.
		if debits, err = money.Allocate(r, debits, debits, cur); err != nil {
			broken(invariantAllocation, "intra-organization debits of %s: %v", r, err)
		}
	}
	for i, a := range neg {
		out = append(out, vdetail{key: detailKey{kind: IntraOrgAdjustment, acct: a.acct, target: a.home}})
		out[len(out)-1].amount.Set(&debits[i])
	}
	return out
}

// checkBalanced panics with an *InvariantError unless the intra-organization
// adjustments of an organization-month sum to zero (docs/architecture.md,
// "The month's bill"): the positive accounts are credited what the negative
// ones are debited. Inter-customer adjustments balance per benefit instead,
// whose two sides may bill two organizations, and do so by construction (the
// credit is the negated debit).
func checkBalanced(org string, m calendar.Month, adjustments []vdetail) {
	var sum apd.Decimal
	for i := range adjustments {
		money.Add(&sum, &sum, &adjustments[i].amount)
	}
	if !sum.IsZero() {
		broken(invariantBalance, "organization %s, %s: they sum to %s", org, m, sum.Text('f'))
	}
}

// cmpDetail is the order of V: kind, vendor, account, attribution, service,
// region, true-ups last. Lines group contiguous runs of it.
func (p *Projection) cmpDetail(a, b *detailKey) int {
	if a.kind != b.kind {
		return cmp.Compare(a.kind, b.kind)
	}
	if a.acct != b.acct {
		if c := p.ids.cmpAccount(a.acct, b.acct); c != 0 {
			return c
		}
	}
	if a.target != b.target {
		x, y := &p.targets[a.target].attr, &p.targets[b.target].attr
		if c := cmp.Or(strings.Compare(x.BAN, y.BAN), strings.Compare(x.CostCenterID, y.CostCenterID),
			strings.Compare(x.ProviderID, y.ProviderID), strings.Compare(x.WorkspaceID, y.WorkspaceID),
			strings.Compare(x.ProviderName, y.ProviderName), strings.Compare(x.Alias, y.Alias), strings.Compare(x.OrgID, y.OrgID)); c != 0 {
			return c
		}
	}
	if a.svc != b.svc {
		if c := p.ids.cmpSymbol(a.svc, b.svc); c != 0 {
			return c
		}
	}
	if a.region != b.region {
		if c := p.ids.cmpSymbol(a.region, b.region); c != 0 {
			return c
		}
	}
	switch {
	case a.trueUp == b.trueUp:
		return 0
	case b.trueUp:
		return -1
	}
	return 1
}

// encodeDetails writes figures of V for a snapshot (snapshot.go), nil
// apart from empty.
func encodeDetails(e *snapcodec.Encoder, ds []vdetail) {
	e.NilLen(len(ds), ds == nil)
	for i := range ds {
		d := &ds[i]
		e.Uvarint(uint64(d.key.kind))
		e.Uvarint(uint64(d.key.acct))
		e.Uvarint(uint64(d.key.target))
		e.Uvarint(uint64(d.key.svc))
		e.Uvarint(uint64(d.key.region))
		e.Bool(d.key.trueUp)
		e.Decimal(&d.amount)
		e.NilLen(len(d.lineage), d.lineage == nil)
		for _, ev := range d.lineage {
			e.Uvarint(uint64(ev))
		}
	}
}

func decodeDetails(sr *snapReader) []vdetail {
	n, isNil := sr.NilLen()
	if isNil {
		return nil
	}
	ds := make([]vdetail, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		ds = append(ds, vdetail{key: detailKey{kind: LineKind(sr.Uvarint()), acct: sr.account(), target: sr.target(),
			svc: sr.symbol(), region: sr.symbol(), trueUp: sr.Bool()}})
		d := &ds[len(ds)-1]
		sr.Decimal(&d.amount)
		if m, isNil := sr.NilLen(); !isNil {
			d.lineage = make([]uint32, 0, sr.Cap(m))
			for ; m > 0 && sr.Err() == nil; m-- {
				d.lineage = append(d.lineage, sr.event())
			}
		}
	}
	return ds
}
