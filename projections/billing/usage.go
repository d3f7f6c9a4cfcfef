package billing

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// account is a cloud account (vendor, account_id) and its last resolution,
// valid while the hierarchy is at generation gen and for instants in span.
type account struct {
	vendorKey string
	accountID string
	gen       uint64
	span      hierarchy.Span
	target    uint32
	err       error
	cells     []uint32 // every cell of the account, all months and attributions
}

type accountKey struct{ vendorKey, accountID string }

// target is an interned Attribution and its organization.
type target struct {
	attr hierarchy.Attribution
	org  uint32
}

// orgState is an organization as the fold knows it.
type orgState struct {
	id       string
	currency money.Currency
	months   []*orgMonth // in the order first billed
}

type orgMonthKey struct {
	org   uint32
	month calendar.Month
}

// orgMonth is everything one organization is billed for one month: the
// unit of recomputation. billed is V(M, C) at the last close C that
// included the month (empty before its own close); closed is V(M, C_M),
// kept from C_M until F_M for the vendor view.
type orgMonth struct {
	key      orgMonthKey
	cells    []uint32
	recons   map[reconKey]*recon
	benefits []*benefitSide
	dirty    bool
	billed   []vdetail
	closed   []vdetail
}

// cell is the exact sum of one account's charges of one month, service and
// region going to one attribution: one line detail before rounding.
//
// It also keeps each charge, so that a back-dated hierarchy change can move
// some of them (see reattribute): the first inline (its instant and event;
// its amount is the sum less the others), because most cells hold one
// record, and the others in a packed log. A cell whose charges all moved
// elsewhere is empty and bills nothing until a charge comes back to it.
type cell struct {
	sum     apd.Decimal
	firstAt int64 // the instant of the first charge
	latest  int64 // the latest charge instant
	om      *orgMonth
	key     cellKey
	first   uint32 // the event of the first charge
	n       uint32 // the number of charges: 1 + the entries in rest
	rest    chargeLog
}

func (c *cell) empty() bool { return c.n == 0 }

// add folds one charge into the cell.
func (c *cell) add(monthStart, at int64, ev uint32, amount *apd.Decimal) {
	if c.empty() {
		c.firstAt, c.latest, c.first = at, at, ev
		c.sum.Set(amount)
		c.n = 1
		return
	}
	money.Add(&c.sum, &c.sum, amount)
	c.latest = max(c.latest, at)
	c.rest = c.rest.add(monthStart, at, ev, amount)
	c.n++
}

// charges returns every charge of the cell in the order folded.
func (c *cell) charges() []chargeEntry {
	if c.empty() {
		return nil
	}
	out := make([]chargeEntry, 1, c.n)
	out[0].at, out[0].event = c.firstAt, c.first
	out[0].amount.Set(&c.sum)
	err := c.rest.each(c.key.month.Start().UnixNano(), func(e *chargeEntry) {
		out = append(out, chargeEntry{at: e.at, event: e.event})
		out[len(out)-1].amount.Set(&e.amount)
		money.Sub(&out[0].amount, &out[0].amount, &e.amount)
	})
	if err != nil {
		panic(err) // only a bug in chargeLog can corrupt a log
	}
	return out
}

// earliest returns the earliest charge instant of a cell that is not empty.
func (c *cell) earliest() int64 {
	t := c.firstAt
	if err := c.rest.scan(c.key.month.Start().UnixNano(), func(at int64, _ uint32) { t = min(t, at) }); err != nil {
		panic(err)
	}
	return t
}

// lineage returns the events behind the cell, in log order.
func (c *cell) lineage() []uint32 {
	if c.empty() {
		return nil
	}
	l := []uint32{c.first}
	if c.n == 1 {
		return l
	}
	err := c.rest.scan(0, func(_ int64, ev uint32) {
		if !slices.Contains(l, ev) {
			l = append(l, ev)
		}
	})
	if err != nil {
		panic(err)
	}
	slices.Sort(l) // charges moved in by a back-dated change may be older
	return l
}

// cellPageSize is the number of cells per page of a cellStore.
const cellPageSize = 4096

// cellStore keeps cells in fixed pages, so that adding a cell never copies
// the others (a single slice would move a million cells to grow) and a
// pointer to a cell stays valid.
type cellStore struct {
	pages [][]cell
	n     uint32
}

func (s *cellStore) add(c cell) uint32 {
	if s.n%cellPageSize == 0 {
		s.pages = append(s.pages, make([]cell, 0, cellPageSize))
	}
	last := len(s.pages) - 1
	s.pages[last] = append(s.pages[last], c)
	s.n++
	return s.n - 1
}

func (s *cellStore) at(i uint32) *cell { return &s.pages[i/cellPageSize][i%cellPageSize] }

type cellKey struct {
	month  calendar.Month
	acct   uint32
	target uint32
	svc    uint32
	region uint32
}

// account returns the index of an account, adding it if new.
func (p *Projection) account(vendor, accountID string) uint32 {
	k := accountKey{p.vendorKey(vendor), accountID}
	if i, ok := p.accountIdx[k]; ok {
		return i
	}
	i := uint32(len(p.accounts))
	p.accounts = append(p.accounts, account{vendorKey: k.vendorKey, accountID: accountID, gen: ^uint64(0)})
	p.accountIdx[k] = i
	return i
}

// resolve returns the target of a charge of account a at instant t.
func (p *Projection) resolve(a uint32, t int64) (uint32, error) {
	acc := &p.accounts[a]
	if acc.gen == p.h.Generation() && acc.span.Contains(t) {
		return acc.target, acc.err
	}
	attr, span, err := p.h.Resolve(acc.vendorKey, acc.accountID, t)
	acc.gen, acc.span, acc.err = p.h.Generation(), span, err
	if err != nil {
		return 0, err
	}
	acc.target = p.target(attr)
	return acc.target, nil
}

func (p *Projection) target(attr hierarchy.Attribution) uint32 {
	if i, ok := p.targetIdx[attr]; ok {
		return i
	}
	i := uint32(len(p.targets))
	org := p.org(attr.OrgID)
	p.targets = append(p.targets, target{attr: attr, org: org})
	p.targetIdx[attr] = i
	if !slices.Contains(p.banOrgs[attr.BAN], org) {
		p.banOrgs[attr.BAN] = append(p.banOrgs[attr.BAN], org)
	}
	return i
}

// org returns the index of a registered organization, adding its state.
func (p *Projection) org(id string) uint32 {
	if i, ok := p.orgIdx[id]; ok {
		return i
	}
	o, err := p.h.Organization(id)
	if err != nil {
		// Targets are only made from resolutions, which need the org.
		panic(fmt.Sprintf("billing: state for unregistered organization %q", id))
	}
	i := uint32(len(p.orgs))
	p.orgs = append(p.orgs, &orgState{id: id, currency: o.Currency})
	p.orgIdx[id] = i
	if _, ok := p.banOrgs[o.BAN]; !ok {
		p.banOrgs[o.BAN] = []uint32{i}
	}
	return i
}

func (p *Projection) orgMonth(org uint32, m calendar.Month) *orgMonth {
	k := orgMonthKey{org, m}
	om, ok := p.orgMonths[k]
	if !ok {
		om = &orgMonth{key: k, recons: make(map[reconKey]*recon)}
		p.orgMonths[k] = om
		p.monthOrgs[m] = append(p.monthOrgs[m], om)
		p.orgs[org].months = append(p.orgs[org].months, om)
	}
	return om
}

// touch marks an organization-month dirty: the next close recomputes it.
func (p *Projection) touch(om *orgMonth) {
	if !om.dirty {
		om.dirty = true
		p.dirty = append(p.dirty, om)
	}
}

func (p *Projection) applyUsage(ev uint32, u *billingv1.UsageReported) {
	for _, r := range u.Records {
		p.foldRecord(ev, r)
	}
}

// foldRecord is the hot path: it parses the cost once into a reused
// scratch value and adds it, in place, to its cell.
func (p *Projection) foldRecord(ev uint32, r *billingv1.UsageRecord) {
	cost := r.GetCost()
	var reason string
	switch {
	case r.GetChargePeriodStart() == nil:
		reason = "charge_period_start is missing"
	case cost == nil:
		reason = "cost is missing"
	case r.GetVendor() == "" || r.GetAccountId() == "":
		reason = "vendor or account_id is empty"
	}
	if reason == "" {
		if err := money.ParseDecimal(&p.amount, cost.Amount); err != nil {
			reason = fmt.Sprintf("cost.amount: %v", err)
		}
	}
	var t int64
	var m calendar.Month
	if reason == "" {
		t = instant(r.ChargePeriodStart)
		m = p.monthOf(t)
		if !m.Valid() {
			reason = "charge_period_start is outside years 0000 to 9999"
		}
	}
	if reason != "" {
		p.exception(InvalidRecord, "", r.GetVendor(), r.GetAccountId(), m, nil, r.GetCost().GetCurrency(), "record "+r.GetRecordId()+": "+reason, ev)
		return
	}
	a := p.account(r.Vendor, r.AccountId)
	p.charge(a, m, p.symbol(r.Service), p.symbol(r.Region), t, cost.Currency, &p.amount, ev)
}

// charge attributes one charge (DESIGN.md 7.1): to its cell, or, with no
// provider at its instant, to the unassigned charges.
func (p *Projection) charge(a uint32, m calendar.Month, svc, region uint32, t int64, currency string, amount *apd.Decimal, ev uint32) {
	tg, err := p.resolve(a, t)
	if err != nil {
		p.pending.add(pendingKey{acct: a, month: m, svc: svc, region: region, at: t, event: ev, currency: p.symbol(currency)}, amount)
		return
	}
	p.addCharge(a, tg, m, svc, region, t, currency, amount, ev)
}

// addCharge adds an attributed charge to its cell, or to the currency
// mismatches if it is not in the organization's currency.
func (p *Projection) addCharge(a, tg uint32, m calendar.Month, svc, region uint32, t int64, currency string, amount *apd.Decimal, ev uint32) {
	org := p.orgs[p.targets[tg].org]
	if currency != org.currency.Code() {
		// Not billable in this organization; it waits, listed as an
		// exception, for a registration that puts it in one where it is.
		p.mismatched.add(pendingKey{acct: a, month: m, svc: svc, region: region, at: t, event: ev, currency: p.symbol(currency)}, amount)
		return
	}
	k := cellKey{month: m, acct: a, target: tg, svc: svc, region: region}
	i, ok := p.cellIdx[k]
	if !ok {
		om := p.orgMonth(p.targets[tg].org, m)
		i = p.cells.add(cell{om: om, key: k})
		p.cellIdx[k] = i
		om.cells = append(om.cells, i)
		acc := &p.accounts[a]
		acc.cells = append(acc.cells, i)
	}
	c := p.cells.at(i)
	c.add(p.monthStart(m), t, ev, amount)
	p.touch(c.om)
}

// monthStart returns the first instant of m, from the month cache when it
// is the month of the records being folded.
func (p *Projection) monthStart(m calendar.Month) int64 {
	if p.monthCache.month == m && p.monthCache.until != 0 {
		return p.monthCache.from
	}
	return m.Start().UnixNano()
}

type exceptionKey struct {
	kind     ExceptionKind
	org      string
	acct     accountKey
	month    calendar.Month
	currency string
	event    uint32
	reason   string
}

// exception adds to the permanent exceptions: invalid records, which no
// later event can make billable (a currency mismatch waits instead).
func (p *Projection) exception(kind ExceptionKind, org, vendor, accountID string, m calendar.Month, amount *apd.Decimal, currency, reason string, ev uint32) {
	k := exceptionKey{kind, org, accountKey{hierarchy.VendorKey(vendor), accountID}, m, currency, ev, reason}
	e, ok := p.bad[k]
	if !ok {
		e = &Exception{Kind: kind, OrgID: org, Vendor: vendor, AccountID: accountID, Month: m, Currency: currency, Reason: reason, EventID: p.eventIDs[ev]}
		p.bad[k] = e
		p.badList = append(p.badList, e)
	}
	if amount != nil {
		money.Add(&e.Amount, &e.Amount, amount)
	}
}

// pendingUsage holds charges that wait for the hierarchy: the unassigned
// (no provider at their instant) and the currency mismatches (in another
// currency than their organization's). They are aggregated per account,
// month, service, region, instant, event and currency: the instant is kept
// because the registration that will place them may start mid-month.
type pendingUsage struct {
	items     []pendingItem
	idx       map[pendingKey]uint32
	byAccount map[uint32][]uint32
}

func newPendingUsage() pendingUsage {
	return pendingUsage{idx: make(map[pendingKey]uint32), byAccount: make(map[uint32][]uint32)}
}

type pendingKey struct {
	acct     uint32
	month    calendar.Month
	svc      uint32
	region   uint32
	at       int64
	event    uint32
	currency uint32
}

type pendingItem struct {
	key    pendingKey
	amount apd.Decimal
	done   bool
}

func (q *pendingUsage) add(k pendingKey, amount *apd.Decimal) {
	i, ok := q.idx[k]
	if !ok {
		i = uint32(len(q.items))
		q.items = append(q.items, pendingItem{key: k})
		q.idx[k] = i
		q.byAccount[k.acct] = append(q.byAccount[k.acct], i)
	}
	money.Add(&q.items[i].amount, &q.items[i].amount, amount)
}

func (q *pendingUsage) accountsWaiting() []uint32 {
	accts := make([]uint32, 0, len(q.byAccount))
	for a := range q.byAccount {
		accts = append(accts, a)
	}
	slices.Sort(accts) // map order must not leak into the fold
	return accts
}

// retryWaiting attributes again the waiting charges of one account in q
// (the unassigned or the mismatched): those whose attribution now differs
// from what kept them waiting leave q for their cell or the other list.
func (p *Projection) retryWaiting(q *pendingUsage, a uint32) {
	waiting := q.byAccount[a]
	if len(waiting) == 0 {
		return
	}
	var leaving []pendingItem
	rest := waiting[:0]
	for _, i := range waiting {
		it := &q.items[i]
		tg, err := p.resolve(a, it.key.at)
		unassigned := err != nil
		mismatched := !unassigned && p.symbols[it.key.currency] != p.orgs[p.targets[tg].org].currency.Code()
		if (q == &p.pending && unassigned) || (q == &p.mismatched && mismatched) {
			rest = append(rest, i)
			continue
		}
		it.done = true
		delete(q.idx, it.key)
		leaving = append(leaving, *it)
	}
	if len(rest) == 0 {
		delete(q.byAccount, a)
	} else {
		q.byAccount[a] = rest
	}
	if len(q.idx) == 0 {
		q.items = q.items[:0] // everything left: drop the done items
	}
	for i := range leaving {
		k := &leaving[i].key
		p.charge(a, k.month, k.svc, k.region, k.at, p.symbols[k.currency], &leaving[i].amount, k.event)
	}
}
