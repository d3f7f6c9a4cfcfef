package runner

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// TestBrokenInvariantHalts makes the fold panic on one event, as a broken
// invariant of the rules does (no valid history can, so the test breaks it
// on purpose): the runner must name the event, stop applying, keep serving
// what it had, and end waits for later positions at once, with the reason.
func TestBrokenInvariantHalts(t *testing.T) {
	const poison = "org-poison"
	real := applyEvent
	applyEvent = func(p *billing.Projection, pos uint64, msg proto.Message) (billing.Applied, error) {
		if m, ok := msg.(*billingv1.OrganizationRegistered); ok && m.GetEventId() == poison {
			panic("billing: invariant broken: a test says so")
		}
		return real(p, pos, msg)
	}
	t.Cleanup(func() { applyEvent = real })

	store := testkit.StartStore(t, eventstore.Config{})
	log := testkit.Log(t, store.URL())
	ctx := testkit.Context(t, 30*time.Second)
	appendOrg := func(eventID, orgID string) (uint64, uuid.UUID) {
		t.Helper()
		data, err := proto.Marshal(&billingv1.OrganizationRegistered{EventId: eventID, OrgId: orgID, Name: orgID, Ban: "BAN-" + orgID, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		id := uuid.New()
		res, err := log.Append(ctx, "org-"+eventID, eventlog.NoStream, eventlog.Event{ID: id, Type: "billing.v1.OrganizationRegistered", Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return res.Position, id
	}
	good, _ := appendOrg("org-good", "good")
	bad, badID := appendOrg(poison, "poison")
	after, _ := appendOrg("org-after", "after")

	r := New(log, Options{})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()

	// A wait for the last event ends with the halt, not with the deadline.
	err := r.WaitFor(ctx, after)
	var halt *HaltError
	if !errors.As(err, &halt) {
		t.Fatalf("WaitFor(%d) = %v, want a *HaltError", after, err)
	}
	if halt.Position != bad || halt.EventID != badID.String() || halt.Stream != "org-"+poison || !strings.Contains(halt.Cause, "a test says so") {
		t.Errorf("halt = %+v, want position %d, event %s, stream org-%s and the invariant", halt, bad, badID, poison)
	}
	if !errors.Is(r.Halted(), halt) {
		t.Errorf("Halted() = %v, want %v", r.Halted(), halt)
	}
	// What was applied before the event is still served, and the lock the
	// panic interrupted is free.
	pos, err := r.Read(func(p *billing.Projection) error {
		if _, err := p.Currency("good"); err != nil {
			return err
		}
		if _, err := p.Currency("after"); !errors.Is(err, billing.ErrUnknownOrganization) {
			return errors.New("the event after the halt was applied")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pos < good || pos >= bad {
		t.Errorf("the projection reflects position %d, want the last good event's %d", pos, good)
	}
	// Halted is not a failure of the component: Run serves until stopped.
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while halted; it must keep serving", err)
	default:
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run after stop = %v", err)
	}
}
