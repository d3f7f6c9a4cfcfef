package billing

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
	"github.com/ledger-billing/ledger/projections/snapcodec"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// accountState is what the fold keeps of a cloud account (its identity is
// the interner's): its last resolution, valid while the hierarchy is at
// generation gen and for instants in span, and its cells. Snapshots keep
// neither: the resolution is a cache, made again when next asked, and the
// cells name their account.
type accountState struct {
	gen    uint64
	span   hierarchy.Span
	target uint32
	err    error
	cells  []uint32 // every cell of the account, all months and attributions
}

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
	last    uint32 // the event of the last charge: rest's next entry is encoded against it and latest
	rest    chargeLog
}

func (c *cell) empty() bool { return c.n == 0 }

// add folds one charge into the cell.
func (c *cell) add(monthStart, at int64, ev uint32, amount *apd.Decimal) {
	if c.empty() {
		c.firstAt, c.latest, c.first, c.last = at, at, ev, ev
		c.sum.Set(amount)
		c.n = 1
		return
	}
	money.Add(&c.sum, &c.sum, amount)
	cur := logCursor{latest: c.latest - monthStart, event: c.last}
	c.rest = appendCharge(c.rest, &cur, at-monthStart, ev, amount)
	c.latest, c.last = max(c.latest, at), ev
	c.n++
}

// logStart is what the first entry of the cell's log is encoded against:
// the first charge, which is not in the log.
func (c *cell) logStart(monthStart int64) logCursor {
	return logCursor{latest: c.firstAt - monthStart, event: c.first}
}

// charges returns every charge of the cell in the order folded.
func (c *cell) charges() []chargeEntry {
	if c.empty() {
		return nil
	}
	out := make([]chargeEntry, 1, c.n)
	out[0].at, out[0].event = c.firstAt, c.first
	out[0].amount.Set(&c.sum)
	ms := c.key.month.Start().UnixNano()
	err := c.rest.each(ms, c.logStart(ms), func(e *chargeEntry) {
		out = append(out, chargeEntry{at: e.at, event: e.event})
		out[len(out)-1].amount.Set(&e.amount)
		money.Sub(&out[0].amount, &out[0].amount, &e.amount)
	})
	if err != nil {
		broken(invariantChargeLog, "cell %+v: %v", c.key, err) // only a bug in chargeLog can corrupt a log
	}
	return out
}

// earliest returns the earliest charge instant of a cell that is not empty.
func (c *cell) earliest() int64 {
	t := c.firstAt
	ms := c.key.month.Start().UnixNano()
	if err := c.rest.scan(ms, c.logStart(ms), func(at int64, _ uint32) { t = min(t, at) }); err != nil {
		broken(invariantChargeLog, "cell %+v: %v", c.key, err)
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
	ms := c.key.month.Start().UnixNano()
	err := c.rest.scan(ms, c.logStart(ms), func(_ int64, ev uint32) {
		if !slices.Contains(l, ev) {
			l = append(l, ev)
		}
	})
	if err != nil {
		broken(invariantChargeLog, "cell %+v: %v", c.key, err)
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

// account returns the index of an account, adding it (with no resolution
// yet) if new.
func (p *Projection) account(vendor, accountID string) uint32 {
	a := p.ids.account(vendor, accountID)
	for int(a) >= len(p.accounts) {
		p.accounts = append(p.accounts, accountState{gen: ^uint64(0)})
	}
	return a
}

// resolve returns the target of a charge of account a at instant t.
func (p *Projection) resolve(a uint32, t int64) (uint32, error) {
	acc := &p.accounts[a]
	if acc.gen == p.h.Generation() && acc.span.Contains(t) {
		return acc.target, acc.err
	}
	k := p.ids.accountKey(a)
	attr, span, err := p.h.Resolve(k.vendorKey, k.accountID, t)
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

// orgOf returns the organization an attribution bills.
func (p *Projection) orgOf(tg uint32) *orgState { return p.orgs[p.targets[tg].org] }

// org returns the index of a registered organization, adding its state.
func (p *Projection) org(id string) uint32 {
	if i, ok := p.orgIdx[id]; ok {
		return i
	}
	o, err := p.h.Organization(id)
	if err != nil {
		// Targets are only made from resolutions, which need the org.
		broken(invariantOrgState, "state asked for organization %q: %v", id, err)
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

// orgMonthOf returns the organization-month of a registered organization,
// or nil if nothing was billed to it for the month.
func (p *Projection) orgMonthOf(org string, m calendar.Month) *orgMonth {
	oi, ok := p.orgIdx[org]
	if !ok {
		return nil
	}
	return p.orgMonths[orgMonthKey{oi, m}]
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
		p.exceptions.addInvalid(r.GetVendor(), r.GetAccountId(), m, r.GetCost().GetCurrency(), "record "+r.GetRecordId()+": "+reason, ev, p.ids.eventID(ev))
		return
	}
	a := p.account(r.Vendor, r.AccountId)
	p.charge(a, m, p.ids.symbol(r.Service), p.ids.symbol(r.Region), t, cost.Currency, &p.amount, ev)
}

// charge attributes one charge (docs/architecture.md, "Attribution"): to its
// cell, or, with no provider at its instant, to the unassigned charges.
func (p *Projection) charge(a uint32, m calendar.Month, svc, region uint32, t int64, currency string, amount *apd.Decimal, ev uint32) {
	tg, err := p.resolve(a, t)
	if err != nil {
		p.exceptions.unassigned.add(heldKey{acct: a, month: m, svc: svc, region: region, currency: p.ids.symbol(currency)}, p.monthStart(m), t, ev, amount)
		return
	}
	p.addCharge(a, tg, m, svc, region, t, currency, amount, ev)
}

// addCharge adds an attributed charge to its cell, or to the currency
// mismatches if it is not in the organization's currency.
func (p *Projection) addCharge(a, tg uint32, m calendar.Month, svc, region uint32, t int64, currency string, amount *apd.Decimal, ev uint32) {
	org := p.orgOf(tg)
	if currency != org.currency.Code() {
		// Not billable in this organization; it waits, listed as an
		// exception, for a registration that puts it in one where it is.
		p.exceptions.mismatched.add(heldKey{acct: a, month: m, svc: svc, region: region, currency: p.ids.symbol(currency)}, p.monthStart(m), t, ev, amount)
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

// encode writes a target for a snapshot (snapshot.go).
func (t *target) encode(e *snapcodec.Encoder) {
	a := &t.attr
	for _, s := range [...]string{a.OrgID, a.BAN, a.CostCenterID, a.WorkspaceID, a.ProviderID, a.ProviderName, a.Alias} {
		e.String(s)
	}
	e.Uvarint(uint64(t.org))
}

func (t *target) decode(d *snapcodec.Decoder) {
	t.attr = hierarchy.Attribution{OrgID: d.String(), BAN: d.String(), CostCenterID: d.String(), WorkspaceID: d.String(),
		ProviderID: d.String(), ProviderName: d.String(), Alias: d.String()}
	t.org = d.Uint32()
}

// encode writes the body of an organization-month for a snapshot
// (snapshot.go; its key is in the table of organization-months): its
// reconciliations in key order and its benefit sides in order, by
// reference to the adjustments' tables, and the figures it billed. Its
// cells are not written: each cell names its organization-month, and the
// cells are read in the order they were added, which is the order of
// om.cells.
func (om *orgMonth) encode(sw *snapWriter) {
	keys := slices.SortedFunc(maps.Keys(om.recons), cmpReconKey)
	sw.Len(len(keys))
	for _, k := range keys {
		r := om.recons[k]
		if r.key != k || r.om != om {
			sw.fail("reconciliation %v placed in %v is not where it says", k, om.key)
		}
		sw.Uvarint(uint64(sw.reconIdx[r]))
	}
	sw.Len(len(om.benefits))
	for _, s := range om.benefits {
		i, ok := sw.benefitIdx[s.b]
		side := slices.Index(s.b.sides[:], s)
		if !ok || side < 0 || s.om != om {
			sw.fail("a benefit side in %v is not its benefit's", om.key)
		}
		sw.Uvarint(uint64(i)<<1 | uint64(max(side, 0)))
	}
	sw.Bool(om.dirty)
	encodeDetails(sw.Encoder, om.billed)
	switch {
	case om.closed == nil:
		sw.Uvarint(0)
	case len(om.closed) > 0 && len(om.billed) == len(om.closed) && &om.billed[0] == &om.closed[0]:
		sw.Uvarint(1) // the same figures, shared from the close until the next one
	default:
		sw.Uvarint(2)
		encodeDetails(sw.Encoder, om.closed)
	}
}

func (om *orgMonth) decode(sr *snapReader) {
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		r := sr.recon()
		if r == nil {
			return
		}
		if r.om != om {
			sr.Fail("reconciliation %v listed in %v is placed elsewhere", r.key, om.key)
			return
		}
		om.recons[r.key] = r
	}
	n := sr.Len()
	om.benefits = make([]*benefitSide, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		ref := sr.Uvarint()
		if sr.Err() != nil {
			return
		}
		if ref>>1 >= uint64(len(sr.benefits)) {
			sr.Fail("benefit %d of %d", ref>>1, len(sr.benefits))
			return
		}
		s := sr.benefits[ref>>1].sides[ref&1]
		if s == nil || s.om != om {
			sr.Fail("benefit side %d listed in %v is placed elsewhere", ref, om.key)
			return
		}
		om.benefits = append(om.benefits, s)
	}
	om.dirty = sr.Bool()
	om.billed = decodeDetails(sr)
	switch sr.Uvarint() {
	case 0:
	case 1:
		om.closed = om.billed
	case 2:
		om.closed = decodeDetails(sr)
	default:
		sr.Fail("closed figures of %v", om.key)
	}
}

// encode writes the cells for a snapshot (snapshot.go), in the order they
// were added. The index of cells is rebuilt from their keys, and each
// organization-month's and account's list of cells from the cells (see
// index).
func (s *cellStore) encode(sw *snapWriter) {
	sw.Mark("cells")
	sw.Len(int(s.n))
	for i := range s.n {
		c := s.at(i)
		k := &c.key
		if c.om == nil || c.om.key != (orgMonthKey{sw.p.targets[k.target].org, k.month}) {
			sw.fail("cell %d is not in the organization-month of its key", i)
		}
		sw.Int32(int32(k.month))
		sw.Uvarint(uint64(k.acct))
		sw.Uvarint(uint64(k.target))
		sw.Uvarint(uint64(k.svc))
		sw.Uvarint(uint64(k.region))
		sw.Decimal(&c.sum)
		sw.Varint(c.firstAt)
		sw.Varint(c.latest)
		sw.Uvarint(uint64(c.first))
		sw.Uvarint(uint64(c.n))
		if c.n > 1 {
			sw.Uvarint(uint64(c.last))
		}
		sw.Bytes(c.rest)
	}
}

func (s *cellStore) decode(sr *snapReader) {
	sr.Mark("cells")
	p := sr.p
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		// Read into a cell of the store, not into one then copied there:
		// there are millions.
		c := s.at(s.add(cell{}))
		c.key = cellKey{month: sr.month(), acct: sr.account(), target: sr.target(), svc: sr.symbol(), region: sr.symbol()}
		sr.Decimal(&c.sum)
		c.firstAt = sr.Varint()
		c.latest = sr.Varint()
		c.first = sr.event()
		c.n = sr.Uint32()
		c.last = c.first
		if c.n > 1 {
			c.last = sr.event()
		}
		c.rest = sr.BytesIn(&sr.arena, arenaSize)
		if sr.Err() != nil {
			return
		}
		c.om = p.orgMonths[orgMonthKey{p.targets[c.key.target].org, c.key.month}]
		if c.om == nil {
			sr.Fail("cell %v of no organization-month", c.key)
			return
		}
	}
}

// index rebuilds what refers to the cells, from the cells: the index by
// key, and each organization-month's and account's list, in the order
// the cells were added, as the fold added them. ReadSnapshot runs it
// beside the decoding of what follows the cells, which touches none of
// it: a snapshot of millions of cells loads in less time on two cores.
func (s *cellStore) index(p *Projection) {
	p.cellIdx = make(map[cellKey]uint32, s.n)
	for i := range s.n {
		c := s.at(i)
		p.cellIdx[c.key] = i
		c.om.cells = append(c.om.cells, i)
		p.accounts[c.key.acct].cells = append(p.accounts[c.key.acct].cells, i)
	}
}
