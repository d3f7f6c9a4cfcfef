package calendar

import "errors"

// ErrMalformed reports a month that is not written YYYY-MM with a month
// from 01 to 12. The query service maps it to INVALID_ARGUMENT.
var ErrMalformed = errors.New("calendar: malformed month, want YYYY-MM")

// ErrRange reports a range of months whose end precedes its start.
var ErrRange = errors.New("calendar: month range ends before it starts")
