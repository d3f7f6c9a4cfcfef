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
	unassigned   heldUsage
	mismatched   heldUsage
}

func newExceptions() exceptions {
	return exceptions{
		invalid:    make(map[invalidKey]*Exception),
		unassigned: newHeldUsage(),
		mismatched: newHeldUsage(),
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

// retryUnassigned attributes again the unassigned charges of account a:
// those that now have a provider go to their cell, or to the mismatches.
//
// Most retries move nothing (an organization's registration retries every
// account waiting), so it first asks of each group whether all of it still
// has no provider, with one resolution that interns nothing; only if not
// does it read the charges, each resolved at its own instant.
func (p *Projection) retryUnassigned(a uint32) {
	q := &p.exceptions.unassigned
	stay := true
	groups := q.groupsOf(a)
	for i := range groups {
		g := &groups[i]
		span, err := p.peek(a, g.earliest)
		if err == nil || !span.Contains(g.latest) {
			stay = false
			break
		}
	}
	if stay {
		return
	}
	p.recharge(q.take(a, func(at int64, _ uint32) bool {
		_, err := p.resolve(a, at)
		return err != nil
	}))
}

// retryMismatched attributes again the mismatched charges of account a:
// those that now go to an organization billed in their currency go to
// their cell, those with no provider any more to the unassigned. It is
// asked only for the accounts of a provider just registered.
func (p *Projection) retryMismatched(a uint32) {
	p.recharge(p.exceptions.mismatched.take(a, func(at int64, currency uint32) bool {
		tg, err := p.resolve(a, at)
		return err == nil && p.ids.symbolName(currency) != p.orgOf(tg).currency.Code()
	}))
}

func (p *Projection) recharge(leaving []heldCharge) {
	for i := range leaving {
		c := &leaving[i]
		p.charge(c.key.acct, c.key.month, c.key.svc, c.key.region, c.at, p.ids.symbolName(c.key.currency), &c.amount, c.event)
	}
}

// peek answers as resolve would whether account a has an attribution at t,
// and over which span the answer holds, but interns no new attribution:
// resolve interns them in the order it is asked, and a retry that looks
// before it moves must not change that order. An error it remembers, as
// resolve does.
func (p *Projection) peek(a uint32, t int64) (hierarchy.Span, error) {
	acc := &p.accounts[a]
	if acc.gen == p.h.Generation() && acc.span.Contains(t) {
		return acc.span, acc.err
	}
	k := p.ids.accountKey(a)
	_, span, err := p.h.Resolve(k.vendorKey, k.accountID, t)
	if err != nil {
		acc.gen, acc.span, acc.err = p.h.Generation(), span, err
	}
	return span, err
}

// exceptionAggregate sums exceptions alike under one key, in the order
// first seen, naming the first event (in log order) of each.
//
// One event id per exception, not all of them: Exception (and the wire's
// billingv1.Exception) has one event_id, and an exception that named every
// event behind it would grow with the records again. The first is where
// to start looking.
type exceptionAggregate[K comparable] struct {
	byKey map[K]int
	list  []aggregated
}

type aggregated struct {
	e     Exception
	event uint32
}

// add adds amount, of event ev, to the exception of k, made by first if k
// is new.
func (g *exceptionAggregate[K]) add(k K, first func() Exception, ev uint32, amount *apd.Decimal) {
	if g.byKey == nil {
		g.byKey = make(map[K]int)
	}
	i, ok := g.byKey[k]
	if !ok {
		i = len(g.list)
		g.byKey[k] = i
		g.list = append(g.list, aggregated{e: first(), event: ev})
	}
	x := &g.list[i]
	money.Add(&x.e.Amount, &x.e.Amount, amount)
	x.event = min(x.event, ev)
}

func (g *exceptionAggregate[K]) exceptions(ids *interner) []Exception {
	out := make([]Exception, len(g.list))
	for i := range g.list {
		out[i] = g.list[i].e
		out[i].EventID = ids.eventID(g.list[i].event)
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
// organization, account, month and currency; reconciliations; RI benefits.
func (p *Projection) mismatchExceptions(org string) []Exception {
	type key struct {
		org      uint32
		acct     uint32
		month    calendar.Month
		currency uint32
	}
	var agg exceptionAggregate[key]
	q := &p.exceptions.mismatched
	for _, a := range q.accountsWaiting() {
		acc := p.ids.accountKey(a)
		orgAt := func(t int64) (hierarchy.Span, string) {
			attr, span, err := p.h.Resolve(acc.vendorKey, acc.accountID, t)
			if err != nil {
				return span, "" // cannot happen: a change of attribution moves it to the unassigned
			}
			return span, attr.OrgID
		}
		q.eachHeld(a, orgAt, func(g *heldGroup, orgID string, ev uint32, amount *apd.Decimal) {
			if orgID == "" || org != "" && orgID != org {
				return
			}
			o := p.orgIdx[orgID]
			agg.add(key{o, a, g.key.month, g.key.currency}, func() Exception {
				vendor, accountID := p.ids.accountName(a)
				cur := p.ids.symbolName(g.key.currency)
				return Exception{Kind: CurrencyMismatch, OrgID: orgID, Vendor: vendor, AccountID: accountID,
					Month: g.key.month, Currency: cur,
					Reason: fmt.Sprintf("usage in %s, organization %s is billed in %s", cur, orgID, p.orgs[o].currency.Code())}
			}, ev, amount)
		})
	}
	out := agg.exceptions(&p.ids)

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
// aggregated per kind, account, month, currency and reason: at most one
// exception per account, month, currency and reason, however many records
// and messages are behind it.
func (p *Projection) pendingExceptions() []Exception {
	type key struct {
		kind     ExceptionKind
		acct     accountKey
		month    calendar.Month
		currency string
		reason   string
	}
	var agg exceptionAggregate[key]
	add := func(k key, vendor string, ev uint32, amount *apd.Decimal) {
		agg.add(k, func() Exception {
			return Exception{Kind: k.kind, Vendor: vendor, AccountID: k.acct.accountID, Month: k.month, Currency: k.currency, Reason: k.reason}
		}, ev, amount)
	}
	q := &p.exceptions.unassigned
	for _, a := range q.accountsWaiting() {
		acc := p.ids.accountKey(a)
		vendor, _ := p.ids.accountName(a)
		reasonAt := func(t int64) (hierarchy.Span, string) {
			_, span, err := p.h.Resolve(vendor, acc.accountID, t) // the vendor as first given, for people
			if err != nil {
				return span, err.Error()
			}
			return span, "no provider registered for the account at the charge's start"
		}
		q.eachHeld(a, reasonAt, func(g *heldGroup, reason string, ev uint32, amount *apd.Decimal) {
			add(key{UnassignedUsage, acc, g.key.month, p.ids.symbolName(g.key.currency), reason}, vendor, ev, amount)
		})
	}
	for _, r := range p.adjustments.waitingRecons() {
		vendor, _ := p.ids.accountName(r.key.acct)
		add(key{UnassignedUsage, p.ids.accountKey(r.key.acct), r.key.month, r.currency,
			fmt.Sprintf("vendor reconciliation of %s waits: %s", p.ids.symbolName(r.key.svc), r.reason)}, vendor, r.event, &r.amount)
	}
	for _, b := range p.adjustments.pendingBenefits() {
		vendor := ""
		if ri := p.adjustments.ri(b.riID); ri != nil {
			vendor = ri.vendor
		}
		add(key{PendingBenefit, accountKey{hierarchy.VendorKey(vendor), b.consumerID}, b.month, b.currency, b.reason}, vendor, b.event, &b.amount)
	}
	return agg.exceptions(&p.ids)
}

// encode writes the exceptions for a snapshot (snapshot.go): the invalid
// records in the order first seen, each with its key, and the two queues.
func (x *exceptions) encode(sw *snapWriter) {
	sw.Mark("exceptions")
	keyOf := make(map[*Exception]invalidKey, len(x.invalid))
	for k, e := range x.invalid {
		keyOf[e] = k
	}
	if len(keyOf) != len(x.invalidOrder) {
		sw.fail("%d invalid records kept, %d listed", len(keyOf), len(x.invalidOrder))
	}
	sw.Len(len(x.invalidOrder))
	for _, e := range x.invalidOrder {
		k, ok := keyOf[e]
		if !ok {
			sw.fail("invalid record %q listed, not kept", e.Reason)
		}
		sw.String(k.acct.vendorKey)
		sw.String(k.acct.accountID)
		sw.Int32(int32(k.month))
		sw.String(k.currency)
		sw.Uvarint(uint64(k.event))
		sw.String(k.reason)
		e.encode(sw.Encoder)
	}
	x.unassigned.encode(sw)
	x.mismatched.encode(sw)
}

func (x *exceptions) decode(sr *snapReader) {
	sr.Mark("exceptions")
	n := sr.Len()
	x.invalidOrder = make([]*Exception, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		// The month of an invalid record may be the zero month (its
		// start was missing): it is read as it was, unchecked.
		k := invalidKey{acct: accountKey{vendorKey: sr.String(), accountID: sr.String()}, month: calendar.Month(sr.Int32()),
			currency: sr.String(), event: sr.event(), reason: sr.String()}
		e := &Exception{}
		e.decode(sr.Decoder)
		x.invalid[k] = e
		x.invalidOrder = append(x.invalidOrder, e)
	}
	x.unassigned.decode(sr)
	x.mismatched.decode(sr)
}
