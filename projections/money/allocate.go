package money

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/apd/v3"
)

// Allocate spreads amount over len(weights) shares in proportion to the
// weights, in whole minor units of c, by the rule of the month's bill
// (docs/architecture.md, "The month's bill"): every share is first the floor
// of its exact proportion; the units left over go one each to the shares with
// the largest fractional remainders, ties to the smaller index (callers order
// shares by account id, so the tie goes to the smaller account id). If caps
// is not nil, no share exceeds its cap: shares that would are set to their
// cap, and what they could not take is spread over the others by the same
// rule, until it all fits.
//
// amount and caps must be whole numbers of minor units, amount and weights
// not negative, and amount at most the sum of the caps (of shares with a
// positive weight). The shares sum to amount exactly; a share with weight
// zero is zero. Allocate checks both before it returns: an error wrapping
// ErrInvariant means its own arithmetic went wrong, whatever the input.
func Allocate(amount *apd.Decimal, weights, caps []apd.Decimal, c Currency) ([]apd.Decimal, error) {
	if caps != nil && len(caps) != len(weights) {
		return nil, fmt.Errorf("%w: %d weights but %d caps", ErrAllocation, len(weights), len(caps))
	}
	var remaining apd.Decimal
	if err := toUnits(&remaining, amount, c); err != nil {
		return nil, fmt.Errorf("amount: %w", err)
	}
	if remaining.Sign() < 0 {
		return nil, fmt.Errorf("%w: negative amount %s", ErrAllocation, amount)
	}
	n := len(weights)
	shares := make([]apd.Decimal, n) // in minor units until the end
	var capUnits []apd.Decimal
	if caps != nil {
		capUnits = make([]apd.Decimal, n)
		for i := range caps {
			if err := toUnits(&capUnits[i], &caps[i], c); err != nil {
				return nil, fmt.Errorf("cap %d: %w", i, err)
			}
		}
	}
	active := make([]int, 0, n)
	for i := range weights {
		if weights[i].Sign() < 0 {
			return nil, fmt.Errorf("%w: negative weight %s", ErrAllocation, &weights[i])
		}
		if weights[i].Sign() > 0 && (capUnits == nil || capUnits[i].Sign() > 0) {
			active = append(active, i)
		}
	}

	floors := make([]apd.Decimal, n)
	rems := make([]apd.Decimal, n)
	var total, num, spread, left apd.Decimal
	for remaining.Sign() > 0 {
		if len(active) == 0 {
			return nil, fmt.Errorf("%w: %s left over exceeds the caps", ErrAllocation, amount)
		}
		total.SetInt64(0)
		for _, i := range active {
			Add(&total, &total, &weights[i])
		}
		spread.SetInt64(0)
		for _, i := range active {
			mustExact(exact.Mul(&num, &remaining, &weights[i]))
			mustExact(integral.QuoInteger(&floors[i], &num, &total))
			// The remainder num - floor*total orders the fractional parts:
			// they all share the denominator total.
			mustExact(exact.Mul(&rems[i], &floors[i], &total))
			Sub(&rems[i], &num, &rems[i])
			Add(&spread, &spread, &floors[i])
		}
		Sub(&left, &remaining, &spread)
		leftover, err := left.Int64()
		if err != nil || leftover < 0 || leftover > int64(len(active)) {
			// Each floor is less than one unit short of its exact share.
			return nil, fmt.Errorf("%w: %s units left over %d shares", ErrInvariant, &left, len(active))
		}
		order := slices.Clone(active)
		slices.SortStableFunc(order, func(a, b int) int {
			return rems[b].Cmp(&rems[a]) // largest first; stable keeps smaller index first
		})
		one := apd.New(1, 0)
		for _, i := range order[:leftover] {
			Add(&floors[i], &floors[i], one)
		}

		overflow := false
		for _, i := range active {
			if capUnits != nil && floors[i].Cmp(&capUnits[i]) > 0 {
				overflow = true
				break
			}
		}
		if !overflow {
			for _, i := range active {
				shares[i].Set(&floors[i])
			}
			remaining.SetInt64(0)
			break
		}
		// Cap every share that overflowed, and spread the rest again over
		// the shares that did not.
		rest := active[:0:0]
		for _, i := range active {
			if capUnits != nil && floors[i].Cmp(&capUnits[i]) > 0 {
				shares[i].Set(&capUnits[i])
				Sub(&remaining, &remaining, &capUnits[i])
				continue
			}
			rest = append(rest, i)
		}
		active = rest
	}
	for i := range shares {
		shares[i].Exponent -= c.Digits()
		if shares[i].IsZero() {
			shares[i].SetFinite(0, -c.Digits())
		}
	}
	if err := checkAllocation(amount, shares, caps); err != nil {
		return nil, err
	}
	return shares, nil
}

// checkAllocation returns an error wrapping ErrInvariant unless the shares
// sum to amount exactly and none exceeds its cap: the promise of Allocate,
// which a bill relies on to balance. It costs a sum, next to the
// divisions that made the shares.
func checkAllocation(amount *apd.Decimal, shares, caps []apd.Decimal) error {
	var sum apd.Decimal
	for i := range shares {
		Add(&sum, &sum, &shares[i])
		if caps != nil && shares[i].Sign() > 0 && shares[i].Cmp(&caps[i]) > 0 {
			return fmt.Errorf("%w: share %d is %s, above its cap %s", ErrInvariant, i, &shares[i], &caps[i])
		}
	}
	if sum.Cmp(amount) != 0 {
		return fmt.Errorf("%w: shares sum to %s, not %s", ErrInvariant, &sum, amount)
	}
	return nil
}

// toUnits sets d to x counted in minor units of c, or fails if x is not a
// whole number of them.
func toUnits(d, x *apd.Decimal, c Currency) error {
	var scaled apd.Decimal
	scaled.Set(x)
	scaled.Exponent += c.Digits()
	cond, err := integral.Quantize(d, &scaled, 0)
	if err != nil || cond.Inexact() {
		return fmt.Errorf("%w: %s %s", ErrNotMinorUnits, x, c.Code())
	}
	return nil
}

func mustExact(cond apd.Condition, err error) {
	if err != nil {
		panic(fmt.Sprintf("money: allocation arithmetic: %v (%s)", err, cond))
	}
}
