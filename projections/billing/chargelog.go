package billing

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/apd/v3"
)

// chargeLog is every charge folded into one cell, one entry per record, in
// the order folded: its instant, its event and its exact amount. The cell's
// sum answers the bill; the log is what lets a back-dated hierarchy change
// split the cell at the new version's effective_at (DESIGN.md 7.1), which a
// sum alone cannot.
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

// add appends a charge at instant at of a month starting at monthStart.
func (l chargeLog) add(monthStart, at int64, event uint32, amount *apd.Decimal) chargeLog {
	off := at - monthStart // >= 0: the cell's month is the month of at
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
		var vals [3]uint64
		for i := range 3 {
			v, n := binary.Uvarint(l)
			if n <= 0 {
				return fmt.Errorf("billing: corrupt charge log")
			}
			vals[i], l = v, l[n:]
		}
		h, n := binary.Varint(l)
		if n <= 0 {
			return fmt.Errorf("billing: corrupt charge log")
		}
		l = l[n:]
		c, n := binary.Uvarint(l)
		if n <= 0 {
			return fmt.Errorf("billing: corrupt charge log")
		}
		l = l[n:]
		e.at = monthStart + int64(vals[0])*1e9 + int64(vals[1])
		e.event = uint32(vals[2])
		e.amount.Form = apd.Finite
		e.amount.Negative = h&entryNegative != 0
		e.amount.Exponent = int32(h >> entryFlagBits)
		if h&entryBig == 0 {
			e.amount.Coeff.SetUint64(c)
		} else {
			if uint64(len(l)) < c {
				return fmt.Errorf("billing: corrupt charge log")
			}
			e.amount.Coeff.SetBytes(l[:c])
			l = l[c:]
		}
		fn(&e)
	}
	return nil
}
