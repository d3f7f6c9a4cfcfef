package billing

import (
	"fmt"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

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
	reason   string
	mismatch *orgState // the organization not billed in its currency, while it is not
}

func (p *Projection) applyPurchase(eventID string, m *billingv1.ReservedInstancePurchased) error {
	if m.RiId == "" || m.Vendor == "" || m.AccountId == "" {
		return fmt.Errorf("ri_id, vendor and account_id are required")
	}
	if _, ok := p.ris[m.RiId]; ok {
		return nil // the first purchase of an RI id counts
	}
	ri := &reservedInstance{
		id: m.RiId, vendor: m.Vendor, acct: p.account(m.Vendor, m.AccountId),
		svc: p.symbol(m.Service), region: p.symbol(m.Region), event: p.intern(eventID),
	}
	p.ris[m.RiId] = ri
	waiting := p.waitingForRI[m.RiId]
	delete(p.waitingForRI, m.RiId)
	for _, b := range waiting {
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
	ev := p.intern(eventID)
	for _, b := range benefits {
		b.event = ev
		p.benefitN++
		b.seq = p.benefitN
		if _, ok := p.ris[b.riID]; !ok {
			b.reason = fmt.Sprintf("RI %s is not purchased yet", b.riID)
			p.waitingForRI[b.riID] = append(p.waitingForRI[b.riID], b)
			continue
		}
		p.placeBenefit(b)
	}
	return nil
}

// placeBenefit bills a benefit whose RI is known: the consumer debited, the
// purchaser credited, each side rounded from the same amount so they match
// to the cent (DESIGN.md 7.3 step 2). A benefit whose accounts have no
// provider at the end of its month waits for the hierarchy.
func (p *Projection) placeBenefit(b *benefit) {
	ri := p.ris[b.riID]
	consumer := p.account(ri.vendor, b.consumerID)
	if consumer == ri.acct {
		return // an RI used by its purchaser: no inter-customer adjustment
	}
	at := monthEnd(b.month)
	ct, err := p.resolve(consumer, at)
	if err != nil {
		b.reason = fmt.Sprintf("consumer: %v", err)
		p.unresolved = append(p.unresolved, b)
		return
	}
	pt, err := p.resolve(ri.acct, at)
	if err != nil {
		b.reason = fmt.Sprintf("purchaser of RI %s: %v", ri.id, err)
		p.unresolved = append(p.unresolved, b)
		return
	}
	if !b.indexed {
		b.indexed = true
		p.benefitsOf[consumer] = append(p.benefitsOf[consumer], b)
		p.benefitsOf[ri.acct] = append(p.benefitsOf[ri.acct], b)
	}
	corg, porg := p.orgs[p.targets[ct].org], p.orgs[p.targets[pt].org]
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
	ev := p.intern(eventID)
	for i, l := range m.Lines {
		k := reconKey{month: month, acct: p.account(m.Vendor, l.AccountId), svc: p.symbol(l.Service)}
		r, ok := p.recons[k]
		if !ok {
			r = &recon{key: k}
			p.recons[k] = r
			p.reconsOf[k.acct] = append(p.reconsOf[k.acct], r)
		}
		r.amount.Set(&amounts[i])
		r.currency = l.GetVendorCost().GetCurrency()
		r.event = ev
		if r.reason != "" && r.om == nil && r.target == waitingTarget {
			continue // still in the unresolved list, which will place it
		}
		if r.om != nil {
			delete(r.om.recons, k) // a later reconciliation replaces the earlier one
			p.touch(r.om)
			r.om = nil
		}
		p.placeRecon(r)
	}
	return nil
}

// waitingTarget marks a reconciliation in the unresolved list.
const waitingTarget = ^uint32(0)

// placeRecon puts a reconciliation in the organization-month of its
// account at the end of the month.
func (p *Projection) placeRecon(r *recon) {
	tg, err := p.resolve(r.key.acct, monthEnd(r.key.month))
	if err != nil {
		r.reason = err.Error()
		r.target = waitingTarget
		p.unresolvedRecon = append(p.unresolvedRecon, r)
		return
	}
	org := p.orgs[p.targets[tg].org]
	if r.currency != org.currency.Code() {
		// Listed as an exception until a registration moves the account
		// to an organization billed in its currency.
		r.reason, r.target, r.mismatch = "currency mismatch", 0, org
		return
	}
	r.mismatch = nil
	r.reason, r.target = "", tg
	om := p.orgMonth(p.targets[tg].org, r.key.month)
	om.recons[r.key] = r
	r.om = om
	p.touch(om)
}
