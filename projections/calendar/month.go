package calendar

import (
	"fmt"
	"time"
)

// Month is a UTC calendar month, counted from January of year 0: the zero
// value is 0000-01. Months compare with <, and Month+1 is the next month.
type Month int32

// Months outside years 0000 to 9999 cannot be written YYYY-MM.
const (
	minMonth Month = 0
	maxMonth Month = 9999*12 + 11
)

// Of returns the UTC month of t.
func Of(t time.Time) Month {
	t = t.UTC()
	return Month(t.Year()*12 + int(t.Month()) - 1)
}

// New returns the month of year y and month m (1 to 12).
func New(y int, m time.Month) Month {
	return Month(y*12 + int(m) - 1)
}

// Parse reads a month written YYYY-MM: exactly four digits, a hyphen and
// two digits from 01 to 12. Anything else, including surrounding space, is
// ErrMalformed.
func Parse(s string) (Month, error) {
	if len(s) != 7 || s[4] != '-' {
		return 0, fmt.Errorf("%w: %q", ErrMalformed, s)
	}
	y, m := 0, 0
	for i, c := range []byte(s) {
		if i == 4 {
			continue
		}
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q", ErrMalformed, s)
		}
		if i < 4 {
			y = y*10 + int(c-'0')
		} else {
			m = m*10 + int(c-'0')
		}
	}
	if m < 1 || m > 12 {
		return 0, fmt.Errorf("%w: %q", ErrMalformed, s)
	}
	return Month(y*12 + m - 1), nil
}

// Year returns the month's year.
func (m Month) Year() int { return int(m) / 12 }

// Calendar returns the month of the year, January to December.
func (m Month) Calendar() time.Month { return time.Month(int(m)%12 + 1) }

// Start returns the first instant of the month, in UTC.
func (m Month) Start() time.Time {
	return time.Date(m.Year(), m.Calendar(), 1, 0, 0, 0, 0, time.UTC)
}

// End returns the first instant after the month: the start of the next.
func (m Month) End() time.Time { return (m + 1).Start() }

// Valid reports whether the month can be written YYYY-MM.
func (m Month) Valid() bool { return m >= minMonth && m <= maxMonth }

// String writes the month YYYY-MM.
func (m Month) String() string {
	if !m.Valid() {
		return fmt.Sprintf("Month(%d)", int32(m))
	}
	y, mo := m.Year(), int(m)%12+1
	b := [7]byte{
		byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10),
		'-', byte('0' + mo/10), byte('0' + mo%10),
	}
	return string(b[:])
}
