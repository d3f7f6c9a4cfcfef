package money

import "errors"

// ErrSyntax reports an amount that is not a plain decimal: an optional
// minus sign, digits, and optionally a point followed by digits.
var ErrSyntax = errors.New("money: amount is not a decimal")

// ErrTooLong reports an amount with more digits than MaxDigits.
var ErrTooLong = errors.New("money: amount has too many digits")

// ErrCurrency reports a currency that is not a three-letter ISO 4217 code
// of a currency with a minor unit.
var ErrCurrency = errors.New("money: unknown currency")

// ErrNotMinorUnits reports an amount given to Allocate that is not a whole
// number of the currency's minor units.
var ErrNotMinorUnits = errors.New("money: amount is not a whole number of minor units")

// ErrAllocation reports an allocation that cannot be made: a negative
// amount or weight, or an amount larger than the sum of the caps.
var ErrAllocation = errors.New("money: amount cannot be allocated")

// ErrInvariant reports an allocation whose shares do not sum to its amount
// or exceed their caps: a bug in Allocate, never bad input. Callers treat
// it as a broken invariant (billing panics with an *InvariantError), not as
// an allocation that cannot be made.
var ErrInvariant = errors.New("money: allocation invariant broken")
