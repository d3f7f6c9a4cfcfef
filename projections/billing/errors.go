package billing

import (
	"errors"
	"fmt"
	"time"

	"github.com/ledger-billing/ledger/projections/calendar"
)

// Errors of the queries; the query service maps them to gRPC codes
// (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION).
var (
	// ErrUnknownBAN reports a BAN that no organization or cost center names.
	ErrUnknownBAN = errors.New("billing: unknown BAN")
	// ErrUnknownOrganization reports an organization never registered.
	ErrUnknownOrganization = errors.New("billing: unknown organization")
	// ErrUnknownCostCenter reports a cost center never created in the
	// organization.
	ErrUnknownCostCenter = errors.New("billing: unknown cost center")
	// ErrNotBilled reports a month before the first closed billing cycle
	// (errors.As gives the *NotBilledError):
	// it has no invoice of its own; its charges are on the first one.
	ErrNotBilled = errors.New("billing: month precedes the first closed billing cycle")
	// ErrNotFinalized reports a vendor view asked for before its vendor
	// cycle is finalized; errors.As gives the *NotFinalizedError.
	ErrNotFinalized = errors.New("billing: vendor cycle not finalized")
	// ErrRangeTooLong reports a range of more than MaxRangeMonths months.
	ErrRangeTooLong = errors.New("billing: month range too long")
	// ErrInvalidKind reports an adjustment kind that is not one of the two
	// adjustment line kinds.
	ErrInvalidKind = errors.New("billing: not an adjustment kind")
)

// Errors of Apply, CanClose and CanFinalize. An event that Apply refuses
// changes nothing but the projection's position.
var (
	// ErrStalePosition reports an event at or before the position already
	// applied: a redelivery, ignored.
	ErrStalePosition = errors.New("billing: position already applied")
	// ErrDuplicateEvent reports an event_id already applied.
	ErrDuplicateEvent = errors.New("billing: event_id already applied")
	// ErrInvalidEvent reports an event missing a field it needs or with a
	// malformed one; the message names the field.
	ErrInvalidEvent = errors.New("billing: invalid event")
	// ErrUnknownEvent reports a message that is not in the catalogue.
	ErrUnknownEvent = errors.New("billing: unknown event type")
	// ErrAlreadyClosed reports a second close of a billing cycle.
	ErrAlreadyClosed = errors.New("billing: billing cycle already closed")
	// ErrOutOfOrder reports a close that skips a month: cycles close in
	// month order.
	ErrOutOfOrder = errors.New("billing: billing cycle closed out of order")
	// ErrNotClosed reports a finalization of a month whose billing cycle is
	// not closed: finalizing M needs C_M.
	ErrNotClosed = errors.New("billing: billing cycle not closed")
	// ErrAlreadyFinalized reports a second finalization of a vendor cycle.
	ErrAlreadyFinalized = errors.New("billing: vendor cycle already finalized")
)

// ErrSnapshotVersion reports a snapshot written by another version of the
// encoding (ReadSnapshot); a damaged one is snapcodec.ErrCorrupt.
var ErrSnapshotVersion = errors.New("billing: snapshot of another encoding version")

// NotFinalizedError says from when the vendor view of a month is available:
// the cycle clock finalizes month M at 00:00 UTC on the 10th of M+1
// (docs/architecture.md, "Cycles and the clock"), and never before its
// billing cycle is closed.
type NotFinalizedError struct {
	Month calendar.Month
	// Closed reports whether the billing cycle of Month is closed.
	Closed bool
	// AvailableFrom is when the cycle clock will finalize Month.
	AvailableFrom time.Time
}

func (e *NotFinalizedError) Error() string {
	s := fmt.Sprintf("billing: vendor cycle of %s is not finalized: its vendor view is available once VendorCycleFinalized for %s is appended, on schedule from %s",
		e.Month, e.Month, e.AvailableFrom.Format(time.RFC3339))
	if !e.Closed {
		s += fmt.Sprintf(", after the billing cycle of %s closes", e.Month)
	}
	return s
}

// Is makes errors.Is(err, ErrNotFinalized) true.
func (e *NotFinalizedError) Is(target error) bool { return target == ErrNotFinalized }

// NotBilledError says which invoice carries the charges of a month before
// the first closed billing cycle: that of the first close.
type NotBilledError struct {
	Month, FirstClose calendar.Month
}

func (e *NotBilledError) Error() string {
	return fmt.Sprintf("%v: %s", ErrNotBilled, e.Detail())
}

// Detail is what the error adds to ErrNotBilled, as a clause.
func (e *NotBilledError) Detail() string {
	return fmt.Sprintf("%s is before %s; its charges are on the invoice of %s", e.Month, e.FirstClose, e.FirstClose)
}

// Is makes errors.Is(err, ErrNotBilled) true.
func (e *NotBilledError) Is(target error) bool { return target == ErrNotBilled }

func notFinalized(m calendar.Month, closed bool) error {
	return &NotFinalizedError{Month: m, Closed: closed, AvailableFrom: (m + 1).Start().AddDate(0, 0, 9)}
}

// InvariantError is the value Apply and the queries panic with when an
// invariant of the billing rules is broken: an allocation that does not sum
// to its source, a document that does not foot, the intra-organization
// adjustments of an organization-month that do not sum to zero. It is
// always a bug, never bad input (bad input is an error, and an invalid
// usage record an exception), so nothing sensible can go on: the runner
// recovers it, stops applying and reports the event, rather than issue an
// invoice that is wrong.
type InvariantError struct {
	// Invariant names the rule that broke, for instance "document foots".
	Invariant string
	// Detail says where, with the figures at fault.
	Detail string
}

func (e *InvariantError) Error() string {
	return "billing: invariant broken: " + e.Invariant + ": " + e.Detail
}

// The invariants the fold asserts, as InvariantError.Invariant names them.
const (
	invariantAllocation = "allocation sums to its source"
	invariantBalance    = "intra-organization adjustments sum to zero"
	invariantFoots      = "document foots"
	invariantLineBAN    = "every line's BAN is one the hierarchy names"
	invariantOrgState   = "every attribution's organization is registered"
	invariantChargeLog  = "charge logs decode"
)

// broken panics with an *InvariantError.
func broken(invariant, format string, args ...any) {
	panic(&InvariantError{Invariant: invariant, Detail: fmt.Sprintf(format, args...)})
}
