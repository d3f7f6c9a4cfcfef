package snapcodec_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/snapcodec"
)

func TestRoundTrip(t *testing.T) {
	decimals := []string{"0", "-0.00", "12.345", "-1E+5", "123456789012345678901234567890.123456789", "Infinity", "NaN"}
	var b bytes.Buffer
	e := snapcodec.NewEncoder(&b)
	e.Mark("start")
	e.Uvarint(1<<64 - 1)
	e.Varint(-1 << 63)
	e.Int32(-7)
	e.Bool(true)
	e.String("héllo")
	e.Bytes(nil)
	e.NilLen(0, true)
	e.NilLen(0, false)
	for _, s := range decimals {
		d, _, err := apd.NewFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		e.Decimal(d)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}

	// Through a reader that tells its length, and one that does not.
	for _, r := range []io.Reader{bytes.NewReader(b.Bytes()), io.MultiReader(bytes.NewReader(b.Bytes()))} {
		d := snapcodec.NewDecoder(r)
		d.Mark("start")
		if d.Uvarint() != 1<<64-1 || d.Varint() != -1<<63 || d.Int32() != -7 || !d.Bool() || d.String() != "héllo" || d.Bytes() != nil {
			t.Fatalf("values differ: %v", d.Err())
		}
		if _, isNil := d.NilLen(); !isNil {
			t.Fatal("nil length read as not nil")
		}
		if n, isNil := d.NilLen(); isNil || n != 0 {
			t.Fatal("empty length read as nil")
		}
		for _, s := range decimals {
			var x apd.Decimal
			d.Decimal(&x)
			if x.String() != s {
				t.Fatalf("decimal %s read back as %s", s, x.String())
			}
		}
		if d.Err() != nil {
			t.Fatal(d.Err())
		}
		if d.Uvarint(); !errors.Is(d.Err(), snapcodec.ErrCorrupt) {
			t.Fatalf("reading past the end: %v, want ErrCorrupt", d.Err())
		}
	}
}

// TestLengthsAreBounded: a damaged length is an error, not an allocation
// of what it claims, whether or not the decoder knows what remains.
func TestLengthsAreBounded(t *testing.T) {
	var b bytes.Buffer
	e := snapcodec.NewEncoder(&b)
	e.Uvarint(1 << 40) // a string's length, then three bytes
	e.Uvarint(1)
	e.Uvarint(2)
	e.Uvarint(3)
	_ = e.Flush()
	for _, r := range []io.Reader{bytes.NewReader(b.Bytes()), io.MultiReader(bytes.NewReader(b.Bytes()))} {
		d := snapcodec.NewDecoder(r)
		if s := d.String(); s != "" || !errors.Is(d.Err(), snapcodec.ErrCorrupt) {
			t.Fatalf("a string of 1 TiB in 9 bytes: %q, %v", s, d.Err())
		}
	}
	d := snapcodec.NewDecoder(bytes.NewReader(b.Bytes()))
	if n := d.Len(); n != 0 || !errors.Is(d.Err(), snapcodec.ErrCorrupt) {
		t.Fatalf("a count beyond what remains: %d, %v", n, d.Err())
	}
	d = snapcodec.NewDecoder(bytes.NewReader([]byte{5, 'm', 'a', 'r', 'k', 'x'}))
	if d.Mark("other"); !errors.Is(d.Err(), snapcodec.ErrCorrupt) {
		t.Fatalf("another part: %v", d.Err())
	}
}
