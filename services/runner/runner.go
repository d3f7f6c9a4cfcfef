// Package runner feeds the billing projection from the event store and
// shares it with its readers. It is the service that stands between the
// store (reached through services/eventlog) and the pure rules of
// projections/billing; see docs/architecture.md, "The layers".
//
// The runner follows $all with the event-type filter "billing.v1.", applies
// each event at its position, and keeps the position it has reached, so that
// readers can wait for their own writes (read-your-writes) and /readyz can
// say when the history has been replayed. After a drop it subscribes again
// from that position, so every event is applied once, in log order.
//
// An event that breaks an invariant of the rules (the fold panics) halts
// the runner: it applies nothing more, logs the event (stream, id,
// position) and the invariant, reports them through Halted (so /readyz
// turns 503 with the reason), and keeps serving what it had applied. A
// restart would meet the same event again, so crashing would only turn one
// bad event into a crash loop with no diagnosis.
//
// Snapshots (snapshot.go): with Options.SnapshotDir set, Run first loads
// the newest valid snapshot and follows the log from its position, writes
// one every SnapshotEvery events, and one more when it stops.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/document"
	"github.com/ledger-billing/ledger/services/audit"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/retry"
)

// Options configures a Runner. The zero value works.
type Options struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the runner's metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnApplied, if set, is called after each event that issued invoices
	// or froze vendor views, outside the lock, in log order.
	OnApplied func(billing.Applied)
	// SnapshotDir is where snapshots are kept (services/snapshot); empty:
	// none are loaded or written, and every start replays the history.
	SnapshotDir string
	// SnapshotEvery is how many events are applied between two snapshots;
	// 0 writes none but the one when Run stops.
	SnapshotEvery int
	// SnapshotSections are the runner's users' own parts of the state, by
	// name, saved in and restored from every snapshot with the projection
	// (see Section).
	SnapshotSections map[string]Section
}

// Runner holds the projection.
type Runner struct {
	log       *eventlog.Log
	logger    *slog.Logger
	onApplied func(billing.Applied)
	metrics   metrics
	snap      snapshots // used by Run's goroutines only

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
	halt     *HaltError
	changed  chan struct{}

	outage retry.Outage // of the store subscription

	// chain is the seal chain over the events followed (services/audit),
	// advanced as they are applied, whatever the rules made of them: it
	// is about the history. A snapshot holds it (section "audit-chain").
	chainMu sync.Mutex
	chain   audit.Chain
}

// Chain returns the seal chain over the billing events received so far.
func (r *Runner) Chain() audit.State {
	r.chainMu.Lock()
	defer r.chainMu.Unlock()
	return r.chain.State()
}

// Outage reports how long the subscription to the store has kept
// dropping, and why; zero and nil while it delivers.
func (r *Runner) Outage() (time.Duration, error) { return r.outage.For() }

// HaltError says which event halted the runner and why.
type HaltError struct {
	Position uint64 // the event's $all position
	Stream   string
	EventID  string // the store's event id
	Type     string
	Cause    string // the invariant broken, as the fold said it
}

func (e *HaltError) Error() string {
	return fmt.Sprintf("runner: projections halted at position %d, event %s of stream %s (%s): %s", e.Position, e.EventID, e.Stream, e.Type, e.Cause)
}

// applyEvent is the fold's Apply; a test replaces it to break an invariant
// on purpose, which no valid history can do.
var applyEvent = (*billing.Projection).Apply

// newProjection returns an empty projection that checks the digest of
// every DocumentIssued it applies.
func newProjection() *billing.Projection {
	p := billing.New()
	p.CheckDigests(document.DigestOf)
	return p
}

// New returns a Runner over log; Run starts it.
func New(log *eventlog.Log, opts Options) *Runner {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		log:       log,
		logger:    logger,
		onApplied: opts.OnApplied,
		metrics:   newMetrics(opts.Registerer),
		snap:      snapshots{dir: opts.SnapshotDir, every: opts.SnapshotEvery, sections: maps.Clone(opts.SnapshotSections)},
		proj:      newProjection(),
		changed:   make(chan struct{}),
	}
	if r.snap.sections == nil {
		r.snap.sections = map[string]Section{}
	}
	r.snap.sections[chainSection] = Section{Save: r.saveChain, Load: r.loadChain}
	return r
}

// chainSection is the snapshot section of the seal chain.
const chainSection = "audit-chain"

func (r *Runner) saveChain() ([]byte, error) {
	return json.Marshal(r.Chain())
}

func (r *Runner) loadChain(data []byte) error {
	r.chainMu.Lock()
	defer r.chainMu.Unlock()
	if data == nil {
		r.chain = audit.Chain{}
		return nil
	}
	var st audit.State
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	if !r.chain.Restore(st) {
		return fmt.Errorf("runner: the seal chain's value %q is not 32 bytes of hex", st.Value)
	}
	return nil
}

// Run follows the log until ctx ends.
//
// Decoding and applying are two stages: the subscription's goroutine
// receives and decodes the next events while another applies the ones
// before, in order, so a replay uses both of a small machine's cores.
//
// With a snapshot directory it first loads the newest valid snapshot (the
// position it reflects stays "replaying" for /readyz until the log's live
// end is reached from there), and when it stops, unless halted, it writes
// one.
func (r *Runner) Run(ctx context.Context) error {
	start := time.Now()
	from := r.restore(ctx)
	follow, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	decoded := make(chan decodedDelivery, decodedQueueLen)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for d := range decoded {
			if r.Halted() != nil {
				continue // drain what was decoded ahead; apply nothing more
			}
			if d.link != nil {
				// In the apply goroutine, so that a snapshot's chain is
				// the chain through the last event applied.
				r.chainMu.Lock()
				r.chain.AddLink(d.link, d.event.Position)
				r.chainMu.Unlock()
			}
			if d.event != nil && !r.apply(d.event, d.msg, d.err) {
				stopFollowing()
				continue
			}
			r.advance(d.pos, d.caughtUp, start)
			if d.event != nil {
				r.snapshotEvery()
			}
		}
	}()
	err := r.log.Follow(follow, eventlog.FollowOptions{From: from, TypePrefix: billing.EventTypePrefix, Outage: &r.outage}, func(d eventlog.Delivery) error {
		dd := decodedDelivery{event: d.Event, pos: d.Position, caughtUp: d.CaughtUp}
		if d.Event != nil {
			dd.msg, dd.err = decode(d.Event)
			if audit.Chained(d.Event.Type) {
				// The hash of the data, the link's cost, beside the fold.
				dd.link = audit.Link(nil, d.Event.Stream, d.Event.ID, d.Event.Type, d.Event.Data)
			}
		}
		select {
		case decoded <- dd:
			return nil
		case <-follow.Done():
			return follow.Err()
		}
	})
	close(decoded)
	<-applied
	if r.Halted() == nil {
		r.snapshotOnStop()
	}
	if r.Halted() != nil {
		// Keep serving what was applied until the daemon stops: a halted
		// runner is not a failed component, or ledgerd would exit and
		// replay into the same event.
		<-ctx.Done()
		return nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// decode returns the event's message: the one ingestion of this process
// validated and appended, when the log hands it over (about a tenth of
// ledgerd's CPU while ingesting usage is a second decode otherwise), or
// the event's data decoded.
func decode(ev *eventlog.Recorded) (proto.Message, error) {
	if m, ok := ev.Decoded.(proto.Message); ok && string(m.ProtoReflect().Descriptor().FullName()) == ev.Type {
		return m, nil
	}
	return billing.Decode(ev.Type, ev.Data)
}

// decodedQueueLen bounds the events decoded ahead of the one applied.
const decodedQueueLen = 64

type decodedDelivery struct {
	link     []byte // the event's link of the seal chain, if it is one
	event    *eventlog.Recorded
	msg      proto.Message
	err      error // of decoding
	pos      uint64
	caughtUp bool
}

// apply folds one event; it reports false if the event halted the runner.
func (r *Runner) apply(ev *eventlog.Recorded, msg proto.Message, err error) bool {
	if err != nil {
		// Stored, so never lost; but no rule can use it. Ingestion validates
		// everything it appends, so this is someone else's write.
		r.logger.Error("runner: undecodable event skipped", "position", ev.Position, "stream", ev.Stream, "type", ev.Type, "err", err)
		r.metrics.refused.Inc()
		return true
	}
	applied, err := r.fold(ev.Position, msg)
	if broken := (*brokenInvariant)(nil); errors.As(err, &broken) {
		h := &HaltError{Position: ev.Position, Stream: ev.Stream, EventID: ev.ID.String(), Type: ev.Type, Cause: broken.cause}
		r.logger.Error("runner: an event broke an invariant of the billing rules; the projections stop here and keep serving what they had",
			"position", h.Position, "stream", h.Stream, "event_id", h.EventID, "type", h.Type, "invariant", h.Cause, "stack", broken.stack)
		r.metrics.halted.Set(1)
		r.posMu.Lock()
		r.halt = h
		close(r.changed)
		r.changed = make(chan struct{})
		r.posMu.Unlock()
		return false
	}
	switch {
	case errors.Is(err, billing.ErrStalePosition):
		return true
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
	return true
}

// brokenInvariant is a panic of the fold: a rule's invariant did not hold.
type brokenInvariant struct {
	cause string
	stack string
}

func (b *brokenInvariant) Error() string { return "runner: invariant broken: " + b.cause }

// fold applies msg under the write lock. A panic of the fold comes back as
// a *brokenInvariant, with the lock released, so that readers go on.
func (r *Runner) fold(pos uint64, msg proto.Message) (applied billing.Applied, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err = &brokenInvariant{cause: fmt.Sprint(p), stack: string(debug.Stack())}
		}
	}()
	return applyEvent(r.proj, pos, msg)
}

// Halted returns the *HaltError of the event that halted the runner, or
// nil while it runs.
func (r *Runner) Halted() error {
	r.posMu.Lock()
	defer r.posMu.Unlock()
	if r.halt == nil {
		return nil
	}
	return r.halt
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
		done, changed, halt := r.caughtUp && r.pos >= pos, r.changed, r.halt
		r.posMu.Unlock()
		if done {
			return nil
		}
		if halt != nil {
			// The position will never come; the caller's error says why.
			return fmt.Errorf("runner: waiting for position %d: %w", pos, halt)
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
	applied, refused                prometheus.Counter
	position, lag, caughtUp, halted prometheus.Gauge
	snapshotPosition, snapshotBytes prometheus.Gauge
	snapshotSeconds                 prometheus.Gauge
	snapshotsWritten                prometheus.Counter
	snapshotFailures                prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		applied:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_projection_events_total", Help: "Events applied to the billing projection."}),
		refused:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_projection_events_refused_total", Help: "Events the billing rules refused or could not decode."}),
		position: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_position", Help: "The $all position the projection reflects."}),
		lag:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_lag_seconds", Help: "Age of the last applied event when it was applied."}),
		caughtUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_caught_up", Help: "1 once the projection has replayed the history."}),
		halted:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_halted", Help: "1 once an event broke an invariant of the billing rules and the projection stopped applying."}),

		snapshotPosition: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_snapshot_position", Help: "The $all position of the last snapshot loaded at start or written since."}),
		snapshotBytes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_snapshot_bytes", Help: "Size of the last snapshot written."}),
		snapshotSeconds:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_snapshot_write_seconds", Help: "How long writing the last snapshot took (the projection's writers wait that long)."}),
		snapshotsWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_snapshots_written_total", Help: "Snapshots written."}),
		snapshotFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_snapshot_failures_total", Help: "Snapshots that could not be written."}),
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.refused, m.position, m.lag, m.caughtUp, m.halted,
			m.snapshotPosition, m.snapshotBytes, m.snapshotSeconds, m.snapshotsWritten, m.snapshotFailures)
	}
	return m
}
