package billing

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/snapcodec"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// IssuedRecord is a DocumentIssued of the history: what a ledgerd said it
// issued, with the digest it computed, and what this fold computes for the
// same document.
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
	// Computed is the digest of the document as this projection has it
	// when the record is applied; empty if the projection checks no
	// digests (CheckDigests) or has no such document (Problem says why).
	Computed string
	Problem  string
}

// Mismatch reports whether the record's digest was checked and differs
// from the document's: another ledgerd issued something else, or the
// history was changed.
func (r *IssuedRecord) Mismatch() bool {
	return r.Problem != "" || (r.Computed != "" && r.Computed != r.Digest)
}

// Digester computes the digest of a document. The canonical form of a
// document is the business of projections/document, which imports this
// package; the runner and the auditors' verify hand its DigestOf to
// CheckDigests, so the fold checks every DocumentIssued as it applies it.
type Digester func(*Invoice) (string, error)

// CheckDigests makes Apply check the digest of every DocumentIssued
// against the document this projection yields for it.
func (p *Projection) CheckDigests(d Digester) { p.digester = d }

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
	rec := IssuedRecord{
		BAN: m.Ban, Month: month, View: view,
		Total: m.GetTotal().GetAmount(), Currency: m.GetTotal().GetCurrency(),
		Digest: m.Digest, Through: m.ThroughPosition, Position: pos,
	}
	if p.digester != nil {
		// Documents are issued once and frozen, so the digest computed
		// here is the one of the document whenever it is asked for.
		doc, err := p.document(m.Ban, month, view)
		switch {
		case err != nil:
			rec.Problem = fmt.Sprintf("the history yields no %s document of %s for %s: %v", m.View, m.Ban, month, err)
		case doc == nil || doc.Status != Issued:
			rec.Problem = fmt.Sprintf("the %s document of %s for %s is not issued in the history", m.View, m.Ban, month)
		default:
			if rec.Computed, err = p.digester(doc); err != nil {
				rec.Problem = fmt.Sprintf("the digest of the %s document of %s for %s: %v", m.View, m.Ban, month, err)
			}
		}
	}
	p.issued = append(p.issued, rec)
	p.record(&rec)
	return nil
}

type issuedKey struct {
	view View
	doc  docKey
}

// Unrecorded returns up to limit issued documents (invoices and vendor
// views) that no DocumentIssued of the history records yet, in the order
// they were issued: what a ledgerd still has to record (services/audit).
// A record counts only if it names the close (or finalization) that
// issued the document: one appended before it, by whoever, records
// nothing.
func (p *Projection) Unrecorded(limit int) []*Invoice {
	var out []*Invoice
	for view, docs := range map[View]map[docKey]*Invoice{BillingCycle: p.cycles.issued, VendorCycle: p.cycles.vendor} {
		for k, inv := range docs {
			if !slices.Contains(p.recorded[issuedKey{view, k}], inv.Position) {
				out = append(out, inv)
			}
		}
	}
	slices.SortFunc(out, func(a, b *Invoice) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.View, b.View), cmp.Compare(a.BAN, b.BAN))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Issued returns the DocumentIssued records of the history, in log order.
// The slice is the projection's: read it under the read lock, never
// change it.
func (p *Projection) Issued() []IssuedRecord { return p.issued }

// digestMismatches lists the records of org (all, for "") whose digest
// does not check, as exceptions: an operator sees them where every other
// amount that needs a look is listed.
func (p *Projection) digestMismatches(org string) []Exception {
	var out []Exception
	for i := range p.issued {
		r := &p.issued[i]
		if !r.Mismatch() {
			continue
		}
		owner, _ := p.h.OrganizationOfBAN(r.BAN)
		if org != "" && owner != org {
			continue
		}
		reason := r.Problem
		if reason == "" {
			reason = fmt.Sprintf("DocumentIssued at position %d records digest %s for the %s document of %s for %s; the history yields %s",
				r.Position, r.Digest, ViewNames[r.View], r.BAN, r.Month, r.Computed)
		}
		e := Exception{Kind: DigestMismatch, OrgID: owner, Month: r.Month, Currency: r.Currency, Reason: reason}
		if _, _, err := e.Amount.SetString(r.Total); err != nil {
			e.Amount.SetInt64(0)
		}
		out = append(out, e)
	}
	return out
}

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
	e.String(r.Computed)
	e.String(r.Problem)
}

func (r *IssuedRecord) decode(d *snapcodec.Decoder) {
	r.BAN = d.String()
	r.Month = calendar.Month(d.Int32())
	r.View = View(d.Uvarint())
	r.Total, r.Currency, r.Digest = d.String(), d.String(), d.String()
	r.Through = d.Uvarint()
	r.Position = d.Uvarint()
	r.Computed, r.Problem = d.String(), d.String()
}

// record notes what a record says was issued, for Unrecorded: kept apart
// from the records, and rebuilt from them after a snapshot is read.
func (p *Projection) record(r *IssuedRecord) {
	if p.recorded == nil {
		p.recorded = make(map[issuedKey][]uint64)
	}
	k := issuedKey{r.View, docKey{r.BAN, r.Month}}
	p.recorded[k] = append(p.recorded[k], r.Through)
}
