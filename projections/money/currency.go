package money

import "fmt"

// Currency is an ISO 4217 alphabetic code of a currency that has a minor
// unit. The zero value is no currency; use ParseCurrency.
type Currency struct {
	code   string
	digits int32
}

// minorDigits lists the currencies whose minor unit is not the hundredth,
// from the ISO 4217 list (amendments up to 2024). Codes not listed and not
// in noMinorUnit have two digits.
var minorDigits = map[string]int32{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// noMinorUnit lists the ISO 4217 codes whose minor unit is "N.A.": metals,
// fund units and testing codes, which nobody is invoiced in.
var noMinorUnit = map[string]bool{
	"XAG": true, "XAU": true, "XBA": true, "XBB": true, "XBC": true, "XBD": true,
	"XDR": true, "XPD": true, "XPT": true, "XSU": true, "XTS": true, "XUA": true,
	"XXX": true,
}

// ParseCurrency returns the currency of an ISO 4217 alphabetic code: three
// upper-case ASCII letters, of a currency with a minor unit.
func ParseCurrency(code string) (Currency, error) {
	if len(code) != 3 {
		return Currency{}, fmt.Errorf("%w: %q", ErrCurrency, code)
	}
	for i := range 3 {
		if code[i] < 'A' || code[i] > 'Z' {
			return Currency{}, fmt.Errorf("%w: %q", ErrCurrency, code)
		}
	}
	if noMinorUnit[code] {
		return Currency{}, fmt.Errorf("%w: %q has no minor unit", ErrCurrency, code)
	}
	d, ok := minorDigits[code]
	if !ok {
		d = 2
	}
	return Currency{code: code, digits: d}, nil
}

// Code returns the ISO 4217 code ("USD"); empty for the zero Currency.
func (c Currency) Code() string { return c.code }

// Digits returns the number of digits of the minor unit: 2 for USD, 0 for
// JPY, 3 for KWD.
func (c Currency) Digits() int32 { return c.digits }

// String returns the code.
func (c Currency) String() string { return c.code }
