package hierarchy

import "errors"

// ErrNoProvider reports that no provider is registered for an account at
// the instant asked: its charges are unassigned.
var ErrNoProvider = errors.New("hierarchy: no provider registered for the account")

// ErrUnknownOrganization reports a provider, cost center or workspace of an
// organization that is not registered (yet), or a query for one.
var ErrUnknownOrganization = errors.New("hierarchy: organization not registered")

// ErrUnknownCostCenter reports a cost center that was never created in the
// organization.
var ErrUnknownCostCenter = errors.New("hierarchy: cost center not created")

// ErrInvalid reports a hierarchy change missing a field it needs, naming
// the field.
var ErrInvalid = errors.New("hierarchy: invalid change")
