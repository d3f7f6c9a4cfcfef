// Package runner feeds the billing projection from the event store and
// shares it with its readers. It is the one package under projections/ that
// reaches the store (through services/eventlog); the rules themselves, in
// projections/billing, stay pure.
//
// The runner follows $all with the event-type filter "billing.v1.", applies
// each event at its position, and keeps the position it has reached, so that
// readers can wait for their own writes (read-your-writes) and /readyz can
// say when the history has been replayed. After a drop it subscribes again
// from that position, so every event is applied once, in log order.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/services/eventlog"
)

// EventTypePrefix selects Ledger's events in $all.
const EventTypePrefix = "billing.v1."

// Options configures a Runner. The zero value works.
type Options struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the runner's metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnApplied, if set, is called after each event that issued invoices
	// or froze vendor views, outside the lock, in log order.
	OnApplied func(billing.Applied)
}

// Runner holds the projection.
type Runner struct {
	log       *eventlog.Log
	logger    *slog.Logger
	onApplied func(billing.Applied)
	metrics   metrics

	// mu guards proj: Run applies under the write lock, readers read under
	// the read lock. Lock order: mu before posMu; neither is held while
	// waiting on changed.
	mu   sync.RWMutex
	proj *billing.Projection

	// posMu guards the progress fields; changed is closed and replaced
	// whenever they move, so waiters need no polling.
	posMu    sync.Mutex
	pos      uint64 // the $all position the projection reflects
	caughtUp bool   // the live end of the log was reached at least once
	changed  chan struct{}
}

// New returns a Runner over log; Run starts it.
func New(log *eventlog.Log, opts Options) *Runner {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		log:       log,
		logger:    logger,
		onApplied: opts.OnApplied,
		metrics:   newMetrics(opts.Registerer),
		proj:      billing.New(),
		changed:   make(chan struct{}),
	}
}

// Run follows the log until ctx ends.
//
// Decoding and applying are two stages: the subscription's goroutine
// receives and decodes the next events while another applies the ones
// before, in order, so a replay uses both of a small machine's cores.
func (r *Runner) Run(ctx context.Context) error {
	start := time.Now()
	decoded := make(chan decodedDelivery, decodedQueueLen)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for d := range decoded {
			if d.event != nil {
				r.apply(d.event, d.msg, d.err)
			}
			r.advance(d.pos, d.caughtUp, start)
		}
	}()
	err := r.log.Follow(ctx, eventlog.FollowOptions{TypePrefix: EventTypePrefix}, func(d eventlog.Delivery) error {
		dd := decodedDelivery{event: d.Event, pos: d.Position, caughtUp: d.CaughtUp}
		if d.Event != nil {
			dd.msg, dd.err = billing.Decode(d.Event.Type, d.Event.Data)
		}
		select {
		case decoded <- dd:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(decoded)
	<-applied
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// decodedQueueLen bounds the events decoded ahead of the one applied.
const decodedQueueLen = 64

type decodedDelivery struct {
	event    *eventlog.Recorded
	msg      proto.Message
	err      error // of decoding
	pos      uint64
	caughtUp bool
}

func (r *Runner) apply(ev *eventlog.Recorded, msg proto.Message, err error) {
	if err != nil {
		// Stored, so never lost; but no rule can use it. Ingestion validates
		// everything it appends, so this is someone else's write.
		r.logger.Error("runner: undecodable event skipped", "position", ev.Position, "stream", ev.Stream, "type", ev.Type, "err", err)
		r.metrics.refused.Inc()
		return
	}
	r.mu.Lock()
	applied, err := r.proj.Apply(ev.Position, msg)
	r.mu.Unlock()
	switch {
	case errors.Is(err, billing.ErrStalePosition):
		return
	case err != nil:
		// Refused as a whole, the same way on every replay.
		r.logger.Warn("runner: event refused by the billing rules", "position", ev.Position, "stream", ev.Stream, "err", err)
		r.metrics.refused.Inc()
	default:
		r.metrics.applied.Inc()
	}
	r.metrics.lag.Set(time.Since(ev.Created).Seconds())
	if r.onApplied != nil && (len(applied.Issued) > 0 || len(applied.Finalized) > 0) {
		r.onApplied(applied)
	}
}

func (r *Runner) advance(pos uint64, caughtUp bool, start time.Time) {
	r.posMu.Lock()
	defer r.posMu.Unlock()
	moved := false
	if pos > r.pos {
		r.pos, moved = pos, true
		r.metrics.position.Set(float64(pos))
	}
	if caughtUp && !r.caughtUp {
		r.caughtUp, moved = true, true
		r.metrics.caughtUp.Set(1)
		r.logger.Info("runner: projections caught up", "position", r.pos, "replay", time.Since(start).Round(time.Millisecond))
	}
	if moved {
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

// Progress reports the position reached and whether the runner has caught
// up with the live end of the log.
func (r *Runner) Progress() (pos uint64, caughtUp bool) {
	r.posMu.Lock()
	defer r.posMu.Unlock()
	return r.pos, r.caughtUp
}

// WaitFor returns once the runner has caught up and passed position pos,
// or with ctx's error.
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	for {
		r.posMu.Lock()
		done, changed := r.caughtUp && r.pos >= pos, r.changed
		r.posMu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("runner: waiting for position %d: %w", pos, ctx.Err())
		}
	}
}

// Read calls fn with the projection under the read lock and returns the
// position fn's answers reflect. fn must not keep the projection, nor
// modify what it returns.
func (r *Runner) Read(fn func(p *billing.Projection) error) (uint64, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	pos, _ := r.Progress()
	return max(pos, r.proj.Position()), fn(r.proj)
}

// CheckClose reports, once the runner has passed position after, whether
// the billing cycle of month may close: nil also for a month already
// closed (appending it again is a no-op), billing.ErrOutOfOrder for one
// that skips a month.
func (r *Runner) CheckClose(ctx context.Context, month string, after uint64) error {
	return r.check(ctx, month, after, func(p *billing.Projection, m calendar.Month) error {
		if err := p.CanClose(m); !errors.Is(err, billing.ErrAlreadyClosed) {
			return err
		}
		return nil
	})
}

// CheckFinalize is CheckClose for VendorCycleFinalized:
// billing.ErrNotClosed before the month's close.
func (r *Runner) CheckFinalize(ctx context.Context, month string, after uint64) error {
	return r.check(ctx, month, after, func(p *billing.Projection, m calendar.Month) error {
		if err := p.CanFinalize(m); !errors.Is(err, billing.ErrAlreadyFinalized) {
			return err
		}
		return nil
	})
}

func (r *Runner) check(ctx context.Context, month string, after uint64, fn func(*billing.Projection, calendar.Month) error) error {
	m, err := calendar.Parse(month)
	if err != nil {
		return err
	}
	if err := r.WaitFor(ctx, after); err != nil {
		return err
	}
	_, err = r.Read(func(p *billing.Projection) error { return fn(p, m) })
	return err
}

type metrics struct {
	applied, refused        prometheus.Counter
	position, lag, caughtUp prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		applied:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_projection_events_total", Help: "Events applied to the billing projection."}),
		refused:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_projection_events_refused_total", Help: "Events the billing rules refused or could not decode."}),
		position: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_position", Help: "The $all position the projection reflects."}),
		lag:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_lag_seconds", Help: "Age of the last applied event when it was applied."}),
		caughtUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_caught_up", Help: "1 once the projection has replayed the history."}),
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.refused, m.position, m.lag, m.caughtUp)
	}
	return m
}
