package money

import (
	"fmt"

	"github.com/cockroachdb/apd/v3"
)

// MaxDigits bounds the digits of a parsed amount, so that a hostile event
// cannot make every later sum slow, and exact sums stay far from apd's
// exponent limits.
const MaxDigits = 40

// exact is the one context for sums and differences: no precision limit, so
// nothing is ever rounded, and Inexact or Rounded trap, so that a rounding
// that should not happen is an error rather than a silent change.
var exact = apd.Context{
	Precision:   0,
	MaxExponent: apd.MaxExponent,
	MinExponent: apd.MinExponent,
	Traps:       apd.DefaultTraps | apd.Inexact | apd.Rounded,
}

// integral divides whole numbers (allocation) and quantizes (rounding);
// those operations need a precision, and 200 digits is far above what
// MaxDigits-bounded amounts can reach.
var integral = apd.Context{
	Precision:   200,
	MaxExponent: apd.MaxExponent,
	MinExponent: apd.MinExponent,
	Traps:       apd.DefaultTraps,
	Rounding:    apd.RoundHalfUp,
}

// ParseDecimal sets d to the amount written in s and returns an error if s
// is not a plain decimal: an optional '-', one or more digits, and
// optionally '.' and one or more digits. No '+', exponent, space, NaN or
// Infinity; at most MaxDigits digits. Minus zero is zero.
//
// Amounts of up to 18 digits, the common case, are set without allocating.
func ParseDecimal(d *apd.Decimal, s string) error {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	var coeff uint64
	digits, frac := 0, 0
	seenPoint := false
	intDigits := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if seenPoint {
				frac++
			} else {
				intDigits++
			}
			if digits <= 18 {
				coeff = coeff*10 + uint64(c-'0')
			}
		case c == '.' && !seenPoint:
			if intDigits == 0 {
				return fmt.Errorf("%w: %q", ErrSyntax, s)
			}
			seenPoint = true
		default:
			return fmt.Errorf("%w: %q", ErrSyntax, s)
		}
	}
	if intDigits == 0 || (seenPoint && frac == 0) {
		return fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	if digits > MaxDigits {
		return fmt.Errorf("%w: %q has %d, at most %d", ErrTooLong, s, digits, MaxDigits)
	}
	if digits <= 18 {
		d.SetFinite(int64(coeff), int32(-frac))
	} else if _, _, err := d.SetString(s); err != nil {
		// The syntax is checked above, so apd accepting less is a bug.
		panic(fmt.Sprintf("money: apd rejected checked decimal %q: %v", s, err))
	}
	d.Negative = neg && !d.IsZero()
	return nil
}

// Add sets d = x + y exactly. The operands are amounts from ParseDecimal or
// sums of them, which cannot overflow the exact context: a failure is a
// broken invariant and panics.
func Add(d, x, y *apd.Decimal) {
	if _, err := exact.Add(d, x, y); err != nil {
		panic(fmt.Sprintf("money: exact %s + %s: %v", x, y, err))
	}
}

// Sub sets d = x - y exactly; see Add.
func Sub(d, x, y *apd.Decimal) {
	if _, err := exact.Sub(d, x, y); err != nil {
		panic(fmt.Sprintf("money: exact %s - %s: %v", x, y, err))
	}
}

// Round sets d to x rounded half away from zero to the minor unit of c
// (docs/architecture.md, "Rounding"): 0.005 USD is 0.01, -0.005 USD is -0.01,
// 0.5 JPY is 1. The result always has exactly c's minor-unit digits, and is
// never minus zero.
func Round(d, x *apd.Decimal, c Currency) {
	if _, err := integral.Quantize(d, x, -c.Digits()); err != nil {
		panic(fmt.Sprintf("money: round %s to %d digits: %v", x, c.Digits(), err))
	}
	if d.IsZero() {
		d.Negative = false
	}
}

// Format writes x with exactly the minor-unit digits of c ("4.00", "1200"),
// rounding half away from zero if it has more. It is how amounts cross the
// wire.
func Format(x *apd.Decimal, c Currency) string {
	var d apd.Decimal
	Round(&d, x, c)
	return d.Text('f')
}
