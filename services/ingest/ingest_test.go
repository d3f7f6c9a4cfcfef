package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/ingest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// rig is the real thing in one process: a JetStream server, the embedded
// store, and an ingester between them.
type rig struct {
	js     jetstream.JetStream
	store  *testkit.Store
	client *esdb.Client // the official client, to read what ingestion wrote
}

func newRig(t *testing.T) *rig { return newRigWith(t, nil) }

// newRigWith is newRig with streams made by before, if set, ahead of
// ingest.Setup, as an operator (or an older ledgerd) would have made them.
func newRigWith(t *testing.T, before func(jetstream.JetStream)) *rig {
	t.Helper()
	_, js := testkit.JetStream(t, testkit.NATS(t).ClientURL())
	if before != nil {
		before(js)
	}
	r := &rig{js: js, store: testkit.StartStore(t, eventstore.Config{MaxAppendSize: 16 << 20})}
	r.client = testkit.Client(t, r.store.URL())
	ctx, cancel := context.WithCancel(context.Background())
	if err := ingest.Setup(ctx, js, ingest.Streams{}); err != nil {
		t.Fatal(err)
	}
	ing := ingest.New(ingest.Config{JetStream: js, Log: testkit.Log(t, r.store.URL()), RetryMax: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingester: %v", err)
		}
	})
	return r
}

func (r *rig) publish(t *testing.T, subject string, data []byte, header nats.Header) {
	t.Helper()
	msg := &nats.Msg{Subject: subject, Data: data, Header: header}
	if _, err := r.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func (r *rig) publishProto(t *testing.T, m proto.Message) {
	t.Helper()
	subject, err := wire.Subject(m)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	r.publish(t, subject, data, nil)
}

// streamEvents waits until stream holds want events and returns them.
func (r *rig) streamEvents(t *testing.T, stream string, want int) []*esdb.ResolvedEvent {
	t.Helper()
	var evs []*esdb.ResolvedEvent
	testkit.Eventually(t, fmt.Sprintf("%d events in stream %s", want, stream), func() error {
		var err error
		if evs, err = r.read(stream); err != nil {
			return err
		}
		if len(evs) > want {
			t.Fatalf("stream %s holds %d events, want %d", stream, len(evs), want)
		}
		if len(evs) < want {
			return fmt.Errorf("%d events", len(evs))
		}
		return nil
	})
	return evs
}

func (r *rig) read(stream string) ([]*esdb.ResolvedEvent, error) {
	return testkit.ReadStream(context.Background(), r.client, stream, 100)
}

// deadLetters reads the dead letters, waiting for want of them.
func (r *rig) deadLetters(t *testing.T, want int) []jetstream.Msg {
	t.Helper()
	cons, err := r.js.OrderedConsumer(context.Background(), wire.StreamDLQ, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	testkit.Eventually(t, fmt.Sprintf("%d dead letters", want), func() error {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if len(out) != want {
			return fmt.Errorf("%d dead letters", len(out))
		}
		return nil
	})
	return out
}

func usage(eventID string, records ...*billingv1.UsageRecord) *billingv1.UsageReported {
	return &billingv1.UsageReported{EventId: eventID, Records: records}
}

func record(id, account, amount string) *billingv1.UsageRecord {
	return &billingv1.UsageRecord{
		RecordId: id, Vendor: "AWS", AccountId: account, Service: "Amazon EC2", Region: "us-east-1",
		ChargeCategory:    "Usage",
		ChargePeriodStart: timestamppb.New(time.Date(2018, 1, 5, 0, 0, 0, 0, time.UTC)),
		ChargePeriodEnd:   timestamppb.New(time.Date(2018, 1, 5, 1, 0, 0, 0, time.UTC)),
		Cost:              &billingv1.Money{Amount: amount, Currency: "USD"},
	}
}

func TestJSONAndProtobufArriveOnce(t *testing.T) {
	r := newRig(t)
	r.publishProto(t, usage("u-1", record("r1", "111", "1.00")))
	r.publish(t, "billing.in.usage_reported",
		[]byte(`{"eventId":"u-2","records":[{"record_id":"r1","vendor":"AWS","accountId":"111","service":"Amazon EC2","chargeCategory":"Usage","chargePeriodStart":"2018-01-05T00:00:00Z","cost":{"amount":"2.50","currency":"USD"}}]}`),
		nats.Header{"Content-Type": []string{"application/json"}})
	for _, stream := range []string{"usage-u-1", "usage-u-2"} {
		evs := r.streamEvents(t, stream, 1)
		if evs[0].Event.EventType != "billing.v1.UsageReported" || evs[0].Event.ContentType != "application/octet-stream" {
			t.Fatalf("%s stored as %s, %s", stream, evs[0].Event.EventType, evs[0].Event.ContentType)
		}
	}

	t.Run("redelivery past the duplicate window, with a new Nats-Msg-Id, counts once", func(t *testing.T) {
		m := usage("u-3", record("r1", "111", "3.00"))
		data, _ := proto.Marshal(m)
		for i := range 3 {
			r.publish(t, "billing.in.usage_reported", data, nats.Header{"Nats-Msg-Id": []string{fmt.Sprintf("retry-%d", i)}})
		}
		// The same message again in JSON is the same event too.
		r.publish(t, "billing.in.usage_reported", []byte(`{"event_id":"u-3","records":[{"record_id":"r1","vendor":"AWS","account_id":"111","service":"Amazon EC2","region":"us-east-1","charge_category":"Usage","charge_period_start":"2018-01-05T00:00:00Z","charge_period_end":"2018-01-05T01:00:00Z","cost":{"amount":"3.00","currency":"USD"}}]}`), nil)
		r.publishProto(t, usage("u-4", record("r1", "111", "4.00"))) // a marker behind them
		r.streamEvents(t, "usage-u-4", 1)
		r.streamEvents(t, "usage-u-3", 1)
	})
}

func TestBadInputIsDeadLettered(t *testing.T) {
	r := newRig(t)
	r.publishProto(t, usage("dup", record("r1", "111", "1.00")))
	r.streamEvents(t, "usage-dup", 1)

	tooMany := usage("many")
	for i := range wire.RecordsMax + 1 {
		tooMany.Records = append(tooMany.Records, record(fmt.Sprint(i), "111", "0.01"))
	}
	tooManyData, _ := proto.Marshal(tooMany)
	conflict, _ := proto.Marshal(usage("dup", record("r1", "111", "9.99")))

	cases := []struct {
		name, subject string
		data          []byte
		code, field   string
	}{
		{"undecodable bytes", "billing.in.usage_reported", []byte{0xff, 0x00, 0x13, 0x37}, wire.CodeUndecodable, "protobuf"},
		{"broken JSON", "billing.in.usage_reported", []byte(`{"event_id": `), wire.CodeUndecodable, "JSON"},
		{"unknown JSON field", "billing.in.usage_reported", []byte(`{"event_id":"x","colour":"red"}`), wire.CodeUndecodable, "colour"},
		{"unknown subject", "billing.in.invoice_paid", []byte(`{}`), wire.CodeUnknownSubject, "billing.in.invoice_paid"},
		{"missing event_id", "billing.in.usage_reported", []byte(`{"records":[]}`), wire.CodeMissingField, "event_id"},
		{"no records", "billing.in.usage_reported", []byte(`{"event_id":"e"}`), wire.CodeMissingField, "records"},
		{"amount not a decimal", "billing.in.usage_reported", []byte(`{"event_id":"e","records":[{"record_id":"r","vendor":"AWS","account_id":"1","service":"S","charge_category":"Usage","charge_period_start":"2018-01-05T00:00:00Z","cost":{"amount":"1,5","currency":"USD"}}]}`), wire.CodeInvalidField, `records[0].cost.amount = "1,5"`},
		{"bad currency", "billing.in.organization_registered", []byte(`{"event_id":"e","org_id":"o","ban":"B","currency":"usd"}`), wire.CodeInvalidField, `currency = "usd"`},
		{"wrong month format", "billing.in.billing_cycle_closed", []byte(`{"event_id":"e","month":"2018-1","closed_at":"2018-02-01T00:00:00Z"}`), wire.CodeInvalidField, `month = "2018-1"`},
		{"a bad later record is named by its index", "billing.in.usage_reported", []byte(`{"event_id":"e2","records":[{"record_id":"a","vendor":"AWS","account_id":"1","service":"S","charge_category":"Usage","charge_period_start":"2018-01-05T00:00:00Z","cost":{"amount":"1","currency":"USD"}},{"record_id":"b","vendor":"AWS","account_id":"1","service":"S","charge_category":"Usage","charge_period_start":"2018-01-05T00:00:00Z","cost":{"amount":"1","currency":"EURO"}}]}`), wire.CodeInvalidField, `field records[1].cost.currency = "EURO"`},
		{"bad charge category", "billing.in.usage_reported", []byte(`{"event_id":"e","records":[{"record_id":"r","vendor":"AWS","account_id":"1","service":"S","charge_category":"Fee","charge_period_start":"2018-01-05T00:00:00Z","cost":{"amount":"1","currency":"USD"}}]}`), wire.CodeInvalidField, "charge_category"},
		{"invoice_id too long", "billing.in.usage_reported", []byte(`{"event_id":"e","records":[{"record_id":"r","vendor":"AWS","account_id":"1","service":"S","charge_category":"Usage","charge_period_start":"2018-01-05T00:00:00Z","cost":{"amount":"1","currency":"USD"},"invoice_id":"` + strings.Repeat("i", wire.IDLengthMax+1) + `"}]}`), wire.CodeInvalidField, "records[0].invoice_id is 257 bytes long"},
		{"source too long", "billing.in.usage_reported", []byte(`{"event_id":"e","records":[{"record_id":"r","vendor":"AWS","account_id":"1","service":"S","charge_category":"Usage","charge_period_start":"2018-01-05T00:00:00Z","cost":{"amount":"1","currency":"USD"},"source":"` + strings.Repeat("s", wire.TextLengthMax+1) + `"}]}`), wire.CodeInvalidField, "records[0].source is 1025 bytes long"},
		{"source with a control character", "billing.in.usage_reported", []byte(`{"event_id":"e","records":[{"record_id":"r","vendor":"AWS","account_id":"1","service":"S","charge_category":"Usage","charge_period_start":"2018-01-05T00:00:00Z","cost":{"amount":"1","currency":"USD"},"source":"f.csv\u0007:2"}]}`), wire.CodeInvalidField, "records[0].source"},
		{"more than 10,000 records", "billing.in.usage_reported", tooManyData, wire.CodeTooManyRecords, "records"},
		{"conflicting reuse of an event_id", "billing.in.usage_reported", conflict, wire.CodeConflict, `event_id "dup"`},
	}
	for _, tc := range cases {
		r.publish(t, tc.subject, tc.data, nil)
	}
	r.publishProto(t, usage("after", record("r1", "111", "1.00")))
	r.streamEvents(t, "usage-after", 1) // the bad ones held nothing back

	// Messages are appended concurrently, so dead letters come in any
	// order; each is found by its bytes, which must be the message's own.
	byData := map[string]jetstream.Msg{}
	for _, m := range r.deadLetters(t, len(cases)) {
		byData[string(m.Data())] = m
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := byData[string(tc.data)]
			if !ok {
				t.Fatalf("no dead letter holds the message byte for byte")
			}
			wantSubject := "billing.dlq." + strings.TrimPrefix(tc.subject, "billing.in.")
			if m.Subject() != wantSubject {
				t.Fatalf("subject %s, want %s", m.Subject(), wantSubject)
			}
			if code := m.Headers().Get("Billing-Error-Code"); code != tc.code {
				t.Fatalf("code %q, want %q (reason %q)", code, tc.code, m.Headers().Get("Billing-Error"))
			}
			if reason := m.Headers().Get("Billing-Error"); !strings.Contains(reason, tc.field) {
				t.Fatalf("reason %q does not name %q", reason, tc.field)
			}
		})
	}
	if evs := r.streamEvents(t, "usage-dup", 1); len(evs) != 1 {
		t.Fatal("the conflict changed the stored event")
	}
}

func TestStoreOutageIsRetried(t *testing.T) {
	r := newRig(t)
	r.publishProto(t, usage("before", record("r1", "111", "1.00")))
	r.streamEvents(t, "usage-before", 1)
	r.store.Stop()
	for i := range 5 {
		r.publishProto(t, usage(fmt.Sprintf("during-%d", i), record("r1", "111", "1.00")))
	}
	// Wait until the ingester has tried (the message is pending, unacked).
	cons, err := r.js.Consumer(context.Background(), wire.StreamIn, wire.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the ingester taking the messages", func() error {
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending == 0 {
			return errors.New("none pending acknowledgement")
		}
		return nil
	})
	r.store.Restart()
	for i := range 5 {
		r.streamEvents(t, fmt.Sprintf("usage-during-%d", i), 1)
	}
}

// TestCyclesWithoutAWorkQueue: a BILLING_IN made before it was a work
// queue keeps what was handled, so its first sequence cannot tell a close
// that the messages before it are handled; ingestion must not hold the
// close for ever waiting on it.
func TestCyclesWithoutAWorkQueue(t *testing.T) {
	r := newRigWith(t, func(js jetstream.JetStream) {
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: wire.StreamIn, Subjects: []string{wire.SubjectPrefix + ">"}}); err != nil {
			t.Fatal(err)
		}
	})
	r.publishProto(t, usage("before-the-close", record("1", "111111111111", "1.00")))
	r.publishProto(t, wire.CloseMessage(wire.SourceLedgerctl, calendar.New(2018, time.January)))
	r.streamEvents(t, "usage-before-the-close", 1)
	r.streamEvents(t, "billingcycle-2018-01", 1)
}
