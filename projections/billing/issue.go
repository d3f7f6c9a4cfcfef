package billing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

func (p *Projection) applyClose(pos uint64, e *billingv1.BillingCycleClosed) ([]*Invoice, error) {
	m, err := calendar.Parse(e.Month)
	if err != nil {
		return nil, fmt.Errorf("%w: month: %w", ErrInvalidEvent, err)
	}
	if err := p.cycles.canClose(m); err != nil {
		return nil, err
	}
	at := e.GetClosedAt().AsTime()
	docs := p.newDocuments(m, BillingCycle, Issued, at, pos)

	// Only the dirty organization-months are recomputed: the month itself
	// (every one of its organization-months is dirty until now) and the
	// earlier months that changed since the previous close.
	rest := p.dirty[:0:0]
	for _, om := range p.dirty {
		if om.key.month > m {
			rest = append(rest, om)
			continue
		}
		now := p.value(om)
		var lines []Line
		if om.key.month == m {
			lines = p.lines(om, now, nil, 0)
			om.closed = now
		} else {
			lines = p.lines(om, now, om.billed, PreviousMonthUpdate)
		}
		om.billed = now
		om.dirty = false
		route(docs, lines)
	}
	p.dirty = rest

	out := finish(docs)
	p.cycles.close(m, cycleEvent{pos: pos, at: at}, out)
	return out, nil
}

func (p *Projection) applyFinalize(pos uint64, e *billingv1.VendorCycleFinalized) ([]*Invoice, error) {
	m, err := calendar.Parse(e.Month)
	if err != nil {
		return nil, fmt.Errorf("%w: month: %w", ErrInvalidEvent, err)
	}
	if err := p.cycles.canFinalize(m); err != nil {
		return nil, err
	}
	at := e.GetFinalizedAt().AsTime()
	docs := p.newDocuments(m, VendorCycle, Issued, at, pos)
	for _, om := range p.monthOrgs[m] {
		// V(M, C_M) as billed, then V(M, F_M) - V(M, C_M).
		route(docs, p.lines(om, om.closed, nil, 0))
		route(docs, p.lines(om, p.value(om), om.closed, PostBillUpdate))
		om.closed = nil
	}
	out := finish(docs)
	p.cycles.finalize(m, cycleEvent{pos: pos, at: at}, out)
	return out, nil
}

// newDocuments starts one empty document per BAN known now.
func (p *Projection) newDocuments(m calendar.Month, view View, status Status, at time.Time, pos uint64) map[string]*Invoice {
	docs := make(map[string]*Invoice, len(p.h.BANs()))
	for _, ban := range p.h.BANs() {
		docs[ban] = p.newDocument(ban, m, view, status, at, pos)
	}
	return docs
}

func (p *Projection) newDocument(ban string, m calendar.Month, view View, status Status, at time.Time, pos uint64) *Invoice {
	org, _ := p.h.OrganizationOfBAN(ban)
	inv := &Invoice{BAN: ban, OrgID: org, Month: m, View: view, Status: status, IssuedAt: at, Position: pos}
	if o, err := p.h.Organization(org); err == nil {
		inv.Currency = o.Currency
	}
	return inv
}

// route puts each line on the document of its BAN.
func route(docs map[string]*Invoice, lines []Line) {
	for _, l := range lines {
		d, ok := docs[l.BAN]
		if !ok {
			// Every attribution's BAN is named by the hierarchy.
			broken(invariantLineBAN, "a line for BAN %q, which the hierarchy does not name", l.BAN)
		}
		d.Lines = append(d.Lines, l)
	}
}

// finish sorts each document's lines, totals them, and returns the
// documents sorted by BAN.
func finish(docs map[string]*Invoice) []*Invoice {
	out := make([]*Invoice, 0, len(docs))
	for _, d := range docs {
		d.finish()
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *Invoice) int { return strings.Compare(a.BAN, b.BAN) })
	return out
}

func (d *Invoice) finish() {
	slices.SortStableFunc(d.Lines, func(a, b Line) int { return lineCmp(&a, &b) })
	d.Total.SetFinite(0, -d.Currency.Digits())
	for i := range d.Lines {
		money.Add(&d.Total, &d.Total, &d.Lines[i].Amount)
	}
	d.checkFoots()
}

// checkFoots panics with an *InvariantError unless the document foots
// (docs/architecture.md, "Rounding"): every line that has details is the sum
// of them, and the total is the sum of the lines. Every figure is a sum of
// rounded details, so a document that does not foot is a bug in how it was
// put together. It runs once per document finished (issued, frozen or
// drafted), not per record, and costs one more pass over the lines.
func (d *Invoice) checkFoots() {
	var total, sum apd.Decimal
	for i := range d.Lines {
		l := &d.Lines[i]
		money.Add(&total, &total, &l.Amount)
		if len(l.Details) == 0 {
			continue // an intra-organization line is its own detail
		}
		sum.SetInt64(0)
		for j := range l.Details {
			money.Add(&sum, &sum, &l.Details[j].Amount)
		}
		if sum.Cmp(&l.Amount) != 0 {
			broken(invariantFoots, "%s %s: line %d (%s %s %s) is %s, its details sum to %s",
				d.BAN, d.Month, i, l.Kind, l.Vendor, l.AccountID, l.Amount.Text('f'), sum.Text('f'))
		}
	}
	if total.Cmp(&d.Total) != 0 {
		broken(invariantFoots, "%s %s: total is %s, its lines sum to %s", d.BAN, d.Month, d.Total.Text('f'), total.Text('f'))
	}
}

// lines turns V of an organization-month into invoice lines. With update
// zero, now is the month's own bill: one line per kind, account and
// attribution. Otherwise the lines are the differences now - base, of kind
// update: one line per account, attribution and service (the adjustment's
// name standing in for the service of adjustment kinds). Both slices are
// sorted by cmpDetail. Lines and details of zero are left out.
func (p *Projection) lines(om *orgMonth, now, base []vdetail, update LineKind) []Line {
	details := now
	if update != 0 {
		details = p.diff(now, base)
	}
	var out []Line
	for i := 0; i < len(details); {
		k := details[i].key
		j := i + 1
		for j < len(details) && sameLine(&details[j].key, &k, update != 0) {
			j++
		}
		out = p.appendLine(out, om, details[i:j], update)
		i = j
	}
	return out
}

func sameLine(a, b *detailKey, perService bool) bool {
	if a.kind != b.kind || a.acct != b.acct || a.target != b.target {
		return false
	}
	return !perService || a.kind != Charges || a.svc == b.svc
}

func (p *Projection) appendLine(out []Line, om *orgMonth, group []vdetail, update LineKind) []Line {
	k := group[0].key
	vendor, accountID := p.ids.accountName(k.acct)
	attr := &p.targets[k.target].attr
	l := Line{
		Kind:         k.kind,
		BAN:          attr.BAN,
		Vendor:       vendor,
		AccountID:    accountID,
		ProviderName: attr.ProviderName,
		Alias:        attr.Alias,
		CostCenterID: attr.CostCenterID,
		ForMonth:     om.key.month,
	}
	cur := p.orgs[om.key.org].currency
	l.Amount.SetFinite(0, -cur.Digits())
	name := p.ids.symbolName(k.svc)
	switch k.kind {
	case Charges:
		l.Description = "Charges"
	case InterCustomerAdjustment:
		l.Description, name = InterCustomerName, InterCustomerName
	case IntraOrgAdjustment:
		l.Description, name = IntraOrgName, IntraOrgName
	}
	if update != 0 {
		l.Kind, l.Service = update, name
		if update == PreviousMonthUpdate {
			l.Description = "Update to Previous Month's " + name
		} else {
			l.Description = "Post-Bill Update to " + name
		}
	}
	for i := range group {
		d := &group[i]
		money.Add(&l.Amount, &l.Amount, &d.amount)
		if k.kind == IntraOrgAdjustment {
			continue // one figure per account: the line is its own detail
		}
		det := Detail{Service: p.ids.symbolName(d.key.svc), Region: p.ids.symbolName(d.key.region), EventIDs: p.ids.eventIDsOf(d.lineage)}
		if d.key.trueUp {
			det.Description = "Vendor reconciliation"
		}
		det.Amount.Set(&d.amount)
		l.Details = append(l.Details, det)
	}
	if l.Amount.IsZero() {
		return out
	}
	return append(out, l)
}

// diff returns now - base by key, both sorted by cmpDetail, leaving out
// zeros. A difference's lineage is that of the current figure, or of the
// billed one if the figure is gone.
func (p *Projection) diff(now, base []vdetail) []vdetail {
	var out []vdetail
	i, j := 0, 0
	for i < len(now) || j < len(base) {
		var c int
		switch {
		case i == len(now):
			c = 1
		case j == len(base):
			c = -1
		default:
			c = p.cmpDetail(&now[i].key, &base[j].key)
		}
		var d vdetail
		switch {
		case c < 0:
			d = vdetail{key: now[i].key, lineage: now[i].lineage}
			d.amount.Set(&now[i].amount)
			i++
		case c > 0:
			d = vdetail{key: base[j].key, lineage: base[j].lineage}
			d.amount.Neg(&base[j].amount)
			j++
		default:
			d = vdetail{key: now[i].key, lineage: now[i].lineage}
			money.Sub(&d.amount, &now[i].amount, &base[j].amount)
			i++
			j++
		}
		if !d.amount.IsZero() {
			out = append(out, d)
		}
	}
	return out
}

// draft computes the invoice of ban for the open month m at the current
// position: what closing m now would issue. A month further ahead than the
// next to close has only its own lines: updates go on the next invoice.
func (p *Projection) draft(ban string, m calendar.Month) *Invoice {
	inv := p.newDocument(ban, m, BillingCycle, Draft, time.Time{}, p.pos)
	docs := map[string]*Invoice{ban: inv}
	nextToClose := p.cycles.nextToClose(m)
	for _, org := range p.banOrgs[ban] {
		var lines []Line
		if nextToClose {
			for _, om := range p.dirty {
				if om.key.org != org || om.key.month > m {
					continue
				}
				if om.key.month == m {
					lines = append(lines, p.lines(om, p.value(om), nil, 0)...)
				} else {
					lines = append(lines, p.lines(om, p.value(om), om.billed, PreviousMonthUpdate)...)
				}
			}
		} else if om, ok := p.orgMonths[orgMonthKey{org, m}]; ok {
			lines = p.lines(om, p.value(om), nil, 0)
		}
		for _, l := range lines {
			if l.BAN == ban {
				inv.Lines = append(inv.Lines, l)
			}
		}
	}
	finish(docs)
	return inv
}
