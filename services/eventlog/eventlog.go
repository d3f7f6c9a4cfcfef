// Package eventlog is how the rest of Ledger reaches its event store: the
// embedded one (services/eventstore) or a KurrentDB cluster, always through
// the official client, so both take the same code path.
//
// It does a few things and no more: connect from a URL, append to a stream
// with an expected revision, read a stream's first event or all of $all, and
// follow $all from a checkpoint, subscribing again from the last position
// reached whenever the subscription drops. The client itself stays inside:
// every use of the store goes through these methods, so there is one place
// to read to know what Ledger asks of its store.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/services/retry"
	"github.com/ledger-billing/ledger/services/secret"
)

// Errors of the log. Each wraps the client's error, so its text stays.
var (
	ErrWrongExpectedVersion = errors.New("eventlog: wrong expected version")
	ErrStreamDeleted        = errors.New("eventlog: stream deleted")
	ErrStreamNotFound       = errors.New("eventlog: stream not found")
)

// Log is a connection to an event store.
type Log struct {
	client *esdb.Client
	log    *slog.Logger
	signer Signer

	// What appenders decoded, for the followers of this Log; kept only
	// while someone follows.
	handoff   handoff
	followers atomic.Int32
}

// Signer signs what Ledger appends (services/audit): given an event about
// to be appended, it returns the event's custom metadata. It must be
// deterministic, so that a retried append carries the same bytes.
type Signer interface {
	Sign(stream string, id uuid.UUID, eventType string, data []byte) []byte
}

// SignWith makes every later Append sign its events with s. Call it before
// the Log is shared.
func (l *Log) SignWith(s Signer) { l.signer = s }

// Dial connects to the store at url, a KurrentDB connection string such as
// "esdb://127.0.0.1:2113?tls=false". The connection itself is made lazily by
// the client, on first use. A nil logger discards logs.
func Dial(url string, logger *slog.Logger) (*Log, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conf, err := esdb.ParseConnectionString(url)
	if err != nil {
		// The parser's error may quote the URL, password and all: only
		// its text goes on, redacted.
		return nil, fmt.Errorf("eventlog: connection string %q: %s", secret.Redact(url), secret.Redact(err.Error(), url))
	}
	conf.Logger = func(level esdb.LogLevel, format string, args ...any) {
		// The client logs every failed call as an error; callers see and
		// handle those errors themselves, so they are debug noise here.
		logger.Debug("eventlog: client: "+fmt.Sprintf(format, args...), "level", level)
	}
	client, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("eventlog: client: %w", err)
	}
	return &Log{client: client, log: logger}, nil
}

// Close closes the connection.
func (l *Log) Close() error { return l.client.Close() }

// Event is an event to append.
type Event struct {
	ID   uuid.UUID
	Type string
	Data []byte
	// Decoded, if set, is what Data decodes to, never sent to the store:
	// a Follow of the same Log delivers it with the event
	// (Recorded.Decoded), so the follower need not decode Data again. It
	// must not be changed after the append.
	Decoded any
}

// Revision says what a stream must hold for an append to go ahead.
type Revision = esdb.ExpectedRevision

// Expected revisions, named as KurrentDB names them.
var (
	NoStream     Revision = esdb.NoStream{}
	Any          Revision = esdb.Any{}
	StreamExists Revision = esdb.StreamExists{}
)

// AtRevision expects the stream's last event to be at revision r.
func AtRevision(r uint64) Revision { return esdb.Revision(r) }

// Appended is where an append left its stream.
type Appended struct {
	Revision uint64 // of the stream's last event
	Position uint64 // $all commit position of the append
}

// Append appends events to stream if it is at the expected revision. A
// retry of an append that already happened succeeds with the original
// result (the store's idempotency check); a conflict is
// ErrWrongExpectedVersion.
func (l *Log) Append(ctx context.Context, stream string, expected Revision, events ...Event) (Appended, error) {
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeBinary, Data: e.Data}
		if l.signer != nil {
			data[i].Metadata = l.signer.Sign(stream, e.ID, e.Type, e.Data)
		}
		// Before the append: a follower may receive the event before
		// AppendToStream returns.
		if e.Decoded != nil && l.followers.Load() > 0 {
			l.handoff.put(stream, e.ID, e.Data, e.Decoded)
		}
	}
	res, err := l.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, data...)
	if err != nil {
		for _, e := range events {
			if e.Decoded != nil {
				l.handoff.drop(stream, e.ID)
			}
		}
		return Appended{}, fmt.Errorf("append to %s: %w", stream, classify(err))
	}
	return Appended{Revision: res.NextExpectedVersion, Position: res.CommitPosition}, nil
}

func classify(err error) error {
	var e *esdb.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("%w: %v", ErrWrongExpectedVersion, err)
		case esdb.ErrorCodeStreamDeleted:
			return fmt.Errorf("%w: %v", ErrStreamDeleted, err)
		case esdb.ErrorCodeResourceNotFound:
			return fmt.Errorf("%w: %v", ErrStreamNotFound, err)
		}
	}
	return err
}

// First reads the first event of a stream: ErrStreamNotFound if it has
// none, ErrStreamDeleted if it was deleted.
func (l *Log) First(ctx context.Context, stream string) (Recorded, error) {
	return l.readOne(ctx, stream, esdb.ReadStreamOptions{})
}

// Latest reads the last event of a stream, with First's errors.
func (l *Log) Latest(ctx context.Context, stream string) (Recorded, error) {
	return l.readOne(ctx, stream, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards})
}

func (l *Log) readOne(ctx context.Context, stream string, opts esdb.ReadStreamOptions) (Recorded, error) {
	rs, err := l.client.ReadStream(ctx, stream, opts, 1)
	if err != nil {
		return Recorded{}, fmt.Errorf("read %s: %w", stream, classify(err))
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return Recorded{}, fmt.Errorf("read %s: %w", stream, ErrStreamNotFound)
	}
	if err != nil {
		return Recorded{}, fmt.Errorf("read %s: %w", stream, classify(err))
	}
	return recorded(ev.Event), nil
}

// Last returns the $all position of the last event whose type starts with
// typePrefix, reading backwards from the end; 0 if there is none.
func (l *Log) Last(ctx context.Context, typePrefix string) (uint64, error) {
	rs, err := l.client.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, math.MaxInt64)
	if err != nil {
		return 0, fmt.Errorf("read $all backwards: %w", err)
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read $all backwards: %w", err)
		}
		if strings.HasPrefix(ev.Event.EventType, typePrefix) {
			return ev.Event.Position.Commit, nil
		}
	}
}

// ReadAll reads $all from the start to its end as it is now, calling fn
// for each event in order, and returns how many it read. An error of fn
// ends the read and is returned.
func (l *Log) ReadAll(ctx context.Context, fn func(Recorded) error) (int, error) {
	rs, err := l.client.ReadAll(ctx, esdb.ReadAllOptions{}, math.MaxInt64)
	if err != nil {
		return 0, fmt.Errorf("read $all: %w", err)
	}
	defer rs.Close()
	n := 0
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read $all: %w", err)
		}
		if err := fn(recorded(ev.Event)); err != nil {
			return n, err
		}
		n++
	}
}

// ReadStream reads a stream from its first event to its last, calling fn
// for each in order: ErrStreamNotFound if it has none.
func (l *Log) ReadStream(ctx context.Context, stream string, fn func(Recorded) error) error {
	rs, err := l.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, classify(err))
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, classify(err))
		}
		if err := fn(recorded(ev.Event)); err != nil {
			return err
		}
	}
}

// Recorded is an event read from the log.
type Recorded struct {
	Position uint64
	Stream   string
	Revision uint64
	ID       uuid.UUID
	Type     string
	Data     []byte
	// Metadata is the event's custom metadata: a Signer's signature, for
	// the events Ledger appended.
	Metadata []byte
	Created  time.Time
	// Decoded is what this process's appender decoded Data to
	// (Event.Decoded), when the event was appended through the same Log
	// and the follower receives it soon after; nil otherwise. Only Follow
	// sets it. Read it, never change it: the appender may still hold it.
	Decoded any
}

// Delivery is one thing Follow hands its callback: an event, or news that
// the subscription has passed a position without matching events
// (a checkpoint) or has caught up with the live end of the log.
type Delivery struct {
	Event    *Recorded // nil for a checkpoint or a caught-up notice
	Position uint64    // the position reached; 0 before any
	CaughtUp bool
}

// Follow options. The zero value follows every event from the start.
type FollowOptions struct {
	// From is the checkpoint: delivery starts strictly after it; 0 means
	// from the start of the log.
	From uint64
	// TypePrefix, if set, delivers only events whose type starts with it.
	TypePrefix string
	// RetryMax bounds the wait between resubscriptions; default 5 s.
	RetryMax time.Duration
	// Outage, if set, records the subscription's drops and is cleared
	// once a subscription delivers again, for readiness.
	Outage *retry.Outage
}

// Follow subscribes to $all and calls fn for every delivery, in order, until
// ctx ends or fn returns an error (which Follow returns). When the
// subscription drops it subscribes again from the last position delivered,
// with backoff, so fn sees every event once and in order.
func (l *Log) Follow(ctx context.Context, opts FollowOptions, fn func(Delivery) error) error {
	l.followers.Add(1)
	defer l.followers.Add(-1)
	retryMax := opts.RetryMax
	if retryMax <= 0 {
		retryMax = 5 * time.Second
	}
	pos := opts.From
	backoff := retry.New(0, retryMax)
	// An outage is cleared on the first delivery after a drop: checking a
	// flag per event costs a replay nothing, a mutex per event would.
	dropped := false
	deliver := func(d Delivery) error {
		if dropped {
			dropped = false
			opts.Outage.Clear()
		}
		return fn(d)
	}
	for {
		progressed, err := l.followOnce(ctx, opts.TypePrefix, &pos, deliver)
		var stop *callbackError
		if errors.As(err, &stop) {
			return stop.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if progressed {
			backoff.Reset()
		}
		if opts.Outage != nil {
			opts.Outage.Fail(err)
			dropped = true
		}
		l.log.Warn("eventlog: subscription dropped; subscribing again", "from", pos, "err", err, "in", backoff.Next())
		if err := backoff.Wait(ctx); err != nil {
			return err
		}
	}
}

// callbackError marks an error of the caller's callback, which ends Follow,
// apart from the subscription's own, which make it subscribe again.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

func (l *Log) followOnce(ctx context.Context, prefix string, pos *uint64, fn func(Delivery) error) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := esdb.SubscribeToAllOptions{From: esdb.Start{}}
	if *pos > 0 {
		opts.From = esdb.Position{Commit: *pos, Prepare: *pos}
	}
	if prefix != "" {
		opts.Filter = &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{prefix}}
	}
	sub, err := l.client.SubscribeToAll(ctx, opts)
	if err != nil {
		return false, err
	}
	defer sub.Close()
	for {
		ev := sub.Recv()
		var d Delivery
		switch {
		case ev.SubscriptionDropped != nil:
			return progressed, ev.SubscriptionDropped.Error
		case ev.EventAppeared != nil:
			rec := recorded(ev.EventAppeared.Event)
			rec.Decoded = l.handoff.take(&rec)
			d.Event = &rec
			d.Position = rec.Position
		case ev.CheckPointReached != nil:
			if ev.CheckPointReached.Commit <= *pos {
				continue // nothing new: a checkpoint never moves us back
			}
			d.Position = ev.CheckPointReached.Commit
		case ev.CaughtUp != nil:
			d.Position, d.CaughtUp = *pos, true
		default:
			continue // fell behind: the server keeps sending, nothing to do
		}
		if d.Position < *pos {
			panic(fmt.Sprintf("eventlog: position going backwards from %d to %d", *pos, d.Position))
		}
		if err := fn(d); err != nil {
			return progressed, &callbackError{err}
		}
		if d.Position > *pos {
			*pos, progressed = d.Position, true
		}
	}
}

func recorded(ev *esdb.RecordedEvent) Recorded {
	return Recorded{
		Position: ev.Position.Commit,
		Stream:   ev.StreamID,
		Revision: ev.EventNumber,
		ID:       ev.EventID,
		Type:     ev.EventType,
		Data:     ev.Data,
		Metadata: ev.UserMetadata,
		Created:  ev.CreatedDate,
	}
}
