package runner_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/runner"
	"github.com/ledger-billing/ledger/services/testkit"
)

func appendMsg(t *testing.T, log *eventlog.Log, m proto.Message) uint64 {
	t.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return appendRaw(t, log, string(m.ProtoReflect().Descriptor().FullName()), data)
}

func appendRaw(t *testing.T, log *eventlog.Log, typ string, data []byte) uint64 {
	t.Helper()
	res, err := log.Append(context.Background(), "s-"+uuid.NewString(), eventlog.NoStream, eventlog.Event{ID: uuid.New(), Type: typ, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// TestRunnerAppliesInOrderAndWaits feeds the runner real events through
// the store, among them one nobody can decode and one the rules refuse:
// both are skipped, everything else is applied in order, readers can wait
// for a position, and a close reports the invoices it issued.
func TestRunnerAppliesInOrderAndWaits(t *testing.T) {
	log := testkit.Log(t, testkit.StartStore(t, eventstore.Config{}).URL())
	for _, m := range []proto.Message{
		&billingv1.OrganizationRegistered{EventId: "org", OrgId: "acme", Ban: "BAN-1", Currency: "USD"},
		&billingv1.CostCenterCreated{EventId: "cc", OrgId: "acme", CostCenterId: "cc"},
		&billingv1.WorkspaceCreated{EventId: "ws", OrgId: "acme", WorkspaceId: "ws", CostCenterId: "cc"},
		&billingv1.ProviderRegistered{EventId: "p", OrgId: "acme", ProviderId: "p", WorkspaceId: "ws", Vendor: "AWS", AccountId: "1"},
	} {
		appendMsg(t, log, m)
	}
	appendRaw(t, log, "billing.v1.UsageReported", []byte{0xff, 0xff, 0xff}) // undecodable
	appendRaw(t, log, "other.Event", []byte("not ours"))                    // filtered out
	var issued []*billing.Invoice
	var mu sync.Mutex
	r := runner.New(log, runner.Options{OnApplied: func(a billing.Applied) {
		mu.Lock()
		defer mu.Unlock()
		issued = append(issued, a.Issued...)
	}})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	ctx := testkit.Context(t, 20*time.Second)
	var last uint64
	for i := range 50 {
		last = appendMsg(t, log, &billingv1.UsageReported{EventId: fmt.Sprint("u", i), Records: []*billingv1.UsageRecord{{
			RecordId: "r", Vendor: "AWS", AccountId: "1", Service: "S", ChargeCategory: "Usage",
			ChargePeriodStart: timestamppb.New(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)), Cost: &billingv1.Money{Amount: "1.00", Currency: "USD"},
		}}})
	}
	appendMsg(t, log, &billingv1.UsageReported{EventId: "u0"}) // a duplicate event_id: refused by the rules
	if err := r.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	m, _ := calendar.Parse("2025-01")
	pos, err := r.Read(func(p *billing.Projection) error {
		inv, err := p.Invoice("BAN-1", m)
		if err != nil {
			return err
		}
		if got := inv.Total.String(); got != "50.00" {
			return fmt.Errorf("draft total %s, want 50.00", got)
		}
		return nil
	})
	if err != nil || pos < last {
		t.Fatalf("read at %d: %v", pos, err)
	}

	if err := r.CheckFinalize(ctx, "2025-01", last); !errors.Is(err, billing.ErrNotClosed) {
		t.Fatalf("finalize before close: %v, want ErrNotClosed", err)
	}
	closed := appendMsg(t, log, &billingv1.BillingCycleClosed{EventId: "close", Month: "2025-01", ClosedAt: timestamppb.Now()})
	if err := r.CheckClose(ctx, "2025-01", closed); err != nil {
		t.Fatalf("closing a closed month again must be a no-op, got %v", err)
	}
	if err := r.CheckClose(ctx, "2025-03", closed); !errors.Is(err, billing.ErrOutOfOrder) {
		t.Fatalf("skipping a month: %v, want ErrOutOfOrder", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(issued) != 1 || issued[0].BAN != "BAN-1" || issued[0].Total.String() != "50.00" {
		t.Fatalf("issued %+v, want BAN-1's invoice of 50.00", issued)
	}
}

func TestWaitForHonoursContext(t *testing.T) {
	log := testkit.Log(t, testkit.StartStore(t, eventstore.Config{}).URL())
	r := runner.New(log, runner.Options{})
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// Not running: it never catches up, so the wait ends with the context.
	if err := r.WaitFor(c, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor = %v, want the context's deadline", err)
	}
}
