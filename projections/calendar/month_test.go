package calendar

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Month
		err  error
	}{
		{"2018-01", New(2018, time.January), nil},
		{"2017-12", New(2017, time.December), nil},
		{"0000-01", 0, nil},
		{"9999-12", maxMonth, nil},
		{"2018-00", 0, ErrMalformed},
		{"2018-13", 0, ErrMalformed},
		{"2018-1", 0, ErrMalformed},
		{"18-01", 0, ErrMalformed},
		{"2018/01", 0, ErrMalformed},
		{" 2018-01", 0, ErrMalformed},
		{"2018-01 ", 0, ErrMalformed},
		{"２018-01", 0, ErrMalformed},
		{"", 0, ErrMalformed},
		{"+018-01", 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Fatalf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if err == nil && got.String() != tt.in {
				t.Fatalf("Parse(%q).String() = %q", tt.in, got.String())
			}
		})
	}
}

func TestOfAndBounds(t *testing.T) {
	// 2018-01-31T23:30:00-01:00 is already February in UTC.
	zone := time.FixedZone("minus1", -3600)
	got := Of(time.Date(2018, time.January, 31, 23, 30, 0, 0, zone))
	if got.String() != "2018-02" {
		t.Fatalf("Of = %v, want 2018-02", got)
	}
	m := New(2017, time.December)
	if !m.Start().Equal(time.Date(2017, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("Start = %v", m.Start())
	}
	if !m.End().Equal(time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("End = %v", m.End())
	}
	if (m + 1).String() != "2018-01" {
		t.Fatalf("next of 2017-12 = %v", m+1)
	}
}
