// Package clock is Ledger's cycle clock (docs/architecture.md, "Cycles and
// the clock"): it closes the
// reseller's billing cycle of a month at 00:00 UTC on the 1st of the next
// month, and finalizes the vendor cycle of that month at 00:00 UTC on the
// 10th.
//
// It publishes the cycle events through the same subjects as everyone else,
// so they are validated, ordered and stored like any other message, with
// event ids and times derived from the month alone: two clocks, or a clock
// and a restart, publish the very same message, which the store takes once.
//
// The clock keeps a running ledger's cycles moving; it never starts one and
// never backfills. It closes the previous month only when the month before
// it is the latest closed one, so the first close of a ledger is a person's
// decision (ledgerctl cycle close) and history is closed by hand.
package clock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/services/wire"
)

// Cycles tells the clock where the billing cycles stand; the projection
// runner implements it, answering once caught up.
type Cycles interface {
	// Read gives fn the projection, as the runner's Read does.
	Read(fn func(p *billing.Projection) error) (uint64, error)
	// WaitFor waits until the projection has replayed the history.
	WaitFor(ctx context.Context, pos uint64) error
}

// Config configures the clock. Publish and Cycles are required.
type Config struct {
	Cycles  Cycles
	Publish func(ctx context.Context, msg proto.Message) error
	// Now is the time source; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Clock runs the schedule.
type Clock struct{ cfg Config }

// New returns a Clock; Run starts it.
func New(cfg Config) *Clock {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Clock{cfg: cfg}
}

// Run acts once the projections have caught up (a restart after a boundary
// catches up with the previous month), then at every boundary until ctx
// ends.
func (c *Clock) Run(ctx context.Context) error {
	if err := c.cfg.Cycles.WaitFor(ctx, 0); err != nil {
		return nil // ctx ended
	}
	for {
		published, err := c.Tick(ctx)
		// The wait is measured on the clock's own time source: with Now
		// other than time.Now (a clock set to another instant), a wait
		// measured from the machine's time would be negative (the clock
		// ticking without pause) or years long (never ticking again).
		now := c.cfg.Now()
		wait := NextBoundary(now).Sub(now)
		switch {
		case err != nil && ctx.Err() == nil:
			c.cfg.Logger.Error("clock: tick failed; retrying", "err", err, "in", retryWait)
			wait = retryWait
		case published:
			// Something else may be due once this is applied (a close and
			// then its finalization): look again soon.
			wait = retryWait
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// retryWait is how soon the clock looks again after publishing or failing.
const retryWait = 30 * time.Second

// NextBoundary is the next 00:00 UTC on the 1st or the wire.FinalizeDay after t.
func NextBoundary(t time.Time) time.Time {
	t = t.UTC()
	month := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	if finalize := month.AddDate(0, 0, wire.FinalizeDay-1); t.Before(finalize) {
		return finalize
	}
	return month.AddDate(0, 1, 0)
}

// Tick does what is due at time Now: the close of the previous month if the
// ledger is live and that close is next, or else its finalization from the
// FinalizeDay on. It reports whether it published anything.
func (c *Clock) Tick(ctx context.Context) (bool, error) {
	now := c.cfg.Now().UTC()
	prev := calendar.Of(now) - 1
	var closeDue, finalizeDue bool
	_, err := c.cfg.Cycles.Read(func(p *billing.Projection) error {
		// The latest closed month is prev-1 exactly when prev-1 counts as
		// already closed and prev may close.
		closeDue = errors.Is(p.CanClose(prev-1), billing.ErrAlreadyClosed) && p.CanClose(prev) == nil
		finalizeDue = now.Day() >= wire.FinalizeDay && p.CanFinalize(prev) == nil
		return nil
	})
	switch {
	case err != nil:
		return false, err
	case closeDue:
		return true, c.publish(ctx, wire.CloseMessage(wire.SourceClock, prev))
	case finalizeDue:
		return true, c.publish(ctx, wire.FinalizeMessage(wire.SourceClock, prev))
	}
	return false, nil
}

func (c *Clock) publish(ctx context.Context, msg proto.Message) error {
	if err := c.cfg.Publish(ctx, msg); err != nil {
		return fmt.Errorf("clock: publish %s: %w", msg.ProtoReflect().Descriptor().Name(), err)
	}
	c.cfg.Logger.Info("clock: published", "message", msg.ProtoReflect().Descriptor().Name(), "event_id", msg.(interface{ GetEventId() string }).GetEventId())
	return nil
}
