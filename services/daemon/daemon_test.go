package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/document"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// announcements subscribes to every InvoiceIssued ledgerd publishes.
func announcements(t *testing.T, nc *nats.Conn) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(wire.InvoiceIssuedPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// acknowledgements subscribes to the acknowledgements consumers send to
// JetStream: no publisher polling a consumer's floor (as ledgerctl does)
// can learn of one sooner.
func acknowledgements(t *testing.T, nc *nats.Conn) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync("$JS.ACK.>")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// waitAcknowledged waits until ledgerd's ingestion consumer acknowledges
// the message at seq of BILLING_IN. An acknowledgement's subject is
// $JS.ACK.[<domain>.<account>.]<stream>.<consumer>.<deliveries>.<stream
// sequence>...; "+WPI" (in progress) and the like are not acknowledgements.
func waitAcknowledged(t *testing.T, acks *nats.Subscription, seq uint64) {
	t.Helper()
	for {
		msg, err := acks.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("no acknowledgement of BILLING_IN sequence %d: %v", seq, err)
		}
		if string(msg.Data) != "+ACK" {
			continue
		}
		tok := strings.Split(msg.Subject, ".")
		for i := 2; i+3 < len(tok); i++ {
			if tok[i] == wire.StreamIn && tok[i+1] == wire.Consumer && tok[i+3] == strconv.FormatUint(seq, 10) {
				return
			}
		}
	}
}

func publishProto(t *testing.T, js jetstream.JetStream, m proto.Message) {
	t.Helper()
	subject, err := wire.Subject(m)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), subject, data); err != nil {
		t.Fatal(err)
	}
}

// publishJSON sends the message as protojson, as `nats pub` users do.
func publishJSON(t *testing.T, js jetstream.JetStream, m proto.Message) {
	t.Helper()
	subject, err := wire.Subject(m)
	if err != nil {
		t.Fatal(err)
	}
	data, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), subject, data); err != nil {
		t.Fatal(err)
	}
}

func ts(s string) *timestamppb.Timestamp {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(tm)
}

func usd(amount string) *billingv1.Money { return &billingv1.Money{Amount: amount, Currency: "USD"} }

func ec2(eventID, start, amount string) *billingv1.UsageReported {
	return &billingv1.UsageReported{EventId: eventID, Records: []*billingv1.UsageRecord{{
		RecordId: "r1", Vendor: "AWS", AccountId: "111111111111", Service: "Amazon EC2", Region: "us-east-1",
		ChargeCategory: "Usage", ChargePeriodStart: ts(start), Cost: usd(amount),
	}}}
}

func seedOrganization(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	publishJSON(t, js, &billingv1.OrganizationRegistered{EventId: "org-1", OrgId: "acme", Name: "Acme", Ban: "BAN-100", Currency: "USD"})
	publishProto(t, js, &billingv1.CostCenterCreated{EventId: "cc-1", OrgId: "acme", CostCenterId: "cc-1", Name: "Engineering"})
	publishJSON(t, js, &billingv1.WorkspaceCreated{EventId: "ws-1", OrgId: "acme", WorkspaceId: "ws-1", CostCenterId: "cc-1", Name: "Platform"})
	publishProto(t, js, &billingv1.ProviderRegistered{EventId: "p-1", OrgId: "acme", ProviderId: "p-1", WorkspaceId: "ws-1", Vendor: "AWS", AccountId: "111111111111", Name: "Production", Alias: "prod"})
}

func invoice(d *daemon.Daemon, ban, month string) (*billing.Invoice, error) {
	m, err := calendar.Parse(month)
	if err != nil {
		return nil, err
	}
	var inv *billing.Invoice
	_, err = d.Runner().Read(func(p *billing.Projection) error {
		inv, err = p.Invoice(ban, m)
		return err
	})
	return inv, err
}

func vendorView(d *daemon.Daemon, ban, month string) (*billing.Invoice, error) {
	m, _ := calendar.Parse(month)
	var inv *billing.Invoice
	_, err := d.Runner().Read(func(p *billing.Projection) error {
		var err error
		inv, err = p.VendorView(ban, m)
		return err
	})
	return inv, err
}

func total(inv *billing.Invoice) string { return money.Format(&inv.Total, inv.Currency) }

// TestWorkedExampleThroughNATS publishes the worked example of
// docs/architecture.md, "Documents", as a metering service would, in JSON and protobuf, and checks the
// invoices, the vendor view and the InvoiceIssued announcements.
func TestWorkedExampleThroughNATS(t *testing.T) {
	d := daemontest.Start(t, daemontest.Config(t.TempDir()))
	nc, js := testkit.JetStream(t, d.NATSURL())
	issued := announcements(t, nc)
	seedOrganization(t, js)
	publishProto(t, js, ec2("u-dec", "2017-12-10T00:00:00Z", "10.00"))
	publishJSON(t, js, &billingv1.BillingCycleClosed{EventId: "close-2017-12", Month: "2017-12", ClosedAt: ts("2018-01-01T00:00:00Z")})
	publishProto(t, js, ec2("u-dec-late", "2017-12-20T00:00:00Z", "1.00"))
	publishJSON(t, js, ec2("u-jan", "2018-01-10T00:00:00Z", "3.00"))
	// The same January message again, redelivered with a new Nats-Msg-Id
	// long after: it must count once.
	data, _ := proto.Marshal(ec2("u-jan", "2018-01-10T00:00:00Z", "3.00"))
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: "billing.in.usage_reported", Data: data, Header: nats.Header{"Nats-Msg-Id": []string{"another-id"}}}); err != nil {
		t.Fatal(err)
	}
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "close-2018-01", Month: "2018-01", ClosedAt: ts("2018-02-01T00:00:00Z")})
	publishJSON(t, js, &billingv1.VendorReconciliationCompleted{EventId: "recon-2018-01", Vendor: "AWS", Month: "2018-01",
		Lines: []*billingv1.ReconciliationLine{{AccountId: "111111111111", Service: "Amazon EC2", VendorCost: usd("5.00")}}})
	publishProto(t, js, &billingv1.VendorCycleFinalized{EventId: "final-2018-01", Month: "2018-01", FinalizedAt: ts("2018-02-10T00:00:00Z")})

	// Two invoices are announced, in month order; the second tells the
	// position to wait for.
	var last billingv1.InvoiceIssued
	for _, month := range []string{"2017-12", "2018-01"} {
		msg, err := issued.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("announcement of %s: %v", month, err)
		}
		if msg.Subject != "billing.out.invoice_issued.BAN-100" {
			t.Fatalf("announced on %s", msg.Subject)
		}
		if err := protojson.Unmarshal(msg.Data, &last); err != nil || last.Month != month {
			t.Fatalf("announcement %s (%v), want month %s", msg.Data, err, month)
		}
	}
	if last.Total.Amount != "4.00" || last.Ban != "BAN-100" || last.OrgId != "acme" {
		t.Fatalf("announced %v, want BAN-100 2018-01 total 4.00", &last)
	}
	if err := d.Runner().WaitFor(testkit.Context(t, 20*time.Second), last.Position); err != nil {
		t.Fatal(err)
	}

	jan, err := invoice(d, "BAN-100", "2018-01")
	if err != nil {
		t.Fatal(err)
	}
	if jan.Status != billing.Issued || total(jan) != "4.00" {
		t.Fatalf("invoice 2018-01: %v total %s, want ISSUED 4.00", jan.Status, total(jan))
	}
	// The announcement carries the invoice's digest (README, "Auditing").
	if want, err := document.DigestOf(jan); err != nil || last.Digest != want {
		t.Errorf("announced digest %q, want the invoice's %q (%v)", last.Digest, want, err)
	}
	var update *billing.Line
	for i := range jan.Lines {
		if jan.Lines[i].Kind == billing.PreviousMonthUpdate {
			update = &jan.Lines[i]
		}
	}
	if update == nil || update.ForMonth.String() != "2017-12" || money.Format(&update.Amount, jan.Currency) != "1.00" || update.Service != "Amazon EC2" {
		t.Fatalf("invoice 2018-01 lines %+v: want an Update to Previous Month's Amazon EC2 for 2017-12 of 1.00", jan.Lines)
	}
	testkit.Eventually(t, "vendor view 2018-01", func() error {
		v, err := vendorView(d, "BAN-100", "2018-01")
		if err != nil {
			return err
		}
		if total(v) != "5.00" {
			return fmt.Errorf("vendor view total %s, want 5.00", total(v))
		}
		return nil
	})
	feb, err := invoice(d, "BAN-100", "2018-02")
	if err != nil {
		t.Fatal(err)
	}
	if feb.Status != billing.Draft || total(feb) != "2.00" {
		t.Fatalf("draft 2018-02: %v %s, want DRAFT 2.00 (the update for January)", feb.Status, total(feb))
	}
}

func TestCyclesOutOfOrderAreDeadLettered(t *testing.T) {
	d := daemontest.Start(t, daemontest.Config(t.TempDir()))
	_, js := testkit.JetStream(t, d.NATSURL())
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c1", Month: "2018-01", ClosedAt: ts("2018-02-01T00:00:00Z")})
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c3", Month: "2018-03", ClosedAt: ts("2018-04-01T00:00:00Z")})
	publishProto(t, js, &billingv1.VendorCycleFinalized{EventId: "f2", Month: "2018-02", FinalizedAt: ts("2018-03-10T00:00:00Z")})
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c2", Month: "2018-02", ClosedAt: ts("2018-03-01T00:00:00Z")})
	// A second close of a closed month by another message is a no-op.
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c2-again", Month: "2018-02", ClosedAt: ts("2018-03-01T00:00:00Z")})

	dlq, err := js.OrderedConsumer(context.Background(), wire.StreamDLQ, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"billing.dlq.billing_cycle_closed": wire.CodeCycleOrder, "billing.dlq.vendor_cycle_finalized": wire.CodeCycleNotClosed}
	for range 2 {
		msg, err := dlq.Next(jetstream.FetchMaxWait(20 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if code := msg.Headers().Get("Billing-Error-Code"); want[msg.Subject()] != code {
			t.Fatalf("%s dead-lettered with %q (%s)", msg.Subject(), code, msg.Headers().Get("Billing-Error"))
		}
		delete(want, msg.Subject())
	}
	testkit.Eventually(t, "2018-02 closed", func() error {
		inv, err := invoice(d, "none", "2018-02")
		if !errors.Is(err, billing.ErrUnknownBAN) {
			return fmt.Errorf("invoice of an unknown BAN: %v, %v", inv, err)
		}
		_, err = d.Runner().Read(func(p *billing.Projection) error {
			m, _ := calendar.Parse("2018-03")
			return p.CanClose(m)
		})
		return err
	})
}

func TestRestartKeepsInvoices(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.Config(dir))
	nc, js := testkit.JetStream(t, d.NATSURL())
	issued := announcements(t, nc)
	seedOrganization(t, js)
	publishProto(t, js, ec2("u-1", "2018-01-10T00:00:00Z", "7.25"))
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c1", Month: "2018-01", ClosedAt: ts("2018-02-01T00:00:00Z")})
	msg, err := issued.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var jan billingv1.InvoiceIssued
	if err := protojson.Unmarshal(msg.Data, &jan); err != nil {
		t.Fatal(err)
	}
	if err := d.Runner().WaitFor(testkit.Context(t, 20*time.Second), jan.Position); err != nil {
		t.Fatal(err)
	}
	before, err := invoice(d, "BAN-100", "2018-01")
	if err != nil || before.Status != billing.Issued {
		t.Fatalf("invoice 2018-01 once announced: %+v, %v; want it issued", before, err)
	}
	resp, err := http.Get("http://" + d.HTTPAddr() + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	nc.Close()
	d.Close()

	again := daemontest.Restart(t, dir)
	after, err := invoice(again, "BAN-100", "2018-01")
	if err != nil {
		t.Fatal(err)
	}
	if total(after) != total(before) || after.Position != before.Position || !after.IssuedAt.Equal(before.IssuedAt) || len(after.Lines) != len(before.Lines) {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	// The replay issued the invoice again inside the projection; it must
	// not be announced twice.
	_, js2 := testkit.JetStream(t, again.NATSURL())
	out, err := js2.Stream(context.Background(), wire.StreamOut)
	if err != nil {
		t.Fatal(err)
	}
	publishProto(t, js2, ec2("u-2", "2018-02-10T00:00:00Z", "1.00"))
	publishProto(t, js2, &billingv1.BillingCycleClosed{EventId: "c2", Month: "2018-02", ClosedAt: ts("2018-03-01T00:00:00Z")})
	testkit.Eventually(t, "February announced", func() error {
		info, err := out.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs != 2 {
			return fmt.Errorf("%d announcements, want 2 (January once, February)", info.State.Msgs)
		}
		return nil
	})
}

func TestMetricsAndHealth(t *testing.T) {
	d := daemontest.Start(t, daemontest.Config(t.TempDir()))
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "ledger_process_peak_rss_bytes"} {
		resp, err := http.Get("http://" + d.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// TestBackDatedMoveThroughNATS: the portal records in April that a provider
// moved to another cost center, with its own BAN, on 15 March. The March
// invoice stays as issued; April's invoices carry the correction on both
// BANs; a restart replays to the same documents.
func TestBackDatedMoveThroughNATS(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.Config(dir))
	nc, js := testkit.JetStream(t, d.NATSURL())
	issued := announcements(t, nc)
	seedOrganization(t, js)
	publishProto(t, js, &billingv1.CostCenterCreated{EventId: "cc-2", OrgId: "acme", CostCenterId: "cc-2", Name: "Research", Ban: "BAN-200"})
	publishProto(t, js, &billingv1.WorkspaceCreated{EventId: "ws-2", OrgId: "acme", WorkspaceId: "ws-2", CostCenterId: "cc-2", Name: "Lab"})
	publishProto(t, js, ec2("u-mar-10", "2018-03-10T00:00:00Z", "10.00"))
	publishProto(t, js, ec2("u-mar-20", "2018-03-20T00:00:00Z", "20.00"))
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "close-2018-03", Month: "2018-03", ClosedAt: ts("2018-04-01T00:00:00Z")})
	publishProto(t, js, &billingv1.ProviderRegistered{EventId: "p-1-moved", OrgId: "acme", ProviderId: "p-1", WorkspaceId: "ws-2",
		Vendor: "AWS", AccountId: "111111111111", Name: "Production", Alias: "prod", EffectiveAt: ts("2018-03-15T00:00:00Z")})
	publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "close-2018-04", Month: "2018-04", ClosedAt: ts("2018-05-01T00:00:00Z")})
	// One invoice per BAN known at each close: BAN-200's March is empty.
	announced := map[string]string{}
	var last billingv1.InvoiceIssued
	for range 4 {
		msg, err := issued.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatalf("April announcements: %v (got %v)", err, announced)
		}
		if err := protojson.Unmarshal(msg.Data, &last); err != nil {
			t.Fatal(err)
		}
		announced[last.Ban+" "+last.Month] = last.Total.Amount
	}
	if announced["BAN-100 2018-03"] != "30.00" || announced["BAN-100 2018-04"] != "-20.00" || announced["BAN-200 2018-04"] != "20.00" {
		t.Fatalf("announcements %v, want March 30.00 on BAN-100, then April -20.00 on BAN-100 and 20.00 on BAN-200", announced)
	}
	if err := d.Runner().WaitFor(testkit.Context(t, 20*time.Second), last.Position); err != nil {
		t.Fatal(err)
	}
	docs := func(d *daemon.Daemon) string {
		var b strings.Builder
		for _, k := range []struct{ ban, month string }{{"BAN-100", "2018-03"}, {"BAN-100", "2018-04"}, {"BAN-200", "2018-04"}} {
			inv, err := invoice(d, k.ban, k.month)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %s %v %s\n", k.ban, k.month, inv.Status, total(inv))
			for _, l := range inv.Lines {
				fmt.Fprintf(&b, "  %v %s %s %s\n", l.Kind, l.ForMonth, l.Service, money.Format(&l.Amount, inv.Currency))
			}
		}
		return b.String()
	}
	before := docs(d)
	for _, want := range []string{"BAN-100 2018-03 ISSUED 30.00", "BAN-100 2018-04 ISSUED -20.00", "BAN-200 2018-04 ISSUED 20.00"} {
		if !strings.Contains(before, want) {
			t.Fatalf("documents:\n%s\nwant %q", before, want)
		}
	}
	nc.Close()
	d.Close()

	again := daemontest.Restart(t, dir)
	if after := docs(again); after != before {
		t.Fatalf("after restart:\n%s\nbefore:\n%s", after, before)
	}
}

// TestAcknowledgedMeansApplied: ledgerd acknowledges a message only once the
// projections have applied it, so a publisher that waits for the
// acknowledgement (as ledgerctl does) reads its own write at once. Right
// after a restart the projections are still replaying the history while
// ingestion appends new messages; the query right after the
// acknowledgement must nonetheless see everything. The test sees the
// acknowledgement itself as it reaches JetStream, no later than any
// publisher could.
func TestAcknowledgedMeansApplied(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.Config(dir))
	nc, js := testkit.JetStream(t, d.NATSURL())
	seedOrganization(t, js)
	const messages, records = 200, 1000
	for m := range messages {
		u := &billingv1.UsageReported{EventId: fmt.Sprintf("burst-%d", m)}
		for r := range records {
			u.Records = append(u.Records, &billingv1.UsageRecord{
				RecordId: fmt.Sprint(r), Vendor: "AWS", AccountId: "111111111111", Service: "Amazon EC2", Region: "us-east-1",
				ChargeCategory: "Usage", ChargePeriodStart: ts("2018-01-10T00:00:00Z"), Cost: usd("0.01")})
		}
		publishProto(t, js, u)
	}
	testkit.Eventually(t, "the history folded", func() error {
		inv, err := invoice(d, "BAN-100", "2018-01")
		if err == nil && total(inv) != "2000.00" {
			err = fmt.Errorf("draft %s", total(inv))
		}
		return err
	})
	nc.Close()
	d.Close()

	again := daemontest.Start(t, daemontest.Config(dir))
	nc, js = testkit.JetStream(t, again.NATSURL())
	acks := acknowledgements(t, nc)
	data, _ := proto.Marshal(ec2("after-restart", "2018-01-20T00:00:00Z", "5.00"))
	pub, err := js.Publish(context.Background(), "billing.in.usage_reported", data)
	if err != nil {
		t.Fatal(err)
	}
	waitAcknowledged(t, acks, pub.Sequence)
	inv, err := invoice(again, "BAN-100", "2018-01")
	if err != nil {
		t.Fatalf("right after the acknowledgement: %v", err)
	}
	if got := total(inv); got != "2005.00" {
		t.Fatalf("right after the acknowledgement the draft is %s, want 2005.00 (200,000 records of 0.01 and 5.00)", got)
	}
}
