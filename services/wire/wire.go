// Package wire is Ledger's contract with everything outside the process:
// the NATS subjects, streams and consumer, the dead-letter headers and their
// codes, the query service's error reasons and page sizes, and the cycle
// messages. Both sides of each wire (ingest and the clock inside ledgerd;
// ledgerctl and any metering service outside) use these names, so each is
// written once.
//
// It imports only the protos and the calendar, never the server: a client
// that links it links nothing of ingestion, the billing fold or the store.
// docs/architecture.md, "Ingestion and dead letters", says how the names are
// used.
package wire

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Subject prefixes: input, dead letters and announcements.
const (
	SubjectPrefix = "billing.in."
	DLQPrefix     = "billing.dlq."
	OutPrefix     = "billing.out."

	// InvoiceIssuedPrefix is followed by the BAN (see InvoiceIssuedSubject).
	InvoiceIssuedPrefix = OutPrefix + "invoice_issued."
)

// JetStream streams, created by ledgerd where absent, and the durable
// consumer through which ledgerd ingests. ledgerctl reads the consumer's
// acknowledgement floor to know when ledgerd has taken what it published.
const (
	StreamIn  = "BILLING_IN"
	StreamDLQ = "BILLING_DLQ"
	StreamOut = "BILLING_OUT"

	Consumer = "ledger-ingest"
)

// Headers of a dead letter: the reason for people, the code for machines,
// and the subject the message came in on.
const (
	HeaderError           = "Billing-Error"
	HeaderErrorCode       = "Billing-Error-Code"
	HeaderOriginalSubject = "Billing-Original-Subject"
	// HeaderPayloadTruncated carries the original size, in bytes, of a
	// dead letter whose payload was too large to republish whole.
	HeaderPayloadTruncated = "Billing-Payload-Truncated"
)

// Codes of the Billing-Error-Code header: stable, for machines to match on.
const (
	CodeUnknownSubject = "unknown_subject"
	CodeUndecodable    = "undecodable"
	CodeMissingField   = "missing_field"
	CodeInvalidField   = "invalid_field"
	CodeTooManyRecords = "too_many_records"
	CodeConflict       = "event_id_conflict"
	CodeCycleOrder     = "cycle_out_of_order"
	CodeCycleNotClosed = "cycle_not_closed"
	// CodeCycleNotEnded refuses a close of a month that has not ended by
	// ledgerd's clock, or a finalization before the FinalizeDay after it.
	CodeCycleNotEnded = "CYCLE_NOT_ENDED"
)

// Codes lists every Billing-Error-Code, so that metrics start at zero for
// each.
var Codes = []string{
	CodeUnknownSubject, CodeUndecodable, CodeMissingField, CodeInvalidField,
	CodeTooManyRecords, CodeConflict, CodeCycleOrder, CodeCycleNotClosed, CodeCycleNotEnded,
}

// Input is one message type that ledgerd takes on billing.in.<Token>.
type Input struct {
	Token string // the subject's last token, the message name in snake case
	New   func() proto.Message
	// Cycle marks the cycle messages, which close or finalize a month.
	Cycle bool
}

// Inputs is the catalogue of input messages, in the order events.proto
// lists them.
var Inputs = []Input{
	{"organization_registered", func() proto.Message { return &billingv1.OrganizationRegistered{} }, false},
	{"cost_center_created", func() proto.Message { return &billingv1.CostCenterCreated{} }, false},
	{"workspace_created", func() proto.Message { return &billingv1.WorkspaceCreated{} }, false},
	{"provider_registered", func() proto.Message { return &billingv1.ProviderRegistered{} }, false},
	{"usage_reported", func() proto.Message { return &billingv1.UsageReported{} }, false},
	{"reserved_instance_purchased", func() proto.Message { return &billingv1.ReservedInstancePurchased{} }, false},
	{"reserved_instance_benefit_reported", func() proto.Message { return &billingv1.ReservedInstanceBenefitReported{} }, false},
	{"vendor_reconciliation_completed", func() proto.Message { return &billingv1.VendorReconciliationCompleted{} }, false},
	{"billing_cycle_closed", func() proto.Message { return &billingv1.BillingCycleClosed{} }, true},
	{"vendor_cycle_finalized", func() proto.Message { return &billingv1.VendorCycleFinalized{} }, true},
}

var (
	inputByToken = map[string]*Input{}
	inputByName  = map[protoreflect.FullName]*Input{}
)

func init() {
	for i := range Inputs {
		in := &Inputs[i]
		inputByToken[in.Token] = in
		inputByName[in.New().ProtoReflect().Descriptor().FullName()] = in
	}
}

// InputOf returns the input message type of a subject.
func InputOf(subject string) (*Input, bool) {
	token, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok {
		return nil, false
	}
	in, ok := inputByToken[token]
	return in, ok
}

// InputFor returns the input message type of a message.
func InputFor(msg proto.Message) (*Input, bool) {
	in, ok := inputByName[msg.ProtoReflect().Descriptor().FullName()]
	return in, ok
}

// Subject returns the subject a message of this type is published on.
func Subject(msg proto.Message) (string, error) {
	in, ok := InputFor(msg)
	if !ok {
		return "", fmt.Errorf("wire: %s is not a billing.v1 input message", msg.ProtoReflect().Descriptor().FullName())
	}
	return SubjectPrefix + in.Token, nil
}

// DLQSubject maps billing.in.<rest> to billing.dlq.<rest>; a subject
// outside billing.in. is dead-lettered as billing.dlq.unknown.
func DLQSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok || rest == "" {
		rest = "unknown"
	}
	return DLQPrefix + rest
}

// InvoiceIssuedSubject is the subject of a BAN's announcements. Characters
// that NATS gives a meaning in subjects are replaced; the message carries
// the BAN as it is.
func InvoiceIssuedSubject(ban string) string {
	return InvoiceIssuedPrefix + strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, ban)
}

// Limits of what ledgerd accepts (docs/architecture.md, "Ingestion and dead
// letters"). A message outside them is dead-lettered with
// CodeInvalidField (or CodeTooManyRecords), naming the field.
const (
	// RecordsMax bounds the records of a UsageReported, and the benefits or
	// lines of the other messages that carry lists.
	RecordsMax = 10_000
	// PayloadMax is the embedded NATS server's max_payload, in bytes:
	// room for a UsageReported of RecordsMax records in protojson with
	// long descriptions. An external NATS must allow as much for such
	// messages (its default is 1 MiB).
	PayloadMax = 8 << 20
	// IDLengthMax bounds ids, codes and other short keys, in bytes.
	IDLengthMax = 256
	// TextLengthMax bounds names, aliases, descriptions and units, in bytes.
	TextLengthMax = 1024
	// ErrorLengthMax bounds the Billing-Error header, in bytes; values
	// quoted in it are cut to QuotedMax characters.
	ErrorLengthMax = 512
	QuotedMax      = 64
)

// Times and months outside [TimeMin, TimeMax) are invalid fields: a year
// such as 0001 or 3000 is a publisher's bug, and billing it would put it on
// an invoice of a month nobody will ever close.
var (
	TimeMin = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)
	TimeMax = time.Date(2100, time.January, 1, 0, 0, 0, 0, time.UTC)
)
