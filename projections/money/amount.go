package money

import "github.com/cockroachdb/apd/v3"

// Amount is an amount of money in a currency, as the documents carry it.
type Amount struct {
	Value    apd.Decimal
	Currency Currency
}

// String writes the amount with exactly the currency's minor digits and its
// code: "4.00 USD".
func (a *Amount) String() string {
	return Format(&a.Value, a.Currency) + " " + a.Currency.Code()
}
