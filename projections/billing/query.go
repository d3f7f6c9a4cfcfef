package billing

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	if inv, ok := p.cycles.issuedInvoice(ban, m); ok {
		return inv, nil
	}
	if _, ok := p.h.OrganizationOfBAN(ban); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBAN, ban)
	}
	if !m.Valid() {
		return nil, fmt.Errorf("%w: month %d", calendar.ErrMalformed, m)
	}
	if err := p.cycles.available(m, BillingCycle); err != nil {
		return nil, err
	}
	if c, ok := p.cycles.closed(m); ok {
		// The BAN was named after the close: nothing could bill it then.
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
	if inv, ok := p.cycles.vendorView(ban, m); ok {
		return inv, nil
	}
	if _, ok := p.h.OrganizationOfBAN(ban); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownBAN, ban)
	}
	if err := p.cycles.available(m, VendorCycle); err != nil {
		return nil, err
	}
	// Finalized, and the BAN was named after: nothing could bill it then.
	f, _ := p.cycles.finalized(m)
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

// OrganizationOfBAN returns the organization a BAN bills (the first that
// named it), and whether any does. It computes nothing: the query service
// asks it before it looks a document up, to decide whether the caller may
// read the BAN at all (services/access).
func (p *Projection) OrganizationOfBAN(ban string) (string, bool) {
	return p.h.OrganizationOfBAN(ban)
}

// OrganizationInfo is an organization and its cost centers as the
// hierarchy has them now: what a console lists to choose from.
type OrganizationInfo struct {
	ID       string
	Name     string
	Currency money.Currency
	BAN      string
	// CostCenters are in their latest versions, sorted by id; a cost
	// center without a BAN of its own bills to the organization's.
	CostCenters []hierarchy.CostCenter
}

// Organizations returns every registered organization, sorted by id. It
// computes nothing: it reads the hierarchy.
func (p *Projection) Organizations() []OrganizationInfo {
	orgs := p.h.Organizations()
	list := make([]OrganizationInfo, len(orgs))
	for i, o := range orgs {
		ccs := p.h.CostCenters(o.ID)
		for j := range ccs {
			if ccs[j].BAN == "" {
				ccs[j].BAN = o.BAN
			}
		}
		list[i] = OrganizationInfo{ID: o.ID, Name: o.Name, Currency: o.Currency, BAN: o.BAN, CostCenters: ccs}
	}
	return list
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
	if err := p.cycles.available(m, view); errors.Is(err, ErrNotFinalized) {
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
		s := MonthSummary{Month: m, Available: p.cycles.available(m, view) == nil}
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
	om := p.orgMonthOf(org, m)
	if om == nil {
		return nil, nil
	}
	var out []Adjustment
	if kind == IntraOrgAdjustment {
		for _, d := range p.value(om) {
			if d.key.kind != IntraOrgAdjustment {
				continue
			}
			vendor, accountID := p.ids.accountName(d.key.acct)
			a := Adjustment{Kind: kind, Vendor: vendor, AccountID: accountID, Description: IntraOrgName}
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
			vendor, accountID := p.ids.accountName(s.acct)
			_, counterparty := p.ids.accountName(s.counterparty)
			desc := fmt.Sprintf("RI %s benefit consumed from %s", s.ri.id, counterparty)
			if s.purchaser {
				desc = fmt.Sprintf("RI %s benefit consumed by %s", s.ri.id, counterparty)
			}
			out = append(out, Adjustment{Kind: kind, Vendor: vendor, AccountID: accountID,
				CounterpartyAccountID: counterparty, RIID: s.ri.id, Description: desc})
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
//
// Waiting usage is listed per kind, (organization,) account, month,
// currency and reason, with the first event behind it in log order: the
// list grows with the accounts and months that wait, not with the records
// (a million of them from a thousand messages is one exception per
// account and month). Reconciliations and RI benefits in another currency
// are listed one each, as they are kept.
func (p *Projection) Exceptions(org string) ([]Exception, error) {
	if org != "" {
		if _, err := p.h.Organization(org); err != nil {
			return nil, fmt.Errorf("%w: %q", ErrUnknownOrganization, org)
		}
	}
	return append(p.listExceptions(org), p.digestMismatches(org)...), nil
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
