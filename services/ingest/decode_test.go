package ingest

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/synth"
	"github.com/ledger-billing/ledger/services/wire"
)

const usageSubject = wire.SubjectPrefix + "usage_reported"

// smallUsage is a valid UsageReported of three records.
func smallUsage() *billingv1.UsageReported {
	return synth.New(synth.Config{Seed: 3, Orgs: 1, AccountsPerOrg: 2, Months: 1, RecordsPerMessage: 3}).Usage()
}

// TestEveryUsageStringIsChecked sets each string field of a UsageReported,
// one at a time, to bytes that are not UTF-8, and expects decode to refuse
// the message, as protobuf-go's decoder would: the generated decoder
// decode uses does not check, so validate must. A string field added to
// the message without a check fails here.
func TestEveryUsageStringIsChecked(t *testing.T) {
	if _, _, rej := decode(usageSubject, nil, mustMarshalVT(t, smallUsage())); rej != nil {
		t.Fatalf("the valid message is refused: %v", rej)
	}
	var paths []string
	var walk func(path string, get func(*billingv1.UsageReported) protoreflect.Message, md protoreflect.MessageDescriptor)
	walk = func(path string, get func(*billingv1.UsageReported) protoreflect.Message, md protoreflect.MessageDescriptor) {
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			name := path + string(fd.Name())
			switch {
			case fd.Kind() == protoreflect.StringKind && !fd.IsList():
				paths = append(paths, name)
				msg := smallUsage()
				get(msg).Set(fd, protoreflect.ValueOfString("ok\xffnot"))
				data := mustMarshalVT(t, msg)
				if err := proto.Unmarshal(data, new(billingv1.UsageReported)); err == nil {
					t.Fatalf("%s: protobuf-go accepts the bytes: the test does not test", name)
				}
				if _, _, rej := decode(usageSubject, nil, data); rej == nil {
					t.Errorf("%s holds bytes that are not UTF-8 and decode accepts it", name)
				}
			case fd.Kind() == protoreflect.StringKind:
				t.Errorf("%s is a list of strings: extend this test", name)
			case fd.Message() != nil && fd.IsList():
				walk(name+"[0].", func(m *billingv1.UsageReported) protoreflect.Message {
					return get(m).Get(fd).List().Get(0).Message()
				}, fd.Message())
			case fd.Message() != nil:
				walk(name+".", func(m *billingv1.UsageReported) protoreflect.Message {
					return get(m).Mutable(fd).Message()
				}, fd.Message())
			}
		}
	}
	walk("", func(m *billingv1.UsageReported) protoreflect.Message { return m.ProtoReflect() }, (&billingv1.UsageReported{}).ProtoReflect().Descriptor())
	if len(paths) < 12 {
		t.Errorf("found %d string fields (%v): the walk missed some", len(paths), paths)
	}
}

// mustMarshalVT encodes without protobuf-go's UTF-8 check, as a careless
// publisher's library may.
func mustMarshalVT(t testing.TB, m *billingv1.UsageReported) []byte {
	t.Helper()
	data, err := m.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzDecode holds decode's UsageReported to protobuf-go's decoding: what
// it accepts, protobuf-go accepts and reads as the same message, so a
// stored event always decodes on replay.
func FuzzDecode(f *testing.F) {
	valid, err := proto.Marshal(smallUsage())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{0x0a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, msg, rej := decode(usageSubject, nil, data)
		if rej != nil {
			return
		}
		var std billingv1.UsageReported
		if err := proto.Unmarshal(data, &std); err != nil {
			t.Fatalf("decode accepts %x, which protobuf-go refuses: %v", data, err)
		}
		if !proto.Equal(msg, &std) {
			t.Fatalf("the decoders disagree on %x:\ndecode %v\nprotobuf-go %v", data, msg, &std)
		}
	})
}
