package document

import (
	"testing"
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
