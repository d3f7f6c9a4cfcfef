package ingest

import (
	"bytes"
	"slices"
	"testing"
	"unicode"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/synth"
	"github.com/ledger-billing/ledger/services/wire"
)

// TestEncodeIsDeterministic holds encode to protobuf-go's deterministic
// encoding, which every stored event and event id so far was made of: no
// input message may have a map (the generated encoder does not sort them),
// and synthetic messages of every kind encode to the same bytes.
func TestEncodeIsDeterministic(t *testing.T) {
	for _, k := range kindByToken {
		if path := mapIn(k.New().ProtoReflect().Descriptor(), nil); path != "" {
			t.Errorf("%s has a map field (%s): encode must sort it as protobuf-go's Deterministic does", k.Token, path)
		}
	}
	gen := synth.New(synth.Config{Seed: 7, Orgs: 2, AccountsPerOrg: 3, Months: 2, RecordsPerMessage: 50})
	msgs := gen.Hierarchy()
	msgs = append(msgs, gen.Usage(), gen.Usage())
	msgs = append(msgs, gen.Extras(gen.Months()[0])...)
	seen := map[string]bool{}
	for _, m := range msgs {
		subject, err := wire.Subject(m)
		if err != nil {
			t.Fatal(err)
		}
		seen[subject] = true
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encode differs from protobuf-go's deterministic encoding", subject)
		}
	}
	// Unknown fields, which protobuf-go keeps and encodes: in a
	// Timestamp (which the generated Timestamp encoder would drop), in a
	// record, in a cost, and in the message itself.
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7)
	field := func(num protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	seconds := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1_700_000_000)
	recordID := field(1, []byte("r1"))
	for name, data := range map[string][]byte{
		"a Timestamp": field(2, slices.Concat(recordID, field(7, slices.Concat(seconds, unknown)))),
		"a record":    field(2, slices.Concat(recordID, field(7, seconds), unknown)),
		"a cost":      field(2, slices.Concat(recordID, field(11, slices.Concat(field(1, []byte("1.5")), unknown)))),
		"the message": slices.Concat(field(1, []byte("u1")), unknown),
	} {
		var u billingv1.UsageReported
		if err := proto.Unmarshal(data, &u); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&u)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := encode(&u); err != nil || !bytes.Equal(got, want) {
			t.Errorf("unknown fields in %s: encode = %x, %v; protobuf-go's deterministic encoding is %x", name, got, err, want)
		}
	}
	if len(seen) < 6 {
		t.Errorf("synthetic history covers %d input subjects, want 6 or more: %v", len(seen), seen)
	}
}

// mapIn returns the path to a map field in md or the messages it holds,
// or "" if there is none.
func mapIn(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) string {
	if seen == nil {
		seen = map[protoreflect.FullName]bool{}
	}
	if seen[md.FullName()] {
		return ""
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.IsMap() {
			return string(f.FullName())
		}
		if f.Message() != nil {
			if p := mapIn(f.Message(), seen); p != "" {
				return p
			}
		}
	}
	return ""
}

// TestPrintable holds printable's ASCII path to the definition it
// shortcuts: no control characters and nothing that is not UTF-8.
func TestPrintable(t *testing.T) {
	reference := func(s string) bool {
		for _, r := range s {
			if unicode.IsControl(r) || r == unicode.ReplacementChar {
				return false
			}
		}
		return true
	}
	cases := []string{"", "acct-42", "Amazon EC2", "naïve", "tab\there", "del\x7f", "c1\u0085", "bad\xff", "\ufffd", "日本"}
	for b := range 256 {
		cases = append(cases, "x"+string([]byte{byte(b)})+"y", string(rune(b)))
	}
	for _, s := range cases {
		if got, want := printable(s), reference(s); got != want {
			t.Errorf("printable(%q) = %v, want %v", s, got, want)
		}
	}
}
