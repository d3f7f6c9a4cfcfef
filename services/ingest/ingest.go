// Package ingest moves billing messages from NATS JetStream into the event
// store, exactly once (docs/architecture.md, "Ingestion and dead letters").
//
// A durable pull consumer on BILLING_IN hands over messages in bounded
// batches. Each is decoded (protobuf or protojson), validated field by
// field, and appended as one event to its own stream with expected revision
// no_stream and a content-derived event id, so that a redelivery is an
// idempotent append and a reuse of an event_id with other content is a
// conflict. A message is acknowledged only once its event is durable (or
// found already there). Bad input is republished byte for byte to
// billing.dlq.<message> with Billing-Error and Billing-Error-Code headers and
// then acknowledged, so one bad message never holds back the rest; store
// outages are retried with bounded backoff and never drop anything.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/retry"
	"github.com/ledger-billing/ledger/services/wire"
)

// Cycles is what ingestion asks before appending a cycle event. The
// implementation first waits until the projections have passed position
// after (the last append of this ingester), so that a close appended a
// moment ago counts. billing.ErrOutOfOrder and billing.ErrNotClosed refuse
// the message; any other error is retried.
type Cycles interface {
	CheckClose(ctx context.Context, month string, after uint64) error
	CheckFinalize(ctx context.Context, month string, after uint64) error
}

// Config configures an Ingester. JetStream and Log are required.
type Config struct {
	JetStream jetstream.JetStream
	Log       *eventlog.Log
	// Cycles guards cycle order; nil accepts every close and finalization.
	Cycles Cycles
	// Applied, if set, returns once the projections have applied the event
	// at a $all position (the runner's WaitFor). A message is then
	// acknowledged only after that, not just after its append: a publisher
	// that waits for the acknowledgement (ledgerctl does) reads its own
	// write in the next query. nil acknowledges on the durable append.
	Applied func(ctx context.Context, pos uint64) error
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics; nil counts nothing.
	Metrics *Metrics
	// Consumer is the durable consumer's name; default wire.Consumer, which
	// ledgerctl watches to know what ledgerd has taken.
	Consumer string
	// BatchMax bounds the messages fetched at once; default 64.
	BatchMax int
	// InFlightMax bounds the messages handled at once; default 16. Each
	// holds its message, up to 10,000 decoded records, until the
	// projections have applied it; 16 of 1,000 records keep the store's
	// group commit and the projections busy (32, and batches of 256, only
	// added memory: 90 MB more at the peak, for no more records/s).
	InFlightMax int
	// RetryMax bounds the wait between retries of a store outage; default 5 s.
	RetryMax time.Duration
	// Now is ledgerd's clock, by which a month must have ended before it
	// closes; nil is time.Now.
	Now func() time.Time
	// ClockSkew is how far ahead of Now a publisher's clock may run: a
	// close published at 23:59 on the last day by a clock a minute fast is
	// taken; default 5 minutes.
	ClockSkew time.Duration
}

// ClockSkewDefault is Config.ClockSkew's default.
const ClockSkewDefault = 5 * time.Minute

// Ingester runs the consumer.
type Ingester struct {
	cfg     Config
	log     *slog.Logger
	lastPos atomic.Uint64 // highest $all position this ingester appended

	slots    chan struct{}  // one per handler in flight
	inFlight sync.WaitGroup // the handlers in flight

	// Outages of what ingestion depends on, for readiness.
	natsOutage, storeOutage retry.Outage
}

// Outage reports how long ingestion has kept failing to fetch from NATS or
// to write to the store, and why; zero and nil while it works.
func (i *Ingester) Outage() (time.Duration, error) {
	nd, nerr := i.natsOutage.For()
	sd, serr := i.storeOutage.For()
	switch {
	case nerr != nil && nd >= sd:
		return nd, fmt.Errorf("fetching from NATS: %w", nerr)
	case serr != nil:
		return sd, fmt.Errorf("writing to the event store: %w", serr)
	}
	return 0, nil
}

// New returns an Ingester; Run starts it.
func New(cfg Config) *Ingester {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Consumer == "" {
		cfg.Consumer = wire.Consumer
	}
	if cfg.BatchMax <= 0 {
		cfg.BatchMax = 64
	}
	if cfg.InFlightMax <= 0 {
		cfg.InFlightMax = 16
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = ClockSkewDefault
	}
	return &Ingester{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.InFlightMax)}
}

// Streams configures the streams Setup creates. The zero value is one
// replica and DLQMaxAgeDefault.
type Streams struct {
	Replicas int
	// DLQMaxAge is how long a dead letter is kept: long enough for a
	// publisher to notice and resend, short enough that a flood of bad
	// input does not fill the disk for good.
	DLQMaxAge time.Duration
}

// DLQMaxAgeDefault is Streams.DLQMaxAge's default: 90 days.
const DLQMaxAgeDefault = 90 * 24 * time.Hour

// Setup creates BILLING_IN, BILLING_DLQ and BILLING_OUT where absent, with
// file storage. BILLING_IN is a work queue: a message is kept until ledgerd
// has handled it (stored or dead-lettered) and no longer, since the store
// then holds it. Existing streams are left as their operators configured
// them.
func Setup(ctx context.Context, js jetstream.JetStream, opts Streams) error {
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.DLQMaxAge <= 0 {
		opts.DLQMaxAge = DLQMaxAgeDefault
	}
	for _, cfg := range []jetstream.StreamConfig{
		{Name: wire.StreamIn, Subjects: []string{wire.SubjectPrefix + ">"}, Description: "Ledger's input: metering messages, until ledgerd has handled them",
			Retention: jetstream.WorkQueuePolicy},
		{Name: wire.StreamDLQ, Subjects: []string{wire.DLQPrefix + ">"}, Description: "Ledger's dead letters: rejected input, byte for byte",
			MaxAge: opts.DLQMaxAge},
		{Name: wire.StreamOut, Subjects: []string{wire.OutPrefix + ">"}, Description: "Ledger's output: invoices issued"},
	} {
		_, err := js.Stream(ctx, cfg.Name)
		if err == nil {
			continue
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("ingest: look up stream %s: %w", cfg.Name, err)
		}
		cfg.Storage = jetstream.FileStorage
		cfg.Replicas = opts.Replicas
		if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("ingest: create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Run consumes until ctx ends. It returns nil on a clean stop.
func (i *Ingester) Run(ctx context.Context) error {
	cons, err := i.cfg.JetStream.CreateOrUpdateConsumer(ctx, wire.StreamIn, jetstream.ConsumerConfig{
		Durable:     i.cfg.Consumer,
		Description: "Ledger ingestion into the event store",
		AckPolicy:   jetstream.AckExplicitPolicy,
		// Short enough that messages a crashed ledgerd held come back soon;
		// retries extend it with InProgress, so a store outage does not
		// make JetStream hand the same message over twice.
		AckWait:       10 * time.Second,
		MaxDeliver:    -1, // never give up on a message: nothing is dropped
		MaxAckPending: 4 * i.cfg.BatchMax,
		FilterSubject: wire.SubjectPrefix + ">",
	})
	if err != nil {
		return fmt.Errorf("ingest: consumer %s: %w", i.cfg.Consumer, err)
	}
	backoff := retry.New(0, i.cfg.RetryMax)
	for ctx.Err() == nil {
		msgs, err := i.fetch(cons)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			i.log.Warn("ingest: fetch failed", "err", err)
			i.natsOutage.Fail(err)
			_ = backoff.Wait(ctx)
			continue
		}
		i.natsOutage.Clear()
		backoff.Reset()
		i.dispatch(ctx, msgs)
	}
	i.inFlight.Wait()
	return nil
}

// fetch takes what is waiting, up to BatchMax, without waiting for a full
// batch (a pull request for N messages otherwise holds until N arrive or it
// expires); when nothing waits, it waits up to a second for one message.
func (i *Ingester) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	collect := func(batch jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
		if err != nil {
			return nil, err
		}
		var msgs []jetstream.Msg
		for msg := range batch.Messages() {
			msgs = append(msgs, msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
			return nil, err
		}
		return msgs, nil
	}
	msgs, err := collect(cons.FetchNoWait(i.cfg.BatchMax))
	if err != nil || len(msgs) > 0 {
		return msgs, err
	}
	return collect(cons.Fetch(1, jetstream.FetchMaxWait(time.Second)))
}

// dispatch hands messages, in the order fetched, to at most InFlightMax
// concurrent handlers, so their appends share the store's syncs and the
// next fetch need not wait for the slowest of a batch. A cycle event waits
// for everything before it, because it closes a month over exactly the
// events already appended.
func (i *Ingester) dispatch(ctx context.Context, msgs []jetstream.Msg) {
	for _, msg := range msgs {
		if isCycleSubject(msg.Subject()) {
			i.inFlight.Wait()
			if !i.earlierHandled(ctx, msg) {
				// Another ledgerd still holds a message published before
				// this one, or this one will fetch it next: hand the
				// cycle message back, to come again once it is handled.
				if err := msg.NakWithDelay(cycleRetryDelay); err != nil {
					i.log.Warn("ingest: nak of a cycle message failed", "subject", msg.Subject(), "err", err)
				}
				continue
			}
			i.handle(ctx, msg)
			continue
		}
		i.slots <- struct{}{}
		i.inFlight.Go(func() {
			defer func() { <-i.slots }()
			i.handle(ctx, msg)
		})
	}
}

// Waits of a cycle message for the messages published before it.
const (
	cycleWaitMax    = 5 * time.Second
	cycleRetryDelay = time.Second
)

// earlierHandled reports whether every message published on BILLING_IN
// before msg has been handled (appended, or dead-lettered) by whichever
// ledgerd fetched it. A cycle message closes a month over exactly the
// events appended before it; with several ledgerd sharing the consumer,
// waiting for this one's own handlers is not enough. BILLING_IN is a work
// queue, which deletes a message once acknowledged, and a message is
// acknowledged only after its event is in the store: so when the stream's
// first sequence has reached msg's, nothing before it is left. It waits at
// most cycleWaitMax, keeping msg in progress meanwhile.
func (i *Ingester) earlierHandled(ctx context.Context, msg jetstream.Msg) bool {
	meta, err := msg.Metadata()
	if err != nil {
		return true // not a JetStream message: nothing to order it by
	}
	deadline := time.Now().Add(cycleWaitMax)
	b := retry.New(10*time.Millisecond, 500*time.Millisecond)
	for {
		stream, err := i.cfg.JetStream.Stream(ctx, wire.StreamIn)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = stream.Info(ctx); err == nil {
				if info.Config.Retention != jetstream.WorkQueuePolicy {
					// A stream made before BILLING_IN was a work queue (or by
					// hand) keeps what was handled: its first sequence says
					// nothing, and waiting on it would hold every close.
					i.log.Warn("ingest: BILLING_IN is not a work queue, so a cycle message cannot wait for messages another ledgerd holds; recreate it as a work queue when running replicas", "retention", info.Config.Retention.String())
					return true
				}
				if info.State.FirstSeq >= meta.Sequence.Stream {
					return true
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			i.log.Info("ingest: a cycle message waits for messages published before it", "subject", msg.Subject(), "sequence", meta.Sequence.Stream, "err", err)
			return false
		}
		_ = msg.InProgress()
		_ = b.Wait(ctx)
	}
}

func isCycleSubject(subject string) bool {
	in, ok := wire.InputOf(subject)
	return ok && in.Cycle
}

// handle takes one message to its end: appended and acknowledged, or
// dead-lettered and acknowledged, or, when ctx ends first, left
// unacknowledged for redelivery.
func (i *Ingester) handle(ctx context.Context, msg jetstream.Msg) {
	pos, rej, err := i.ingest(ctx, msg)
	if err != nil {
		if ctx.Err() == nil {
			i.log.Error("ingest: message left for redelivery", "subject", msg.Subject(), "err", err)
		}
		return
	}
	if rej != nil {
		i.deadLetter(ctx, msg, rej)
		return
	}
	if i.cfg.Applied != nil && !i.awaitApplied(ctx, msg, pos) {
		return // stopping: the event is durable; a redelivery will find it
	}
	if err := msg.Ack(); err != nil {
		// The event is durable; a redelivery will find it and ack again.
		i.log.Warn("ingest: ack failed", "subject", msg.Subject(), "err", err)
	}
}

// ingest decodes, validates and appends, and returns the event's $all
// position; a rejection goes to the dead letters, an error (only ctx
// ending) leaves the message for redelivery.
func (i *Ingester) ingest(ctx context.Context, msg jetstream.Msg) (uint64, *Rejection, error) {
	k, pm, rej := decode(msg.Subject(), msg.Headers(), msg.Data())
	if rej != nil {
		return 0, rej, nil
	}
	id, err := identify(k, pm, monthOf(pm))
	if err != nil {
		return 0, reject(wire.CodeUndecodable, "%v", err), nil
	}
	if k.Cycle {
		if rej := i.checkEnded(pm); rej != nil {
			return 0, rej, nil
		}
	}
	if k.Cycle && i.cfg.Cycles != nil {
		if rej, err := i.retry(ctx, msg, func() (*Rejection, error) { return i.checkCycle(ctx, k, pm) }); rej != nil || err != nil {
			return 0, rej, err
		}
	}
	var pos uint64
	rej, err = i.retry(ctx, msg, func() (rej *Rejection, err error) {
		pos, rej, err = i.appendEvent(ctx, k, id, pm)
		return rej, err
	})
	if rej == nil && err == nil {
		i.cfg.Metrics.ingested(k.Token, pm)
	}
	return pos, rej, err
}

// appliedPatience is how long awaitApplied waits before telling JetStream
// again that the message is in progress: well inside the consumer's
// AckWait.
const appliedPatience = 3 * time.Second

// awaitApplied waits until the projections have applied position pos (0:
// an event another message appended; the last position this ingester
// appended stands in). A long wait, such as a replay at start, keeps the
// message in progress rather than redelivered. It reports false if ctx
// ended first.
func (i *Ingester) awaitApplied(ctx context.Context, msg jetstream.Msg, pos uint64) bool {
	if pos == 0 {
		pos = i.lastPos.Load()
	}
	backoff := retry.New(0, appliedPatience)
	for {
		wctx, cancel := context.WithTimeout(ctx, appliedPatience)
		err := i.cfg.Applied(wctx, pos)
		expired := wctx.Err() != nil
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		_ = msg.InProgress()
		if !expired {
			// Applied failed before its deadline: do not spin on it.
			i.log.Warn("ingest: waiting for the projections failed; retrying", "subject", msg.Subject(), "err", err)
			_ = backoff.Wait(ctx)
		}
	}
}

// checkEnded refuses a close of a month that has not ended by ledgerd's
// clock, and a finalization before the wire.FinalizeDay after it. One
// close of a far month would otherwise stop every later close for good
// (cycles close in order), and an invoice issued while its month runs
// would miss the rest of the month's charges.
func (i *Ingester) checkEnded(pm proto.Message) *Rejection {
	m, err := calendar.Parse(monthOf(pm))
	if err != nil {
		return reject(wire.CodeInvalidField, "field month = %s is not a month written YYYY-MM", quote(monthOf(pm)))
	}
	due, what := m.End(), "billing cycle %s cannot close before the month has ended (%s) by ledgerd's clock"
	if _, ok := pm.(*billingv1.VendorCycleFinalized); ok {
		due, what = wire.FinalizeDue(m), "vendor cycle %s cannot be finalized before %s by ledgerd's clock"
	}
	if now := i.cfg.Now(); now.Add(i.cfg.ClockSkew).Before(due) {
		return reject(wire.CodeCycleNotEnded, what+"; it is %s", m, due.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

func (i *Ingester) checkCycle(ctx context.Context, k *kind, pm proto.Message) (*Rejection, error) {
	var err error
	switch pm.(type) {
	case *billingv1.BillingCycleClosed:
		err = i.cfg.Cycles.CheckClose(ctx, monthOf(pm), i.lastPos.Load())
	case *billingv1.VendorCycleFinalized:
		err = i.cfg.Cycles.CheckFinalize(ctx, monthOf(pm), i.lastPos.Load())
	default:
		panic(fmt.Sprintf("ingest: %s is marked a cycle message but is neither close nor finalization", k.Token))
	}
	month := monthOf(pm)
	switch {
	case errors.Is(err, billing.ErrOutOfOrder):
		return reject(wire.CodeCycleOrder, "billing cycle %s cannot close now: cycles close in month order (%v)", month, err), nil
	case errors.Is(err, billing.ErrNotClosed):
		return reject(wire.CodeCycleNotClosed, "vendor cycle %s cannot be finalized before billing cycle %s is closed", month, month), nil
	}
	return nil, err
}

// appendEvent appends the message's event. A wrong expected version means
// the stream exists with another event: a reuse of the event_id, or, for a
// cycle, a month closed by another message, which is a no-op.
func (i *Ingester) appendEvent(ctx context.Context, k *kind, id Identity, pm proto.Message) (uint64, *Rejection, error) {
	// The projections of this ledgerd take the validated message as it is
	// (eventlog.Event.Decoded) rather than decoding id.Data again: it is
	// what id.Data decodes to, since id.Data is its encoding.
	res, err := i.cfg.Log.Append(ctx, id.Stream, eventlog.NoStream, eventlog.Event{ID: id.EventID, Type: id.Type, Data: id.Data, Decoded: pm})
	switch {
	case err == nil:
		i.notePosition(res.Position)
		return res.Position, nil, nil
	case errors.Is(err, eventlog.ErrWrongExpectedVersion):
		rej, err := i.conflict(ctx, k, id, pm)
		return 0, rej, err
	case errors.Is(err, eventlog.ErrStreamDeleted):
		return 0, reject(wire.CodeConflict, "the event stream %s of this message was deleted from the store; it cannot be ingested again", id.Stream), nil
	}
	return 0, nil, err
}

func (i *Ingester) notePosition(pos uint64) {
	for {
		old := i.lastPos.Load()
		if pos <= old || i.lastPos.CompareAndSwap(old, pos) {
			return
		}
	}
}

func (i *Ingester) conflict(ctx context.Context, k *kind, id Identity, pm proto.Message) (*Rejection, error) {
	eventID := id.Key
	if !k.Cycle {
		return reject(wire.CodeConflict, "event_id %s was already used by a different %s message; a retry must repeat the message exactly", quote(eventID), id.Type), nil
	}
	stored, err := i.storedEventID(ctx, k, id.Stream)
	if err != nil {
		return nil, err
	}
	if stored == eventID {
		return reject(wire.CodeConflict, "event_id %s was already used by a different %s message; a retry must repeat the message exactly", quote(eventID), id.Type), nil
	}
	i.log.Info("ingest: cycle already recorded; message is a no-op", "stream", id.Stream, "event_id", eventID, "recorded_event_id", stored)
	return nil, nil
}

// storedEventID reads the event_id of the message stored in a cycle stream.
func (i *Ingester) storedEventID(ctx context.Context, k *kind, stream string) (string, error) {
	ev, err := i.cfg.Log.First(ctx, stream)
	if err != nil {
		return "", err
	}
	stored := k.New()
	if err := proto.Unmarshal(ev.Data, stored); err != nil {
		return "", fmt.Errorf("decode %s: %w", stream, err)
	}
	return billing.EventID(stored)
}

// retry runs op until it succeeds, rejects, or ctx ends, waiting with
// backoff between failures and telling JetStream the message is still in
// progress, so it is not redelivered meanwhile.
func (i *Ingester) retry(ctx context.Context, msg jetstream.Msg, op func() (*Rejection, error)) (*Rejection, error) {
	backoff := retry.New(0, i.cfg.RetryMax)
	for {
		rej, err := op()
		if err == nil {
			i.storeOutage.Clear()
			return rej, nil
		}
		if ctx.Err() != nil {
			return rej, err
		}
		i.storeOutage.Fail(err)
		i.cfg.Metrics.storeRetry()
		i.log.Warn("ingest: store unavailable; retrying", "subject", msg.Subject(), "err", err, "in", backoff.Next())
		_ = msg.InProgress()
		_ = backoff.Wait(ctx)
	}
}

// deadLetter republishes the message byte for byte with the reason, then
// acknowledges it. The publish carries a message id derived from the
// message's sequence, so a crash between the two cannot dead-letter it twice
// (within the DLQ stream's duplicate window).
//
// A dead letter always fits: the reason is bounded (reject), the original
// headers are kept only while they fit in deadLetterHeadersMax, and a
// payload too large to go out with them is cut, its original size in
// wire.HeaderPayloadTruncated. A dead letter that still cannot be published
// after deadLetterAttempts is terminated (AckTerm) and counted: one bad
// message must not be retried for ever in front of the good ones.
func (i *Ingester) deadLetter(ctx context.Context, msg jetstream.Msg, rej *Rejection) {
	out := nats.NewMsg(wire.DLQSubject(msg.Subject()))
	size := 0
	for key, values := range msg.Headers() {
		if strings.HasPrefix(key, "Nats-") || strings.HasPrefix(key, "Billing-") {
			continue // JetStream's own headers mean something else on the DLQ; ours are set below
		}
		for _, v := range values {
			if size += len(key) + len(v) + 4; size > deadLetterHeadersMax {
				break
			}
			out.Header.Add(key, v)
		}
	}
	out.Header.Set(wire.HeaderError, rej.Reason)
	out.Header.Set(wire.HeaderErrorCode, rej.Code)
	out.Header.Set(wire.HeaderOriginalSubject, cut(msg.Subject(), wire.IDLengthMax))
	out.Data = msg.Data()
	if room := i.payloadRoom(out); len(out.Data) > room {
		out.Header.Set(wire.HeaderPayloadTruncated, strconv.Itoa(len(out.Data)))
		out.Data = out.Data[:max(room, 0)]
	}
	var opts []jetstream.PublishOpt
	if meta, err := msg.Metadata(); err == nil {
		opts = append(opts, jetstream.WithMsgID(fmt.Sprintf("dlq-%d", meta.Sequence.Stream)))
	}
	i.log.Warn("ingest: dead letter", "subject", cut(msg.Subject(), wire.IDLengthMax), "code", rej.Code, "reason", rej.Reason)
	backoff := retry.New(0, i.cfg.RetryMax)
	for attempt := 1; ; attempt++ {
		_, err := i.cfg.JetStream.PublishMsg(ctx, out, opts...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == deadLetterAttempts {
			i.log.Error("ingest: dead letter cannot be published; message terminated", "subject", cut(msg.Subject(), wire.IDLengthMax),
				"code", rej.Code, "reason", rej.Reason, "attempts", attempt, "err", err)
			i.cfg.Metrics.terminate(rej.Code)
			if err := msg.Term(); err != nil {
				i.log.Warn("ingest: terminating a message failed; it will be redelivered", "err", err)
			}
			return
		}
		i.log.Warn("ingest: dead-letter publish failed; retrying", "err", err, "attempt", attempt)
		_ = msg.InProgress()
		_ = backoff.Wait(ctx)
	}
	i.cfg.Metrics.deadLetter(rej.Code)
	if err := msg.DoubleAck(ctx); err != nil {
		i.log.Warn("ingest: ack of dead letter failed", "subject", cut(msg.Subject(), wire.IDLengthMax), "err", err)
	}
}

// Bounds of a dead letter: the original headers kept, and the publishes
// tried before the message is terminated (about 30 s with RetryMax's
// default backoff).
const (
	deadLetterHeadersMax = 4 << 10
	deadLetterAttempts   = 10
)

// payloadRoom is how many payload bytes a message with out's headers may
// carry on this connection: NATS bounds headers and payload together.
func (i *Ingester) payloadRoom(out *nats.Msg) int {
	limit := int(i.cfg.JetStream.Conn().MaxPayload())
	headers := len("NATS/1.0\r\n\r\n")
	for key, values := range out.Header {
		for _, v := range values {
			headers += len(key) + len(": ") + len(v) + len("\r\n")
		}
	}
	// The message id header and some slack for the protocol line.
	return limit - headers - 256
}
