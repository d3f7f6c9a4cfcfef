package billing

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// chargeLog is charges folded into one cell, one entry per record, in the
// order folded: its instant, its event and its exact amount. The cell's sum
// answers the bill; the log is what lets a back-dated hierarchy change split
// the cell at the new version's effective_at (docs/architecture.md,
// "Attribution"), which a sum alone cannot.
//
// It is packed because it holds one entry per usage record, and at a
// hundred million records the logs are most of the live heap (issue 15).
// An entry is encoded against the entries before it (a logCursor), so a
// log decodes from its start only, and the bytes of one log cannot be cut
// or joined to another's: whatever moves charges decodes and adds them
// again. An entry is, in order:
//
//   - the instant, one uvarint: zigzag(d)<<2 | unit, where unit says whether
//     the instant is a whole hour, a whole second or neither, and d is the
//     difference, in hours or seconds, between the instant's offset from its
//     month's start and the latest offset before it; a uvarint of the
//     nanoseconds follows when neither. Vendors' feeds come hour by hour,
//     so d is usually a few hours at most, and one byte.
//   - the event, a zigzag varint of its difference from the previous
//     entry's. Not unsigned: a back-dated hierarchy change, or held usage
//     a registration releases, adds charges of older events to a log.
//   - the amount's header, one byte: the sign, the coefficient's length in
//     bytes, and minus the exponent (0 to 14); otherwise entryEscape, and a
//     varint of the exponent and whether the coefficient needs more than 64
//     bits follows.
//   - the coefficient: that many bytes, little-endian (vendors' amounts,
//     ten fraction digits, take 5 or 6 bytes; a uvarint would take 6); over
//     64 bits, a uvarint of its length and its big-endian bytes.
//
// A typical record takes 8 to 10 bytes.
type chargeLog []byte

// chargeEntry is one decoded entry.
type chargeEntry struct {
	at     int64
	event  uint32
	amount apd.Decimal
}

// logCursor is what the next entry of a log is encoded against, and so
// what decoding it needs: the latest instant before it, as an offset from
// its month's start, and the event of the entry before it. A cell's log
// starts from the cell's first charge (see cell.logStart), which is kept
// beside the log; a held log starts from zero.
type logCursor struct {
	latest int64
	event  uint32
}

func (c *logCursor) advance(off int64, event uint32) {
	c.latest = max(c.latest, off)
	c.event = event
}

// Units of an entry's instant.
const (
	unitHour   = 0
	unitSecond = 1
	unitNano   = 2 // whole seconds, then the nanoseconds
	unitBits   = 2
)

// maxOffset bounds an instant's offset from its month's start: no month
// is longer. Decoding refuses more, which also keeps its arithmetic far
// from overflowing.
const maxOffset = int64(31 * 24 * time.Hour)

// The amount's header byte.
const (
	entryNegative  = 1 << 0
	entryLenShift  = 1 // the coefficient's length in bytes, less one
	entryLenMask   = 7 << entryLenShift
	entryExpShift  = 4 // minus the exponent, or entryEscape
	entryEscape    = 15
	entryEscapeBig = 1 << 0 // in the varint after entryEscape
)

// maxEntry bounds an entry whose coefficient fits in 64 bits: the
// instant with its nanoseconds, the event, the header with its escape,
// the coefficient.
const maxEntry = 2*binary.MaxVarintLen64 + binary.MaxVarintLen32 + 1 + binary.MaxVarintLen64 + 8

// appendCharge appends to l an entry for a charge at offset off from its
// month's start (0 <= off < maxOffset: the month is the month of the
// charge), encoded against cur, which it advances.
func appendCharge(l []byte, cur *logCursor, off int64, event uint32, amount *apd.Decimal) []byte {
	var buf [maxEntry]byte
	e := encodeCharge(buf[:0], cur, off, event, amount)
	return append(growLog(l, len(e)), e...)
}

// growLog returns l with room for n more bytes. It grows by an eighth
// rather than by append's doubling: there is one log per cell, millions of
// them, and most stay short, so doubling would leave a third of their
// bytes unused. The capacity is rounded up to the allocator's size class,
// which the allocation takes anyway (bytes.Buffer grows so), so that the
// next entries use that room instead of leaving it unseen.
func growLog(l []byte, n int) []byte {
	if cap(l)-len(l) >= n {
		return l
	}
	grown := append([]byte(nil), make([]byte, len(l)+max(n, len(l)/8))...)
	return grown[:copy(grown, l)]
}

// encodeCharge appends one entry to b (see chargeLog) and advances cur.
func encodeCharge(b []byte, cur *logCursor, off int64, event uint32, amount *apd.Decimal) []byte {
	if off < 0 || off >= maxOffset {
		broken(invariantChargeLog, "a charge %d ns from the start of its month", off)
	}
	unit, size := uint64(unitNano), int64(time.Second)
	switch {
	case off%int64(time.Hour) == 0:
		unit, size = unitHour, int64(time.Hour)
	case off%int64(time.Second) == 0:
		unit = unitSecond
	}
	d := off/size - cur.latest/size
	b = binary.AppendUvarint(b, zigzag(d)<<unitBits|unit)
	if unit == unitNano {
		b = binary.AppendUvarint(b, uint64(off%size))
	}
	b = binary.AppendVarint(b, int64(event)-int64(cur.event))
	cur.advance(off, event)

	var h byte
	if amount.Negative {
		h |= entryNegative
	}
	big := !amount.Coeff.IsUint64()
	var c uint64
	var n int
	if !big {
		c = amount.Coeff.Uint64()
		n = max(1, (bits.Len64(c)+7)/8)
		h |= byte(n-1) << entryLenShift
	}
	if exp := amount.Exponent; !big && exp <= 0 && exp > -entryEscape {
		b = append(b, h|byte(-exp)<<entryExpShift)
	} else {
		x := int64(exp) << 1
		if big {
			x |= entryEscapeBig
		}
		b = binary.AppendVarint(append(b, h|entryEscape<<entryExpShift), x)
	}
	if !big {
		return binary.LittleEndian.AppendUint64(b, c)[:len(b)+n]
	}
	cb := amount.Coeff.Bytes()
	b = binary.AppendUvarint(b, uint64(len(cb)))
	return append(b, cb...)
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// each calls fn with every entry in order, decoding from cur, the log's
// start. The entry is reused between calls. An error means the log is
// corrupt, which only a bug can do.
func (l chargeLog) each(monthStart int64, cur logCursor, fn func(e *chargeEntry)) error {
	var e chargeEntry
	for len(l) > 0 {
		var err error
		if l, err = l.next(monthStart, &cur, &e, true); err != nil {
			return err
		}
		fn(&e)
	}
	return nil
}

// scan calls fn with every entry in order, without decoding amounts: for
// the instants and events alone.
func (l chargeLog) scan(monthStart int64, cur logCursor, fn func(at int64, ev uint32)) error {
	var e chargeEntry
	for len(l) > 0 {
		var err error
		if l, err = l.next(monthStart, &cur, &e, false); err != nil {
			return err
		}
		fn(e.at, e.event)
	}
	return nil
}

var errCorrupt = errors.New("billing: corrupt charge log")

// next decodes the first entry of l against cur into e (its amount only
// if amount is set), advances cur and returns the rest of l.
func (l chargeLog) next(monthStart int64, cur *logCursor, e *chargeEntry, amount bool) (chargeLog, error) {
	t, n := binary.Uvarint(l)
	if n <= 0 {
		return nil, errCorrupt
	}
	l = l[n:]
	size := int64(time.Second)
	switch t & (1<<unitBits - 1) {
	case unitHour:
		size = int64(time.Hour)
	case unitSecond, unitNano:
	default:
		return nil, errCorrupt
	}
	z := t >> unitBits
	d := int64(z>>1) ^ -int64(z&1)
	if d < -maxOffset/size || d > maxOffset/size {
		return nil, errCorrupt
	}
	off := (cur.latest/size + d) * size
	if t&(1<<unitBits-1) == unitNano {
		ns, n := binary.Uvarint(l)
		if n <= 0 || ns == 0 || ns >= uint64(time.Second) {
			return nil, errCorrupt
		}
		off += int64(ns)
		l = l[n:]
	}
	if off < 0 || off >= maxOffset {
		return nil, errCorrupt
	}
	de, n := binary.Varint(l)
	if n <= 0 || de < -math.MaxUint32 || de > math.MaxUint32 {
		return nil, errCorrupt
	}
	l = l[n:]
	ev := int64(cur.event) + de
	if ev < 0 || ev > math.MaxUint32 {
		return nil, errCorrupt
	}
	cur.advance(off, uint32(ev))
	e.at, e.event = monthStart+off, uint32(ev)

	if len(l) == 0 {
		return nil, errCorrupt
	}
	h := l[0]
	l = l[1:]
	exp, big := -int64(h>>entryExpShift), false
	if h>>entryExpShift == entryEscape {
		x, n := binary.Varint(l)
		if n <= 0 || x>>1 < math.MinInt32 || x>>1 > math.MaxInt32 {
			return nil, errCorrupt
		}
		l = l[n:]
		exp, big = x>>1, x&entryEscapeBig != 0
	}
	if !big {
		cn := int(h&entryLenMask>>entryLenShift) + 1
		if len(l) < cn {
			return nil, errCorrupt
		}
		if amount {
			var c uint64
			for i := cn - 1; i >= 0; i-- {
				c = c<<8 | uint64(l[i])
			}
			e.amount.Coeff.SetUint64(c)
		}
		l = l[cn:]
	} else {
		cn, n := binary.Uvarint(l)
		if n <= 0 || uint64(len(l)-n) < cn {
			return nil, errCorrupt
		}
		l = l[n:]
		if amount {
			e.amount.Coeff.SetBytes(l[:cn])
		}
		l = l[cn:]
	}
	if amount {
		e.amount.Form = apd.Finite
		e.amount.Negative = h&entryNegative != 0
		e.amount.Exponent = int32(exp)
	}
	return l, nil
}
