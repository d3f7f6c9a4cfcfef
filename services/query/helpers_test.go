package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/query"
	"github.com/ledger-billing/ledger/services/runner"
	"github.com/ledger-billing/ledger/services/testkit"
)

// rig is ledgerd's query path in one process: the embedded store on a temp
// dir, a runner following it, and the query server on a loopback listener,
// reached through the generated client.
type rig struct {
	log    *eventlog.Log
	svc    *query.Service
	conn   *grpc.ClientConn
	client billingv1.BillingServiceClient
	cancel context.CancelFunc // stops the runner, turns health NOT_SERVING
	start  func()             // starts the runner, once
	n      int
}

type rigOptions struct {
	// waitMax, if set, replaces the 30 s cap on waits of calls without a
	// deadline.
	waitMax time.Duration
	// paused leaves the runner stopped until rig.start.
	paused bool
	// server are options of the query server (interceptors).
	server []grpc.ServerOption
}

func newRig(t testing.TB, opts rigOptions) *rig {
	t.Helper()
	log := testkit.Log(t, testkit.StartStore(t, eventstore.Config{}).URL())

	ctx, cancel := context.WithCancel(context.Background())
	run := runner.New(log, runner.Options{})
	runDone := make(chan error, 1)
	started := false
	r := &rig{log: log, cancel: cancel}
	r.start = func() {
		if !started {
			started = true
			go func() { runDone <- run.Run(ctx) }()
		}
	}
	t.Cleanup(func() {
		cancel()
		if started {
			if err := <-runDone; err != nil {
				t.Errorf("runner: %v", err)
			}
		}
	})

	svc := query.New(run, nil)
	if opts.waitMax > 0 {
		svc.SetWaitMax(opts.waitMax)
	}
	r.svc = svc
	srv := query.NewServer(ctx, svc, opts.server...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	r.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.conn.Close() })
	r.client = billingv1.NewBillingServiceClient(r.conn)
	if !opts.paused {
		r.start()
	}
	return r
}

// categories name the store stream of each message type (docs/architecture.md,
// "Events and their streams"): <category>-<event_id>, or <category>-<month>
// for cycles.
var categories = map[protoreflect.FullName]string{
	"billing.v1.OrganizationRegistered":          "org",
	"billing.v1.CostCenterCreated":               "org",
	"billing.v1.WorkspaceCreated":                "org",
	"billing.v1.ProviderRegistered":              "org",
	"billing.v1.UsageReported":                   "usage",
	"billing.v1.ReservedInstancePurchased":       "ri",
	"billing.v1.ReservedInstanceBenefitReported": "ribenefit",
	"billing.v1.VendorReconciliationCompleted":   "reconciliation",
	"billing.v1.BillingCycleClosed":              "billingcycle",
	"billing.v1.VendorCycleFinalized":            "vendorcycle",
}

// append stores msg as ingestion would, giving it an event_id if it has
// none, and returns its $all position.
func (r *rig) append(t testing.TB, msg proto.Message) uint64 {
	t.Helper()
	m := msg.ProtoReflect()
	name := m.Descriptor().FullName()
	category, ok := categories[name]
	if !ok {
		t.Fatalf("no stream category for %s", name)
	}
	idField := m.Descriptor().Fields().ByName("event_id")
	r.n++
	if m.Get(idField).String() == "" {
		m.Set(idField, protoreflect.ValueOfString(fmt.Sprintf("ev-%04d", r.n)))
	}
	key := m.Get(idField).String()
	if f := m.Descriptor().Fields().ByName("month"); f != nil && (category == "billingcycle" || category == "vendorcycle") {
		key = m.Get(f).String()
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := r.log.Append(ctx, category+"-"+key, eventlog.NoStream, eventlog.Event{ID: uuid.New(), Type: string(name), Data: data})
	if err != nil {
		t.Fatalf("append %s: %v", name, err)
	}
	return a.Position
}

// callCtx bounds every call of the tests: a hang fails in seconds, not at
// the test binary's timeout.
func callCtx(t testing.TB) context.Context { return testkit.Context(t, 10*time.Second) }

// Events, in the shape the metering services publish them.

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

func org(id, ban, currency string) *billingv1.OrganizationRegistered {
	return &billingv1.OrganizationRegistered{OrgId: id, Name: id, Ban: ban, Currency: currency}
}

func provider(orgID, id, ws, vendor, account string) *billingv1.ProviderRegistered {
	return &billingv1.ProviderRegistered{OrgId: orgID, ProviderId: id, WorkspaceId: ws, Vendor: vendor, AccountId: account, Name: id, Alias: strings.ToLower(id)}
}

func rec(vendor, account, service, region, start, amount, currency string) *billingv1.UsageRecord {
	return &billingv1.UsageRecord{
		Vendor: vendor, AccountId: account, Service: service, Region: region, ChargeCategory: "Usage",
		ChargePeriodStart: ts(start), ChargePeriodEnd: ts(start), Cost: &billingv1.Money{Amount: amount, Currency: currency},
	}
}

func usage(records ...*billingv1.UsageRecord) *billingv1.UsageReported {
	for i, r := range records {
		if r.RecordId == "" {
			r.RecordId = fmt.Sprintf("r%d", i)
		}
	}
	return &billingv1.UsageReported{Records: records}
}

func closeCycle(m, at string) *billingv1.BillingCycleClosed {
	return &billingv1.BillingCycleClosed{Month: m, ClosedAt: ts(at)}
}

func finalize(m, at string) *billingv1.VendorCycleFinalized {
	return &billingv1.VendorCycleFinalized{Month: m, FinalizedAt: ts(at)}
}

// golden compares a response, rendered as protojson with its positions
// zeroed (they depend on the store's encoding, and are checked where they
// matter), with testdata/<name>.golden.
func golden(t *testing.T, name string, msg proto.Message) {
	t.Helper()
	msg = proto.Clone(msg)
	zeroPositions(msg.ProtoReflect())
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	// protojson varies its spacing on purpose; Indent rewrites all of it.
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	b.WriteByte('\n')
	testkit.Golden(t, name, b.Bytes())
}

func zeroPositions(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "position" && fd.Kind() == protoreflect.Uint64Kind:
			m.Clear(fd)
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				zeroPositions(v.List().Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			zeroPositions(v.Message())
		}
		return true
	})
}

// wantStatus checks a call's error: its code, its ErrorInfo reason, and
// that its message contains msg.
func wantStatus(t *testing.T, err error, code codes.Code, reason, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || err == nil {
		t.Fatalf("error = %v, want a %v status", err, code)
	}
	if st.Code() != code {
		t.Fatalf("code = %v (%q), want %v", st.Code(), st.Message(), code)
	}
	if !strings.Contains(st.Message(), msg) {
		t.Errorf("message = %q, want it to contain %q", st.Message(), msg)
	}
	got := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			got = info.GetReason()
		}
	}
	if got != reason {
		t.Errorf("ErrorInfo reason = %q, want %q", got, reason)
	}
}

// amountOf returns a Money as "amount currency", for failure messages that
// read like the invoice.
func amountOf(m *billingv1.Money) string { return m.GetAmount() + " " + m.GetCurrency() }

// linesOf returns the lines of a document: an Invoice or a UsageMonth.
func linesOf(doc proto.Message) []*billingv1.InvoiceLine {
	switch d := doc.(type) {
	case *billingv1.Invoice:
		return d.GetLines()
	case *billingv1.UsageMonth:
		return d.GetLines()
	}
	return nil
}

// lineageOf returns the event_ids of every detail of a document, in order.
func lineageOf(doc proto.Message) []string {
	var ids []string
	for _, l := range linesOf(doc) {
		for _, d := range l.GetDetails() {
			ids = append(ids, d.GetEventIds()...)
		}
	}
	return ids
}

// wantWithoutLineage checks that plain, the answer without
// include_lineage, has no event_ids and is otherwise withLineage, the
// answer with it, which has some.
func wantWithoutLineage(t *testing.T, plain, withLineage proto.Message) {
	t.Helper()
	if ids := lineageOf(plain); len(ids) != 0 {
		t.Errorf("without include_lineage, the details carry event_ids %q", ids)
	}
	if len(lineageOf(withLineage)) == 0 {
		t.Errorf("with include_lineage, the details carry no event_ids")
	}
	stripped := proto.Clone(withLineage)
	for _, l := range linesOf(stripped) {
		for _, d := range l.GetDetails() {
			d.EventIds = nil
		}
	}
	if !proto.Equal(plain, stripped) {
		t.Errorf("without include_lineage:\n%v\nwant, as with it but for the event_ids:\n%v", plain, stripped)
	}
}
