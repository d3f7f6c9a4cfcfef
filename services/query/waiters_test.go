package query_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// TestWaitersAreBounded holds 10,000 calls waiting for a position that
// will not come: the next one is RESOURCE_EXHAUSTED at once, naming
// min_position, and a call with nothing to wait for is still answered.
func TestWaitersAreBounded(t *testing.T) {
	r := newRig(t, rigOptions{})
	const waiters = 10_000
	far := &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: 1 << 50}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range waiters {
		wg.Go(func() { _, _ = r.svc.GetInvoice(ctx, far) })
	}
	defer func() {
		cancel()
		wg.Wait()
	}()

	// Probing before all of them wait would take a slot one of them needs.
	testkit.Eventually(t, "10,000 calls waiting", func() error {
		if n := r.svc.Waiting(); n != waiters {
			return fmt.Errorf("%d waiting", n)
		}
		return nil
	})
	// Refused, not waited on: a wait would end DEADLINE_EXCEEDED.
	_, last := r.svc.GetInvoice(ctx, far)
	if !errors.Is(wire.FromStatus(last), wire.ReasonTooManyWaiters) {
		t.Errorf("%v: not %s", last, wire.ReasonTooManyWaiters)
	}
	wantStatus(t, last, codes.ResourceExhausted, "TOO_MANY_WAITERS", "min_position 1125899906842624 is not reached yet, and 10000 calls already wait for theirs; retry later")
	// A call that need not wait takes no slot.
	_, err := r.svc.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("a call at the current position: %v, want NOT_FOUND (no such BAN)", err)
	}
}
