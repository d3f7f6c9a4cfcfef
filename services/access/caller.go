package access

import (
	"context"

	"github.com/ledger-billing/ledger/services/token"
)

// Caller is who makes a call, as its verified token says.
type Caller struct {
	// Subject is the token's sub claim, as the access log names the
	// caller.
	Subject string
	Role    token.Role
	// Orgs are the organizations of an org_admin; empty for other roles.
	Orgs []string
}

// limited reports whether the caller sees only the organizations of Orgs.
func (c *Caller) limited() bool { return c.Role == token.OrgAdmin }

type callerKey struct{}

// NewContext returns ctx carrying the caller.
func NewContext(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller a call was authenticated as; none when
// authentication is off.
func FromContext(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok && c != nil
}

// Organizations returns the organizations the call of ctx is limited to,
// and whether it is limited at all: an org_admin is, to its ledger_orgs;
// the other roles, and every call when authentication is off, are not.
// The query service uses it where the role table cannot decide from the
// request alone: the BAN of an invoice, and ListExceptions without an
// organization.
func Organizations(ctx context.Context) (orgs []string, limited bool) {
	c, ok := FromContext(ctx)
	if !ok || !c.limited() {
		return nil, false
	}
	return c.Orgs, true
}
