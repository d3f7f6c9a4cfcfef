package ingest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/apd/v3"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// Rejection is why a message goes to the dead letters.
type Rejection struct {
	Code   string
	Reason string // a sentence naming the field and the value at fault
}

func (r *Rejection) Error() string { return "ingest: " + r.Reason }

// reject builds a rejection. Its reason goes out in a header, which NATS
// bounds, so it is cut to wire.ErrorLengthMax bytes whatever the format's
// arguments hold; values in it should be written with quote.
func reject(code, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Reason: cut(fmt.Sprintf(format, args...), wire.ErrorLengthMax)}
}

// quote writes a value for a reason: quoted, and cut to wire.QuotedMax
// characters with "..." after them, so that a megabyte field costs its
// sender a dead letter, not the dead letters their size.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= wire.QuotedMax {
		return strconv.Quote(s)
	}
	n := 0
	for i := range s {
		if n == wire.QuotedMax {
			return strconv.Quote(s[:i]) + "..."
		}
		n++
	}
	return strconv.Quote(s)
}

// cut shortens s to at most max bytes, on a character boundary, ending it
// with "..." when it is cut.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	end := max - len("...")
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + "..."
}

// decode reads a message from its subject, headers and payload: protojson
// when the Content-Type says JSON or the payload starts with '{', protobuf
// binary otherwise.
func decode(subject string, header nats.Header, data []byte) (*kind, proto.Message, *Rejection) {
	k, ok := kindOf(subject)
	if !ok {
		return nil, nil, reject(wire.CodeUnknownSubject, "subject %s is not one of Ledger's input subjects (billing.in.usage_reported, ...)", quote(subject))
	}
	msg := k.New()
	name := msg.ProtoReflect().Descriptor().FullName()
	if isJSON(header, data) {
		if err := protojson.Unmarshal(data, msg); err != nil {
			return nil, nil, reject(wire.CodeUndecodable, "payload is not a valid %s in JSON: %v", name, err)
		}
	} else {
		if err := proto.Unmarshal(data, msg); err != nil {
			return nil, nil, reject(wire.CodeUndecodable, "payload is not a valid %s in protobuf binary: %v", name, err)
		}
		// Random bytes often parse as fields unknown to the message;
		// data that is not ours must not pass for an empty message.
		if len(msg.ProtoReflect().GetUnknown()) > 0 {
			return nil, nil, reject(wire.CodeUndecodable, "payload is not a valid %s in protobuf binary: it holds fields the message does not have", name)
		}
	}
	if r := validate(msg); r != nil {
		return nil, nil, r
	}
	return k, msg, nil
}

func isJSON(header nats.Header, data []byte) bool {
	if strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		return true
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// checker collects the first problem of a message; one precise sentence
// helps a person more than a list.
type checker struct{ problem *Rejection }

func (c *checker) fail(code, format string, args ...any) {
	if c.problem == nil {
		c.problem = reject(code, format, args...)
	}
}

func (c *checker) id(field, value string) {
	switch {
	case value == "":
		c.fail(wire.CodeMissingField, "field %s is required", field)
	case len(value) > wire.IDLengthMax:
		c.fail(wire.CodeInvalidField, "field %s is %d bytes long; at most %d", field, len(value), wire.IDLengthMax)
	case !printable(value):
		c.fail(wire.CodeInvalidField, "field %s = %s holds control characters", field, quote(value))
	}
}

// text checks a name, alias, description or unit: optional, but bounded
// and free of control characters, which would garble every table and log
// that shows it.
func (c *checker) text(field, value string) {
	switch {
	case len(value) > wire.TextLengthMax:
		c.fail(wire.CodeInvalidField, "field %s is %d bytes long; at most %d", field, len(value), wire.TextLengthMax)
	case !printable(value):
		c.fail(wire.CodeInvalidField, "field %s = %s holds control characters", field, quote(value))
	}
}

func (c *checker) optional(field, value string) {
	if value != "" {
		c.id(field, value)
	}
}

// monthFormat checks that a month is present and written YYYY-MM.
func (c *checker) monthFormat(field, value string) (calendar.Month, bool) {
	if value == "" {
		c.fail(wire.CodeMissingField, "field %s is required (a month, YYYY-MM)", field)
		return 0, false
	}
	m, err := calendar.Parse(value)
	if err != nil {
		c.fail(wire.CodeInvalidField, "field %s = %s is not a month written YYYY-MM", field, quote(value))
		return 0, false
	}
	return m, true
}

// month checks a month of charges: written YYYY-MM, and within the times
// Ledger bills.
func (c *checker) month(field, value string) {
	m, ok := c.monthFormat(field, value)
	if !ok {
		return
	}
	if m.Start().Before(wire.TimeMin) || !m.Start().Before(wire.TimeMax) {
		c.fail(wire.CodeInvalidField, "field %s = %s is outside the months Ledger bills, %s to %s", field, quote(value),
			calendar.Of(wire.TimeMin), calendar.Of(wire.TimeMax)-1)
	}
}

func (c *checker) time(field string, t *timestamppb.Timestamp, required bool) {
	if t == nil {
		if required {
			c.fail(wire.CodeMissingField, "field %s is required (an RFC 3339 time)", field)
		}
		return
	}
	if err := t.CheckValid(); err != nil {
		c.fail(wire.CodeInvalidField, "field %s is not a valid time: %v", field, err)
		return
	}
	if at := t.AsTime(); at.Before(wire.TimeMin) || !at.Before(wire.TimeMax) {
		c.fail(wire.CodeInvalidField, "field %s = %s is outside the times Ledger bills, %s to %s", field,
			at.Format(time.RFC3339), wire.TimeMin.Format(time.RFC3339), wire.TimeMax.Format(time.RFC3339))
	}
}

// The checks of decimals and currencies take the field's name in two
// parts, its parent and its own, joined only to say what failed: joining
// them for every amount was two allocations per usage record, a fifth of
// validate's.

func (c *checker) decimal(parent, field, value string) {
	var d apd.Decimal
	if err := money.ParseDecimal(&d, value); err != nil {
		c.fail(wire.CodeInvalidField, "field %s%s = %s is not a decimal amount (like \"-12.34\")", parent, field, quote(value))
	}
}

func (c *checker) currency(parent, field, value string) {
	if value == "" {
		c.fail(wire.CodeMissingField, "field %s%s is required (an ISO 4217 code such as USD)", parent, field)
		return
	}
	if _, err := money.ParseCurrency(value); err != nil {
		c.fail(wire.CodeInvalidField, "field %s%s = %s is not an ISO 4217 currency code with a minor unit", parent, field, quote(value))
	}
}

func (c *checker) money(field string, m *billingv1.Money) {
	if m == nil {
		c.fail(wire.CodeMissingField, "field %s is required (an amount and a currency)", field)
		return
	}
	if m.Amount == "" {
		c.fail(wire.CodeMissingField, "field %s.amount is required", field)
	} else {
		c.decimal(field, ".amount", m.Amount)
	}
	c.currency(field, ".currency", m.Currency)
}

func (c *checker) count(field string, n, atLeast, atMost int) {
	switch {
	case n < atLeast:
		c.fail(wire.CodeMissingField, "field %s needs at least %d entries, has %d", field, atLeast, n)
	case n > atMost:
		c.fail(wire.CodeTooManyRecords, "field %s has %d entries; at most %d", field, n, atMost)
	}
}

// chargeCategories are FOCUS 1.0's ChargeCategory values.
var chargeCategories = map[string]bool{"Usage": true, "Purchase": true, "Credit": true, "Tax": true, "Adjustment": true}

// validate checks every field of a decoded message.
// Validate checks an input message as ingestion does before appending it:
// nil, or a *Rejection naming the field. Auditors' verify checks every
// stored input with it (services/audit).
func Validate(msg proto.Message) error {
	if r := validate(msg); r != nil {
		return r
	}
	return nil
}

func validate(msg proto.Message) *Rejection {
	var c checker
	switch m := msg.(type) {
	case *billingv1.OrganizationRegistered:
		c.id("event_id", m.EventId)
		c.id("org_id", m.OrgId)
		c.text("name", m.Name)
		c.id("ban", m.Ban)
		c.currency("", "currency", m.Currency)
	case *billingv1.CostCenterCreated:
		c.id("event_id", m.EventId)
		c.id("org_id", m.OrgId)
		c.id("cost_center_id", m.CostCenterId)
		c.text("name", m.Name)
		c.optional("ban", m.Ban)
		c.time("effective_at", m.EffectiveAt, false)
	case *billingv1.WorkspaceCreated:
		c.id("event_id", m.EventId)
		c.id("org_id", m.OrgId)
		c.id("workspace_id", m.WorkspaceId)
		c.id("cost_center_id", m.CostCenterId)
		c.text("name", m.Name)
		c.time("effective_at", m.EffectiveAt, false)
	case *billingv1.ProviderRegistered:
		c.id("event_id", m.EventId)
		c.id("org_id", m.OrgId)
		c.id("provider_id", m.ProviderId)
		c.id("workspace_id", m.WorkspaceId)
		c.id("vendor", m.Vendor)
		c.id("account_id", m.AccountId)
		c.text("name", m.Name)
		c.text("alias", m.Alias)
		c.time("effective_at", m.EffectiveAt, false)
	case *billingv1.UsageReported:
		c.id("event_id", m.EventId)
		c.count("records", len(m.Records), 1, wire.RecordsMax)
		seen := make(map[string]bool, len(m.Records))
		for i, r := range m.Records {
			if c.problem != nil {
				break
			}
			validateRecord(&c, i, r)
			if seen[r.RecordId] {
				c.fail(wire.CodeInvalidField, "field records[%d].record_id = %s repeats an earlier record of the message", i, quote(r.RecordId))
			}
			seen[r.RecordId] = true
		}
	case *billingv1.ReservedInstancePurchased:
		c.id("event_id", m.EventId)
		c.id("ri_id", m.RiId)
		c.id("vendor", m.Vendor)
		c.id("account_id", m.AccountId)
		c.id("service", m.Service)
		c.optional("region", m.Region)
		c.optional("instance_type", m.InstanceType)
		c.time("term_start", m.TermStart, false)
		c.time("term_end", m.TermEnd, false)
		if m.TermStart != nil && m.TermEnd != nil && m.TermEnd.AsTime().Before(m.TermStart.AsTime()) {
			c.fail(wire.CodeInvalidField, "field term_end = %s is before term_start = %s", m.TermEnd.AsTime().Format("2006-01-02T15:04:05Z07:00"), m.TermStart.AsTime().Format("2006-01-02T15:04:05Z07:00"))
		}
	case *billingv1.ReservedInstanceBenefitReported:
		c.id("event_id", m.EventId)
		c.month("month", m.Month)
		c.count("benefits", len(m.Benefits), 1, wire.RecordsMax)
		for i, b := range m.Benefits {
			f := fmt.Sprintf("benefits[%d]", i)
			c.id(f+".ri_id", b.RiId)
			c.id(f+".consumer_account_id", b.ConsumerAccountId)
			c.money(f+".amount", b.Amount)
		}
	case *billingv1.VendorReconciliationCompleted:
		c.id("event_id", m.EventId)
		c.id("vendor", m.Vendor)
		c.month("month", m.Month)
		c.count("lines", len(m.Lines), 1, wire.RecordsMax)
		for i, l := range m.Lines {
			f := fmt.Sprintf("lines[%d]", i)
			c.id(f+".account_id", l.AccountId)
			c.id(f+".service", l.Service)
			c.money(f+".vendor_cost", l.VendorCost)
		}
	case *billingv1.BillingCycleClosed:
		// A cycle's month is checked against ledgerd's clock instead of the
		// range of months billed (Ingester.checkEnded): "not ended yet"
		// says more to whoever closed 9999-12 than "out of range".
		c.id("event_id", m.EventId)
		c.monthFormat("month", m.Month)
		c.time("closed_at", m.ClosedAt, true)
	case *billingv1.VendorCycleFinalized:
		c.id("event_id", m.EventId)
		c.monthFormat("month", m.Month)
		c.time("finalized_at", m.FinalizedAt, true)
	default:
		c.fail(wire.CodeUnknownSubject, "%T is not an input message", msg)
	}
	return c.problem
}

// validateRecord checks record i of a UsageReported. A message holds up to
// 10,000 records, so the field names are built only for a record at fault:
// its fields are checked under the names ".record_id", ".cost.amount", ...
// and the record's path is put in front of the one that failed.
func validateRecord(c *checker, i int, r *billingv1.UsageRecord) {
	var local checker
	checkRecord(&local, r)
	if p := local.problem; p != nil {
		reason, _ := strings.CutPrefix(p.Reason, "field ")
		c.fail(p.Code, "field records[%d]%s", i, reason)
	}
}

// checkRecord checks a record's fields, named ".record_id", ".cost.amount",
// ...: validateRecord puts the record's path in front of the one that
// failed.
func checkRecord(c *checker, r *billingv1.UsageRecord) {
	c.id(".record_id", r.RecordId)
	c.id(".vendor", r.Vendor)
	c.id(".account_id", r.AccountId)
	c.id(".service", r.Service)
	c.optional(".region", r.Region)
	if !chargeCategories[r.ChargeCategory] {
		c.fail(wire.CodeInvalidField, "field .charge_category = %s is not a FOCUS charge category (Usage, Purchase, Credit, Tax or Adjustment)", quote(r.ChargeCategory))
	}
	c.time(".charge_period_start", r.ChargePeriodStart, true)
	c.time(".charge_period_end", r.ChargePeriodEnd, false)
	if r.ChargePeriodStart != nil && r.ChargePeriodEnd != nil && r.ChargePeriodEnd.AsTime().Before(r.ChargePeriodStart.AsTime()) {
		c.fail(wire.CodeInvalidField, "field .charge_period_end is before its charge_period_start")
	}
	if r.Quantity != "" {
		c.decimal("", ".quantity", r.Quantity)
	}
	c.text(".unit", r.Unit)
	c.text(".description", r.Description)
	c.money(".cost", r.Cost)
	c.optional(".commitment_id", r.CommitmentId)
	// Lineage from an upstream bill: an id, and where the record was read
	// (a file name and a row), which is text.
	c.optional(".invoice_id", r.InvoiceId)
	c.text(".source", r.Source)
}

// monthOf reads the month of a cycle message; "" for other messages.
func monthOf(msg proto.Message) string {
	type withMonth interface{ GetMonth() string }
	if m, ok := msg.(withMonth); ok {
		return m.GetMonth()
	}
	return ""
}
