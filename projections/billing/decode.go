package billing

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// EventTypePrefix is the prefix of the event type of every event of the
// catalogue ("billing.v1."): the event type is the message's full name, so
// the prefix is the catalogue's protobuf package and a dot. It is derived
// from the generated descriptor rather than written out, so that the
// runner's $all filter and Decode cannot drift from events.proto; it is a
// variable only because a descriptor is not a constant.
var EventTypePrefix = string(billingv1.File_billing_v1_events_proto.Package()) + "."

// Decode turns a stored event into the message Apply takes: its event type is
// the message's full name and its data the protobuf binary
// (docs/architecture.md, "Events and their streams"). Types outside the
// catalogue's package are ErrUnknownEvent.
func Decode(eventType string, data []byte) (proto.Message, error) {
	if !strings.HasPrefix(eventType, EventTypePrefix) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, eventType)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(eventType))
	if err != nil || mt.Descriptor().ParentFile() != billingv1.File_billing_v1_events_proto {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, eventType)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(data, msg); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEvent, eventType, err)
	}
	return msg, nil
}
