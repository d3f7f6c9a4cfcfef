package pages

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// TestCodecMatchesProtobufGo fills every message of billing.v1, each of
// its fields set (lists of two, strings with multi-byte characters,
// negative and large numbers, nested messages), and checks that the
// generated code writes the bytes protobuf-go writes and that the codec
// reads back a message proto.Equal to it.
func TestCodecMatchesProtobufGo(t *testing.T) {
	codec := vtCodec{fallback: encoding.GetCodecV2("proto")}
	n := 0
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().ParentFile().Package() != "billing.v1" {
			return true
		}
		n++
		msg := mt.New()
		fill(msg, 0)
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg.Interface())
		if err != nil {
			t.Fatalf("%s: %v", mt.Descriptor().FullName(), err)
		}
		got, err := codec.Marshal(msg.Interface())
		if err != nil {
			t.Fatalf("%s: codec: %v", mt.Descriptor().FullName(), err)
		}
		if !bytes.Equal(got.Materialize(), want) {
			t.Errorf("%s: the generated encoding differs from protobuf-go's", mt.Descriptor().FullName())
		}
		back := mt.New().Interface()
		if _, ok := back.(vtUnmarshaler); !ok {
			t.Errorf("%s has no generated decoder: regenerate (buf generate)", mt.Descriptor().FullName())
		}
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(want)}, back); err != nil {
			t.Fatalf("%s: codec: %v", mt.Descriptor().FullName(), err)
		}
		if !proto.Equal(back, msg.Interface()) {
			t.Errorf("%s: decoded\n%v\nwant\n%v", mt.Descriptor().FullName(), back, msg.Interface())
		}
		return true
	})
	if n < 30 {
		t.Fatalf("%d messages of billing.v1 registered, want every one (30 or more)", n)
	}
}

// TestCodecStringsOwnTheirBytes checks that a decoded answer does not
// change when the buffer gRPC handed to Unmarshal is reused.
func TestCodecStringsOwnTheirBytes(t *testing.T) {
	codec := vtCodec{fallback: encoding.GetCodecV2("proto")}
	in := &billingv1.Money{Amount: "12.34", Currency: "EUR"}
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out billingv1.Money
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &out); err != nil {
		t.Fatal(err)
	}
	clear(data)
	if !proto.Equal(&out, in) {
		t.Fatalf("after gRPC's buffer was cleared the answer reads %v, want %v", &out, in)
	}
}

// FuzzCodecDecode feeds arbitrary bytes, as a hostile server could send,
// to the generated decoder: it must not panic, and what both it and
// protobuf-go accept must decode to equal messages.
func FuzzCodecDecode(f *testing.F) {
	full := &billingv1.GetInvoiceResponse{}
	fill(full.ProtoReflect(), 0)
	seed, err := proto.Marshal(full)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var vt, std billingv1.GetInvoiceResponse
		vtErr := vt.UnmarshalVTUnsafe(bytes.Clone(data))
		stdErr := proto.Unmarshal(data, &std)
		if vtErr == nil && stdErr == nil && !proto.Equal(&vt, &std) {
			t.Fatalf("the decoders disagree on %x:\nvtprotobuf %v\nprotobuf-go %v", data, &vt, &std)
		}
	})
}

// fill sets every field of m, down to depth 3.
func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && i > 0 && fields.Get(i-1).ContainingOneof() == fd.ContainingOneof() {
			continue // one member of a oneof
		}
		switch {
		case fd.IsMap():
			continue // billing.v1 has none
		case fd.IsList():
			if fd.Kind() == protoreflect.MessageKind && depth >= 3 {
				continue
			}
			l := m.Mutable(fd).List()
			for j := range 2 {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					fill(e.Message(), depth+1)
					l.Append(e)
				} else {
					l.Append(scalar(fd, i+j))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth < 3 {
				fill(m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, scalar(fd, i))
		}
	}
}

// scalar is a value of fd's kind that is not its zero, varied by i.
func scalar(fd protoreflect.FieldDescriptor, i int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("%s-%d-€ü", fd.Name(), i))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(i), 0, 0xff})
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(vals.Len() - 1).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(-int32(i) - 1)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-1 << 40 * int64(i+1))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(i) + 1<<30)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(i) + 1<<62)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(i) + 0.5)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(i) + 0.5)
	}
	panic(fmt.Sprintf("no value for %s", fd.Kind()))
}
