package daemon_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// deadLetters reads every dead letter in BILLING_DLQ, waiting until there
// are want of them.
func deadLetters(t *testing.T, js jetstream.JetStream, want int) []jetstream.Msg {
	t.Helper()
	ctx := testkit.Context(t, 60*time.Second)
	stream, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, fmt.Sprintf("%d dead letters", want), func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(want) {
			return fmt.Errorf("%d dead letters", info.State.Msgs)
		}
		return nil
	})
	cons, err := js.OrderedConsumer(ctx, wire.StreamDLQ, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for range want {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg)
	}
	return out
}

// wantIssued waits until the invoice of ban for month is issued with total.
func wantIssued(t *testing.T, d *daemon.Daemon, ban, month, want string) {
	t.Helper()
	testkit.Eventually(t, "invoice "+ban+" "+month+" issued", func() error {
		inv, err := invoice(d, ban, month)
		if err != nil {
			return err
		}
		if inv.Status != billing.Issued || total(inv) != want {
			return fmt.Errorf("%s, total %s; want issued, %s", inv.Status, total(inv), want)
		}
		return nil
	})
}

// TestBadMessagesNeverHoldBackTheRest publishes messages whose bad field is
// far larger than a header may be, and one as large as NATS takes, then a
// good message, a close and another good one: the bad ones are
// dead-lettered, bounded, and the rest is billed and issued, also after a
// restart.
func TestBadMessagesNeverHoldBackTheRest(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.Config(dir))
	nc, js := testkit.JetStream(t, d.NATSURL())
	seedOrganization(t, js)
	large := strings.Repeat("x", 600<<10)
	for i := range 20 {
		u := ec2(fmt.Sprintf("bad-%d", i), "2018-01-10T00:00:00Z", "1.00")
		u.Records[0].Description = large
		publishJSON(t, js, u)
	}
	// As large as NATS takes, so that the dead letter's headers leave no
	// room for all of it.
	huge := ec2("bad-huge", "2018-01-10T00:00:00Z", "1.00")
	huge.Records[0].Description = strings.Repeat("y", wire.PayloadMax-64-proto.Size(huge))
	publishProto(t, js, huge)
	publishProto(t, js, ec2("u-good", "2018-01-20T00:00:00Z", "10.00"))
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c1", Month: "2018-01", ClosedAt: ts("2018-02-01T00:00:00Z")})
	publishProto(t, js, ec2("u-after", "2018-02-03T00:00:00Z", "5.00"))

	wantIssued(t, d, "BAN-100", "2018-01", "10.00")
	letters := deadLetters(t, js, 21)
	truncated := 0
	for _, msg := range letters {
		h := msg.Headers()
		if code := h.Get(wire.HeaderErrorCode); code != wire.CodeInvalidField {
			t.Errorf("dead letter code %q, want %q (%s)", code, wire.CodeInvalidField, h.Get(wire.HeaderError))
		}
		reason := h.Get(wire.HeaderError)
		if len(reason) > wire.ErrorLengthMax || !strings.Contains(reason, "records[0].description") {
			t.Errorf("reason of %d bytes (at most %d), naming the field: %.200q", len(reason), wire.ErrorLengthMax, reason)
		}
		if size := h.Get(wire.HeaderPayloadTruncated); size != "" {
			truncated++
			n, err := strconv.Atoi(size)
			if err != nil || n <= len(msg.Data()) || n < wire.PayloadMax-64 {
				t.Errorf("%s: %q with %d bytes of payload", wire.HeaderPayloadTruncated, size, len(msg.Data()))
			}
		} else if len(msg.Data()) < 600<<10 {
			t.Errorf("a dead letter of %d bytes without %s: the payload must go out whole", len(msg.Data()), wire.HeaderPayloadTruncated)
		}
	}
	if truncated != 1 {
		t.Errorf("%d dead letters truncated, want the one as large as NATS takes", truncated)
	}
	testkit.Eventually(t, "February's draft", func() error {
		inv, err := invoice(d, "BAN-100", "2018-02")
		if err != nil || total(inv) != "5.00" {
			return fmt.Errorf("%v, %v", inv, err)
		}
		return nil
	})

	nc.Close()
	d.Close()
	again := daemontest.Restart(t, dir)
	_, js = testkit.JetStream(t, again.NATSURL())
	wantIssued(t, again, "BAN-100", "2018-01", "10.00")
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c2", Month: "2018-02", ClosedAt: ts("2018-03-01T00:00:00Z")})
	wantIssued(t, again, "BAN-100", "2018-02", "5.00")
	if got := deadLetters(t, js, 21); len(got) != 21 {
		t.Fatalf("%d dead letters after the restart", len(got))
	}
}

// TestCycleGuards closes months by ledgerd's clock: a close of a month not
// yet ended (the current one, or 9999-12, which would otherwise stop every
// later close for good) and a finalization before the 10th are
// dead-lettered with CYCLE_NOT_ENDED, and the real closes after them issue.
// Records dated outside the years billed are invalid.
func TestCycleGuards(t *testing.T) {
	cfg := daemontest.Config(t.TempDir())
	now := time.Date(2018, time.March, 5, 12, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return now }
	d := daemontest.Start(t, cfg)
	_, js := testkit.JetStream(t, d.NATSURL())
	seedOrganization(t, js)
	publishProto(t, js, ec2("u-jan", "2018-01-10T00:00:00Z", "3.00"))
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "far", Month: "9999-12", ClosedAt: ts("2018-03-05T12:00:00Z")})
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "running", Month: "2018-03", ClosedAt: ts("2018-03-05T12:00:00Z")})
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c1", Month: "2018-01", ClosedAt: ts("2018-02-01T00:00:00Z")})
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c2", Month: "2018-02", ClosedAt: ts("2018-03-01T00:00:00Z")})
	publishProto(t, js, &billingv1.VendorCycleFinalized{EventId: "f2", Month: "2018-02", FinalizedAt: ts("2018-03-05T12:00:00Z")})
	publishProto(t, js, ec2("u-3000", "3000-01-10T00:00:00Z", "1.00"))
	publishProto(t, js, ec2("u-0001", "0001-01-10T00:00:00Z", "1.00"))

	want := map[string]string{
		"9999-12":              wire.CodeCycleNotEnded,
		"2018-03 ":             wire.CodeCycleNotEnded,
		"vendor cycle 2018-02": wire.CodeCycleNotEnded,
		"3000-01-10":           wire.CodeInvalidField,
		"0001-01-10":           wire.CodeInvalidField,
	}
	for _, msg := range deadLetters(t, js, len(want)) {
		reason, code := msg.Headers().Get(wire.HeaderError), msg.Headers().Get(wire.HeaderErrorCode)
		found := false
		for part, wantCode := range want {
			if strings.Contains(reason, part) {
				found = true
				if code != wantCode {
					t.Errorf("%q dead-lettered with %s, want %s", reason, code, wantCode)
				}
				delete(want, part)
				break
			}
		}
		if !found {
			t.Errorf("unexpected dead letter %s: %q", code, reason)
		}
	}
	if len(want) > 0 {
		t.Errorf("not dead-lettered: %v", want)
	}
	wantIssued(t, d, "BAN-100", "2018-01", "3.00")
	wantIssued(t, d, "BAN-100", "2018-02", "0.00")
	if _, err := vendorView(d, "BAN-100", "2018-02"); !errors.Is(err, billing.ErrNotFinalized) {
		t.Errorf("vendor view of 2018-02 before the 10th: %v, want not finalized", err)
	}
}

// TestForgedAnnouncementChangesNothing publishes, as anyone with access to
// NATS could, an InvoiceIssued of a far month on a BAN's subject: the real
// announcements of the BAN still go out.
func TestForgedAnnouncementChangesNothing(t *testing.T) {
	d := daemontest.Start(t, daemontest.Config(t.TempDir()))
	nc, js := testkit.JetStream(t, d.NATSURL())
	issued := announcements(t, nc)
	forged, err := protojson.Marshal(&billingv1.InvoiceIssued{Ban: "BAN-100", OrgId: "acme", Month: "9999-12", Total: usd("0.00")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(testkit.Context(t, 10*time.Second), wire.InvoiceIssuedSubject("BAN-100"), forged); err != nil {
		t.Fatal(err)
	}
	seedOrganization(t, js)
	publishProto(t, js, ec2("u-1", "2018-01-10T00:00:00Z", "7.25"))
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c1", Month: "2018-01", ClosedAt: ts("2018-02-01T00:00:00Z")})
	for {
		msg, err := issued.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("no announcement of 2018-01 after a forged one of 9999-12: %v", err)
		}
		var got billingv1.InvoiceIssued
		if err := protojson.Unmarshal(msg.Data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Month == "2018-01" {
			if got.GetTotal().GetAmount() != "7.25" {
				t.Fatalf("announced %v", &got)
			}
			return
		}
	}
}

// TestStreams checks the streams ledgerd creates: BILLING_IN holds a
// message only until ledgerd has handled it, dead letters age out, and the
// embedded NATS takes a message of wire.PayloadMax bytes.
func TestStreams(t *testing.T) {
	d := daemontest.Start(t, daemontest.Config(t.TempDir()))
	nc, js := testkit.JetStream(t, d.NATSURL())
	if got := nc.MaxPayload(); got != wire.PayloadMax {
		t.Errorf("max_payload %d, want %d", got, wire.PayloadMax)
	}
	ctx := testkit.Context(t, 30*time.Second)
	in, err := js.Stream(ctx, wire.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	if r := in.CachedInfo().Config.Retention; r != jetstream.WorkQueuePolicy {
		t.Errorf("%s retention %v, want a work queue", wire.StreamIn, r)
	}
	dlq, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if age := dlq.CachedInfo().Config.MaxAge; age != 90*24*time.Hour {
		t.Errorf("%s max age %s, want 90 days", wire.StreamDLQ, age)
	}
	seedOrganization(t, js)
	publishJSON(t, js, &billingv1.UsageReported{EventId: "bad"}) // no records: dead-lettered
	publishProto(t, js, ec2("u-1", "2018-01-10T00:00:00Z", "7.25"))
	deadLetters(t, js, 1)
	testkit.Eventually(t, wire.StreamIn+" emptied once handled", func() error {
		info, err := in.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d messages left", info.State.Msgs)
		}
		return nil
	})
}

// TestOperatorMetrics: what operators alert on is in /metrics: dead letters
// by code, the consumer's backlog, readiness and its cause, and gRPC calls
// by method and code with latency histograms.
func TestOperatorMetrics(t *testing.T) {
	d := daemontest.Start(t, daemontest.Config(t.TempDir()))
	daemontest.WaitReady(t, d)
	_, js := testkit.JetStream(t, d.NATSURL())
	publishJSON(t, js, &billingv1.UsageReported{EventId: "bad"})
	deadLetters(t, js, 1)
	conn, err := grpc.NewClient(d.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = billingv1.NewBillingServiceClient(conn).GetInvoice(testkit.Context(t, 10*time.Second), &billingv1.GetInvoiceRequest{Ban: "BAN-404", Month: "2018-01"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("GetInvoice of an unknown BAN: %v", err)
	}
	want := []string{
		`ledger_ingest_dead_letters_total{code="missing_field"} 1`,
		`ledger_ingest_terminated_total{code="missing_field"} 0`,
		`ledger_ingest_consumer_pending_messages 0`,
		`ledger_ingest_consumer_ack_pending_messages`,
		`ledger_ingest_consumer_redelivered_messages`,
		`ledger_ready 1`,
		`ledger_unready{cause="halted"} 0`,
		`ledger_unready{cause="ingestion"} 0`,
		`grpc_server_handled_total{grpc_code="NotFound",grpc_method="GetInvoice",grpc_service="billing.v1.BillingService",grpc_type="unary"} 1`,
		`grpc_server_handling_seconds_bucket{grpc_method="GetInvoice"`,
	}
	// Every metric the alert rules use is one ledgerd exports.
	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`\b(?:ledger|grpc_server)_[a-z_]+`).FindAllString(string(rules), -1) {
		want = append(want, name)
	}
	testkit.Eventually(t, "operator metrics", func() error {
		resp, err := http.Get("http://" + d.HTTPAddr() + "/metrics")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				return fmt.Errorf("/metrics lacks %s", w)
			}
		}
		return nil
	})
}
