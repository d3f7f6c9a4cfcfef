package billing

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
)

// MaxRangeMonths bounds the ranges of the queries that compute a document
// per month: a century of months is far more than any screen shows.
const MaxRangeMonths = 1200

// Invoice returns the invoice of a BAN for a month: the issued invoice,
// frozen at the month's close, or before it the draft at the current
// position. Errors: ErrUnknownBAN; ErrNotBilled for a month before the
// first closed cycle.
func (p *Projection) Invoice(ban string, m calendar.Month) (*Invoice, error) {
	if inv, ok := p.issued[docKey{ban, m}]; ok {
		return inv, nil
	}
	if _, ok := p.h.OrganizationOfBAN(ban); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBAN, ban)
	}
	if !m.Valid() {
		return nil, fmt.Errorf("%w: month %d", calendar.ErrMalformed, m)
	}
	if err := p.available(m, BillingCycle); err != nil {
		return nil, err
	}
	if p.hasClosed && m <= p.lastClosed {
		// The BAN was named after the close: nothing could bill it then.
		c := p.closes[m]
		inv := p.newDocument(ban, m, BillingCycle, Issued, c.at, c.pos)
		inv.finish()
		return inv, nil
	}
	return p.draft(ban, m), nil
}

// Invoices lists the invoices of a BAN over a range of months, both ends
// included, skipping months before the first closed cycle.
func (p *Projection) Invoices(ban string, from, to calendar.Month) ([]InvoiceSummary, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	if _, ok := p.h.OrganizationOfBAN(ban); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBAN, ban)
	}
	var out []InvoiceSummary
	for m := from; m <= to; m++ {
		inv, err := p.Invoice(ban, m)
		if err != nil {
			continue // ErrNotBilled: no invoice of its own
		}
		s := InvoiceSummary{BAN: ban, Month: m, Status: inv.Status}
		s.Total.Set(&inv.Total)
		out = append(out, s)
	}
	return out, nil
}

// VendorView returns the vendor billing cycle view of a BAN for a month,
// frozen at its finalization: V(M, C_M) as billed plus "Post-Bill Update
// to" lines, V(M, F_M) - V(M, C_M). Before the finalization the error is a
// *NotFinalizedError (errors.Is ErrNotFinalized) saying from when.
func (p *Projection) VendorView(ban string, m calendar.Month) (*Invoice, error) {
	if inv, ok := p.vendor[docKey{ban, m}]; ok {
		return inv, nil
	}
	if _, ok := p.h.OrganizationOfBAN(ban); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBAN, ban)
	}
	if err := p.available(m, VendorCycle); err != nil {
		return nil, err
	}
	// Finalized, and the BAN was named after: nothing could bill it then.
	f := p.finals[m]
	inv := p.newDocument(ban, m, VendorCycle, Issued, f.at, f.pos)
	inv.finish()
	return inv, nil
}

// document returns the invoice or vendor view, or nil if the view has none
// for the month (not billed, not finalized).
func (p *Projection) document(ban string, m calendar.Month, view View) (*Invoice, error) {
	var inv *Invoice
	var err error
	if view == VendorCycle {
		inv, err = p.VendorView(ban, m)
	} else {
		inv, err = p.Invoice(ban, m)
	}
	switch {
	case err == nil:
		return inv, nil
	case errorsIsAny(err, ErrNotBilled, ErrNotFinalized):
		return nil, nil
	}
	return nil, err
}

// Currency returns the currency an organization is billed in: that of its
// first registration, since a currency cannot change under issued
// invoices. It is ErrUnknownOrganization for an organization never
// registered. Callers that render amounts (the query service) need it
// without computing a document.
func (p *Projection) Currency(org string) (money.Currency, error) {
	o, err := p.h.Organization(org)
	if err != nil {
		return money.Currency{}, fmt.Errorf("%w: %q", ErrUnknownOrganization, org)
	}
	return o.Currency, nil
}

// orgBANs returns the BANs of an organization, sorted.
func (p *Projection) orgBANs(org string) ([]string, error) {
	if _, err := p.h.Organization(org); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownOrganization, org)
	}
	var bans []string
	for _, b := range p.h.BANs() {
		if o, _ := p.h.OrganizationOfBAN(b); o == org {
			bans = append(bans, b)
		}
	}
	slices.Sort(bans)
	return bans, nil
}

// UsageMonth returns the organization-wide version of a month's documents
// in a view: the lines of the invoices (or vendor views) of all its BANs.
// In the billing cycle view, a month before the first close has no invoice
// of its own and Lines is empty (its charges are on the first invoice). In
// the vendor cycle view, a month not yet finalized is a *NotFinalizedError
// saying from when, as VendorView's: no lines would read as a month without
// charges.
func (p *Projection) UsageMonth(org string, m calendar.Month, view View) (*UsageMonth, error) {
	bans, err := p.orgBANs(org)
	if err != nil {
		return nil, err
	}
	if err := p.available(m, view); errors.Is(err, ErrNotFinalized) {
		return nil, err
	}
	o, _ := p.h.Organization(org)
	u := &UsageMonth{OrgID: org, Month: m, View: view, Currency: o.Currency, Position: p.pos}
	u.Total.SetFinite(0, -o.Currency.Digits())
	for _, ban := range bans {
		inv, err := p.document(ban, m, view)
		if err != nil {
			return nil, err
		}
		if inv == nil {
			continue
		}
		u.Lines = append(u.Lines, inv.Lines...)
		money.Add(&u.Total, &u.Total, &inv.Total)
	}
	slices.SortStableFunc(u.Lines, func(a, b Line) int { return lineCmp(&a, &b) })
	return u, nil
}

// UsageHistory returns, per month of a range, the organization's total in
// a view and whether the view has a document for the month, by the rule
// UsageMonth answers by.
func (p *Projection) UsageHistory(org string, from, to calendar.Month, view View) ([]MonthSummary, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	bans, err := p.orgBANs(org)
	if err != nil {
		return nil, err
	}
	o, _ := p.h.Organization(org)
	var out []MonthSummary
	for m := from; m <= to; m++ {
		s := MonthSummary{Month: m, Available: p.available(m, view) == nil}
		s.Total.SetFinite(0, -o.Currency.Digits())
		for _, ban := range bans {
			if !s.Available {
				break
			}
			inv, err := p.document(ban, m, view)
			if err != nil {
				return nil, err
			}
			if inv != nil {
				money.Add(&s.Total, &s.Total, &inv.Total)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// available is the one rule for whether a view has documents for a month,
// whatever the BAN: nil; ErrNotBilled for a billing cycle month before the
// first close; a *NotFinalizedError for a vendor cycle month not finalized.
// It agrees with Invoice and VendorView, which say the same per BAN.
func (p *Projection) available(m calendar.Month, view View) error {
	if view == VendorCycle {
		if _, ok := p.finals[m]; ok {
			return nil
		}
		_, closed := p.closes[m]
		return notFinalized(m, closed)
	}
	if p.hasClosed && m < p.firstClose {
		return fmt.Errorf("%w: %s is before %s; its charges are on the invoice of %s", ErrNotBilled, m, p.firstClose, p.firstClose)
	}
	return nil
}

// Dashboard returns, per month of a range, the total of the invoices of an
// organization, or with costCenter not empty the total of their lines of
// that cost center: issued invoices for closed months, drafts for open ones,
// zero for months before the first close.
func (p *Projection) Dashboard(org, costCenter string, from, to calendar.Month) ([]Bar, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	bans, err := p.orgBANs(org)
	if err != nil {
		return nil, err
	}
	if costCenter != "" && !p.h.HasCostCenter(org, costCenter) {
		return nil, fmt.Errorf("%w: %q in organization %q", ErrUnknownCostCenter, costCenter, org)
	}
	o, _ := p.h.Organization(org)
	var out []Bar
	for m := from; m <= to; m++ {
		b := Bar{Month: m}
		b.Amount.SetFinite(0, -o.Currency.Digits())
		for _, ban := range bans {
			inv, err := p.document(ban, m, BillingCycle)
			if err != nil {
				return nil, err
			}
			if inv == nil {
				continue
			}
			if costCenter == "" {
				money.Add(&b.Amount, &b.Amount, &inv.Total)
				continue
			}
			for i := range inv.Lines {
				if inv.Lines[i].CostCenterID == costCenter {
					money.Add(&b.Amount, &b.Amount, &inv.Lines[i].Amount)
				}
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// Adjustments returns the adjustment ledger of an organization for a month
// at the current position: with kind InterCustomerAdjustment one entry per
// RI, account and counterparty (both sides of every benefit the
// organization is on); with IntraOrgAdjustment one entry per account.
func (p *Projection) Adjustments(org string, m calendar.Month, kind LineKind) ([]Adjustment, error) {
	if _, err := p.h.Organization(org); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownOrganization, org)
	}
	if kind != InterCustomerAdjustment && kind != IntraOrgAdjustment {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKind, kind)
	}
	oi, ok := p.orgIdx[org]
	if !ok {
		return nil, nil
	}
	om, ok := p.orgMonths[orgMonthKey{oi, m}]
	if !ok {
		return nil, nil
	}
	var out []Adjustment
	if kind == IntraOrgAdjustment {
		for _, d := range p.value(om) {
			if d.key.kind != IntraOrgAdjustment {
				continue
			}
			acc := &p.accounts[d.key.acct]
			a := Adjustment{Kind: kind, Vendor: p.vendorDisplay[acc.vendorKey], AccountID: acc.accountID, Description: IntraOrgName}
			a.Amount.Set(&d.amount)
			out = append(out, a)
		}
		return out, nil
	}
	type sideKey struct {
		ri                 string
		acct, counterparty uint32
	}
	idx := make(map[sideKey]int)
	for _, s := range om.benefits {
		k := sideKey{s.ri.id, s.acct, s.counterparty}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			acc, cp := &p.accounts[s.acct], &p.accounts[s.counterparty]
			desc := fmt.Sprintf("RI %s benefit consumed from %s", s.ri.id, cp.accountID)
			if s.purchaser {
				desc = fmt.Sprintf("RI %s benefit consumed by %s", s.ri.id, cp.accountID)
			}
			out = append(out, Adjustment{Kind: kind, Vendor: p.vendorDisplay[acc.vendorKey], AccountID: acc.accountID,
				CounterpartyAccountID: cp.accountID, RIID: s.ri.id, Description: desc})
		}
		money.Add(&out[i].Amount, &out[i].Amount, &s.amount)
	}
	slices.SortFunc(out, func(a, b Adjustment) int {
		return cmp.Or(strings.Compare(hierarchy.VendorKey(a.Vendor), hierarchy.VendorKey(b.Vendor)),
			strings.Compare(a.AccountID, b.AccountID), strings.Compare(a.RIID, b.RIID),
			strings.Compare(a.CounterpartyAccountID, b.CounterpartyAccountID))
	})
	return out, nil
}

// Exceptions lists what is on no invoice: unassigned usage, pending RI
// benefits and currency mismatches (and invalid records), all of them, or
// with org not empty those known to be the organization's (unassigned
// usage has no organization, so it is only in the full list). Sorted by
// month, kind, vendor, account and event.
func (p *Projection) Exceptions(org string) ([]Exception, error) {
	if org != "" {
		if _, err := p.h.Organization(org); err != nil {
			return nil, fmt.Errorf("%w: %q", ErrUnknownOrganization, org)
		}
	}
	var out []Exception
	for _, e := range p.badList {
		if org == "" || e.OrgID == org {
			x := *e
			x.Amount.Set(&e.Amount)
			out = append(out, x)
		}
	}
	out = append(out, p.mismatchExceptions(org)...)
	if org == "" {
		out = append(out, p.pendingExceptions()...)
	}
	slices.SortStableFunc(out, func(a, b Exception) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Kind, b.Kind),
			strings.Compare(hierarchy.VendorKey(a.Vendor), hierarchy.VendorKey(b.Vendor)),
			strings.Compare(a.AccountID, b.AccountID), cmp.Compare(p.eventIdx[a.EventID], p.eventIdx[b.EventID]),
			strings.Compare(a.Currency, b.Currency), strings.Compare(a.Reason, b.Reason))
	})
	return out, nil
}

// mismatchExceptions lists what is in another currency than its
// organization's (of org, or of all if empty): usage, aggregated per
// organization, account, month, event and currency; reconciliations; RI
// benefits.
func (p *Projection) mismatchExceptions(org string) []Exception {
	type key struct {
		org      uint32
		acct     uint32
		month    calendar.Month
		event    uint32
		currency uint32
	}
	agg := make(map[key]*Exception)
	var order []key
	for i := range p.mismatched.items {
		it := &p.mismatched.items[i]
		if it.done {
			continue
		}
		acc := &p.accounts[it.key.acct]
		attr, _, err := p.h.Resolve(acc.vendorKey, acc.accountID, it.key.at)
		if err != nil {
			continue // cannot happen: a change of attribution moves it to the unassigned
		}
		o := p.orgIdx[attr.OrgID]
		if org != "" && attr.OrgID != org {
			continue
		}
		k := key{o, it.key.acct, it.key.month, it.key.event, it.key.currency}
		e, ok := agg[k]
		if !ok {
			cur := p.symbols[it.key.currency]
			e = &Exception{Kind: CurrencyMismatch, OrgID: attr.OrgID, Vendor: p.vendorDisplay[acc.vendorKey], AccountID: acc.accountID,
				Month: it.key.month, Currency: cur, EventID: p.eventIDs[it.key.event],
				Reason: fmt.Sprintf("usage in %s, organization %s is billed in %s", cur, attr.OrgID, p.orgs[o].currency.Code())}
			agg[k] = e
			order = append(order, k)
		}
		money.Add(&e.Amount, &e.Amount, &it.amount)
	}
	out := make([]Exception, 0, len(order))
	for _, k := range order {
		out = append(out, *agg[k])
	}

	// Reconciliations and RI benefits, one exception each.
	for _, r := range p.recons {
		if r.mismatch == nil || (org != "" && r.mismatch.id != org) {
			continue
		}
		acc := &p.accounts[r.key.acct]
		e := Exception{Kind: CurrencyMismatch, OrgID: r.mismatch.id, Vendor: p.vendorDisplay[acc.vendorKey], AccountID: acc.accountID,
			Month: r.key.month, Currency: r.currency, EventID: p.eventIDs[r.event],
			Reason: fmt.Sprintf("vendor reconciliation of %s in %s, organization %s is billed in %s", p.symbols[r.key.svc], r.currency, r.mismatch.id, r.mismatch.currency.Code())}
		e.Amount.Set(&r.amount)
		out = append(out, e)
	}
	var benefits []*benefit
	for _, bs := range p.benefitsOf {
		for _, b := range bs {
			if b.mismatch != nil && (org == "" || b.mismatch.id == org) {
				benefits = append(benefits, b)
			}
		}
	}
	slices.SortFunc(benefits, func(a, b *benefit) int { return cmp.Compare(a.seq, b.seq) })
	for _, b := range slices.Compact(benefits) {
		ri := p.ris[b.riID]
		e := Exception{Kind: CurrencyMismatch, OrgID: b.mismatch.id, Vendor: ri.vendor, AccountID: b.consumerID,
			Month: b.month, Currency: b.currency, EventID: p.eventIDs[b.event], Reason: b.reason}
		e.Amount.Set(&b.amount)
		out = append(out, e)
	}
	return out
}

// pendingExceptions lists what waits for the hierarchy or an RI purchase,
// aggregated per kind, account, month, event and currency.
func (p *Projection) pendingExceptions() []Exception {
	type key struct {
		kind     ExceptionKind
		acct     accountKey
		month    calendar.Month
		event    uint32
		currency string
		reason   string
	}
	agg := make(map[key]*Exception)
	var order []key
	add := func(k key, vendor string, amount *apd.Decimal) {
		e, ok := agg[k]
		if !ok {
			e = &Exception{Kind: k.kind, Vendor: vendor, AccountID: k.acct.accountID, Month: k.month, Currency: k.currency, Reason: k.reason, EventID: p.eventIDs[k.event]}
			agg[k] = e
			order = append(order, k)
		}
		money.Add(&e.Amount, &e.Amount, amount)
	}
	for i := range p.pending.items {
		it := &p.pending.items[i]
		if it.done {
			continue
		}
		acc := &p.accounts[it.key.acct]
		reason := "no provider registered for the account at the charge's start"
		if _, _, err := p.h.Resolve(p.vendorDisplay[acc.vendorKey], acc.accountID, it.key.at); err != nil { // the vendor as first given, for people
			reason = err.Error()
		}
		add(key{UnassignedUsage, accountKey{acc.vendorKey, acc.accountID}, it.key.month, it.key.event, p.symbols[it.key.currency], reason},
			p.vendorDisplay[acc.vendorKey], &it.amount)
	}
	for _, r := range p.unresolvedRecon {
		acc := &p.accounts[r.key.acct]
		add(key{UnassignedUsage, accountKey{acc.vendorKey, acc.accountID}, r.key.month, r.event, r.currency,
			fmt.Sprintf("vendor reconciliation of %s waits: %s", p.symbols[r.key.svc], r.reason)}, p.vendorDisplay[acc.vendorKey], &r.amount)
	}
	riIDs := make([]string, 0, len(p.waitingForRI))
	for id := range p.waitingForRI {
		riIDs = append(riIDs, id)
	}
	slices.Sort(riIDs)
	var benefits []*benefit
	for _, id := range riIDs {
		benefits = append(benefits, p.waitingForRI[id]...)
	}
	benefits = append(benefits, p.unresolved...)
	for _, b := range benefits {
		vendor := ""
		if ri, ok := p.ris[b.riID]; ok {
			vendor = ri.vendor
		}
		add(key{PendingBenefit, accountKey{hierarchy.VendorKey(vendor), b.consumerID}, b.month, b.event, b.currency, b.reason}, vendor, &b.amount)
	}
	out := make([]Exception, 0, len(order))
	for _, k := range order {
		out = append(out, *agg[k])
	}
	return out
}

func checkRange(from, to calendar.Month) error {
	if !from.Valid() || !to.Valid() {
		return fmt.Errorf("%w: range %d to %d", calendar.ErrMalformed, from, to)
	}
	if to < from {
		return fmt.Errorf("%w: %s to %s", calendar.ErrRange, from, to)
	}
	if to-from >= MaxRangeMonths {
		return fmt.Errorf("%w: %s to %s is more than %d months", ErrRangeTooLong, from, to, MaxRangeMonths)
	}
	return nil
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
