// Package money holds exact amounts of money: the decimal parser used for
// every amount that arrives in an event, the ISO 4217 minor units of
// currencies, the one rounding rule of the ledger and the allocation of an
// amount by largest remainder.
//
// It sits at the bottom of the projections: the billing fold parses each
// usage cost once with ParseDecimal, keeps exact sums with Add, rounds a line
// detail with Round, half away from zero to the currency's minor unit
// (docs/architecture.md, "Rounding"), and spreads intra-organization
// adjustments with Allocate (docs/architecture.md, "The month's bill").
// Amounts are apd.Decimal values; arithmetic goes through one exact context,
// so a sum never loses a digit, and rounding happens only in the functions of
// this package that say how.
package money
