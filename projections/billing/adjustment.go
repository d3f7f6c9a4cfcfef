package billing

import (
	"cmp"
	"fmt"
	"slices"

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
