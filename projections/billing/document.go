package billing

import (
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
	"github.com/ledger-billing/ledger/projections/snapcodec"
)

// LineKind is the kind of an invoice line, in the order lines are sorted.
// The values match the LINE_KIND_* enum of the query API.
type LineKind int

// Line kinds (docs/architecture.md, "Queries").
const (
	Charges LineKind = 1 + iota
	InterCustomerAdjustment
	IntraOrgAdjustment
	PreviousMonthUpdate
	PostBillUpdate
)

var lineKindNames = [...]string{"", "CHARGES", "INTER_CUSTOMER_ADJUSTMENT", "INTRA_ORG_ADJUSTMENT", "PREVIOUS_MONTH_UPDATE", "POST_BILL_UPDATE"}

func (k LineKind) String() string {
	if k > 0 && int(k) < len(lineKindNames) {
		return lineKindNames[k]
	}
	return "LineKind(?)"
}

// The names that stand in for the service on update lines of the two
// adjustment kinds.
const (
	InterCustomerName = "Inter-Customer Adjustment"
	IntraOrgName      = "Intra-Organization Adjustment"
)

// Status is the status of an invoice; the values match INVOICE_STATUS_*.
type Status int

// Invoice statuses.
const (
	Draft Status = 1 + iota
	Issued
)

func (s Status) String() string {
	switch s {
	case Draft:
		return "DRAFT"
	case Issued:
		return "ISSUED"
	}
	return "Status(?)"
}

// View selects the billing cycle (the reseller's invoices) or the vendor
// cycle (vendor views). The zero value is the billing cycle, the default.
// Its numbers are not the wire's (BILLING_VIEW_BILLING_CYCLE is 1,
// BILLING_VIEW_VENDOR_CYCLE 2, 0 unspecified): services/query maps the two
// by an explicit table, so neither side depends on the other's numbering.
type View int

// Views.
const (
	BillingCycle View = iota
	VendorCycle
)

// Detail is one line detail: an amount of one service in one region
// (region empty: global, or a vendor reconciliation), rounded to the
// currency's minor unit.
type Detail struct {
	Service string
	Region  string
	// Description is "Vendor reconciliation" for a reconciliation true-up,
	// else empty.
	Description string
	Amount      apd.Decimal
	// EventIDs are the events behind the detail (its lineage), in log
	// order: usage messages, reconciliations, RI benefit reports and
	// purchases.
	EventIDs []string
}

// Line is one invoice line. Charges, adjustment lines: one per account
// (and attribution, should an account move mid-month between cost centers
// of one BAN); update lines: one per account, month and service.
type Line struct {
	Kind         LineKind
	BAN          string
	Vendor       string
	AccountID    string
	ProviderName string
	Alias        string
	CostCenterID string
	ForMonth     calendar.Month
	// Service is set on update lines: the service, or the adjustment's
	// name for the adjustment kinds.
	Service     string
	Description string
	// Amount is the sum of the details, or for intra-organization lines,
	// which have none, the adjustment.
	Amount  apd.Decimal
	Details []Detail
}

// Invoice is the document of one BAN for one month: in the billing cycle
// view an invoice, issued at the month's close or a draft before it; in the
// vendor cycle view the vendor view of the month. Issued documents are
// shared and frozen: callers must not modify them.
type Invoice struct {
	BAN      string
	OrgID    string
	Month    calendar.Month
	View     View
	Status   Status
	IssuedAt time.Time
	Currency money.Currency
	Lines    []Line
	Total    apd.Decimal
	// Position is the $all position the document reflects: the close (or
	// finalization) that froze it, or for a draft the last applied event.
	Position uint64

	// digest is an issued document's digest, computed once (DigestWith).
	digest struct {
		once  sync.Once
		value string
		err   error
	}
}

// DigestWith returns the document's digest, computed by d. An issued
// document never changes, and its digest is asked for three times in one
// ledgerd (the DocumentIssued that records it, the announcement on
// BILLING_OUT, the check of that DocumentIssued as it is applied) and
// costs 140 ms for 1,000 lines (go test -bench DigestOf
// ./projections/document): it is computed once. A draft's is computed
// at every call.
func (inv *Invoice) DigestWith(d Digester) (string, error) {
	if inv.Status != Issued {
		return d(inv)
	}
	inv.digest.once.Do(func() { inv.digest.value, inv.digest.err = d(inv) })
	return inv.digest.value, inv.digest.err
}

// InvoiceSummary is a row of ListInvoices.
type InvoiceSummary struct {
	BAN    string
	Month  calendar.Month
	Status Status
	Total  apd.Decimal
}

// UsageMonth is the organization-wide version of a month's documents:
// the lines of all its BANs.
type UsageMonth struct {
	OrgID    string
	Month    calendar.Month
	View     View
	Currency money.Currency
	Lines    []Line
	Total    apd.Decimal
	Position uint64
}

// MonthSummary is a row of the usage history. Available is false for a
// month without a document in the view: before the first close, or a vendor
// view not yet finalized.
type MonthSummary struct {
	Month     calendar.Month
	Total     apd.Decimal
	Available bool
}

// Bar is one bar of the dashboard.
type Bar struct {
	Month  calendar.Month
	Amount apd.Decimal
}

// Adjustment is an entry of the adjustment ledgers. Inter-customer entries
// come in pairs, one per side of an RI benefit (aggregated per RI, account
// and counterparty); intra-organization entries are one per account.
type Adjustment struct {
	Kind                  LineKind
	Vendor                string
	AccountID             string
	CounterpartyAccountID string
	RIID                  string
	Amount                apd.Decimal
	Description           string
}

// ExceptionKind says why an amount is on no invoice.
type ExceptionKind int

// Exception kinds.
const (
	// UnassignedUsage: no provider at the charge's instant (or its
	// organization is not registered); billed once a registration covers it.
	UnassignedUsage ExceptionKind = 1 + iota
	// PendingBenefit: an RI benefit whose RI is not purchased yet, or whose
	// accounts have no provider; billed once they are known.
	PendingBenefit
	// CurrencyMismatch: an amount in another currency than its
	// organization's; billed once a registration moves it to an
	// organization billed in its currency.
	CurrencyMismatch
	// InvalidRecord: a usage record without a cost or charge period start,
	// or with an amount that is not a decimal; never billed.
	InvalidRecord
	// DigestMismatch: a DocumentIssued whose digest is not the one of the
	// document the history yields (issued.go); its amount is the total it
	// records.
	DigestMismatch
)

var exceptionKindNames = [...]string{"", "UNASSIGNED_USAGE", "PENDING_RI_BENEFIT", "CURRENCY_MISMATCH", "INVALID_RECORD", "DIGEST_MISMATCH"}

func (k ExceptionKind) String() string {
	if k > 0 && int(k) < len(exceptionKindNames) {
		return exceptionKindNames[k]
	}
	return "ExceptionKind(?)"
}

// Exception is an amount held off the invoices, aggregated per kind,
// account, month, event and currency.
type Exception struct {
	Kind      ExceptionKind
	OrgID     string // empty when no organization is known
	Vendor    string
	AccountID string
	Month     calendar.Month
	Amount    apd.Decimal
	// Currency is the code the amount came in (possibly not ISO 4217 for
	// invalid records); Amount is exact, not rounded.
	Currency string
	Reason   string
	EventID  string
}

// lineLess orders lines by kind, vendor, account, month, service, and then
// by what tells apart lines of one account that moved.
func lineCmp(a, b *Line) int {
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	if c := strings.Compare(hierarchy.VendorKey(a.Vendor), hierarchy.VendorKey(b.Vendor)); c != 0 {
		return c
	}
	if c := strings.Compare(a.AccountID, b.AccountID); c != 0 {
		return c
	}
	if a.ForMonth != b.ForMonth {
		return int(a.ForMonth) - int(b.ForMonth)
	}
	for _, p := range [...][2]string{{a.Service, b.Service}, {a.BAN, b.BAN}, {a.CostCenterID, b.CostCenterID}, {a.ProviderName, b.ProviderName}, {a.Alias, b.Alias}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

// encode writes a frozen document for a snapshot (cycles.encode). The
// event ids of its lineage are written as the interner's indexes (each is
// an interned event), and read back as the interner's strings, shared.
func (d *Invoice) encode(e *snapcodec.Encoder, ids *interner) {
	e.String(d.BAN)
	e.String(d.OrgID)
	e.Int32(int32(d.Month))
	e.Uvarint(uint64(d.View))
	e.Uvarint(uint64(d.Status))
	encodeTime(e, d.IssuedAt)
	e.String(d.Currency.Code())
	e.NilLen(len(d.Lines), d.Lines == nil)
	for i := range d.Lines {
		d.Lines[i].encode(e, ids)
	}
	e.Decimal(&d.Total)
	e.Uvarint(d.Position)
}

func (d *Invoice) decode(sr *snapReader) {
	d.BAN = sr.String()
	d.OrgID = sr.String()
	d.Month = sr.month()
	d.View = View(sr.Uvarint())
	d.Status = Status(sr.Uvarint())
	d.IssuedAt = decodeTime(sr.Decoder)
	d.Currency = sr.currency()
	if n, isNil := sr.NilLen(); !isNil {
		d.Lines = make([]Line, 0, sr.Cap(n))
		for ; n > 0 && sr.Err() == nil; n-- {
			d.Lines = append(d.Lines, Line{})
			d.Lines[len(d.Lines)-1].decode(sr)
		}
	}
	sr.Decimal(&d.Total)
	d.Position = sr.Uvarint()
}

func (l *Line) encode(e *snapcodec.Encoder, ids *interner) {
	e.Uvarint(uint64(l.Kind))
	for _, s := range [...]string{l.BAN, l.Vendor, l.AccountID, l.ProviderName, l.Alias, l.CostCenterID} {
		e.String(s)
	}
	e.Int32(int32(l.ForMonth))
	e.String(l.Service)
	e.String(l.Description)
	e.Decimal(&l.Amount)
	e.NilLen(len(l.Details), l.Details == nil)
	for i := range l.Details {
		dt := &l.Details[i]
		e.String(dt.Service)
		e.String(dt.Region)
		e.String(dt.Description)
		e.Decimal(&dt.Amount)
		e.NilLen(len(dt.EventIDs), dt.EventIDs == nil)
		for _, id := range dt.EventIDs {
			// An id the interner does not hold (none should) is written
			// as itself: 0, then the string.
			if i, ok := ids.eventIdx[id]; ok {
				e.Uvarint(uint64(i) + 1)
			} else {
				e.Uvarint(0)
				e.String(id)
			}
		}
	}
}

func (l *Line) decode(sr *snapReader) {
	l.Kind = LineKind(sr.Uvarint())
	l.BAN, l.Vendor, l.AccountID = sr.String(), sr.String(), sr.String()
	l.ProviderName, l.Alias, l.CostCenterID = sr.String(), sr.String(), sr.String()
	l.ForMonth = calendar.Month(sr.Int32()) // zero on lines of the month itself
	l.Service = sr.String()
	l.Description = sr.String()
	sr.Decimal(&l.Amount)
	n, isNil := sr.NilLen()
	if isNil {
		return
	}
	l.Details = make([]Detail, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		dt := Detail{Service: sr.String(), Region: sr.String(), Description: sr.String()}
		sr.Decimal(&dt.Amount)
		if m, isNil := sr.NilLen(); !isNil {
			dt.EventIDs = make([]string, 0, sr.Cap(m))
			for ; m > 0 && sr.Err() == nil; m-- {
				ref := sr.Uvarint()
				switch {
				case ref == 0:
					dt.EventIDs = append(dt.EventIDs, sr.String())
				case ref <= uint64(len(sr.p.ids.eventIDs)):
					dt.EventIDs = append(dt.EventIDs, sr.p.ids.eventIDs[ref-1])
				default:
					sr.Fail("event %d of %d", ref-1, len(sr.p.ids.eventIDs))
				}
			}
		}
		l.Details = append(l.Details, dt)
	}
}

// encode writes an invalid record's exception for a snapshot
// (exceptions.encode).
func (x *Exception) encode(e *snapcodec.Encoder) {
	e.Uvarint(uint64(x.Kind))
	e.String(x.OrgID)
	e.String(x.Vendor)
	e.String(x.AccountID)
	e.Int32(int32(x.Month))
	e.Decimal(&x.Amount)
	e.String(x.Currency)
	e.String(x.Reason)
	e.String(x.EventID)
}

func (x *Exception) decode(d *snapcodec.Decoder) {
	x.Kind = ExceptionKind(d.Uvarint())
	x.OrgID, x.Vendor, x.AccountID = d.String(), d.String(), d.String()
	x.Month = calendar.Month(d.Int32())
	d.Decimal(&x.Amount)
	x.Currency, x.Reason, x.EventID = d.String(), d.String(), d.String()
}
