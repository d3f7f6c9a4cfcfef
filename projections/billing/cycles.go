package billing

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/snapcodec"
)

// cycles is the cycle clock as the log tells it: the billing cycles closed,
// the vendor cycles finalized, and the documents each froze.
//
// It owns these invariants (docs/architecture.md, "Documents"): billing
// cycles close in month order, each once, so the closed months run without a
// gap from firstClose to lastClosed; a vendor cycle is finalized once, and
// only after its billing cycle closed; a frozen document is kept as issued,
// one per BAN and month and view. CanClose and CanFinalize state the first
// two, and Apply refuses what they refuse; available is the one rule for
// which months a view has documents for.
type cycles struct {
	closes     map[calendar.Month]cycleEvent
	finals     map[calendar.Month]cycleEvent
	hasClosed  bool
	firstClose calendar.Month
	lastClosed calendar.Month

	issued map[docKey]*Invoice // invoices, frozen at their close
	vendor map[docKey]*Invoice // vendor views, frozen at their finalization
}

// cycleEvent is where and when a cycle event was applied.
type cycleEvent struct {
	pos uint64
	at  time.Time
}

type docKey struct {
	ban   string
	month calendar.Month
}

func newCycles() cycles {
	return cycles{
		closes: make(map[calendar.Month]cycleEvent),
		finals: make(map[calendar.Month]cycleEvent),
		issued: make(map[docKey]*Invoice),
		vendor: make(map[docKey]*Invoice),
	}
}

// CanClose reports whether the billing cycle of m may close now: cycles
// close in month order, each once. Ingestion calls it before appending a
// BillingCycleClosed, and sends a refused one to the dead letters; Apply
// refuses the same ones.
func (p *Projection) CanClose(m calendar.Month) error { return p.cycles.canClose(m) }

// CanFinalize reports whether the vendor cycle of m may be finalized now:
// its billing cycle must be closed, and it is finalized once.
func (p *Projection) CanFinalize(m calendar.Month) error { return p.cycles.canFinalize(m) }

func (c *cycles) canClose(m calendar.Month) error {
	if !m.Valid() {
		return fmt.Errorf("%w: month %d", calendar.ErrMalformed, m)
	}
	if !c.hasClosed {
		return nil
	}
	if m <= c.lastClosed {
		return fmt.Errorf("%w: %s (closed at position %d)", ErrAlreadyClosed, m, c.closes[m].pos)
	}
	if m != c.lastClosed+1 {
		return fmt.Errorf("%w: %s cannot close before %s", ErrOutOfOrder, m, c.lastClosed+1)
	}
	return nil
}

func (c *cycles) canFinalize(m calendar.Month) error {
	if !m.Valid() {
		return fmt.Errorf("%w: month %d", calendar.ErrMalformed, m)
	}
	if _, ok := c.closes[m]; !ok {
		return fmt.Errorf("%w: %s must close before its vendor cycle is finalized", ErrNotClosed, m)
	}
	if f, ok := c.finals[m]; ok {
		return fmt.Errorf("%w: %s (at position %d)", ErrAlreadyFinalized, m, f.pos)
	}
	return nil
}

// close records the close of m, which canClose allowed, and the invoices
// it issued.
func (c *cycles) close(m calendar.Month, e cycleEvent, issued []*Invoice) {
	if !c.hasClosed {
		c.firstClose = m
	}
	c.hasClosed, c.lastClosed = true, m
	c.closes[m] = e
	for _, inv := range issued {
		c.issued[docKey{inv.BAN, m}] = inv
	}
}

// finalize records the finalization of m, which canFinalize allowed, and
// the vendor views it froze.
func (c *cycles) finalize(m calendar.Month, e cycleEvent, views []*Invoice) {
	c.finals[m] = e
	for _, inv := range views {
		c.vendor[docKey{inv.BAN, m}] = inv
	}
}

// closed returns the close of m, if m is closed.
func (c *cycles) closed(m calendar.Month) (cycleEvent, bool) {
	e, ok := c.closes[m]
	return e, ok
}

// finalized returns the finalization of m, if m is finalized.
func (c *cycles) finalized(m calendar.Month) (cycleEvent, bool) {
	e, ok := c.finals[m]
	return e, ok
}

// nextToClose reports whether m is the month the next close will close:
// its draft carries the updates of earlier months.
func (c *cycles) nextToClose(m calendar.Month) bool { return !c.hasClosed || m == c.lastClosed+1 }

// issuedInvoice returns the invoice of a BAN that the close of m issued.
func (c *cycles) issuedInvoice(ban string, m calendar.Month) (*Invoice, bool) {
	inv, ok := c.issued[docKey{ban, m}]
	return inv, ok
}

// vendorView returns the vendor view of a BAN that the finalization of m
// froze.
func (c *cycles) vendorView(ban string, m calendar.Month) (*Invoice, bool) {
	inv, ok := c.vendor[docKey{ban, m}]
	return inv, ok
}

// available is the one rule for whether a view has documents for a month,
// whatever the BAN: nil; ErrNotBilled for a billing cycle month before the
// first close; a *NotFinalizedError for a vendor cycle month not finalized.
// It agrees with Invoice and VendorView, which say the same per BAN.
func (c *cycles) available(m calendar.Month, view View) error {
	if view == VendorCycle {
		if _, ok := c.finals[m]; ok {
			return nil
		}
		_, closed := c.closes[m]
		return notFinalized(m, closed)
	}
	if c.hasClosed && m < c.firstClose {
		return &NotBilledError{Month: m, FirstClose: c.firstClose}
	}
	return nil
}

// encode writes the cycles for a snapshot (snapshot.go): the cycle events
// in month order, then the frozen documents in (BAN, month) order.
func (c *cycles) encode(sw *snapWriter) {
	sw.Mark("cycles")
	for _, events := range []map[calendar.Month]cycleEvent{c.closes, c.finals} {
		months := slices.SortedFunc(maps.Keys(events), cmp.Compare)
		sw.Len(len(months))
		for _, m := range months {
			sw.Int32(int32(m))
			sw.Uvarint(events[m].pos)
			encodeTime(sw.Encoder, events[m].at)
		}
	}
	sw.Bool(c.hasClosed)
	sw.Int32(int32(c.firstClose))
	sw.Int32(int32(c.lastClosed))
	for _, docs := range []map[docKey]*Invoice{c.issued, c.vendor} {
		keys := slices.SortedFunc(maps.Keys(docs), func(a, b docKey) int {
			return cmp.Or(strings.Compare(a.ban, b.ban), cmp.Compare(a.month, b.month))
		})
		sw.Len(len(keys))
		for _, k := range keys {
			sw.String(k.ban)
			sw.Int32(int32(k.month))
			docs[k].encode(sw.Encoder, &sw.p.ids)
		}
	}
}

func (c *cycles) decode(sr *snapReader) {
	sr.Mark("cycles")
	for _, events := range []map[calendar.Month]cycleEvent{c.closes, c.finals} {
		for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
			m := sr.month()
			events[m] = cycleEvent{pos: sr.Uvarint(), at: decodeTime(sr.Decoder)}
		}
	}
	c.hasClosed = sr.Bool()
	c.firstClose = calendar.Month(sr.Int32())
	c.lastClosed = calendar.Month(sr.Int32())
	for _, docs := range []map[docKey]*Invoice{c.issued, c.vendor} {
		for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
			k := docKey{ban: sr.String(), month: sr.month()}
			inv := &Invoice{}
			inv.decode(sr)
			docs[k] = inv
		}
	}
}

// encodeTime writes an instant as Unix seconds and nanoseconds; it reads
// back in UTC, as every instant the fold keeps is (timestamppb's AsTime).
func encodeTime(e *snapcodec.Encoder, t time.Time) {
	e.Varint(t.Unix())
	e.Uvarint(uint64(t.Nanosecond()))
}

func decodeTime(d *snapcodec.Decoder) time.Time {
	s := d.Varint()
	ns := d.Uvarint()
	if ns >= 1e9 {
		d.Fail("nanoseconds %d", ns)
		return time.Time{}
	}
	return time.Unix(s, int64(ns)).UTC()
}

// Documents returns every frozen document, as the events that froze them
// returned them: the invoices of each close and the vendor views of each
// finalization, by month, then BAN. A runner restored from a snapshot
// hands them on as a replay would have (services/runner).
func (p *Projection) Documents() Applied {
	var a Applied
	for _, docs := range []struct {
		m   map[docKey]*Invoice
		out *[]*Invoice
	}{{p.cycles.issued, &a.Issued}, {p.cycles.vendor, &a.Finalized}} {
		keys := slices.SortedFunc(maps.Keys(docs.m), func(x, y docKey) int {
			return cmp.Or(cmp.Compare(x.month, y.month), strings.Compare(x.ban, y.ban))
		})
		for _, k := range keys {
			*docs.out = append(*docs.out, docs.m[k])
		}
	}
	return a
}
