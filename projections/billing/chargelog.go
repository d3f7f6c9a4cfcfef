package billing

import (
	"encoding/binary"
	"errors"

	"github.com/cockroachdb/apd/v3"
)

// chargeLog is charges folded into one cell, one entry per record, in the
// order folded: its instant, its event and its exact amount. The cell's sum
// answers the bill; the log is what lets a back-dated hierarchy change split
// the cell at the new version's effective_at (docs/architecture.md,
// "Attribution"), which a sum alone cannot.
//
// It is packed because it holds one entry per usage record: the instant as
// seconds and nanoseconds since the start of the cell's month, the event
// index, then the amount as a header (exponent, sign, and whether the
// coefficient needs more than 64 bits) and the coefficient, all varints. A
// typical record takes 9 to 12 bytes.
type chargeLog []byte

// chargeEntry is one decoded entry.
type chargeEntry struct {
	at     int64
	event  uint32
	amount apd.Decimal
}

const (
	entryNegative = 1 << 0
	entryBig      = 1 << 1
	entryFlagBits = 2
)

// entryRoom is the room add makes before encoding an entry: enough for a
// typical one (an entry that needs more grows the log as append does).
const entryRoom = 16

// add appends a charge at instant at of a month starting at monthStart.
//
// The log grows by an eighth (at least entryRoom) rather than by append's
// doubling: there is one log per cell, millions of them, and most stay
// short, so doubling would leave a third of their bytes unused.
func (l chargeLog) add(monthStart, at int64, event uint32, amount *apd.Decimal) chargeLog {
	return appendCharge(growLog(l), monthStart, at, event, amount)
}

// growLog makes room in l for an entry, growing it by an eighth.
func growLog(l []byte) []byte {
	if cap(l)-len(l) < entryRoom {
		grown := make([]byte, len(l), len(l)+max(entryRoom, len(l)/8))
		copy(grown, l)
		l = grown
	}
	return l
}

// appendCharge encodes one entry at the end of l: the offset of at from
// monthStart (>= 0: the month is the month of at), the event, the amount.
func appendCharge(l []byte, monthStart, at int64, event uint32, amount *apd.Decimal) []byte {
	off := at - monthStart
	l = binary.AppendUvarint(l, uint64(off/1e9))
	l = binary.AppendUvarint(l, uint64(off%1e9))
	l = binary.AppendUvarint(l, uint64(event))
	var flags int64
	if amount.Negative {
		flags |= entryNegative
	}
	big := !amount.Coeff.IsUint64()
	if big {
		flags |= entryBig
	}
	l = binary.AppendVarint(l, int64(amount.Exponent)<<entryFlagBits|flags)
	if !big {
		return binary.AppendUvarint(l, amount.Coeff.Uint64())
	}
	b := amount.Coeff.Bytes()
	l = binary.AppendUvarint(l, uint64(len(b)))
	return append(l, b...)
}

// each calls fn with every entry in order. The entry is reused between
// calls. An error means the log is corrupt, which only a bug can do.
func (l chargeLog) each(monthStart int64, fn func(e *chargeEntry)) error {
	var e chargeEntry
	for len(l) > 0 {
		var err error
		if l, err = l.next(monthStart, &e, true); err != nil {
			return err
		}
		fn(&e)
	}
	return nil
}

// scan calls fn with every entry in order, without decoding amounts: for
// the instants and events alone.
func (l chargeLog) scan(monthStart int64, fn func(at int64, ev uint32)) error {
	var e chargeEntry
	for len(l) > 0 {
		var err error
		if l, err = l.next(monthStart, &e, false); err != nil {
			return err
		}
		fn(e.at, e.event)
	}
	return nil
}

var errCorrupt = errors.New("billing: corrupt charge log")

// next decodes the first entry of l into e (its amount only if amount is
// set) and returns the rest of l.
func (l chargeLog) next(monthStart int64, e *chargeEntry, amount bool) (chargeLog, error) {
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(l)
		if n <= 0 {
			return nil, errCorrupt
		}
		vals[i], l = v, l[n:]
	}
	h, n := binary.Varint(l)
	if n <= 0 {
		return nil, errCorrupt
	}
	l = l[n:]
	c, n := binary.Uvarint(l)
	if n <= 0 {
		return nil, errCorrupt
	}
	l = l[n:]
	e.at = monthStart + int64(vals[0])*1e9 + int64(vals[1])
	e.event = uint32(vals[2])
	if h&entryBig == 0 {
		if amount {
			e.amount.Coeff.SetUint64(c)
		}
	} else {
		if uint64(len(l)) < c {
			return nil, errCorrupt
		}
		if amount {
			e.amount.Coeff.SetBytes(l[:c])
		}
		l = l[c:]
	}
	if amount {
		e.amount.Form = apd.Finite
		e.amount.Negative = h&entryNegative != 0
		e.amount.Exponent = int32(h >> entryFlagBits)
	}
	return l, nil
}
