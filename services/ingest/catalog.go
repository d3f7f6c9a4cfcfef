package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// kind is one entry of the event catalogue: an input message type of the
// wire contract and how its store stream is named.
type kind struct {
	*wire.Input
	category string // stream <category>-<event_id>, or <category>-<month> for cycles
}

// categories names each input's store streams (docs/architecture.md,
// "Events and their streams"). The store's names are ingestion's business,
// not the wire's: no publisher sees them.
var categories = map[string]string{
	"organization_registered":            "org",
	"cost_center_created":                "org",
	"workspace_created":                  "org",
	"provider_registered":                "org",
	"usage_reported":                     "usage",
	"reserved_instance_purchased":        "ri",
	"reserved_instance_benefit_reported": "ribenefit",
	"vendor_reconciliation_completed":    "reconciliation",
	"billing_cycle_closed":               "billingcycle",
	"vendor_cycle_finalized":             "vendorcycle",
}

var kindByToken = map[string]*kind{}

func init() {
	for i := range wire.Inputs {
		in := &wire.Inputs[i]
		category, ok := categories[in.Token]
		if !ok {
			panic("ingest: no store category for input " + in.Token)
		}
		kindByToken[in.Token] = &kind{Input: in, category: category}
	}
}

// kindOf returns the catalogue entry of a subject.
func kindOf(subject string) (*kind, bool) {
	in, ok := wire.InputOf(subject)
	if !ok {
		return nil, false
	}
	return kindByToken[in.Token], true
}

// Identity is where and as what an accepted message is stored.
type Identity struct {
	Key     string    // the message's event_id, its idempotency key
	Stream  string    // one stream per message, appended with no_stream
	EventID uuid.UUID // the store's event id
	Type    string    // the protobuf full name
	Data    []byte    // deterministic protobuf encoding
}

// namespace is the UUIDv5 namespace of Ledger's store event ids. Changing
// it would change every id and break idempotency across versions: never.
var namespace = uuid.MustParse("3f1f4f7c-6a0b-5d1e-9c1a-4c6c2b8e0a51")

// identify derives a message's stream and event id (docs/architecture.md,
// "Events and their streams"):
// the id is a UUIDv5 of the type, the message's event_id and a SHA-256 of
// its deterministic encoding, so a redelivery, in JSON or binary, is the
// same event, and another message reusing the event_id is not.
func identify(k *kind, msg proto.Message, month string) (Identity, error) {
	eventID, err := billing.EventID(msg)
	if err != nil {
		return Identity{}, fmt.Errorf("ingest: %w", err)
	}
	data, err := encode(msg)
	if err != nil {
		return Identity{}, fmt.Errorf("ingest: encode: %w", err)
	}
	typ := string(msg.ProtoReflect().Descriptor().FullName())
	sum := sha256.Sum256(data)
	id := uuid.NewSHA1(namespace, []byte(typ+"\x00"+eventID+"\x00"+hex.EncodeToString(sum[:])))
	key := eventID
	if k.Cycle {
		key = month
	}
	return Identity{Key: eventID, Stream: k.category + "-" + key, EventID: id, Type: typ, Data: data}, nil
}

// encode returns a message's deterministic encoding: what is stored and
// hashed into its event id, so its bytes must never change. For a
// UsageReported, nearly every message, the code vtprotobuf generates
// writes them in a third of protobuf-go's time (go test -bench
// IngestCPU): fields in number order and unknown fields last, as
// protobuf-go does, and no map, the one thing Deterministic orders
// (TestEncodeIsDeterministic fails the day a message gets one). Its
// encoder of a Timestamp, though, drops the Timestamp's unknown fields,
// which protobuf-go keeps and so older ledgerd hashed: a message with any
// is encoded by protobuf-go, as are the other, rarer messages.
func encode(msg proto.Message) ([]byte, error) {
	if u, ok := msg.(*billingv1.UsageReported); ok && !unknownInTimestamps(u) {
		return u.MarshalVT()
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(msg)
}

// unknownInTimestamps reports whether a record's Timestamp holds unknown
// fields.
func unknownInTimestamps(u *billingv1.UsageReported) bool {
	for _, r := range u.Records {
		for _, ts := range [...]*timestamppb.Timestamp{r.ChargePeriodStart, r.ChargePeriodEnd} {
			if ts != nil && len(ts.ProtoReflect().GetUnknown()) > 0 {
				return true
			}
		}
	}
	return false
}

// printable reports whether s has no control characters, which have no
// place in ids and would make logs and stream names unreadable.
func printable(s string) bool {
	// Most ids and names are ASCII: checked byte by byte, they cost a
	// fraction of decoding each rune (validate runs on every record).
	ascii := true
	for i := 0; i < len(s); i++ {
		if b := s[i]; b >= utf8.RuneSelf {
			ascii = false
			break
		} else if b < 0x20 || b == 0x7f {
			return false
		}
	}
	if ascii {
		return true
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}
