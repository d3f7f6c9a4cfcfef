package access

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledger-billing/ledger/services/token"
	"github.com/ledger-billing/ledger/services/wire"
)

var (
	// ErrUnauthenticated is matched by every *UnauthenticatedError: no
	// bearer token, or one that does not verify.
	ErrUnauthenticated = errors.New("access: unauthenticated")
	// ErrDenied is matched by every *DeniedError: a verified caller whose
	// role may not do what the call asks.
	ErrDenied = errors.New("access: permission denied")
	// ErrJWKS reports a key set that cannot be used: unreadable, too
	// large, not a JWK Set, holding a private or symmetric key, or without
	// any key ledgerd can verify with.
	ErrJWKS = errors.New("access: unusable JWKS")
)

// UnauthenticatedError says why a call has no identity, in words fit for
// the caller: which check the token failed, never the token.
type UnauthenticatedError struct {
	// Reason is the sentence the caller gets.
	Reason string
	// Err is the cause, for the access log.
	Err error
}

func (e *UnauthenticatedError) Error() string { return e.Reason }

// Unwrap gives ErrUnauthenticated and the cause.
func (e *UnauthenticatedError) Unwrap() []error { return []error{ErrUnauthenticated, e.Err} }

// GRPCStatus is UNAUTHENTICATED with the reason, and an ErrorInfo that
// wire.FromStatus recognizes.
func (e *UnauthenticatedError) GRPCStatus() *status.Status {
	return withInfo(codes.Unauthenticated, e.Reason, wire.ReasonUnauthenticated)
}

// unauthenticated returns an *UnauthenticatedError.
func unauthenticated(reason string, err error) *UnauthenticatedError {
	return &UnauthenticatedError{Reason: reason, Err: err}
}

// Kind is the kind of resource a denial is about, as its message names it.
type Kind string

// Kinds of resource.
const (
	KindMethod       Kind = "method"
	KindOrganization Kind = "organization"
	KindBAN          Kind = "BAN"
	KindLineage      Kind = "lineage"
	KindPath         Kind = "path"
)

// DeniedError is a verified caller's call that its role does not permit.
// Its message names the role and the kind of resource, and the method or
// path, which the caller named itself; never an organization or BAN, whose
// existence a denial must not reveal.
type DeniedError struct {
	Role token.Role
	Kind Kind
	// Name is the method or path, for KindMethod and KindPath.
	Name string
}

func (e *DeniedError) Error() string {
	switch e.Kind {
	case KindOrganization:
		return fmt.Sprintf("role %s may read only the organizations of its token's ledger_orgs", e.Role)
	case KindBAN:
		return fmt.Sprintf("role %s may read only the BANs of the organizations of its token's ledger_orgs", e.Role)
	case KindLineage:
		return fmt.Sprintf("role %s may not ask for lineage (include_lineage): operator and auditor may", e.Role)
	case KindPath:
		return fmt.Sprintf("role %s may not read %s", e.Role, e.Name)
	}
	return fmt.Sprintf("role %s may not call %s", e.Role, strings.TrimPrefix(e.Name, "/"))
}

// Is matches ErrDenied.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// GRPCStatus is PERMISSION_DENIED with the message, and an ErrorInfo that
// wire.FromStatus recognizes.
func (e *DeniedError) GRPCStatus() *status.Status {
	return withInfo(codes.PermissionDenied, e.Error(), wire.ReasonPermissionDenied)
}

func withInfo(code codes.Code, msg string, reason wire.Reason) *status.Status {
	st := status.New(code, msg)
	if detailed, err := st.WithDetails(&errdetails.ErrorInfo{Reason: string(reason), Domain: wire.ErrorDomain}); err == nil {
		return detailed
	}
	return st
}

// Denied returns the denial of the call of ctx for a kind of resource: the
// query service's answer when an org_admin names a BAN that is not one of
// its organizations', or that does not exist.
func Denied(ctx context.Context, kind Kind) error {
	var role token.Role
	if c, ok := FromContext(ctx); ok {
		role = c.Role
	}
	return &DeniedError{Role: role, Kind: kind}
}

// httpStatus is the HTTP status of an access error: 401 or 403.
func httpStatus(err error) int {
	if errors.Is(err, ErrUnauthenticated) {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}
