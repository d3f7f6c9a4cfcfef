package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
)

// Seal cadence (DESIGN.md section 12): after every SealEvents billing
// events, or SealInterval after the last seal if there are new ones.
const (
	SealEvents   = 10_000
	SealInterval = 60 * time.Second
)

// Sealer appends LogSealed events to stream "seal". Every replica runs
// one; each appends at the expected revision of the last seal it read, so
// when two race one wins and the other finds the chain already sealed
// further, or seals after it: the chain never forks.
type Sealer struct {
	log      *eventlog.Log
	proj     Projections
	logger   *slog.Logger
	metrics  Metrics
	events   uint64
	interval time.Duration
	poll     time.Duration
}

// NewSealer returns a Sealer with the cadence of DESIGN.md; Run starts it.
func NewSealer(log *eventlog.Log, proj Projections, metrics Metrics, logger *slog.Logger) *Sealer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sealer{log: log, proj: proj, logger: logger, metrics: metrics, events: SealEvents, interval: SealInterval, poll: time.Second}
}

// Interval sets how long after the last seal the log is sealed again if
// it has new events; call it before Run.
func (s *Sealer) Interval(d time.Duration) {
	s.interval = d
	s.poll = min(s.poll, d)
}

// Run seals until ctx ends, once the projections have caught up.
func (s *Sealer) Run(ctx context.Context) {
	if err := s.proj.WaitFor(ctx, 0); err != nil {
		return
	}
	t := time.NewTicker(s.poll)
	defer t.Stop()
	var sealed uint64 // events covered by the last seal this sealer knows of
	known := false
	var last time.Time // the zero time: look at once
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.proj.Chain()
		due := known && st.Events >= sealed+s.events || time.Since(last) >= s.interval
		if !due {
			continue
		}
		n, err := s.Seal(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("audit: sealing the log failed; trying again later", "err", err)
			}
			continue
		}
		sealed, known, last = n, true, time.Now()
	}
}

// Seal appends a seal of the chain as the runner has it, unless the last
// seal covers as much already, and returns how many events the last seal
// covers.
func (s *Sealer) Seal(ctx context.Context) (uint64, error) {
	st := s.proj.Chain()
	expected := eventlog.NoStream
	last, err := s.log.Latest(ctx, SealStream)
	switch {
	case errors.Is(err, eventlog.ErrStreamNotFound):
	case err != nil:
		return 0, err
	default:
		m, err := billing.Decode(last.Type, last.Data)
		seal, ok := m.(*billingv1.LogSealed)
		if err != nil || !ok {
			return 0, fmt.Errorf("the last event of stream %s (revision %d) is no LogSealed", SealStream, last.Revision)
		}
		if st.Events <= seal.Events {
			return seal.Events, nil // sealed as far or further already
		}
		expected = eventlog.AtRevision(last.Revision)
	}
	if st.Events == 0 {
		return 0, nil
	}
	msg := &billingv1.LogSealed{ThroughPosition: st.Position, Events: st.Events, Chain: st.Value}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return 0, err
	}
	id := uuid.NewSHA1(namespace, []byte(SealStream+"\x00"+strconv.FormatUint(st.Events, 10)+"\x00"+st.Value))
	_, err = s.log.Append(ctx, SealStream, expected, eventlog.Event{ID: id, Type: SealType, Data: data})
	if errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		return 0, fmt.Errorf("another ledgerd sealed first: %w", err)
	}
	if err != nil {
		return 0, err
	}
	s.metrics.Seals.Inc()
	s.logger.Info("audit: log sealed", "events", st.Events, "through", st.Position, "chain", st.Value)
	return st.Events, nil
}
