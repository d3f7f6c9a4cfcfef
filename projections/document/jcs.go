package document

import (
	"bytes"
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
//
// It scans the bytes itself: encoding/json's token reader took two thirds
// of a digest's time and a million allocations for an invoice of 1,000
// lines. FuzzCanonicalizeMatchesReference holds it to a canonicalizer built
// on that reader.
func Canonicalize(text []byte) ([]byte, error) {
	if !utf8.Valid(text) {
		return nil, errors.New("jcs: the text is not valid UTF-8")
	}
	p := &jcsParser{text: text}
	out, err := p.value(make([]byte, 0, len(text)), 0)
	if err != nil {
		return nil, err
	}
	if p.skipSpace(); p.i < len(p.text) {
		return nil, fmt.Errorf("jcs: more than one value, or something else, at byte %d", p.i)
	}
	return out, nil
}

// jcsDepthMax bounds the arrays and objects inside one another, as
// encoding/json does: a text is a stranger's, and each level is a call.
const jcsDepthMax = 10000

// jcsParser reads one JSON value from text at i.
type jcsParser struct {
	text []byte
	i    int
}

func (p *jcsParser) fail(what string) error {
	if p.i >= len(p.text) {
		return fmt.Errorf("jcs: %s: unexpected end of the text", what)
	}
	return fmt.Errorf("jcs: %s: unexpected %q at byte %d", what, p.text[p.i], p.i)
}

func (p *jcsParser) skipSpace() {
	for p.i < len(p.text) {
		switch p.text[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value appends the canonical form of the next value to out.
func (p *jcsParser) value(out []byte, depth int) ([]byte, error) {
	p.skipSpace()
	if p.i >= len(p.text) {
		return nil, p.fail("a value")
	}
	switch c := p.text[p.i]; {
	case (c == '{' || c == '[') && depth >= jcsDepthMax:
		return nil, fmt.Errorf("jcs: more than %d arrays and objects inside one another", jcsDepthMax)
	case c == '{':
		return p.object(out, depth)
	case c == '[':
		return p.array(out, depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return appendString(out, s), nil
	case c == '-' || ('0' <= c && c <= '9'):
		n, err := p.number()
		if err != nil {
			return nil, err
		}
		return append(out, n...), nil
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(p.text[p.i:], []byte(lit)) {
			p.i += len(lit)
			return append(out, lit...), nil
		}
	}
	return nil, p.fail("a value")
}

func (p *jcsParser) array(out []byte, depth int) ([]byte, error) {
	p.i++ // [
	out = append(out, '[')
	p.skipSpace()
	if p.i < len(p.text) && p.text[p.i] == ']' {
		p.i++
		return append(out, ']'), nil
	}
	for n := 0; ; n++ {
		if n > 0 {
			out = append(out, ',')
		}
		var err error
		if out, err = p.value(out, depth+1); err != nil {
			return nil, err
		}
		more, err := p.separator(']', "an array")
		if err != nil {
			return nil, err
		}
		if !more {
			return append(out, ']'), nil
		}
	}
}

// separator reads what follows an element or a member: a comma, and it
// reports more, or closing.
func (p *jcsParser) separator(closing byte, what string) (more bool, err error) {
	p.skipSpace()
	if p.i < len(p.text) && (p.text[p.i] == ',' || p.text[p.i] == closing) {
		p.i++
		return p.text[p.i-1] == ',', nil
	}
	return false, p.fail(what)
}

// object appends the object's members to out as they come, then rewrites
// them from there in the order of their names.
func (p *jcsParser) object(out []byte, depth int) ([]byte, error) {
	p.i++ // {
	type member struct {
		name     string
		from, to int // the canonical value in out
	}
	var members []member
	start := len(out)
	p.skipSpace()
	if p.i < len(p.text) && p.text[p.i] == '}' {
		p.i++
		return append(out, '{', '}'), nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.text) || p.text[p.i] != '"' {
			return nil, p.fail("an object member's name")
		}
		name, err := p.string()
		if err != nil {
			return nil, err
		}
		if p.skipSpace(); p.i >= len(p.text) || p.text[p.i] != ':' {
			return nil, p.fail("an object member")
		}
		p.i++
		from := len(out)
		if out, err = p.value(out, depth+1); err != nil {
			return nil, err
		}
		members = append(members, member{name, from, len(out)})
		more, err := p.separator('}', "an object")
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	slices.SortStableFunc(members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	values := slices.Clone(out[start:])
	out = append(out[:start], '{')
	for i, m := range members {
		if i > 0 {
			if members[i-1].name == m.name {
				return nil, fmt.Errorf("jcs: member %q appears twice", m.name)
			}
			out = append(out, ',')
		}
		out = appendString(out, m.name)
		out = append(out, ':')
		out = append(out, values[m.from-start:m.to-start]...)
	}
	return append(out, '}'), nil
}

// compareUTF16 orders names by their UTF-16 code units (RFC 8785, section
// 3.2.3), which is byte order while both are ASCII, as protojson's names
// are.
func compareUTF16(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] >= utf8.RuneSelf || b[i] >= utf8.RuneSelf {
			return slices.Compare(utf16.Encode([]rune(a[i:])), utf16.Encode([]rune(b[i:])))
		}
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

// string reads a JSON string at i. Its escapes are undone as encoding/json
// undoes them: a \u escape of half a surrogate pair alone is U+FFFD.
func (p *jcsParser) string() (string, error) {
	p.i++ // "
	start := p.i
	for p.i < len(p.text) {
		switch c := p.text[p.i]; {
		case c == '"':
			s := string(p.text[start:p.i])
			p.i++
			return s, nil
		case c == '\\':
			return p.escapedString(start)
		case c < 0x20:
			return "", p.fail("a string")
		default:
			p.i++
		}
	}
	return "", p.fail("a string")
}

// escapedString reads the rest of a string from start, where it has an
// escape at i.
func (p *jcsParser) escapedString(start int) (string, error) {
	var b strings.Builder
	b.Write(p.text[start:p.i])
	for p.i < len(p.text) {
		c := p.text[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", p.fail("a string")
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		p.i++ // \
		if p.i >= len(p.text) {
			return "", p.fail("an escape")
		}
		e := p.text[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("a \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A pair is two escapes; half of one is U+FFFD.
				if p.i+1 < len(p.text) && p.text[p.i] == '\\' && p.text[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					if r2, ok := p.hex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b.WriteRune(dec)
							continue
						}
					}
					p.i = save
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default:
			p.i--
			return "", p.fail("an escape")
		}
	}
	return "", p.fail("a string")
}

// hex4 reads four hex digits at i.
func (p *jcsParser) hex4() (rune, bool) {
	if p.i+4 > len(p.text) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.text[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// number reads a JSON number at i (RFC 8259's grammar) and returns it in
// ECMAScript's layout.
func (p *jcsParser) number() (string, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.text) && '0' <= p.text[p.i] && p.text[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.text[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.text) && p.text[p.i] == '0':
		p.i++
	case digits() == 0:
		return "", p.fail("a number")
	}
	if p.i < len(p.text) && p.text[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return "", p.fail("a number")
		}
	}
	if p.i < len(p.text) && (p.text[p.i] == 'e' || p.text[p.i] == 'E') {
		p.i++
		if p.i < len(p.text) && (p.text[p.i] == '+' || p.text[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return "", p.fail("a number")
		}
	}
	return number(string(p.text[start:p.i]))
}

// appendString appends s as JSON.stringify writes it: the two-character
// escapes where ECMAScript has them, \u00xx (lowercase) for the other
// control characters, and everything else as it is.
func appendString(out []byte, s string) []byte {
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			out = append(out, '\\', '"')
		case '\\':
			out = append(out, '\\', '\\')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			if c < 0x20 {
				out = fmt.Appendf(out, `\u%04x`, c)
			} else {
				out = append(out, c)
			}
		}
	}
	return append(out, '"')
}

// number writes a JSON number as ECMAScript's Number.prototype.toString
// writes the double nearest to it (RFC 8785, section 3.2.2.3). Go's
// shortest formatting finds the same digits ECMAScript requires (the
// fewest that read back as the same double); only the layout differs.
func number(n string) (string, error) {
	f, err := strconv.ParseFloat(n, 64)
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
