package billing

import (
	"cmp"
	"slices"
)

// reattribute moves what a hierarchy change re-attributes: a charge at t goes
// where the hierarchy, as the log knows it now, says it goes at t
// (docs/architecture.md, "Attribution"). A change effective from instant from
// can only move charges at or after from: for a provider registration, those
// of the accounts the provider was ever registered for (accts); for a
// workspace or cost center, those of every account billed to its
// organization. Each organization-month that loses or gains a charge is
// marked dirty, so the next close bills the difference as "Update to Previous
// Month's" lines, and issued invoices stay as they were.
//
// It costs little for charges the change does not reach: a cell is only
// opened if it has charges at or after from and the attribution is not
// known to hold over all of them.
func (p *Projection) reattribute(orgID string, from int64, accts []uint32) {
	var candidates []uint32
	consider := func(ci uint32) {
		if c := p.cells.at(ci); !c.empty() && c.latest >= from {
			candidates = append(candidates, ci)
		}
	}
	if accts != nil {
		for _, a := range accts {
			for _, ci := range p.accounts[a].cells {
				consider(ci)
			}
		}
	} else if o, ok := p.orgIdx[orgID]; ok {
		for _, om := range p.orgs[o].months {
			if om.key.month.End().UnixNano() > from {
				for _, ci := range om.cells {
					consider(ci)
				}
			}
		}
	}
	slices.Sort(candidates) // creation order: the fold must not depend on map order
	for _, ci := range slices.Compact(candidates) {
		p.reattributeCell(ci)
	}

	// Reconciliations and RI benefits of the same accounts or organization.
	var recons []*recon
	var benefits []*benefit
	if accts != nil {
		recons, benefits = p.adjustments.ofAccounts(accts)
	} else if o, ok := p.orgIdx[orgID]; ok {
		for _, om := range p.orgs[o].months {
			for _, r := range om.recons {
				recons = append(recons, r)
			}
			for _, s := range om.benefits {
				benefits = append(benefits, s.b)
			}
		}
	}
	p.reattributeRecons(from, recons)
	p.reattributeBenefits(from, benefits)
}

// reattributeCell re-resolves every charge of one cell and moves those
// that now go elsewhere: to another cell, to the unassigned charges if no
// provider covers them any more, or to the currency mismatches.
func (p *Projection) reattributeCell(ci uint32) {
	c := p.cells.at(ci)
	a := c.key.acct
	ms := c.key.month.Start().UnixNano()
	if tg, err := p.resolve(a, c.firstAt); err == nil && tg == c.key.target {
		// The cell's attribution holds over span, around the first charge:
		// if the other charges are inside it too, nothing moves. Most
		// cells are decided here without reading their log.
		span := p.accounts[a].span
		if c.n == 1 || span.Contains(c.latest) && (span.From <= ms || span.Contains(c.earliest())) {
			return
		}
	}
	var stay, moves []chargeEntry
	for _, e := range c.charges() {
		if tg, err := p.resolve(a, e.at); err == nil && tg == c.key.target {
			stay = append(stay, e)
		} else {
			moves = append(moves, e)
		}
	}
	if len(moves) == 0 {
		return
	}
	// Rebuild the cell from what stays, in the order folded.
	currency := p.orgOf(c.key.target).currency.Code()
	key := c.key
	c.n, c.rest = 0, nil
	c.sum.SetInt64(0)
	for i := range stay {
		c.add(ms, stay[i].at, stay[i].event, &stay[i].amount)
	}
	p.touch(c.om)
	for i := range moves {
		mv := &moves[i]
		p.charge(a, key.month, key.svc, key.region, mv.at, currency, &mv.amount, mv.event)
	}
}

// reattributeRecons re-places those of the reconciliations of months
// ending after from whose account now resolves elsewhere at the end of the
// month.
func (p *Projection) reattributeRecons(from int64, recons []*recon) {
	var moved []*recon
	for _, r := range recons {
		if (r.om == nil && r.mismatch == nil) || monthEnd(r.key.month) < from {
			continue // waiting for the hierarchy (retryPending places it), or before the change
		}
		if tg, err := p.resolve(r.key.acct, monthEnd(r.key.month)); err == nil && tg == r.target && r.om != nil {
			continue
		}
		moved = append(moved, r)
	}
	slices.SortFunc(moved, func(a, b *recon) int {
		return cmp.Or(cmp.Compare(a.key.month, b.key.month), cmp.Compare(a.key.acct, b.key.acct), cmp.Compare(a.key.svc, b.key.svc))
	})
	moved = slices.Compact(moved)
	for _, r := range moved {
		if om := r.unplace(); om != nil {
			p.touch(om)
		}
		p.placeRecon(r)
	}
}

// reattributeBenefits re-places those of the RI benefits of months ending
// after from whose consumer or purchaser now resolves elsewhere.
func (p *Projection) reattributeBenefits(from int64, benefits []*benefit) {
	var moved []*benefit
	for _, b := range benefits {
		if (b.sides[0] == nil && b.mismatch == nil) || monthEnd(b.month) < from || b.sides[0] != nil && p.benefitHolds(b) {
			continue // waiting for the hierarchy, before the change, or unchanged
		}
		moved = append(moved, b)
	}
	slices.SortFunc(moved, func(a, b *benefit) int { return cmp.Compare(a.seq, b.seq) })
	moved = slices.Compact(moved)
	for _, b := range moved {
		b.unplace(p.touch)
		p.placeBenefit(b)
	}
}

// benefitHolds reports whether both sides of a placed benefit still go
// where they were placed.
func (p *Projection) benefitHolds(b *benefit) bool {
	for _, s := range b.sides {
		tg, err := p.resolve(s.acct, monthEnd(b.month))
		if err != nil || tg != s.target {
			return false
		}
	}
	return true
}
