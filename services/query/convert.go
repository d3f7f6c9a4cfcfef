package query

import (
	"fmt"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/document"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Converters between the domain documents of projections/billing and the
// messages of query.proto. The enums are mapped by table rather than by
// conversion of their numbers: the wire enums start with an _UNSPECIFIED
// zero that the domain's do not all have (billing.View's zero is the
// billing cycle), and a table keeps the two free to differ.

// adjustmentKinds are the kinds ListAdjustments takes.
var adjustmentKinds = map[billingv1.LineKind]billing.LineKind{
	billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT: billing.InterCustomerAdjustment,
	billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT:      billing.IntraOrgAdjustment,
}

// views maps the wire views to the domain's; BILLING_VIEW_UNSPECIFIED is
// the billing cycle, as the query API says of view 0.
var views = map[billingv1.BillingView]billing.View{
	billingv1.BillingView_BILLING_VIEW_UNSPECIFIED:   billing.BillingCycle,
	billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE: billing.BillingCycle,
	billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE:  billing.VendorCycle,
}

var exceptionKinds = map[billing.ExceptionKind]billingv1.ExceptionKind{
	billing.UnassignedUsage:  billingv1.ExceptionKind_EXCEPTION_KIND_UNASSIGNED_USAGE,
	billing.PendingBenefit:   billingv1.ExceptionKind_EXCEPTION_KIND_PENDING_RI_BENEFIT,
	billing.CurrencyMismatch: billingv1.ExceptionKind_EXCEPTION_KIND_CURRENCY_MISMATCH,
	billing.InvalidRecord:    billingv1.ExceptionKind_EXCEPTION_KIND_INVALID_RECORD,
	billing.DigestMismatch:   billingv1.ExceptionKind_EXCEPTION_KIND_DIGEST_MISMATCH,
}

// parseMonth reads a month field of a request.
func parseMonth(field, s string) (calendar.Month, error) {
	if s == "" {
		return 0, &fieldError{field, ErrRequired}
	}
	m, err := calendar.Parse(s)
	if err != nil {
		return 0, &fieldError{field, err}
	}
	return m, nil
}

// parseRange reads from_month and to_month, and bounds the range as the
// projection does, so that a range too long fails before any wait.
func parseRange(from, to string) (calendar.Month, calendar.Month, error) {
	f, err := parseMonth("from_month", from)
	if err != nil {
		return 0, 0, err
	}
	t, err := parseMonth("to_month", to)
	if err != nil {
		return 0, 0, err
	}
	if t < f {
		return 0, 0, fmt.Errorf("%w: %s to %s", calendar.ErrRange, f, t)
	}
	if t-f >= billing.MaxRangeMonths {
		return 0, 0, fmt.Errorf("%w: %s to %s", billing.ErrRangeTooLong, f, t)
	}
	return f, t, nil
}

func required(field, s string) error {
	if s == "" {
		return &fieldError{field, ErrRequired}
	}
	return nil
}

func parseView(v billingv1.BillingView) (billing.View, error) {
	view, ok := views[v]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrInvalidView, v)
	}
	return view, nil
}

func adjustmentProto(a *billing.Adjustment, c money.Currency) *billingv1.Adjustment {
	return &billingv1.Adjustment{
		Kind:                  document.LineKinds[a.Kind],
		Vendor:                a.Vendor,
		AccountId:             a.AccountID,
		CounterpartyAccountId: a.CounterpartyAccountID,
		RiId:                  a.RIID,
		Amount:                document.Amount(&a.Amount, c),
		Description:           a.Description,
	}
}

// exceptionProto renders an exception's exact amount with its currency's
// minor-unit digits, as every amount of the API is: it is what the amount
// would be on an invoice. An amount in a code that is no ISO 4217 currency
// (an invalid record) has no minor unit, and is sent exact.
func exceptionProto(e *billing.Exception) *billingv1.Exception {
	m := &billingv1.Money{Amount: e.Amount.Text('f'), Currency: e.Currency}
	if c, err := money.ParseCurrency(e.Currency); err == nil {
		m.Amount = money.Format(&e.Amount, c)
	}
	// An invalid record's month is not known: the projection stops reading
	// a record at its first fault, before the month if need be, and leaves
	// the zero Month (0000-01) there.
	month := e.Month.String()
	if e.Kind == billing.InvalidRecord || !e.Month.Valid() {
		month = ""
	}
	return &billingv1.Exception{
		Kind:      exceptionKinds[e.Kind],
		Vendor:    e.Vendor,
		AccountId: e.AccountID,
		Month:     month,
		Amount:    m,
		Reason:    e.Reason,
		EventId:   e.EventID,
	}
}
