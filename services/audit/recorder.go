package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/document"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/retry"
)

// Projections is what the recorder and the sealer need of the runner
// (services/runner).
type Projections interface {
	Read(fn func(*billing.Projection) error) (uint64, error)
	WaitFor(ctx context.Context, pos uint64) error
	Chain() State
}

// namespace is the UUIDv5 namespace of the audit's event ids.
var namespace = uuid.MustParse("6d3b2f0e-1c55-5b8a-8e0f-3a7d9c2b4e61")

// IssuedType is the event type of DocumentIssued.
var IssuedType = string((&billingv1.DocumentIssued{}).ProtoReflect().Descriptor().FullName())

// IssuedStream names the stream of a document's DocumentIssued.
func IssuedStream(view billing.View, ban, month string) string {
	return "issued-" + billing.ViewNames[view] + "-" + ban + "-" + month
}

// Metrics are the audit's counters.
type Metrics struct {
	Conflicts prometheus.Counter
	Seals     prometheus.Counter
}

// NewMetrics registers the audit's metrics with reg (none if nil).
func NewMetrics(reg prometheus.Registerer) Metrics {
	m := Metrics{
		Conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_audit_digest_conflicts_total",
			Help: "Documents this ledgerd issued with another digest than the DocumentIssued already in the history (another replica's): see ListExceptions.",
		}),
		Seals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_audit_seals_total",
			Help: "LogSealed events this ledgerd appended to the seal chain.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Conflicts, m.Seals)
	}
	return m
}

// Recorder appends a DocumentIssued for every document the projection
// issued that the history does not record yet. It asks the projection
// rather than following each close as it is applied: after a crash, or on
// a replica that was down, what is missing is found the same way, and a
// replay of the history records nothing twice.
type Recorder struct {
	log     *eventlog.Log
	proj    Projections
	logger  *slog.Logger
	metrics Metrics
	wake    chan struct{}
	// conflicts are the streams where the history holds another record
	// of a document than this ledgerd's: reported once, never retried
	// (the record there stays; ListExceptions lists it).
	conflicts map[string]bool
}

// conflictsMax bounds the conflicts remembered; past it, a conflict is
// reported again each time the recorder looks.
const conflictsMax = 10_000

// NewRecorder returns a Recorder; Run starts it.
func NewRecorder(log *eventlog.Log, proj Projections, metrics Metrics, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{log: log, proj: proj, logger: logger, metrics: metrics, wake: make(chan struct{}, 1), conflicts: map[string]bool{}}
}

// Wake asks the recorder to look now: the runner calls it when an event
// issued documents. It never blocks.
func (r *Recorder) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// recordEvery is how often the recorder looks without being woken: a
// wake lost to a crash costs at most this long.
const recordEvery = time.Minute

// Run records until ctx ends. It starts once the projections have caught
// up with the history, so that what the history already records is known.
func (r *Recorder) Run(ctx context.Context) {
	if err := r.proj.WaitFor(ctx, 0); err != nil {
		return
	}
	b := retry.New(0, 5*time.Second)
	t := time.NewTicker(recordEvery)
	defer t.Stop()
	for {
		if err := r.record(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("audit: recording issued documents failed; retrying", "err", err, "in", b.Next())
			if b.Wait(ctx) != nil {
				return
			}
			continue
		}
		b.Reset()
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// recordBatch bounds the documents recorded between two waits for the
// projection.
const recordBatch = 256

func (r *Recorder) record(ctx context.Context) error {
	for {
		var docs []*billing.Invoice
		if _, err := r.proj.Read(func(p *billing.Projection) error {
			docs = p.Unrecorded(recordBatch + len(r.conflicts))
			return nil
		}); err != nil {
			return err
		}
		docs = slices.DeleteFunc(docs, func(inv *billing.Invoice) bool {
			return r.conflicts[IssuedStream(inv.View, inv.BAN, inv.Month.String())]
		})
		if len(docs) == 0 {
			return nil
		}
		var last uint64
		for _, inv := range docs {
			// Documents are frozen once issued: the digest may be
			// computed outside the runner's lock.
			pos, err := r.recordOne(ctx, inv)
			if err != nil {
				return err
			}
			last = max(last, pos)
		}
		// The projection knows what was recorded once it has applied it.
		if err := r.proj.WaitFor(ctx, last); err != nil {
			return err
		}
	}
}

// recordOne appends the DocumentIssued of inv and returns its position, or
// that of the one already there.
func (r *Recorder) recordOne(ctx context.Context, inv *billing.Invoice) (uint64, error) {
	digest, err := document.DigestOf(inv)
	if err != nil {
		return 0, err
	}
	msg := &billingv1.DocumentIssued{
		Ban: inv.BAN, Month: inv.Month.String(), View: billing.ViewNames[inv.View],
		Total:  &billingv1.Money{Amount: money.Format(&inv.Total, inv.Currency), Currency: inv.Currency.Code()},
		Digest: digest, ThroughPosition: inv.Position,
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return 0, err
	}
	stream := IssuedStream(inv.View, inv.BAN, inv.Month.String())
	// The id depends on the stream and the digest alone: replicas that
	// agree append one event; one that disagrees meets a conflict.
	id := uuid.NewSHA1(namespace, []byte(stream+"\x00"+digest))
	a, err := r.log.Append(ctx, stream, eventlog.NoStream, eventlog.Event{ID: id, Type: IssuedType, Data: data})
	if err == nil {
		return a.Position, nil
	}
	if !errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		return 0, fmt.Errorf("record %s: %w", stream, err)
	}
	there, rerr := r.log.First(ctx, stream)
	if rerr != nil {
		return 0, fmt.Errorf("record %s: %w; reading what is there: %w", stream, err, rerr)
	}
	recorded := "?"
	if m, derr := billing.Decode(there.Type, there.Data); derr == nil {
		if di, ok := m.(*billingv1.DocumentIssued); ok {
			recorded = di.Digest
			if di.Digest == digest && di.ThroughPosition == inv.Position {
				// The same record under another event id (a ledgerd of
				// another version): it agrees, so nothing is wrong.
				return there.Position, nil
			}
		}
	}
	r.metrics.Conflicts.Inc()
	if len(r.conflicts) < conflictsMax {
		r.conflicts[stream] = true
	}
	r.logger.Error("audit: the history records another digest for a document this ledgerd issued; see ListExceptions (DIGEST_MISMATCH)",
		"stream", stream, "recorded", recorded, "computed", digest, "position", there.Position)
	return there.Position, nil
}
