package billing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
)

// exceptions holds the usage that is on no invoice: the invalid records,
// which never will be, and the charges that wait for the hierarchy, either
// unassigned (no provider at their instant) or in another currency than
// the organization they go to. (The reconciliations and RI benefits that
// wait are kept with the adjustments; listExceptions lists them all.)
//
// It owns these invariants: an invalid record is kept for good, one entry
// per invalidKey in the order first seen; a waiting charge is in one
// queue or in a cell, never in two places, and leaves its queue only
// through take, all at once per account.
type exceptions struct {
	invalid      map[invalidKey]*Exception
	invalidOrder []*Exception
	unassigned   pendingUsage
	mismatched   pendingUsage
}

func newExceptions() exceptions {
	return exceptions{
		invalid:    make(map[invalidKey]*Exception),
		unassigned: newPendingUsage(),
		mismatched: newPendingUsage(),
	}
}

// invalidKey is what tells invalid records apart: those alike, of one
// event, are one exception.
type invalidKey struct {
	acct     accountKey
	month    calendar.Month
	currency string
	event    uint32
	reason   string
}

// addInvalid keeps an invalid record, which no later event can make
// billable (a currency mismatch waits instead). Records alike are kept
// once.
func (x *exceptions) addInvalid(vendor, accountID string, m calendar.Month, currency, reason string, ev uint32, eventID string) {
	k := invalidKey{accountKey{hierarchy.VendorKey(vendor), accountID}, m, currency, ev, reason}
	if _, ok := x.invalid[k]; ok {
		return
	}
	e := &Exception{Kind: InvalidRecord, Vendor: vendor, AccountID: accountID, Month: m, Currency: currency, Reason: reason, EventID: eventID}
	x.invalid[k] = e
	x.invalidOrder = append(x.invalidOrder, e)
}

// invalidRecords returns copies of the invalid records of org (all if
// empty), in the order first seen.
func (x *exceptions) invalidRecords(org string) []Exception {
	var out []Exception
	for _, e := range x.invalidOrder {
		if org == "" || e.OrgID == org {
			c := *e
			c.Amount.Set(&e.Amount)
			out = append(out, c)
		}
	}
	return out
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

// accountsWaiting returns the accounts with charges in q, in index order.
func (q *pendingUsage) accountsWaiting() []uint32 {
	accts := make([]uint32, 0, len(q.byAccount))
	for a := range q.byAccount {
		accts = append(accts, a)
	}
	slices.Sort(accts) // map order must not leak into the fold
	return accts
}

// take removes from q the charges of account a that stays says no longer
// wait, and returns them in the order they came.
func (q *pendingUsage) take(a uint32, stays func(k *pendingKey) bool) []pendingItem {
	waiting := q.byAccount[a]
	if len(waiting) == 0 {
		return nil
	}
	var leaving []pendingItem
	rest := waiting[:0]
	for _, i := range waiting {
		it := &q.items[i]
		if stays(&it.key) {
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
	return leaving
}

// each calls fn with every charge still waiting, in the order they came.
func (q *pendingUsage) each(fn func(it *pendingItem)) {
	for i := range q.items {
		if !q.items[i].done {
			fn(&q.items[i])
		}
	}
}

// retryUnassigned attributes again the unassigned charges of account a:
// those that now have a provider go to their cell, or to the mismatches.
func (p *Projection) retryUnassigned(a uint32) {
	p.recharge(a, p.exceptions.unassigned.take(a, func(k *pendingKey) bool {
		_, err := p.resolve(a, k.at)
		return err != nil
	}))
}

// retryMismatched attributes again the mismatched charges of account a:
// those that now go to an organization billed in their currency go to
// their cell, those with no provider any more to the unassigned.
func (p *Projection) retryMismatched(a uint32) {
	p.recharge(a, p.exceptions.mismatched.take(a, func(k *pendingKey) bool {
		tg, err := p.resolve(a, k.at)
		return err == nil && p.ids.symbolName(k.currency) != p.orgOf(tg).currency.Code()
	}))
}

func (p *Projection) recharge(a uint32, leaving []pendingItem) {
	for i := range leaving {
		k := &leaving[i].key
		p.charge(a, k.month, k.svc, k.region, k.at, p.ids.symbolName(k.currency), &leaving[i].amount, k.event)
	}
}

// exceptionAggregate sums exceptions alike under one key, in the order
// first seen.
type exceptionAggregate[K comparable] struct {
	byKey map[K]*Exception
	order []K
}

// add adds amount to the exception of k, made by first if k is new.
func (g *exceptionAggregate[K]) add(k K, first func() Exception, amount *apd.Decimal) {
	if g.byKey == nil {
		g.byKey = make(map[K]*Exception)
	}
	e, ok := g.byKey[k]
	if !ok {
		x := first()
		e = &x
		g.byKey[k] = e
		g.order = append(g.order, k)
	}
	money.Add(&e.Amount, &e.Amount, amount)
}

func (g *exceptionAggregate[K]) list() []Exception {
	out := make([]Exception, 0, len(g.order))
	for _, k := range g.order {
		out = append(out, *g.byKey[k])
	}
	return out
}

// listExceptions lists the exceptions of org (all if empty), sorted by
// month, kind, vendor, account and event: see Exceptions.
func (p *Projection) listExceptions(org string) []Exception {
	out := p.exceptions.invalidRecords(org)
	out = append(out, p.mismatchExceptions(org)...)
	if org == "" {
		out = append(out, p.pendingExceptions()...)
	}
	slices.SortStableFunc(out, func(a, b Exception) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Kind, b.Kind),
			strings.Compare(hierarchy.VendorKey(a.Vendor), hierarchy.VendorKey(b.Vendor)),
			strings.Compare(a.AccountID, b.AccountID), cmp.Compare(p.ids.eventOrder(a.EventID), p.ids.eventOrder(b.EventID)),
			strings.Compare(a.Currency, b.Currency), strings.Compare(a.Reason, b.Reason))
	})
	return out
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
	var agg exceptionAggregate[key]
	p.exceptions.mismatched.each(func(it *pendingItem) {
		acc := p.ids.accountKey(it.key.acct)
		attr, _, err := p.h.Resolve(acc.vendorKey, acc.accountID, it.key.at)
		if err != nil {
			return // cannot happen: a change of attribution moves it to the unassigned
		}
		if org != "" && attr.OrgID != org {
			return
		}
		o := p.orgIdx[attr.OrgID]
		agg.add(key{o, it.key.acct, it.key.month, it.key.event, it.key.currency}, func() Exception {
			vendor, accountID := p.ids.accountName(it.key.acct)
			cur := p.ids.symbolName(it.key.currency)
			return Exception{Kind: CurrencyMismatch, OrgID: attr.OrgID, Vendor: vendor, AccountID: accountID,
				Month: it.key.month, Currency: cur, EventID: p.ids.eventID(it.key.event),
				Reason: fmt.Sprintf("usage in %s, organization %s is billed in %s", cur, attr.OrgID, p.orgs[o].currency.Code())}
		}, &it.amount)
	})
	out := agg.list()

	// Reconciliations and RI benefits, one exception each.
	p.adjustments.eachMismatchedRecon(org, func(r *recon) {
		vendor, accountID := p.ids.accountName(r.key.acct)
		e := Exception{Kind: CurrencyMismatch, OrgID: r.mismatch.id, Vendor: vendor, AccountID: accountID,
			Month: r.key.month, Currency: r.currency, EventID: p.ids.eventID(r.event),
			Reason: fmt.Sprintf("vendor reconciliation of %s in %s, organization %s is billed in %s", p.ids.symbolName(r.key.svc), r.currency, r.mismatch.id, r.mismatch.currency.Code())}
		e.Amount.Set(&r.amount)
		out = append(out, e)
	})
	for _, b := range p.adjustments.mismatchedBenefits(org) {
		e := Exception{Kind: CurrencyMismatch, OrgID: b.mismatch.id, Vendor: p.adjustments.ri(b.riID).vendor, AccountID: b.consumerID,
			Month: b.month, Currency: b.currency, EventID: p.ids.eventID(b.event), Reason: b.reason}
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
	var agg exceptionAggregate[key]
	add := func(k key, vendor string, amount *apd.Decimal) {
		agg.add(k, func() Exception {
			return Exception{Kind: k.kind, Vendor: vendor, AccountID: k.acct.accountID, Month: k.month, Currency: k.currency, Reason: k.reason, EventID: p.ids.eventID(k.event)}
		}, amount)
	}
	p.exceptions.unassigned.each(func(it *pendingItem) {
		acc := p.ids.accountKey(it.key.acct)
		vendor, _ := p.ids.accountName(it.key.acct)
		reason := "no provider registered for the account at the charge's start"
		if _, _, err := p.h.Resolve(vendor, acc.accountID, it.key.at); err != nil { // the vendor as first given, for people
			reason = err.Error()
		}
		add(key{UnassignedUsage, acc, it.key.month, it.key.event, p.ids.symbolName(it.key.currency), reason}, vendor, &it.amount)
	})
	for _, r := range p.adjustments.waitingRecons() {
		vendor, _ := p.ids.accountName(r.key.acct)
		add(key{UnassignedUsage, p.ids.accountKey(r.key.acct), r.key.month, r.event, r.currency,
			fmt.Sprintf("vendor reconciliation of %s waits: %s", p.ids.symbolName(r.key.svc), r.reason)}, vendor, &r.amount)
	}
	for _, b := range p.adjustments.pendingBenefits() {
		vendor := ""
		if ri := p.adjustments.ri(b.riID); ri != nil {
			vendor = ri.vendor
		}
		add(key{PendingBenefit, accountKey{hierarchy.VendorKey(vendor), b.consumerID}, b.month, b.event, b.currency, b.reason}, vendor, &b.amount)
	}
	return agg.list()
}
