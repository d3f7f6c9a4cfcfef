package document

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// The examples of RFC 8785 and the edge cases of ECMAScript's number
// layout: a digest an auditor recomputes elsewhere must agree byte for byte.
func TestCanonicalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// RFC 8785, section 3.2.2.
		{`{
		  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
		  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
		  "literals": [null, true, false]
		}`, `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		// RFC 8785, section 3.2.3: names sorted by UTF-16 code units, so
		// U+1F600 (a surrogate pair, D83D DE00) sorts before U+FB33.
		{`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			`{"\r":"Carriage Return","1":"One","` + "\u0080" + `":"Control","` + "\u00f6" + `":"Latin Small Letter O With Diaeresis","` + "\u20ac" + `":"Euro Sign","` + "\U0001F600" + `":"Emoji: Grinning Face","` + "\ufb33" + `":"Hebrew Letter Dalet With Dagesh"}`},
		// RFC 8785, appendix B.
		{`[0, -0, 1e21, 1e20, 123456789012345680000, 1e-6, 1e-7, -1.5e-7, 9007199254740992, 0.1, 5e-324, 1.7976931348623157e308]`,
			`[0,0,1e+21,100000000000000000000,123456789012345680000,0.000001,1e-7,-1.5e-7,9007199254740992,0.1,5e-324,1.7976931348623157e+308]`},
		{` {"b": {"d": 1, "c": [ ]}, "a": "x"} `, `{"a":"x","b":{"c":[],"d":1}}`},
	} {
		got, err := Canonicalize([]byte(c.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Canonicalize(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `[1e400]`, `{"a":1} 2`, "\"\xff\"", `{"a":`} {
		if got, err := Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%q) = %s, want an error", bad, got)
		}
	}
}

// TestCanonicalizeDepth: as deep as encoding/json reads, and no deeper.
func TestCanonicalizeDepth(t *testing.T) {
	for _, n := range []int{jcsDepthMax, jcsDepthMax + 1} {
		text := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		_, err := Canonicalize(text)
		if valid := json.Valid(text); (err == nil) != valid {
			t.Errorf("%d arrays deep: Canonicalize error %v, encoding/json valid %v", n, err, valid)
		}
	}
}

func FuzzCanonicalize(f *testing.F) {
	f.Add([]byte(`{"b":[1,2.5,"x"],"a":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		once, err := Canonicalize(in)
		if err != nil {
			return
		}
		// Canonical text is its own canonical form.
		twice, err := Canonicalize(once)
		if err != nil || string(twice) != string(once) {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, once, twice, err)
		}
	})
}

// FuzzCanonicalizeMatchesReference holds Canonicalize to the reference on
// any valid JSON text: both refuse it, or both give the same bytes. (On a
// text that is not one JSON value the reference may stop early and keep
// what it read; Canonicalize refuses it, as its documentation says.)
func FuzzCanonicalizeMatchesReference(f *testing.F) {
	for _, seed := range []string{
		`{"b":[1,2.5,"x"],"a":null}`, `{"a":1,"a":2}`, `[1e400, -0, 0.1e-3]`, `"\ud83d\ude00\ud800x\u00e9"`,
		`{"\u20ac":1,"\ud83d\ude00":2,"\ufb33":3,"1":4}`, ` [ { } , [ ] , "" ] `, `{"a":{"c":[true,false],"b":"\t\u0001"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			if got, err := Canonicalize(in); err == nil {
				t.Fatalf("Canonicalize(%q) = %q, of a text that is not JSON", in, got)
			}
			return
		}
		got, err := Canonicalize(in)
		want, refErr := canonicalizeReference(in)
		if (err == nil) != (refErr == nil) || string(got) != string(want) {
			t.Fatalf("Canonicalize(%q) = %q, %v; the reference gives %q, %v", in, got, err, want, refErr)
		}
	})
}

// canonicalizeReference is Canonicalize as it was first written, on
// encoding/json's token reader: slow, and plainly right, which makes it
// the oracle FuzzCanonicalizeMatchesReference holds Canonicalize to.
func canonicalizeReference(text []byte) ([]byte, error) {
	if !utf8.Valid(text) {
		return nil, errors.New("jcs: the text is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(text))
	if err := referenceValue(dec, &out); err != nil {
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
func referenceValue(dec *json.Decoder, out *bytes.Buffer) error {
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
				if err := referenceValue(dec, out); err != nil {
					return err
				}
			}
			out.WriteByte(']')
			_, err := dec.Token() // ]
			return err
		}
		return referenceObject(dec, out)
	case string:
		out.Write(appendString(nil, t))
	case json.Number:
		s, err := number(string(t))
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

func referenceObject(dec *json.Decoder, out *bytes.Buffer) error {
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
		if err := referenceValue(dec, &value); err != nil {
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
		out.Write(appendString(nil, m.name))
		out.WriteByte(':')
		out.Write(m.value)
	}
	out.WriteByte('}')
	return nil
}
