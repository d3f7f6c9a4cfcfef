package ctl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/services/retry"
	"github.com/ledger-billing/ledger/services/wire"
)

// publication is one command's messages on their way into ledgerd: it
// publishes them in order, then waits until ledgerd has taken them all and
// reports those it refused.
type publication struct {
	c  *Client
	js jetstream.JetStream
	// dlqStart is BILLING_DLQ's last sequence before the first publish:
	// the dead letters of these messages come after it.
	dlqStart    uint64
	first, last uint64 // BILLING_IN sequences of the first and last publish
	count       int
	// sent names each message by subject and digest, which is how a dead
	// letter (the same bytes, republished) is recognized as one of ours.
	sent map[sentKey]string
}

type sentKey struct {
	subject string
	digest  [sha256.Size]byte
}

// publication starts a command's publishing: it connects to NATS and
// notes where the dead letters stand.
func (c *Client) publication(ctx context.Context) (*publication, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ctx, done := c.refusable(ctx)
	defer done()
	dlq, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		return nil, c.refusedOr(ctx, c.streamError(wire.StreamDLQ, err))
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		return nil, c.refusedOr(ctx, c.streamError(wire.StreamDLQ, err))
	}
	return &publication{c: c, js: js, dlqStart: info.State.LastSeq, sent: make(map[sentKey]string)}, nil
}

// streamError explains a JetStream failure on a stream ledgerd creates.
func (c *Client) streamError(stream string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return fmt.Errorf("NATS at %s has no JetStream stream %s: is ledgerd running against this NATS? (it creates the stream): %w", c.natsAddr(), stream, err)
	}
	return fmt.Errorf("JetStream stream %s at %s: %w", stream, c.natsAddr(), err)
}

// publish sends one input message as protobuf binary on its subject and
// waits for JetStream's acknowledgement: once it returns, the message is
// durable in BILLING_IN.
func (p *publication) publish(ctx context.Context, msg proto.Message) error {
	subject, err := wire.Subject(msg)
	if err != nil {
		return err
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return fmt.Errorf("ctl: encode %s: %w", describe(msg), err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.c.cfg.Timeout)
	defer cancel()
	ctx, done := p.c.refusable(ctx)
	defer done()
	ack, err := p.js.Publish(ctx, subject, data)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, nats.ErrPermissionViolation) {
			return fmt.Errorf("NATS at %s refused to let this user publish %s on %s: %w%s", p.c.natsAddr(), describe(msg), subject, cause, inboxHint(cause))
		}
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			return p.c.streamError(wire.StreamIn, err)
		}
		return fmt.Errorf("publish %s on %s: %w", describe(msg), subject, err)
	}
	if p.count == 0 {
		p.first = ack.Sequence
	}
	p.count++
	p.last = max(p.last, ack.Sequence)
	p.sent[sentKey{subject, sha256.Sum256(data)}] = describe(msg)
	return nil
}

// describe names a message for people: its type and event_id.
func describe(msg proto.Message) string {
	name := string(msg.ProtoReflect().Descriptor().Name())
	if m, ok := msg.(interface{ GetEventId() string }); ok {
		return name + " " + m.GetEventId()
	}
	return name
}

// Polling bounds of await: the first look comes soon, because ledgerd
// usually ingests within milliseconds; later ones back off so that a long
// wait does not hammer the server.
const (
	pollFirst = 5 * time.Millisecond
	pollMax   = 250 * time.Millisecond
)

// await waits, within Config.Wait, until ledgerd's ingestion consumer has
// acknowledged every message published, then returns a *RejectedError if
// any of them went to the dead letters. progress, if not nil, is told how
// many of them are done so far.
func (p *publication) await(ctx context.Context, progress func(done, total int)) error {
	if p.count == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.c.cfg.Wait)
	defer cancel()
	ctx, done := p.c.refusable(ctx)
	defer done()
	var floor uint64
	var lastErr error
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		if err := p.c.refusedOr(ctx, nil); err != nil {
			return false, err
		}
		if p.c.nc.IsClosed() {
			return false, &UnreachableError{What: "NATS", Addr: p.c.natsAddr(), Err: nats.ErrConnectionClosed}
		}
		cons, err := p.js.Consumer(ctx, wire.StreamIn, wire.Consumer)
		if err != nil {
			// ledgerd creates its consumer when it starts: keep looking.
			lastErr = err
			return false, nil
		}
		info, err := cons.Info(ctx)
		if err != nil {
			lastErr = err
			return false, nil
		}
		lastErr = nil
		floor = info.AckFloor.Stream
		if progress != nil {
			done := 0
			if floor >= p.first {
				done = min(int(floor-p.first+1), p.count)
			}
			progress(done, p.count)
		}
		return floor >= p.last, nil
	})
	if err != nil {
		if refused := p.c.refusedOr(ctx, nil); refused != nil {
			return refused
		}
		if ctx.Err() != nil {
			why := fmt.Sprintf("its ingestion consumer %s has acknowledged BILLING_IN up to sequence %d, the last message is at %d", wire.Consumer, floor, p.last)
			if lastErr != nil {
				why = fmt.Sprintf("consumer %s of BILLING_IN: %v", wire.Consumer, lastErr)
			}
			return notIngested("ledgerd has not ingested the messages: waited %s (--wait) and %s; is ledgerd running against %s?", p.c.cfg.Wait, why, p.c.natsAddr())
		}
		return err
	}
	return p.deadLetters(ctx)
}

// deadLetters reads the dead letters written since the publication began
// and returns those of its own messages. ledgerd republishes a refused
// message before acknowledging it, so once the acknowledgement floor has
// passed the last message, its dead letter, if any, is in the stream.
func (p *publication) deadLetters(ctx context.Context) error {
	dlq, err := p.js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		return p.c.streamError(wire.StreamDLQ, err)
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		return p.c.streamError(wire.StreamDLQ, err)
	}
	end := info.State.LastSeq
	if end <= p.dlqStart {
		return nil
	}
	cons, err := p.js.OrderedConsumer(ctx, wire.StreamDLQ, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   p.dlqStart + 1,
	})
	if err != nil {
		return p.c.streamError(wire.StreamDLQ, err)
	}
	var rejected []Rejection
	for seq := p.dlqStart; seq < end; {
		batch, err := cons.Fetch(dlqFetchMax, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", wire.StreamDLQ, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			if meta, err := msg.Metadata(); err == nil {
				seq = meta.Sequence.Stream
			}
			h := msg.Headers()
			what, ours := p.sent[sentKey{h.Get(wire.HeaderOriginalSubject), sha256.Sum256(msg.Data())}]
			if ours {
				rejected = append(rejected, Rejection{Message: what, Reason: h.Get(wire.HeaderError), Code: h.Get(wire.HeaderErrorCode)})
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("read %s: %w", wire.StreamDLQ, err)
		}
		if n == 0 && ctx.Err() != nil {
			return fmt.Errorf("read %s: %w", wire.StreamDLQ, ctx.Err())
		}
	}
	if len(rejected) > 0 {
		return &RejectedError{Rejections: rejected}
	}
	return nil
}

// dlqFetchMax bounds the dead letters read at once.
const dlqFetchMax = 256

// poll calls check until it reports done or fails, backing off from
// pollFirst to pollMax between calls, until ctx ends. check gets a context
// bounded by the same deadline.
func poll(ctx context.Context, check func(ctx context.Context) (bool, error)) error {
	b := retry.New(pollFirst, pollMax)
	for {
		done, err := check(ctx)
		if err != nil || done {
			return err
		}
		if err := b.Wait(ctx); err != nil {
			return err
		}
	}
}
