package billing

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
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

// TestEventTypePrefix: the prefix is the catalogue's package, and every
// message of the catalogue, hence every event type, starts with it.
func TestEventTypePrefix(t *testing.T) {
	if EventTypePrefix != "billing.v1." {
		t.Fatalf("EventTypePrefix = %q, want %q", EventTypePrefix, "billing.v1.")
	}
	msgs := billingv1.File_billing_v1_events_proto.Messages()
	for i := range msgs.Len() {
		if name := string(msgs.Get(i).FullName()); !strings.HasPrefix(name, EventTypePrefix) {
			t.Errorf("event type %q does not start with %q", name, EventTypePrefix)
		}
	}
}
