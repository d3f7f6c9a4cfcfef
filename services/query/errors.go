package query

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/services/access"
	"github.com/ledger-billing/ledger/services/wire"
)

// Errors of the service itself; the projection's own are in
// projections/billing and projections/calendar.
var (
	// ErrRequired reports an empty field that the RPC needs.
	ErrRequired = errors.New("query: required field is empty")
	// ErrInvalidView reports a view that is not a BILLING_VIEW_* value.
	ErrInvalidView = errors.New("query: not a billing view")
	// ErrNotReached reports a min_position the projections had not passed
	// when the call's deadline (or the service's wait cap) ran out.
	ErrNotReached = errors.New("query: min_position not reached")
	// ErrReplaying reports a call that ran out of time while the projections
	// were still replaying the history.
	ErrReplaying = errors.New("query: projections are replaying the history")
	// ErrTooManyWaiters reports a call with a min_position not yet reached
	// while waitersMax calls already wait for theirs.
	ErrTooManyWaiters = errors.New("query: too many calls waiting for their min_position")
	// ErrInvalidPageSize reports a negative page_size.
	ErrInvalidPageSize = errors.New("query: page_size is negative")
	// ErrInvalidPageToken reports a page_token the service did not give,
	// or gave for another request (a *tokenError says which).
	ErrInvalidPageToken = errors.New("query: not a page token of this request")
	// ErrDraftChanged reports the page_token of a draft, or of a list,
	// that has changed since its first page (a *changedError says where).
	ErrDraftChanged = errors.New("query: the draft changed since the first page")
)

// rule is a row of the error table.
type rule struct {
	err  error
	code codes.Code
	// reason is the ErrorInfo reason: stable, for clients to match on.
	reason wire.Reason
	// field is the request field at fault, unless a *fieldError names
	// another; empty when no field is.
	field string
	// says what is wrong with the field's value.
	says string
	// detail, if set, adds what the error itself knows (from when, which
	// organization).
	detail func(req protoreflect.Message, err error) string
}

// rules is the one table from domain errors to gRPC codes, first match
// wins. Argument errors are INVALID_ARGUMENT whatever the history holds, so
// they are checked before any wait. ErrNotBilled is NOT_FOUND rather than
// FAILED_PRECONDITION: the invoice asked for does not exist and never will
// (that month's charges are on the first invoice), and no change of state
// the client could bring about would make the call succeed.
var rules = []rule{
	{err: ErrRequired, code: codes.InvalidArgument, reason: wire.ReasonRequired, says: "is required"},
	{err: calendar.ErrMalformed, code: codes.InvalidArgument, reason: wire.ReasonMalformedMonth, field: "month",
		says: "is not a month written YYYY-MM"},
	{err: calendar.ErrRange, code: codes.InvalidArgument, reason: wire.ReasonReversedRange, field: "to_month",
		says: "precedes from_month", detail: fieldValue("from_month")},
	{err: billing.ErrRangeTooLong, code: codes.InvalidArgument, reason: wire.ReasonRangeTooLong, field: "to_month",
		says: fmt.Sprintf("is more than %d months after from_month", billing.MaxRangeMonths-1), detail: fieldValue("from_month")},
	{err: ErrInvalidView, code: codes.InvalidArgument, reason: wire.ReasonInvalidView, field: "view",
		says: "is not a billing view: want BILLING_VIEW_BILLING_CYCLE or BILLING_VIEW_VENDOR_CYCLE"},
	{err: billing.ErrInvalidKind, code: codes.InvalidArgument, reason: wire.ReasonInvalidKind, field: "kind",
		says: "is not an adjustment kind: want LINE_KIND_INTER_CUSTOMER_ADJUSTMENT or LINE_KIND_INTRA_ORG_ADJUSTMENT"},
	{err: billing.ErrUnknownBAN, code: codes.NotFound, reason: wire.ReasonUnknownBAN, field: "ban",
		says: "is not the BAN of any organization or cost center"},
	{err: billing.ErrUnknownOrganization, code: codes.NotFound, reason: wire.ReasonUnknownOrganization, field: "org_id",
		says: "is not a registered organization"},
	{err: billing.ErrUnknownCostCenter, code: codes.NotFound, reason: wire.ReasonUnknownCostCenter, field: "cost_center_id",
		says: "is not a cost center of the organization", detail: fieldValue("org_id")},
	{err: billing.ErrNotBilled, code: codes.NotFound, reason: wire.ReasonNotBilled, field: "month",
		says: "precedes the first closed billing cycle, so has no invoice of its own", detail: notBilled},
	{err: billing.ErrNotFinalized, code: codes.FailedPrecondition, reason: wire.ReasonNotFinalized, field: "month",
		says: "has no vendor cycle view yet", detail: availableFrom},
	{err: ErrInvalidPageSize, code: codes.InvalidArgument, reason: wire.ReasonInvalidPageSize, field: "page_size",
		says: fmt.Sprintf("is negative: want 0 for the default (%d) or a size up to %d", wire.PageSizeDefault, wire.PageSizeMax)},
	{err: ErrInvalidPageToken, code: codes.InvalidArgument, reason: wire.ReasonInvalidPageToken, field: "page_token",
		says: "is not a page token of this request; leave it empty for the first page", detail: tokenProblem},
	{err: ErrDraftChanged, code: codes.FailedPrecondition, reason: wire.ReasonDraftChanged, field: "page_token",
		says: "is of a draft that changed since its first page; start again from the first page", detail: changedSince},
	{err: ErrNotReached, code: codes.DeadlineExceeded, reason: wire.ReasonPositionNotReached, field: "min_position",
		says: "was not reached in time", detail: reached},
	{err: ErrTooManyWaiters, code: codes.ResourceExhausted, reason: wire.ReasonTooManyWaiters, field: "min_position",
		says: fmt.Sprintf("is not reached yet, and %d calls already wait for theirs; retry later", waitersMax)},
	{err: ErrReplaying, code: codes.Unavailable, reason: wire.ReasonReplaying,
		says: "the projections are still replaying the history; retry, or ask another replica", detail: reached},
	{err: context.Canceled, code: codes.Canceled, reason: wire.ReasonCanceled, says: "the call was canceled"},
}

// fieldError names the request field an error is about, where the table's
// default does not fit (a malformed from_month rather than month).
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// positionError says where the projections were when a wait ran out.
type positionError struct {
	err       error // ErrNotReached or ErrReplaying
	want, pos uint64
}

func (e *positionError) Error() string {
	return fmt.Sprintf("%v: want %d, at %d", e.err, e.want, e.pos)
}
func (e *positionError) Unwrap() error { return e.err }

// status turns an error of a call on req into the gRPC status the client
// gets. An error outside the table is a bug or an outage: logged, and
// INTERNAL without its text, which may say more than a client should see.
func (s *Service) status(req protoreflect.ProtoMessage, err error) error {
	// A denial is worded by services/access, the same whether its
	// interceptor or this service decided it.
	var denied *access.DeniedError
	if errors.As(err, &denied) {
		return denied.GRPCStatus().Err()
	}
	for i := range rules {
		r := &rules[i]
		if !errors.Is(err, r.err) {
			continue
		}
		field := r.field
		var fe *fieldError
		if errors.As(err, &fe) {
			field = fe.field
		}
		msg, value := r.says, ""
		if field != "" {
			value = valueOf(req.ProtoReflect(), field)
			msg = field + " " + value + " " + r.says
		}
		if r.detail != nil {
			if d := r.detail(req.ProtoReflect(), err); d != "" {
				msg += ": " + d
			}
		}
		st := status.New(r.code, msg)
		info := &errdetails.ErrorInfo{Reason: string(r.reason), Domain: wire.ErrorDomain}
		if field != "" {
			info.Metadata = map[string]string{"field": field, "value": value}
		}
		if withInfo, derr := st.WithDetails(info); derr == nil {
			st = withInfo
		}
		return st.Err()
	}
	s.logger.Error("query: unexpected error", "request", string(req.ProtoReflect().Descriptor().FullName()), "err", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}

// valueMax bounds how much of a field's value a message repeats: a request
// may carry megabytes in a string, and an error message is read by people.
const valueMax = 64

// valueOf renders a request field's value for a message: strings quoted,
// enums by name, numbers as they are.
func valueOf(m protoreflect.Message, field string) string {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil {
		return "?"
	}
	v := m.Get(fd)
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		if len(s) > valueMax {
			cut := valueMax
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			return strconv.Quote(s[:cut]) + "…"
		}
		return strconv.Quote(s)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	}
	return v.String()
}

// fieldValue returns a detail naming another field of the request.
func fieldValue(field string) func(protoreflect.Message, error) string {
	return func(m protoreflect.Message, _ error) string { return field + " is " + valueOf(m, field) }
}

func availableFrom(_ protoreflect.Message, err error) string {
	var nf *billing.NotFinalizedError
	if !errors.As(err, &nf) {
		return ""
	}
	s := fmt.Sprintf("the vendor cycle view of %s is available once VendorCycleFinalized for %s is appended, on schedule from %s",
		nf.Month, nf.Month, nf.AvailableFrom.Format(time.RFC3339))
	if !nf.Closed {
		s += fmt.Sprintf(", and not before the billing cycle of %s closes", nf.Month)
	}
	return s
}

func reached(_ protoreflect.Message, err error) string {
	var pe *positionError
	if !errors.As(err, &pe) {
		return ""
	}
	return fmt.Sprintf("they are at position %d", pe.pos)
}

// notBilled says which month's invoice carries the charges.
func notBilled(_ protoreflect.Message, err error) string {
	var nb *billing.NotBilledError
	if !errors.As(err, &nb) {
		return ""
	}
	return nb.Detail()
}

func tokenProblem(_ protoreflect.Message, err error) string {
	var te *tokenError
	if !errors.As(err, &te) {
		return ""
	}
	return te.why
}

func changedSince(_ protoreflect.Message, err error) string {
	var ce *changedError
	if !errors.As(err, &ce) {
		return ""
	}
	return fmt.Sprintf("the first page reflects position %d, the projections are at %d", ce.first, ce.now)
}
