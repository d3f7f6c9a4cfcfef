package billing

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// adjustments holds what the fold bills besides usage: RI purchases, the
// RI benefits reported against them, and vendor reconciliations. Each is
// placed in the organization-months it bills by Projection.placeBenefit
// and Projection.placeRecon, and moved by reattribute.
//
// It owns these invariants. The first purchase of an RI id counts. A
// benefit, once reported, is in one place: waiting for its RI's purchase,
// waiting for its accounts' providers, held as a currency mismatch, placed
// (its two sides, which sum to zero, in the organization-months they
// bill), or dropped as an RI used by its purchaser. A reconciliation of an
// (account, service) of a month replaces the earlier one: there is one per
// reconKey, in one place: waiting for the account's provider, held as a
// currency mismatch, or placed in one organization-month.
type adjustments struct {
	ris          map[string]*reservedInstance
	waitingForRI map[string][]*benefit // RI id -> benefits reported before the purchase
	unresolved   []*benefit            // benefits whose accounts have no provider yet
	benefitsOf   map[uint32][]*benefit // account -> benefits it consumed or whose RI it bought, once placed
	benefitN     uint64                // benefits reported so far: their order

	recons          map[reconKey]*recon
	reconsOf        map[uint32][]*recon // account -> its reconciliations
	unresolvedRecon []*recon            // reconciliations whose account has no provider yet
}

func newAdjustments() adjustments {
	return adjustments{
		ris:          make(map[string]*reservedInstance),
		waitingForRI: make(map[string][]*benefit),
		benefitsOf:   make(map[uint32][]*benefit),
		recons:       make(map[reconKey]*recon),
		reconsOf:     make(map[uint32][]*recon),
	}
}

// reservedInstance is an RI purchase: who bought it, for which service and
// region (the inter-customer details' service and region).
type reservedInstance struct {
	id     string
	vendor string
	acct   uint32
	svc    uint32
	region uint32
	event  uint32
}

// benefit is one reported RI benefit, exact as reported.
type benefit struct {
	riID       string
	month      calendar.Month
	consumerID string
	amount     apd.Decimal
	currency   string
	event      uint32
	reason     string    // why it waits, while it does
	seq        uint64    // the order reported, for a deterministic re-placement
	indexed    bool      // in benefitsOf
	mismatch   *orgState // the organization not billed in its currency, while one is not
	// Once placed: the consumer's debit and the purchaser's credit.
	sides [2]*benefitSide
}

// benefitSide is one side of a placed benefit: the consumer's debit or the
// purchaser's credit, rounded, in the organization-month it bills.
type benefitSide struct {
	b            *benefit
	ri           *reservedInstance
	acct         uint32
	counterparty uint32
	target       uint32
	purchaser    bool
	amount       apd.Decimal
	om           *orgMonth
}

type reconKey struct {
	month calendar.Month
	acct  uint32
	svc   uint32
}

// recon is the latest vendor reconciliation of one (account, service) of a
// month, and where it is placed.
type recon struct {
	key      reconKey
	amount   apd.Decimal
	currency string
	event    uint32
	target   uint32
	om       *orgMonth // nil while unresolved or in another currency
	waiting  bool      // in the unresolved list, waiting for the hierarchy
	reason   string    // why it is not placed, while it is not
	mismatch *orgState // the organization not billed in its currency, while it is not
}

// purchased reports whether an RI id was purchased.
func (a *adjustments) purchased(id string) bool {
	_, ok := a.ris[id]
	return ok
}

// ri returns a purchased RI, or nil.
func (a *adjustments) ri(id string) *reservedInstance { return a.ris[id] }

// purchase records the first purchase of an RI and returns the benefits
// that waited for it, in the order reported, to be placed.
func (a *adjustments) purchase(ri *reservedInstance) []*benefit {
	a.ris[ri.id] = ri
	waiting := a.waitingForRI[ri.id]
	delete(a.waitingForRI, ri.id)
	return waiting
}

// report numbers a reported benefit and reports whether its RI is
// purchased; if not, the benefit waits for the purchase.
func (a *adjustments) report(b *benefit) bool {
	a.benefitN++
	b.seq = a.benefitN
	if _, ok := a.ris[b.riID]; !ok {
		b.reason = fmt.Sprintf("RI %s is not purchased yet", b.riID)
		a.waitingForRI[b.riID] = append(a.waitingForRI[b.riID], b)
		return false
	}
	return true
}

// waitForHierarchy keeps a benefit whose accounts have no provider at the
// end of its month until a registration covers them.
func (a *adjustments) waitForHierarchy(b *benefit, reason string) {
	b.reason = reason
	a.unresolved = append(a.unresolved, b)
}

// index lists a benefit under its consumer and purchaser, once, so that a
// change of their hierarchy finds it.
func (a *adjustments) index(b *benefit, consumer, purchaser uint32) {
	if !b.indexed {
		b.indexed = true
		a.benefitsOf[consumer] = append(a.benefitsOf[consumer], b)
		a.benefitsOf[purchaser] = append(a.benefitsOf[purchaser], b)
	}
}

// recon returns the reconciliation of k, adding it if new.
func (a *adjustments) recon(k reconKey) *recon {
	r, ok := a.recons[k]
	if !ok {
		r = &recon{key: k}
		a.recons[k] = r
		a.reconsOf[k.acct] = append(a.reconsOf[k.acct], r)
	}
	return r
}

// waitRecon keeps a reconciliation whose account has no provider at the
// end of its month until a registration covers it.
func (a *adjustments) waitRecon(r *recon, reason string) {
	r.waiting, r.reason = true, reason
	a.unresolvedRecon = append(a.unresolvedRecon, r)
}

// takeUnresolved returns, and forgets, what waits for the hierarchy: the
// caller places each again.
func (a *adjustments) takeUnresolved() ([]*recon, []*benefit) {
	recons, benefits := a.unresolvedRecon, a.unresolved
	a.unresolvedRecon, a.unresolved = nil, nil
	for _, r := range recons {
		r.waiting = false
	}
	return recons, benefits
}

// ofAccounts returns the reconciliations and the placed benefits of the
// accounts, account by account.
func (a *adjustments) ofAccounts(accts []uint32) ([]*recon, []*benefit) {
	var recons []*recon
	var benefits []*benefit
	for _, acct := range accts {
		recons = append(recons, a.reconsOf[acct]...)
		benefits = append(benefits, a.benefitsOf[acct]...)
	}
	return recons, benefits
}

// eachMismatchedRecon calls fn with every reconciliation held as a
// currency mismatch of org (of any if empty).
func (a *adjustments) eachMismatchedRecon(org string, fn func(r *recon)) {
	for _, r := range a.recons {
		if r.mismatch != nil && (org == "" || r.mismatch.id == org) {
			fn(r)
		}
	}
}

// mismatchedBenefits returns the benefits held as currency mismatches of
// org (of any if empty), in the order reported.
func (a *adjustments) mismatchedBenefits(org string) []*benefit {
	var benefits []*benefit
	for _, bs := range a.benefitsOf {
		for _, b := range bs {
			if b.mismatch != nil && (org == "" || b.mismatch.id == org) {
				benefits = append(benefits, b)
			}
		}
	}
	slices.SortFunc(benefits, func(a, b *benefit) int { return cmp.Compare(a.seq, b.seq) })
	return slices.Compact(benefits)
}

// waitingRecons returns the reconciliations that wait for the hierarchy.
func (a *adjustments) waitingRecons() []*recon { return a.unresolvedRecon }

// pendingBenefits returns the benefits that wait: for their RI's purchase,
// by RI id, then for the hierarchy.
func (a *adjustments) pendingBenefits() []*benefit {
	riIDs := make([]string, 0, len(a.waitingForRI))
	for id := range a.waitingForRI {
		riIDs = append(riIDs, id)
	}
	slices.Sort(riIDs)
	var benefits []*benefit
	for _, id := range riIDs {
		benefits = append(benefits, a.waitingForRI[id]...)
	}
	return append(benefits, a.unresolved...)
}

// place puts a reconciliation in the organization-month it bills, at
// attribution tg.
func (r *recon) place(om *orgMonth, tg uint32) {
	r.mismatch = nil
	r.reason, r.target = "", tg
	om.recons[r.key] = r
	r.om = om
}

// unplace takes a placed reconciliation out of its organization-month and
// returns that month (nil if it was not placed), which changed.
func (r *recon) unplace() *orgMonth {
	om := r.om
	if om != nil {
		delete(om.recons, r.key)
		r.om = nil
	}
	return om
}

// unplace takes the sides of a placed benefit out of their
// organization-months, calling changed with each.
func (b *benefit) unplace(changed func(*orgMonth)) {
	for _, s := range b.sides {
		if s != nil {
			s.om.benefits = slices.DeleteFunc(s.om.benefits, func(x *benefitSide) bool { return x == s })
			changed(s.om)
		}
	}
	b.sides = [2]*benefitSide{}
}

func (p *Projection) applyPurchase(eventID string, m *billingv1.ReservedInstancePurchased) error {
	if m.RiId == "" || m.Vendor == "" || m.AccountId == "" {
		return fmt.Errorf("ri_id, vendor and account_id are required")
	}
	if p.adjustments.purchased(m.RiId) {
		return nil // the first purchase of an RI id counts
	}
	ri := &reservedInstance{
		id: m.RiId, vendor: m.Vendor, acct: p.account(m.Vendor, m.AccountId),
		svc: p.ids.symbol(m.Service), region: p.ids.symbol(m.Region), event: p.ids.event(eventID),
	}
	for _, b := range p.adjustments.purchase(ri) {
		p.placeBenefit(b)
	}
	return nil
}

func (p *Projection) applyBenefits(eventID string, m *billingv1.ReservedInstanceBenefitReported) error {
	month, err := calendar.Parse(m.Month)
	if err != nil {
		return fmt.Errorf("month: %w", err)
	}
	benefits := make([]*benefit, len(m.Benefits))
	for i, rb := range m.Benefits {
		b := &benefit{riID: rb.RiId, month: month, consumerID: rb.ConsumerAccountId, currency: rb.GetAmount().GetCurrency()}
		if rb.RiId == "" || rb.ConsumerAccountId == "" {
			return fmt.Errorf("benefits[%d]: ri_id and consumer_account_id are required", i)
		}
		if err := money.ParseDecimal(&b.amount, rb.GetAmount().GetAmount()); err != nil {
			return fmt.Errorf("benefits[%d].amount: %w", i, err)
		}
		benefits[i] = b
	}
	ev := p.ids.event(eventID)
	for _, b := range benefits {
		b.event = ev
		if p.adjustments.report(b) {
			p.placeBenefit(b)
		}
	}
	return nil
}

// placeBenefit bills a benefit whose RI is known, step 2 of the month's bill
// (docs/architecture.md, "The month's bill"): the consumer debited, the
// purchaser credited, each side rounded from the same amount so they match to
// the cent. A benefit whose accounts have no provider at the end of its month
// waits for the hierarchy.
func (p *Projection) placeBenefit(b *benefit) {
	ri := p.adjustments.ri(b.riID)
	consumer := p.account(ri.vendor, b.consumerID)
	if consumer == ri.acct {
		return // an RI used by its purchaser: no inter-customer adjustment
	}
	at := monthEnd(b.month)
	ct, err := p.resolve(consumer, at)
	if err != nil {
		p.adjustments.waitForHierarchy(b, fmt.Sprintf("consumer: %v", err))
		return
	}
	pt, err := p.resolve(ri.acct, at)
	if err != nil {
		p.adjustments.waitForHierarchy(b, fmt.Sprintf("purchaser of RI %s: %v", ri.id, err))
		return
	}
	p.adjustments.index(b, consumer, ri.acct)
	corg, porg := p.orgOf(ct), p.orgOf(pt)
	b.mismatch = nil
	for _, o := range []*orgState{corg, porg} {
		if b.currency != o.currency.Code() {
			// Listed as an exception until a registration moves the
			// accounts to organizations billed in its currency.
			b.mismatch = o
			b.reason = fmt.Sprintf("RI %s benefit in %s, organization %s is billed in %s", ri.id, b.currency, o.id, o.currency.Code())
			return
		}
	}
	b.reason = ""
	debit := &benefitSide{b: b, ri: ri, acct: consumer, counterparty: ri.acct, target: ct}
	money.Round(&debit.amount, &b.amount, corg.currency)
	credit := &benefitSide{b: b, ri: ri, acct: ri.acct, counterparty: consumer, target: pt, purchaser: true}
	credit.amount.Neg(&debit.amount)
	b.sides = [2]*benefitSide{debit, credit}
	for _, s := range b.sides {
		s.om = p.orgMonth(p.targets[s.target].org, b.month)
		s.om.benefits = append(s.om.benefits, s)
		p.touch(s.om)
	}
}

func (p *Projection) applyReconciliation(eventID string, m *billingv1.VendorReconciliationCompleted) error {
	month, err := calendar.Parse(m.Month)
	if err != nil {
		return fmt.Errorf("month: %w", err)
	}
	if m.Vendor == "" {
		return fmt.Errorf("vendor is empty")
	}
	amounts := make([]apd.Decimal, len(m.Lines))
	for i, l := range m.Lines {
		if l.AccountId == "" || l.Service == "" {
			return fmt.Errorf("lines[%d]: account_id and service are required", i)
		}
		if err := money.ParseDecimal(&amounts[i], l.GetVendorCost().GetAmount()); err != nil {
			return fmt.Errorf("lines[%d].vendor_cost: %w", i, err)
		}
	}
	ev := p.ids.event(eventID)
	for i, l := range m.Lines {
		r := p.adjustments.recon(reconKey{month: month, acct: p.account(m.Vendor, l.AccountId), svc: p.ids.symbol(l.Service)})
		r.amount.Set(&amounts[i])
		r.currency = l.GetVendorCost().GetCurrency()
		r.event = ev
		if r.waiting {
			continue // still in the unresolved list, which will place it
		}
		if om := r.unplace(); om != nil {
			p.touch(om) // a later reconciliation replaces the earlier one
		}
		p.placeRecon(r)
	}
	return nil
}

// placeRecon puts a reconciliation in the organization-month of its
// account at the end of the month.
func (p *Projection) placeRecon(r *recon) {
	tg, err := p.resolve(r.key.acct, monthEnd(r.key.month))
	if err != nil {
		p.adjustments.waitRecon(r, err.Error())
		return
	}
	org := p.orgOf(tg)
	if r.currency != org.currency.Code() {
		// Listed as an exception until a registration moves the account
		// to an organization billed in its currency.
		r.reason, r.target, r.mismatch = "currency mismatch", 0, org
		return
	}
	om := p.orgMonth(p.targets[tg].org, r.key.month)
	r.place(om, tg)
	p.touch(om)
}

func cmpReconKey(a, b reconKey) int {
	return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.acct, b.acct), cmp.Compare(a.svc, b.svc))
}

// encode writes the adjustments for a snapshot (snapshot.go): the RIs in
// id order; the table of reconciliations, account by account in the order
// of reconsOf (which holds each once); the table of benefits, every one
// still held anywhere, in the order reported; then the lists, by index
// into the tables.
func (a *adjustments) encode(sw *snapWriter) {
	sw.Mark("adjustments")
	ids := slices.SortedFunc(maps.Keys(a.ris), strings.Compare)
	sw.Len(len(ids))
	for _, id := range ids {
		ri := a.ris[id]
		sw.String(ri.id)
		sw.String(ri.vendor)
		sw.Uvarint(uint64(ri.acct))
		sw.Uvarint(uint64(ri.svc))
		sw.Uvarint(uint64(ri.region))
		sw.Uvarint(uint64(ri.event))
	}
	sw.Uvarint(a.benefitN)

	sw.reconIdx = make(map[*recon]uint32, len(a.recons))
	accts := slices.SortedFunc(maps.Keys(a.reconsOf), cmp.Compare)
	sw.Len(len(accts))
	for _, acct := range accts {
		rs := a.reconsOf[acct]
		sw.Uvarint(uint64(acct))
		sw.Len(len(rs))
		for _, r := range rs {
			if _, dup := sw.reconIdx[r]; dup || r.key.acct != acct || a.recons[r.key] != r {
				sw.fail("reconciliation %v is listed twice or under another account", r.key)
			}
			sw.reconIdx[r] = uint32(len(sw.reconIdx))
			r.encode(sw)
		}
	}
	if len(sw.reconIdx) != len(a.recons) {
		sw.fail("%d reconciliations listed by account, %d kept", len(sw.reconIdx), len(a.recons))
	}
	sw.Len(len(a.unresolvedRecon))
	for _, r := range a.unresolvedRecon {
		sw.Uvarint(uint64(sw.reconIdx[r]))
	}

	// Every benefit still held is in one of these (a placed one is
	// indexed before its sides are made); one dropped as its purchaser's
	// own use is in none, and is gone.
	var all []*benefit
	for _, bs := range a.waitingForRI {
		all = append(all, bs...)
	}
	all = append(all, a.unresolved...)
	for _, bs := range a.benefitsOf {
		all = append(all, bs...)
	}
	for _, om := range sw.p.orgMonths {
		for _, s := range om.benefits {
			all = append(all, s.b)
		}
	}
	slices.SortFunc(all, func(x, y *benefit) int { return cmp.Compare(x.seq, y.seq) })
	all = slices.Compact(all)
	sw.benefitIdx = make(map[*benefit]uint32, len(all))
	sw.Len(len(all))
	for i, b := range all {
		if i > 0 && all[i-1].seq == b.seq {
			sw.fail("two benefits numbered %d", b.seq)
		}
		sw.benefitIdx[b] = uint32(i)
		b.encode(sw)
	}
	riIDs := slices.SortedFunc(maps.Keys(a.waitingForRI), strings.Compare)
	sw.Len(len(riIDs))
	for _, id := range riIDs {
		sw.String(id)
		sw.benefitRefs(a.waitingForRI[id])
	}
	sw.benefitRefs(a.unresolved)
	benefitAccts := slices.SortedFunc(maps.Keys(a.benefitsOf), cmp.Compare)
	sw.Len(len(benefitAccts))
	for _, acct := range benefitAccts {
		sw.Uvarint(uint64(acct))
		sw.benefitRefs(a.benefitsOf[acct])
	}
}

func (sw *snapWriter) benefitRefs(bs []*benefit) {
	sw.Len(len(bs))
	for _, b := range bs {
		sw.Uvarint(uint64(sw.benefitIdx[b]))
	}
}

func (a *adjustments) decode(sr *snapReader) {
	sr.Mark("adjustments")
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		ri := &reservedInstance{id: sr.String(), vendor: sr.String(), acct: sr.account(), svc: sr.symbol(), region: sr.symbol(), event: sr.event()}
		a.ris[ri.id] = ri
	}
	a.benefitN = sr.Uvarint()

	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		acct := sr.account()
		c := sr.Len()
		rs := make([]*recon, 0, sr.Cap(c))
		for ; c > 0 && sr.Err() == nil; c-- {
			r := &recon{}
			r.decode(sr)
			if r.key.acct != acct {
				sr.Fail("reconciliation %v listed under account %d", r.key, acct)
			}
			a.recons[r.key] = r
			rs = append(rs, r)
			sr.recons = append(sr.recons, r)
		}
		a.reconsOf[acct] = rs
	}
	n := sr.Len()
	if n > 0 {
		a.unresolvedRecon = make([]*recon, 0, sr.Cap(n))
	}
	for ; n > 0 && sr.Err() == nil; n-- {
		if r := sr.recon(); r != nil {
			a.unresolvedRecon = append(a.unresolvedRecon, r)
		}
	}

	n = sr.Len()
	sr.benefits = make([]*benefit, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		b := &benefit{}
		b.decode(sr)
		sr.benefits = append(sr.benefits, b)
	}
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		id := sr.String()
		a.waitingForRI[id] = sr.benefitRefs()
	}
	a.unresolved = sr.benefitRefs()
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		acct := sr.account()
		a.benefitsOf[acct] = sr.benefitRefs()
	}
}

// recon reads a reference to a reconciliation of the table; nil after an
// error.
func (sr *snapReader) recon() *recon {
	i := sr.index(len(sr.recons), "reconciliation")
	if sr.Err() != nil {
		return nil
	}
	return sr.recons[i]
}

// benefit reads a reference to a benefit of the table; nil after an
// error.
func (sr *snapReader) benefit() *benefit {
	i := sr.index(len(sr.benefits), "benefit")
	if sr.Err() != nil {
		return nil
	}
	return sr.benefits[i]
}

func (sr *snapReader) benefitRefs() []*benefit {
	n := sr.Len()
	if n == 0 {
		return nil
	}
	bs := make([]*benefit, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		if b := sr.benefit(); b != nil {
			bs = append(bs, b)
		}
	}
	return bs
}

// encode writes a reconciliation for a snapshot (adjustments.encode).
func (r *recon) encode(sw *snapWriter) {
	sw.Int32(int32(r.key.month))
	sw.Uvarint(uint64(r.key.acct))
	sw.Uvarint(uint64(r.key.svc))
	sw.Decimal(&r.amount)
	sw.String(r.currency)
	sw.Uvarint(uint64(r.event))
	sw.Uvarint(uint64(r.target))
	sw.orgMonthRef(r.om)
	sw.Bool(r.waiting)
	sw.String(r.reason)
	sw.orgRef(r.mismatch)
}

func (r *recon) decode(sr *snapReader) {
	r.key = reconKey{month: sr.month(), acct: sr.account(), svc: sr.symbol()}
	sr.Decimal(&r.amount)
	r.currency = sr.String()
	r.event = sr.event()
	r.target = sr.target()
	r.om = sr.orgMonthRef()
	r.waiting = sr.Bool()
	r.reason = sr.String()
	r.mismatch = sr.orgRef()
}

// encode writes a benefit and its sides for a snapshot
// (adjustments.encode). A side's RI is its benefit's, so it is not
// written.
func (b *benefit) encode(sw *snapWriter) {
	sw.String(b.riID)
	sw.Int32(int32(b.month))
	sw.String(b.consumerID)
	sw.Decimal(&b.amount)
	sw.String(b.currency)
	sw.Uvarint(uint64(b.event))
	sw.String(b.reason)
	sw.Uvarint(b.seq)
	sw.Bool(b.indexed)
	sw.orgRef(b.mismatch)
	for _, s := range b.sides {
		sw.Bool(s != nil)
		if s == nil {
			continue
		}
		if s.b != b || s.ri != sw.p.adjustments.ris[b.riID] {
			sw.fail("a side of benefit %d is another benefit's or RI's", b.seq)
		}
		sw.Uvarint(uint64(s.acct))
		sw.Uvarint(uint64(s.counterparty))
		sw.Uvarint(uint64(s.target))
		sw.Bool(s.purchaser)
		sw.Decimal(&s.amount)
		sw.orgMonthRef(s.om)
	}
}

func (b *benefit) decode(sr *snapReader) {
	b.riID = sr.String()
	b.month = sr.month()
	b.consumerID = sr.String()
	sr.Decimal(&b.amount)
	b.currency = sr.String()
	b.event = sr.event()
	b.reason = sr.String()
	b.seq = sr.Uvarint()
	b.indexed = sr.Bool()
	b.mismatch = sr.orgRef()
	for i := range b.sides {
		if !sr.Bool() || sr.Err() != nil {
			continue
		}
		s := &benefitSide{b: b, ri: sr.p.adjustments.ris[b.riID], acct: sr.account(), counterparty: sr.account(), target: sr.target(), purchaser: sr.Bool()}
		sr.Decimal(&s.amount)
		s.om = sr.orgMonthRef()
		if s.ri == nil || s.om == nil {
			sr.Fail("a side of benefit %d without its RI or organization-month", b.seq)
			return
		}
		b.sides[i] = s
	}
}
