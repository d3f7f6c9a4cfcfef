package billing

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
)

// heldUsage is a queue of charges that wait for the hierarchy: the
// unassigned (no provider at their instant) or the currency mismatches (in
// another currency than their organization's). Anyone can send usage of an
// account nobody registered, a million records of it, so a held charge must
// cost what a billed one costs (DESIGN 6.1): an entry of about ten bytes in a
// packed log, and its share of a group.
//
// Per account it keeps groups, one per (month, service, region, currency),
// each with the exact sum of its charges, the span of their instants and
// their first event: what listing the exceptions needs, usually without
// reading a single charge. Beside them, one packed log of the account's
// charges in the order they came (its group, then a chargeLog entry: the
// instant from the month's start, the event, the amount, encoded against
// the entry before whatever its group), because a registration may cover
// part of a month only (effective_at): each charge must still be
// attributed at its own instant, and charges leave the queue in the order
// they came, as the fold has always moved them.
//
// It owns these invariants: a group is in groups exactly while the log
// holds a charge of it; the groups of an account are in the order of their
// first charge in its log; a group's sum is the sum of its charges, added
// from zero in log order.
type heldUsage struct {
	accounts map[uint32]*heldAccount
	groups   map[heldKey]uint32 // the index of a group in its account's groups
}

func newHeldUsage() heldUsage {
	return heldUsage{accounts: make(map[uint32]*heldAccount), groups: make(map[heldKey]uint32)}
}

// heldKey is what must stay apart among held charges: a charge leaves for
// the cell of its month, service and region, in its currency.
type heldKey struct {
	acct     uint32
	month    calendar.Month
	svc      uint32
	region   uint32
	currency uint32
}

type heldAccount struct {
	groups []heldGroup
	log    []byte    // per charge: the uvarint index of its group, then a chargeLog entry
	cur    logCursor // what log's next entry is encoded against; it starts from zero
}

// heldGroup is the charges of one heldKey.
type heldGroup struct {
	sum      apd.Decimal
	earliest int64 // the earliest charge instant
	latest   int64 // the latest charge instant
	key      heldKey
	first    uint32 // the first event in log order (the smallest index)
}

// heldCharge is a charge leaving the queue.
type heldCharge struct {
	key    heldKey
	at     int64
	event  uint32
	amount apd.Decimal
}

// add holds a charge at instant at of month k.month, which starts at
// monthStart.
func (q *heldUsage) add(k heldKey, monthStart, at int64, ev uint32, amount *apd.Decimal) {
	ha := q.accounts[k.acct]
	if ha == nil {
		ha = &heldAccount{}
		q.accounts[k.acct] = ha
	}
	gi, ok := q.groups[k]
	if !ok {
		gi = uint32(len(ha.groups))
		ha.groups = append(ha.groups, heldGroup{key: k, earliest: at, latest: at, first: ev})
		q.groups[k] = gi
	}
	g := &ha.groups[gi]
	money.Add(&g.sum, &g.sum, amount)
	g.earliest, g.latest, g.first = min(g.earliest, at), max(g.latest, at), min(g.first, ev)
	var buf [binary.MaxVarintLen32 + maxEntry]byte
	e := encodeCharge(binary.AppendUvarint(buf[:0], uint64(gi)), &ha.cur, at-monthStart, ev, amount)
	ha.log = append(growLog(ha.log, len(e)), e...)
}

// accountsWaiting returns the accounts with charges in q, in index order.
func (q *heldUsage) accountsWaiting() []uint32 {
	accts := make([]uint32, 0, len(q.accounts))
	for a := range q.accounts {
		accts = append(accts, a)
	}
	slices.Sort(accts) // map order must not leak into the fold
	return accts
}

// groupsOf returns the groups of account a, in the order of their first
// charge. The caller must not change them.
func (q *heldUsage) groupsOf(a uint32) []heldGroup {
	if ha := q.accounts[a]; ha != nil {
		return ha.groups
	}
	return nil
}

// each calls fn with every charge of account a in the order they came,
// with the index of its group; with amounts false, e.amount is not set.
// The entry is reused between calls.
func (q *heldUsage) each(a uint32, amounts bool, fn func(gi uint32, e *chargeEntry)) {
	ha := q.accounts[a]
	if ha == nil {
		return
	}
	starts := make([]int64, len(ha.groups))
	for i := range ha.groups {
		starts[i] = ha.groups[i].key.month.Start().UnixNano()
	}
	if _, err := ha.each(starts, amounts, fn); err != nil {
		broken(invariantChargeLog, "held charges of account %d: %v", a, err) // only a bug can corrupt a log
	}
}

// each calls fn with every charge of the account's log in order, the
// start of each group's month in starts. It returns the cursor after the
// last, or errCorrupt.
func (ha *heldAccount) each(starts []int64, amounts bool, fn func(gi uint32, e *chargeEntry)) (logCursor, error) {
	var e chargeEntry
	var cur logCursor
	for l := chargeLog(ha.log); len(l) > 0; {
		gi, n := binary.Uvarint(l)
		if n <= 0 || gi >= uint64(len(starts)) {
			return cur, errCorrupt
		}
		var err error
		if l, err = l[n:].next(starts[gi], &cur, &e, amounts); err != nil {
			return cur, err
		}
		fn(uint32(gi), &e)
	}
	return cur, nil
}

// take removes from q the charges of account a that stays says no longer
// wait, and returns them in the order they came, charges alike (of one
// group, instant and event) as one: the queue has always handed them back
// so, and a cell then holds one entry for them rather than several.
//
// stays is asked once about every charge, in the order they came, before
// anything moves: resolving interns attributions, and must do so in that
// order whatever leaves.
func (q *heldUsage) take(a uint32, stays func(at int64, currency uint32) bool) []heldCharge {
	ha := q.accounts[a]
	if ha == nil {
		return nil
	}
	var staying []bool // per charge, in log order
	leaves := false
	q.each(a, false, func(gi uint32, e *chargeEntry) {
		s := stays(e.at, ha.groups[gi].key.currency)
		staying = append(staying, s)
		leaves = leaves || !s
	})
	if !leaves {
		return nil
	}
	type alike struct {
		gi    uint32
		at    int64
		event uint32
	}
	var leaving, kept []heldCharge
	seen := make(map[alike]int)
	i := 0
	q.each(a, true, func(gi uint32, e *chargeEntry) {
		k := ha.groups[gi].key
		s := staying[i]
		i++
		if s {
			kept = append(kept, heldCharge{key: k, at: e.at, event: e.event})
			kept[len(kept)-1].amount.Set(&e.amount)
			return
		}
		j, ok := seen[alike{gi, e.at, e.event}]
		if !ok {
			j = len(leaving)
			seen[alike{gi, e.at, e.event}] = j
			leaving = append(leaving, heldCharge{key: k, at: e.at, event: e.event})
		}
		money.Add(&leaving[j].amount, &leaving[j].amount, &e.amount)
	})
	// Rebuild what stays from nothing, so that the sums are added from zero
	// as if the charges that left had never come.
	for i := range ha.groups {
		delete(q.groups, ha.groups[i].key)
	}
	delete(q.accounts, a)
	var ms monthStarts
	for i := range kept {
		c := &kept[i]
		q.add(c.key, ms.of(c.key.month), c.at, c.event, &c.amount)
	}
	return leaving
}

// heldSpans resolves the held charges of one account for a listing, at
// each group's earliest instant and, only for a group over which the
// answer changes, at each charge's: one resolution an account as a rule,
// whatever the number of charges.
type heldSpans struct {
	resolve func(t int64) (span hierarchy.Span, answer string)
	span    hierarchy.Span
	answer  string
	known   bool
}

func (s *heldSpans) at(t int64) string {
	if !s.known || !s.span.Contains(t) {
		s.span, s.answer = s.resolve(t)
		s.known = true
	}
	return s.answer
}

// eachHeld calls fn with the held charges of account a in q aggregated as
// far as the answer of resolve (a reason, an organization) allows: a
// group's sum and first event when the answer holds over all of it, else
// each of its charges.
func (q *heldUsage) eachHeld(a uint32, resolve func(t int64) (hierarchy.Span, string), fn func(g *heldGroup, answer string, ev uint32, amount *apd.Decimal)) {
	s := heldSpans{resolve: resolve}
	groups := q.groupsOf(a)
	var split []bool
	for i := range groups {
		g := &groups[i]
		answer := s.at(g.earliest)
		if !s.span.Contains(g.latest) {
			if split == nil {
				split = make([]bool, len(groups))
			}
			split[i] = true
			continue
		}
		fn(g, answer, g.first, &g.sum)
	}
	if split == nil {
		return
	}
	q.each(a, true, func(gi uint32, e *chargeEntry) {
		if split[gi] {
			fn(&groups[gi], s.at(e.at), e.event, &e.amount)
		}
	})
}

// monthStarts remembers the start of the last month asked.
type monthStarts struct {
	month calendar.Month
	start int64
	ok    bool
}

func (s *monthStarts) of(m calendar.Month) int64 {
	if !s.ok || s.month != m {
		s.month, s.start, s.ok = m, m.Start().UnixNano(), true
	}
	return s.start
}

// encode writes the queue for a snapshot (snapshot.go): the accounts in
// index order, each with its groups and its log. The index of groups is
// rebuilt from the groups.
func (q *heldUsage) encode(sw *snapWriter) {
	accts := q.accountsWaiting()
	sw.Len(len(accts))
	for _, a := range accts {
		ha := q.accounts[a]
		sw.Uvarint(uint64(a))
		sw.Len(len(ha.groups))
		for i := range ha.groups {
			g := &ha.groups[i]
			if g.key.acct != a {
				sw.fail("held group of account %d under account %d", g.key.acct, a)
			}
			sw.Decimal(&g.sum)
			sw.Varint(g.earliest)
			sw.Varint(g.latest)
			sw.Int32(int32(g.key.month))
			sw.Uvarint(uint64(g.key.svc))
			sw.Uvarint(uint64(g.key.region))
			sw.Uvarint(uint64(g.key.currency))
			sw.Uvarint(uint64(g.first))
		}
		sw.Bytes(ha.log)
	}
}

func (q *heldUsage) decode(sr *snapReader) {
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		a := sr.account()
		c := sr.Len()
		ha := &heldAccount{groups: make([]heldGroup, 0, sr.Cap(c))}
		for ; c > 0 && sr.Err() == nil; c-- {
			var g heldGroup
			sr.Decimal(&g.sum)
			g.earliest = sr.Varint()
			g.latest = sr.Varint()
			g.key = heldKey{acct: a, month: sr.month(), svc: sr.symbol(), region: sr.symbol(), currency: sr.symbol()}
			g.first = sr.event()
			q.groups[g.key] = uint32(len(ha.groups))
			ha.groups = append(ha.groups, g)
		}
		ha.log = sr.Bytes()
		if sr.Err() != nil {
			return
		}
		// The cursor is not written: it is where decoding the log ends.
		// Decoding it also checks the log, its events included, which the
		// cells' logs are not (there are a hundred times more of them).
		events := uint32(len(sr.p.ids.eventIDs))
		var unknown error
		cur, err := ha.each(make([]int64, len(ha.groups)), false, func(_ uint32, e *chargeEntry) {
			if e.event >= events && unknown == nil {
				unknown = fmt.Errorf("event %d of %d", e.event, events)
			}
		})
		ha.cur = cur
		if err = cmp.Or(err, unknown); err != nil {
			sr.Fail("held charges of account %d: %v", a, err)
			return
		}
		q.accounts[a] = ha
	}
}
