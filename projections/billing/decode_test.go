package billing

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestDecode(t *testing.T) {
	in := usage(rec("AWS", "111", "EC2", "", "2018-03-01T00:00:00Z", "1.25", "USD"))
	in.EventId = "u1"
	data, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Decode("billing.v1.UsageReported", data)
	if err != nil || !proto.Equal(msg, in) {
		t.Fatalf("Decode = %v, %v", msg, err)
	}
	p := New()
	if _, err := p.Apply(1, msg); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"billing.v1.Nope", "google.protobuf.Timestamp", "UsageReported"} {
		if _, err := Decode(typ, data); !errors.Is(err, ErrUnknownEvent) {
			t.Errorf("Decode(%q) error = %v, want ErrUnknownEvent", typ, err)
		}
	}
	if _, err := Decode("billing.v1.UsageReported", []byte{0xff, 0xff}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("garbage: error = %v, want ErrInvalidEvent", err)
	}
}
