package billing

import (
	"fmt"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/snapcodec"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// IssuedRecord is a DocumentIssued of the history: what a ledgerd said it
// issued, with the digest it computed. The fold only keeps these; checking
// a digest needs the document in its canonical form, which is the
// business of projections/document, so the query service and the
// auditors' verify compare them (README, "Auditing").
type IssuedRecord struct {
	BAN      string
	Month    calendar.Month
	View     View
	Total    string // the recorded amount, as written
	Currency string
	Digest   string
	// Through is the position of the close or finalization that issued
	// the document; Position that of the DocumentIssued itself.
	Through  uint64
	Position uint64
}

// ViewNames are the names a DocumentIssued gives the views: its stream's
// and its view field's.
var ViewNames = map[View]string{BillingCycle: "billing_cycle", VendorCycle: "vendor_cycle"}

func viewNamed(name string) (View, bool) {
	for v, n := range ViewNames {
		if n == name {
			return v, true
		}
	}
	return 0, false
}

// applyIssued records a DocumentIssued. It carries no event_id: its
// stream and event id are derived from the document and its digest, so
// the store's idempotent append, not the fold, keeps replicas from
// recording it twice.
func (p *Projection) applyIssued(pos uint64, m *billingv1.DocumentIssued) error {
	month, err := calendar.Parse(m.Month)
	if err != nil {
		return fmt.Errorf("%w: month: %w", ErrInvalidEvent, err)
	}
	view, ok := viewNamed(m.View)
	if !ok {
		return fmt.Errorf("%w: view: %q is neither billing_cycle nor vendor_cycle", ErrInvalidEvent, m.View)
	}
	if m.Ban == "" {
		return fmt.Errorf("%w: ban is empty", ErrInvalidEvent)
	}
	p.issued = append(p.issued, IssuedRecord{
		BAN: m.Ban, Month: month, View: view,
		Total: m.GetTotal().GetAmount(), Currency: m.GetTotal().GetCurrency(),
		Digest: m.Digest, Through: m.ThroughPosition, Position: pos,
	})
	return nil
}

// Issued returns the DocumentIssued records of the history, in log order.
// The slice is the projection's: read it under the read lock, never
// change it.
func (p *Projection) Issued() []IssuedRecord { return p.issued }

// encode writes a record for a snapshot (snapshot.go).
func (r *IssuedRecord) encode(e *snapcodec.Encoder) {
	e.String(r.BAN)
	e.Int32(int32(r.Month))
	e.Uvarint(uint64(r.View))
	e.String(r.Total)
	e.String(r.Currency)
	e.String(r.Digest)
	e.Uvarint(r.Through)
	e.Uvarint(r.Position)
}

func (r *IssuedRecord) decode(d *snapcodec.Decoder) {
	r.BAN = d.String()
	r.Month = calendar.Month(d.Int32())
	r.View = View(d.Uvarint())
	r.Total, r.Currency, r.Digest = d.String(), d.String(), d.String()
	r.Through = d.Uvarint()
	r.Position = d.Uvarint()
}
