// Package document holds the documents of Ledger as readers and auditors
// see them: the invoices and usage months of projections/billing as the
// messages of query.proto, and the digest of an issued document.
//
// It is one package, apart from the query service that serves them,
// because three programs must agree on a document to the byte: the query
// service that answers GetInvoice, the ledgerd that records what it
// issued (DocumentIssued) and announces it, and the auditor's ledgerctl
// that replays the history and recomputes every digest (README,
// "Auditing"). Like the rules it converts, it is pure: no clock, no
// network, no disk.
package document

import (
	"slices"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// The enums are mapped by table rather than by conversion of their
// numbers: the wire enums start with an _UNSPECIFIED zero that the
// domain's do not all have (billing.View's zero is the billing cycle), and
// a table keeps the two free to differ.

// LineKinds maps the domain's line kinds to the wire's.
var LineKinds = map[billing.LineKind]billingv1.LineKind{
	billing.Charges:                 billingv1.LineKind_LINE_KIND_CHARGES,
	billing.InterCustomerAdjustment: billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT,
	billing.IntraOrgAdjustment:      billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT,
	billing.PreviousMonthUpdate:     billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE,
	billing.PostBillUpdate:          billingv1.LineKind_LINE_KIND_POST_BILL_UPDATE,
}

// Statuses maps the domain's invoice statuses to the wire's.
var Statuses = map[billing.Status]billingv1.InvoiceStatus{
	billing.Draft:  billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT,
	billing.Issued: billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED,
}

// ViewNames maps the domain's views to the wire's.
var ViewNames = map[billing.View]billingv1.BillingView{
	billing.BillingCycle: billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE,
	billing.VendorCycle:  billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE,
}

// Amount renders x in c with exactly c's minor-unit digits: "4.00" USD,
// "1200" JPY. The documents' amounts are already rounded details or sums of
// them, so Format's rounding never changes one.
func Amount(x *apd.Decimal, c money.Currency) *billingv1.Money {
	return &billingv1.Money{Amount: money.Format(x, c), Currency: c.Code()}
}

// Invoice converts an invoice; lineage says whether its details carry
// their event_ids (a request's include_lineage).
func Invoice(inv *billing.Invoice, lineage bool) *billingv1.Invoice {
	out := &billingv1.Invoice{
		Ban:      inv.BAN,
		OrgId:    inv.OrgID,
		Month:    inv.Month.String(),
		Status:   Statuses[inv.Status],
		Currency: inv.Currency.Code(),
		Lines:    lines(inv.Lines, inv.Currency, lineage),
		Total:    Amount(&inv.Total, inv.Currency),
		Position: inv.Position,
	}
	if !inv.IssuedAt.IsZero() {
		out.IssuedAt = timestamppb.New(inv.IssuedAt)
	}
	return out
}

func lines(lines []billing.Line, c money.Currency, lineage bool) []*billingv1.InvoiceLine {
	out := make([]*billingv1.InvoiceLine, len(lines))
	for i := range lines {
		l := &lines[i]
		pl := &billingv1.InvoiceLine{
			Kind:         LineKinds[l.Kind],
			Vendor:       l.Vendor,
			AccountId:    l.AccountID,
			ProviderName: l.ProviderName,
			Alias:        l.Alias,
			CostCenterId: l.CostCenterID,
			ForMonth:     l.ForMonth.String(),
			Service:      l.Service,
			Description:  l.Description,
			Amount:       Amount(&l.Amount, c),
			Details:      make([]*billingv1.InvoiceLineDetail, len(l.Details)),
			Ban:          l.BAN,
		}
		for j := range l.Details {
			d := &l.Details[j]
			pd := &billingv1.InvoiceLineDetail{
				Service:     d.Service,
				Region:      d.Region,
				Amount:      Amount(&d.Amount, c),
				Description: d.Description,
			}
			if lineage {
				// The projection's documents are shared and frozen; the
				// message owns its own copy.
				pd.EventIds = slices.Clone(d.EventIDs)
			}
			pl.Details[j] = pd
		}
		out[i] = pl
	}
	return out
}

// UsageMonth converts a month of an organization's usage, as Invoice does.
func UsageMonth(u *billing.UsageMonth, lineage bool) *billingv1.UsageMonth {
	return &billingv1.UsageMonth{
		OrgId: u.OrgID,
		Month: u.Month.String(),
		View:  ViewNames[u.View],
		Lines: lines(u.Lines, u.Currency, lineage),
		Total: Amount(&u.Total, u.Currency),
	}
}
