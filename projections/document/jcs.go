package document

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonicalize rewrites a JSON text in the JSON Canonicalization Scheme
// of RFC 8785: no whitespace, object members sorted by the UTF-16 code
// units of their names, strings with the minimal escapes of ECMAScript's
// JSON.stringify, numbers as ECMAScript writes a double. It is what makes a
// digest of protojson's output stable: protojson promises valid JSON, not
// the same bytes from one version (or language) to the next.
//
// A text with duplicate member names, invalid UTF-8, a number that is not
// a finite double, or anything after the value is refused: RFC 8785 (by
// way of I-JSON, RFC 7493) leaves no canonical form for them.
func Canonicalize(text []byte) ([]byte, error) {
	if !utf8.Valid(text) {
		return nil, errors.New("jcs: the text is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(text))
	if err := canonical(dec, &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("jcs: more than one value")
	}
	return out.Bytes(), nil
}

// canonical writes the next value of dec. It walks tokens rather than
// decoding into maps, so a large document costs its members' names and
// values, not a tree of interfaces, and duplicates are caught as they come.
func canonical(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("jcs: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := canonical(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte(']')
			_, err := dec.Token() // ]
			return err
		}
		return canonicalObject(dec, out)
	case string:
		writeString(out, t)
	case json.Number:
		s, err := number(t)
		if err != nil {
			return err
		}
		out.WriteString(s)
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case nil:
		out.WriteString("null")
	}
	return nil
}

func canonicalObject(dec *json.Decoder, out *bytes.Buffer) error {
	type member struct {
		name  string
		key   []uint16
		value []byte
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("jcs: %w", err)
		}
		name := tok.(string) // the decoder allows nothing else here
		var value bytes.Buffer
		if err := canonical(dec, &value); err != nil {
			return err
		}
		members = append(members, member{name, utf16.Encode([]rune(name)), value.Bytes()})
	}
	if _, err := dec.Token(); err != nil { // }
		return fmt.Errorf("jcs: %w", err)
	}
	slices.SortFunc(members, func(a, b member) int { return slices.Compare(a.key, b.key) })
	out.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			if members[i-1].name == m.name {
				return fmt.Errorf("jcs: member %q appears twice", m.name)
			}
			out.WriteByte(',')
		}
		writeString(out, m.name)
		out.WriteByte(':')
		out.Write(m.value)
	}
	out.WriteByte('}')
	return nil
}

// writeString writes s as JSON.stringify does: the two-character escapes
// where ECMAScript has them, \u00xx (lowercase) for the other control
// characters, and everything else as it is.
func writeString(out *bytes.Buffer, s string) {
	out.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			out.WriteString(`\"`)
		case '\\':
			out.WriteString(`\\`)
		case '\b':
			out.WriteString(`\b`)
		case '\f':
			out.WriteString(`\f`)
		case '\n':
			out.WriteString(`\n`)
		case '\r':
			out.WriteString(`\r`)
		case '\t':
			out.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(out, `\u%04x`, r)
			} else {
				out.WriteRune(r)
			}
		}
	}
	out.WriteByte('"')
}

// number writes a JSON number as ECMAScript's Number.prototype.toString
// writes the double nearest to it (RFC 8785, section 3.2.2.3). Go's
// shortest formatting finds the same digits ECMAScript requires (the
// fewest that read back as the same double); only the layout differs.
func number(n json.Number) (string, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("jcs: number %s is not a finite double", n)
	}
	if f == 0 {
		return "0", nil // -0 too
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	// d.ddddde±x: the digits, and n, the position of the decimal point
	// relative to them (ECMAScript's n: the value is 0.digits × 10^n).
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	k, p := len(digits), x+1
	var s string
	switch {
	case k <= p && p <= 21:
		s = digits + strings.Repeat("0", p-k)
	case 0 < p && p <= 21:
		s = digits[:p] + "." + digits[p:]
	case -6 < p && p <= 0:
		s = "0." + strings.Repeat("0", -p) + digits
	default:
		s = digits[:1]
		if k > 1 {
			s += "." + digits[1:]
		}
		if p-1 >= 0 {
			s += "e+" + strconv.Itoa(p-1)
		} else {
			s += "e-" + strconv.Itoa(1-p)
		}
	}
	return sign + s, nil
}
