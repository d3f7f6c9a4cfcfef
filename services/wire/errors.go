package wire

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of every ErrorInfo the query service sends:
// reasons are unique within it.
const ErrorDomain = "billing.v1.BillingService"

// Reason is the stable ErrorInfo reason of a failed query. It is an error
// itself, so that a client matches a failed call with errors.Is after
// FromStatus, without linking the server that decided it.
type Reason string

func (r Reason) Error() string { return ErrorDomain + ": " + string(r) }

// Reasons of the query service's errors. The service maps each of its
// domain errors to one (services/query/errors.go has the table).
const (
	ReasonRequired            Reason = "REQUIRED"
	ReasonMalformedMonth      Reason = "MALFORMED_MONTH"
	ReasonReversedRange       Reason = "REVERSED_RANGE"
	ReasonRangeTooLong        Reason = "RANGE_TOO_LONG"
	ReasonInvalidView         Reason = "INVALID_VIEW"
	ReasonInvalidKind         Reason = "INVALID_KIND"
	ReasonUnknownBAN          Reason = "UNKNOWN_BAN"
	ReasonUnknownOrganization Reason = "UNKNOWN_ORGANIZATION"
	ReasonUnknownCostCenter   Reason = "UNKNOWN_COST_CENTER"
	ReasonNotBilled           Reason = "NOT_BILLED"
	ReasonNotFinalized        Reason = "NOT_FINALIZED"
	ReasonPositionNotReached  Reason = "POSITION_NOT_REACHED"
	ReasonReplaying           Reason = "REPLAYING"
	ReasonTooManyWaiters      Reason = "TOO_MANY_WAITERS"
	ReasonCanceled            Reason = "CANCELED"
	// ReasonInvalidPageSize is a negative page_size; ReasonInvalidPageToken
	// a page_token that is not one the service gave, or that it gave for
	// another request.
	ReasonInvalidPageSize  Reason = "INVALID_PAGE_SIZE"
	ReasonInvalidPageToken Reason = "INVALID_PAGE_TOKEN"
	// ReasonDraftChanged is the page_token of a draft (or of a list) that
	// has changed since its first page: the pages would not add up to one
	// document, so the client starts again from the first page.
	ReasonDraftChanged Reason = "DRAFT_CHANGED"
	// ReasonUnauthenticated and ReasonPermissionDenied are services/access's
	// answers: no valid bearer token, and a token whose role may not do
	// what the call asks (DESIGN.md section 10).
	ReasonUnauthenticated  Reason = "UNAUTHENTICATED"
	ReasonPermissionDenied Reason = "PERMISSION_DENIED"
)

// FromStatus turns an error returned by a BillingService client into one
// that errors.Is matches with the Reason the server gave (ReasonUnknownBAN,
// ReasonNotFinalized, ...), while status.FromError still gives the status.
// Errors without the service's ErrorInfo are returned unchanged.
func FromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != ErrorDomain || info.GetReason() == "" {
			continue
		}
		return &remoteError{status: err, reason: Reason(info.GetReason())}
	}
	return err
}

// remoteError is a status error that also unwraps to its Reason.
type remoteError struct {
	status error // keeps GRPCStatus for status.FromError
	reason Reason
}

func (e *remoteError) Error() string   { return e.status.Error() }
func (e *remoteError) Unwrap() []error { return []error{e.reason, e.status} }

// Page sizes of the query service's paged calls (AIP-158), in lines of a
// document or entries of a list. A page_size of 0 gets PageSizeDefault,
// and one above PageSizeMax gets PageSizeMax: a client that wants a
// document whole asks for PageSizeMax and follows the page tokens.
const (
	PageSizeDefault = 1_000
	PageSizeMax     = 10_000
)
