package ctl

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// CloseMessage is ledgerctl's BillingCycleClosed for month m. Its event_id
// and closed_at depend on m alone, as the clock's do, so closing a month
// twice, or after the clock did, changes nothing. closed_at is the end of
// the month, when its billing cycle is due to close.
func CloseMessage(m calendar.Month) *billingv1.BillingCycleClosed {
	return wire.CloseMessage(wire.SourceLedgerctl, m)
}

// FinalizeMessage is ledgerctl's VendorCycleFinalized for month m, with the
// clock's finalized_at (00:00 UTC on the 10th of the next month).
func FinalizeMessage(m calendar.Month) *billingv1.VendorCycleFinalized {
	return wire.FinalizeMessage(wire.SourceLedgerctl, m)
}

// endedMonth reads a month argument, which must have ended: an invoice
// issued while its month still runs would miss the rest of the month's
// charges, and an issued invoice is never reissued.
func (c *Client) endedMonth(command, text string) (calendar.Month, error) {
	if text == "" {
		return 0, usage("%s needs a month written YYYY-MM", command)
	}
	m, err := calendar.Parse(text)
	if err != nil {
		return 0, usage("%s: %q is not a month written YYYY-MM", command, text)
	}
	if now := c.cfg.Now(); now.Before(m.End()) {
		return 0, usage("%s: %s has not ended: it runs until %s", command, m, m.End().UTC().Format(time.RFC3339))
	}
	return m, nil
}

// CloseCycle closes the billing cycle of a month: the month's invoices are
// issued. It returns once ledgerd has stored the close and its projections
// have applied it, so a query made next sees the issued invoices, or with
// the reason it refused it (cycles close in month order).
func (c *Client) CloseCycle(ctx context.Context, monthText string) error {
	m, err := c.endedMonth("cycle close", monthText)
	if err != nil {
		return err
	}
	msg := CloseMessage(m)
	if err := c.publishAll(ctx, msg); err != nil {
		return err
	}
	return c.reportCycle(msg, fmt.Sprintf("Closed the billing cycle of %s: its invoices are issued as of %s.",
		m, msg.GetClosedAt().AsTime().UTC().Format(time.RFC3339)))
}

// FinalizeCycle finalizes the vendor cycle of a month: its vendor cycle
// view becomes available. The month's billing cycle must be closed.
func (c *Client) FinalizeCycle(ctx context.Context, monthText string) error {
	m, err := c.endedMonth("cycle finalize", monthText)
	if err != nil {
		return err
	}
	msg := FinalizeMessage(m)
	if err := c.publishAll(ctx, msg); err != nil {
		return err
	}
	return c.reportCycle(msg, fmt.Sprintf("Finalized the vendor cycle of %s: its vendor cycle view is available.", m))
}

func (c *Client) reportCycle(msg proto.Message, text string) error {
	if c.cfg.JSON {
		return c.printJSON(msg)
	}
	_, err := fmt.Fprintf(c.cfg.Out, "%s\nledgerd has stored and applied %s.\n", text, describe(msg))
	return err
}

// publishAll publishes messages in order and waits until ledgerd has
// ingested them all, or refused some.
func (c *Client) publishAll(ctx context.Context, msgs ...proto.Message) error {
	p, err := c.publication(ctx)
	if err != nil {
		return err
	}
	for _, msg := range msgs {
		if err := p.publish(ctx, msg); err != nil {
			return err
		}
	}
	return p.await(ctx, nil)
}
