package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Subjects and streams of DESIGN.md section 6.
const (
	SubjectPrefix = "billing.in."
	DLQPrefix     = "billing.dlq."
	OutPrefix     = "billing.out."

	StreamIn  = "BILLING_IN"
	StreamDLQ = "BILLING_DLQ"
	StreamOut = "BILLING_OUT"

	// InvoiceIssuedPrefix is followed by the BAN.
	InvoiceIssuedPrefix = OutPrefix + "invoice_issued."
)

// kind is one entry of the event catalogue: a message type, the subject
// token it arrives on, and how its store stream is named.
type kind struct {
	token    string // billing.in.<token>
	category string // stream <category>-<event_id>, or <category>-<month> for cycles
	newMsg   func() proto.Message
	byMonth  bool
}

var kinds = []kind{
	{"organization_registered", "org", func() proto.Message { return &billingv1.OrganizationRegistered{} }, false},
	{"cost_center_created", "org", func() proto.Message { return &billingv1.CostCenterCreated{} }, false},
	{"workspace_created", "org", func() proto.Message { return &billingv1.WorkspaceCreated{} }, false},
	{"provider_registered", "org", func() proto.Message { return &billingv1.ProviderRegistered{} }, false},
	{"usage_reported", "usage", func() proto.Message { return &billingv1.UsageReported{} }, false},
	{"reserved_instance_purchased", "ri", func() proto.Message { return &billingv1.ReservedInstancePurchased{} }, false},
	{"reserved_instance_benefit_reported", "ribenefit", func() proto.Message { return &billingv1.ReservedInstanceBenefitReported{} }, false},
	{"vendor_reconciliation_completed", "reconciliation", func() proto.Message { return &billingv1.VendorReconciliationCompleted{} }, false},
	{"billing_cycle_closed", "billingcycle", func() proto.Message { return &billingv1.BillingCycleClosed{} }, true},
	{"vendor_cycle_finalized", "vendorcycle", func() proto.Message { return &billingv1.VendorCycleFinalized{} }, true},
}

var (
	kindByToken = map[string]*kind{}
	kindByName  = map[protoreflect.FullName]*kind{}
)

func init() {
	for i := range kinds {
		k := &kinds[i]
		kindByToken[k.token] = k
		kindByName[k.newMsg().ProtoReflect().Descriptor().FullName()] = k
	}
}

// Subject returns the subject a message of this type is published on.
func Subject(msg proto.Message) (string, error) {
	k, ok := kindByName[msg.ProtoReflect().Descriptor().FullName()]
	if !ok {
		return "", fmt.Errorf("ingest: %s is not a billing.v1 input message", msg.ProtoReflect().Descriptor().FullName())
	}
	return SubjectPrefix + k.token, nil
}

// NewMessage returns an empty message of the event type name
// ("billing.v1.UsageReported"), for decoding stored events.
func NewMessage(eventType string) (proto.Message, bool) {
	k, ok := kindByName[protoreflect.FullName(eventType)]
	if !ok {
		return nil, false
	}
	return k.newMsg(), true
}

// Identity is where and as what an accepted message is stored.
type Identity struct {
	Stream  string    // one stream per message, appended with no_stream
	EventID uuid.UUID // the store's event id
	Type    string    // the protobuf full name
	Data    []byte    // deterministic protobuf encoding
}

// namespace is the UUIDv5 namespace of Ledger's store event ids. Changing
// it would change every id and break idempotency across versions: never.
var namespace = uuid.MustParse("3f1f4f7c-6a0b-5d1e-9c1a-4c6c2b8e0a51")

// identify derives a message's stream and event id (DESIGN.md section 5):
// the id is a UUIDv5 of the type, the message's event_id and a SHA-256 of
// its deterministic encoding, so a redelivery, in JSON or binary, is the
// same event, and another message reusing the event_id is not.
func identify(k *kind, msg proto.Message, eventID, month string) (Identity, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return Identity{}, fmt.Errorf("ingest: encode: %w", err)
	}
	typ := string(msg.ProtoReflect().Descriptor().FullName())
	sum := sha256.Sum256(data)
	id := uuid.NewSHA1(namespace, []byte(typ+"\x00"+eventID+"\x00"+hex.EncodeToString(sum[:])))
	key := eventID
	if k.byMonth {
		key = month
	}
	return Identity{Stream: k.category + "-" + key, EventID: id, Type: typ, Data: data}, nil
}

// dlqSubject maps billing.in.<rest> to billing.dlq.<rest>.
func dlqSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok || rest == "" {
		rest = "unknown"
	}
	return DLQPrefix + rest
}

// printable reports whether s has no control characters, which have no
// place in ids and would make logs and stream names unreadable.
func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}
