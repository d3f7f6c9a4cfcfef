// Package wire is Ledger's contract with everything outside the process:
// the NATS subjects, streams and consumer, the dead-letter headers and their
// codes, the query service's error reasons, and the cycle messages. Both
// sides of each wire (ingest and the clock inside ledgerd; ledgerctl and any
// metering service outside) use these names, so each is written once.
//
// It imports only the protos and the calendar, never the server: a client
// that links it links nothing of ingestion, the billing fold or the store.
// docs/architecture.md, "Ingestion and dead letters", says how the names are
// used.
package wire

import (
	"fmt"
	"strings"

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
)

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
