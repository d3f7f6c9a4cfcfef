// Package snapcodec is the binary encoding of the projections' snapshots:
// varints, length-prefixed strings and bytes, exact decimals, and named
// markers between the parts of a state. projections/billing and
// projections/hierarchy encode their own fields with it, each type next to
// its definition; services/snapshot puts the result in a checksummed file
// (docs/architecture.md, "Snapshots").
//
// It is explicit rather than reflective (no gob over unexported fields) so
// that the bytes are a function of the state alone: writing the same
// state twice gives the same bytes, which the tests rely on, and a change
// of a type shows up as a change of its encode method.
//
// Errors are sticky: after the first failure every call is a no-op and Err
// reports it, so that encoders and decoders read as straight lines. A
// Decoder never trusts a length: a count is checked against the bytes that
// remain (when it knows them) and against what a state can hold, and what
// it allocates for a length grows with the bytes actually read, so a
// corrupt file cannot make it allocate gigabytes.
package snapcodec

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/cockroachdb/apd/v3"
)

// ErrCorrupt is the error of a Decoder that met bytes no Encoder writes.
var ErrCorrupt = errors.New("snapcodec: corrupt snapshot")

// Encoder writes the encoding to a buffered writer.
type Encoder struct {
	w   *bufio.Writer
	err error
	buf [binary.MaxVarintLen64]byte
}

// NewEncoder returns an Encoder writing to w (through a bufio.Writer, unless
// w is one). Call Flush at the end.
func NewEncoder(w io.Writer) *Encoder {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 256<<10)
	}
	return &Encoder{w: bw}
}

// Err returns the first error met.
func (e *Encoder) Err() error { return e.err }

// Flush writes what is buffered and returns the first error met.
func (e *Encoder) Flush() error {
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}

func (e *Encoder) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

// Uvarint writes an unsigned integer.
func (e *Encoder) Uvarint(v uint64) { e.write(binary.AppendUvarint(e.buf[:0], v)) }

// Varint writes a signed integer.
func (e *Encoder) Varint(v int64) { e.write(binary.AppendVarint(e.buf[:0], v)) }

// Int32 writes a signed 32-bit integer (a month, an exponent).
func (e *Encoder) Int32(v int32) { e.Varint(int64(v)) }

// Bool writes a boolean as one byte.
func (e *Encoder) Bool(b bool) {
	if b {
		e.Uvarint(1)
	} else {
		e.Uvarint(0)
	}
}

// Len writes the length of a slice or map of n elements.
func (e *Encoder) Len(n int) { e.Uvarint(uint64(n)) }

// NilLen writes the length of a slice, telling nil from empty: documents
// handed to callers keep exactly the shape they had.
func (e *Encoder) NilLen(n int, isNil bool) {
	if isNil {
		e.Uvarint(0)
		return
	}
	e.Uvarint(uint64(n) + 1)
}

// String writes a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

// Bytes writes length-prefixed bytes.
func (e *Encoder) Bytes(b []byte) {
	e.Uvarint(uint64(len(b)))
	e.write(b)
}

// Mark writes the name of the part that follows, which the decoder checks:
// a decoder that lost its place fails there, saying where, rather than
// reading garbage into the rest.
func (e *Encoder) Mark(name string) { e.String(name) }

// Decimal flags.
const (
	decNegative = 1 << 0
	decBig      = 1 << 1 // the coefficient needs more than 64 bits
	decFlagBits = 2
)

// Decimal writes an exact decimal: its form and flags, its exponent and its
// coefficient, so that it reads back with the same digits and exponent (and
// so the same text).
func (e *Encoder) Decimal(d *apd.Decimal) {
	flags := uint64(d.Form) << decFlagBits
	if d.Negative {
		flags |= decNegative
	}
	big := !d.Coeff.IsUint64()
	if big {
		flags |= decBig
	}
	e.Uvarint(flags)
	e.Varint(int64(d.Exponent))
	if big {
		e.Bytes(d.Coeff.Bytes())
	} else {
		e.Uvarint(d.Coeff.Uint64())
	}
}

// Decoder reads the encoding.
//
// It reads through a buffer of its own and decodes varints from it
// directly (not a byte at a time through an io.ByteReader), since a
// snapshot is mostly varints and a start waits for all of them.
type Decoder struct {
	r   io.Reader
	buf []byte // buf[off:] is read and not yet decoded
	off int
	err error
	// remaining is how many bytes may still be decoded: the reader's
	// limit if it told, else unknown (math.MaxInt64).
	remaining int64
}

// MaxLen bounds any count or length: no part of a state holds more than
// this many elements, so a larger one is corruption, whatever remains.
const MaxLen = 1 << 34

// chunk is what a Decoder allocates at most ahead of the bytes it has
// read, for a length it cannot check against the bytes that remain; it is
// also the size of its buffer.
const chunk = 1 << 20

// NewDecoder returns a Decoder reading from r. If r is an *io.LimitedReader
// or has a Len method (bytes.Reader, strings.Reader), lengths are checked
// against the bytes that remain. The Decoder may read ahead of what it
// decodes, up to the end of r.
func NewDecoder(r io.Reader) *Decoder {
	remaining := int64(math.MaxInt64)
	switch lr := r.(type) {
	case *io.LimitedReader:
		remaining = lr.N
	case interface{ Len() int }:
		remaining = int64(lr.Len())
	}
	return &Decoder{r: r, buf: make([]byte, 0, max(64, min(chunk, remaining))), remaining: remaining}
}

// Err returns the first error met.
func (d *Decoder) Err() error { return d.err }

// Fail records an error (the first one counts) wrapping ErrCorrupt.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

// fill reads more into the buffer, keeping what is not decoded yet; it
// reports whether there is anything new.
func (d *Decoder) fill() bool {
	if d.err != nil {
		return false
	}
	if d.off > 0 {
		n := copy(d.buf, d.buf[d.off:])
		d.buf, d.off = d.buf[:n], 0
	}
	n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
	d.buf = d.buf[:len(d.buf)+n]
	if n > 0 {
		return true
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	d.readFailed(err)
	return false
}

func (d *Decoder) readFailed(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		d.Fail("truncated")
		return
	}
	if d.err == nil {
		d.err = err
	}
}

// consume accounts for n bytes decoded.
func (d *Decoder) consume(n int) bool {
	if int64(n) > d.remaining {
		d.Fail("truncated")
		return false
	}
	d.off += n
	d.remaining -= int64(n)
	return true
}

// Uvarint reads an unsigned integer.
func (d *Decoder) Uvarint() uint64 {
	for d.err == nil {
		v, n := binary.Uvarint(d.buf[d.off:])
		switch {
		case n > 0:
			if !d.consume(n) {
				return 0
			}
			return v
		case n < 0:
			d.Fail("varint overflows 64 bits")
			return 0
		}
		if !d.fill() { // n == 0: the buffer ends inside the varint
			return 0
		}
	}
	return 0
}

// Varint reads a signed integer.
func (d *Decoder) Varint() int64 {
	u := d.Uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// Uint32 reads an unsigned integer that must fit 32 bits.
func (d *Decoder) Uint32() uint32 {
	v := d.Uvarint()
	if v > math.MaxUint32 {
		d.Fail("%d does not fit 32 bits", v)
		return 0
	}
	return uint32(v)
}

// Int32 reads a signed integer that must fit 32 bits.
func (d *Decoder) Int32() int32 {
	v := d.Varint()
	if v > math.MaxInt32 || v < math.MinInt32 {
		d.Fail("%d does not fit 32 bits", v)
		return 0
	}
	return int32(v)
}

// Bool reads a boolean.
func (d *Decoder) Bool() bool {
	switch d.Uvarint() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail("not a boolean")
	return false
}

// Len reads a count of elements, each of which takes at least one byte:
// it is at most the bytes that remain.
func (d *Decoder) Len() int {
	n := d.Uvarint()
	if n > MaxLen || int64(n) > d.remaining {
		d.Fail("count %d exceeds what remains", n)
		return 0
	}
	return int(n)
}

// NilLen reads what Encoder.NilLen wrote.
func (d *Decoder) NilLen() (n int, isNil bool) {
	n = d.Len()
	if n == 0 {
		return 0, true
	}
	return n - 1, false
}

// Cap returns the capacity to allocate for n elements read from now: n if
// the bytes that remain are known, else at most a chunk's worth, to grow
// as elements are actually read.
func (d *Decoder) Cap(n int) int {
	if d.remaining == math.MaxInt64 {
		return min(n, chunk)
	}
	return n
}

// Bytes reads length-prefixed bytes into a new slice (nil if empty).
func (d *Decoder) Bytes() []byte {
	n := d.Len()
	if n == 0 || d.err != nil {
		return nil
	}
	return d.read(nil, n)
}

// BytesIn reads length-prefixed bytes into the tail of *arena (allocating a
// new arena of size at least arenaSize when it is full) and returns them
// with their capacity capped at their length, so that appending to them
// copies instead of writing over the next ones. Many small slices read
// this way cost one allocation per arena instead of one each.
func (d *Decoder) BytesIn(arena *[]byte, arenaSize int) []byte {
	n := d.Len()
	if n == 0 || d.err != nil {
		return nil
	}
	if n > arenaSize/4 {
		return d.read(nil, n)
	}
	if cap(*arena)-len(*arena) < n {
		*arena = make([]byte, 0, arenaSize)
	}
	start := len(*arena)
	*arena = d.read(*arena, n)
	return (*arena)[start:len(*arena):len(*arena)]
}

// read appends n bytes to b, growing b by at most a chunk ahead of what
// was read when the bytes that remain are unknown.
func (d *Decoder) read(b []byte, n int) []byte {
	if int64(n) > d.remaining {
		d.Fail("truncated")
		return b
	}
	if d.remaining != math.MaxInt64 {
		b = slices.Grow(b, n)
	}
	for n > 0 && d.err == nil {
		if d.off == len(d.buf) && !d.fill() {
			return b
		}
		k := min(n, len(d.buf)-d.off)
		b = append(b, d.buf[d.off:d.off+k]...)
		d.consume(k)
		n -= k
	}
	return b
}

// String reads a length-prefixed string.
func (d *Decoder) String() string {
	n := d.Len()
	if n == 0 || d.err != nil {
		return ""
	}
	if n <= len(d.buf)-d.off && int64(n) <= d.remaining {
		s := string(d.buf[d.off : d.off+n]) // one copy, no garbage
		d.consume(n)
		return s
	}
	return string(d.read(make([]byte, 0, d.Cap(n)), n))
}

// Mark checks that the part named name follows.
func (d *Decoder) Mark(name string) {
	if got := d.String(); d.err == nil && got != name {
		d.Fail("expected part %q, found %q", name, truncate(got))
	}
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// Decimal reads what Encoder.Decimal wrote into x.
func (d *Decoder) Decimal(x *apd.Decimal) {
	flags := d.Uvarint()
	exp := d.Int32()
	form := apd.Form(flags >> decFlagBits)
	if form > apd.NaN {
		d.Fail("decimal form %d", form)
		return
	}
	x.Form, x.Negative, x.Exponent = form, flags&decNegative != 0, exp
	if flags&decBig != 0 {
		b := d.Bytes()
		x.Coeff.SetBytes(b)
	} else {
		x.Coeff.SetUint64(d.Uvarint())
	}
}
