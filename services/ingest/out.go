package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/document"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/retry"
	"github.com/ledger-billing/ledger/services/wire"
)

// outboxLen bounds the invoices waiting to be announced; the projection
// waits when it is full rather than dropping one.
const outboxLen = 4096

// Publisher announces issued invoices on billing.out.invoice_issued.<ban>.
//
// The projections issue invoices again on every replay, so the publisher
// records each announcement in the store (stream announced-<ban>) after
// publishing it, and before announcing an invoice reads the BAN's last
// record: months close in order, so an invoice of a month at or before it
// was announced already. Each BAN is looked up once per run. It never reads
// BILLING_OUT back: anyone who can publish there could otherwise forge an
// announcement of a far month and silence a BAN's real ones.
//
// A crash between the publish and its record announces the invoice again
// after the restart, with the same message id, which JetStream drops within
// its duplicate window: at least once, and once in practice.
type Publisher struct {
	js    jetstream.JetStream
	store *eventlog.Log
	log   *slog.Logger
	queue chan *billing.Invoice
	last  map[string]calendar.Month // by BAN: the last month announced
}

// AnnouncedType is the store event type of an announcement's record. It is
// not a billing.v1 event: the projections neither see nor need it.
const AnnouncedType = "ledger.InvoiceAnnounced"

// NewPublisher returns a Publisher that records its announcements in
// store; Run starts it.
func NewPublisher(js jetstream.JetStream, store *eventlog.Log, logger *slog.Logger) *Publisher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{js: js, store: store, log: logger, queue: make(chan *billing.Invoice, outboxLen), last: map[string]calendar.Month{}}
}

func announcedStream(ban string) string { return "announced-" + ban }

// Enqueue hands over issued invoices, in log order.
func (p *Publisher) Enqueue(ctx context.Context, invoices []*billing.Invoice) {
	for _, inv := range invoices {
		select {
		case p.queue <- inv:
		case <-ctx.Done():
			return
		}
	}
}

// Run announces invoices until ctx ends, retrying failed publishes.
func (p *Publisher) Run(ctx context.Context) {
	b := retry.New(0, 5*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case inv := <-p.queue:
			for {
				err := p.announce(ctx, inv)
				if err == nil || ctx.Err() != nil {
					break
				}
				p.log.Warn("ingest: announcing an issued invoice failed; retrying", "ban", inv.BAN, "month", inv.Month, "err", err)
				_ = b.Wait(ctx)
			}
			b.Reset()
		}
	}
}

func (p *Publisher) announce(ctx context.Context, inv *billing.Invoice) error {
	last, known := p.last[inv.BAN]
	if !known {
		var err error
		if last, known, err = p.lastAnnounced(ctx, inv.BAN); err != nil {
			return err
		}
	}
	if known && inv.Month <= last {
		p.last[inv.BAN] = last
		return nil
	}
	digest, err := document.DigestOf(inv)
	if err != nil {
		return err
	}
	msg := &billingv1.InvoiceIssued{
		Ban:      inv.BAN,
		OrgId:    inv.OrgID,
		Month:    inv.Month.String(),
		Total:    &billingv1.Money{Amount: money.Format(&inv.Total, inv.Currency), Currency: inv.Currency.Code()},
		IssuedAt: timestamppb.New(inv.IssuedAt),
		Position: inv.Position,
		Digest:   digest,
	}
	data, err := protojson.Marshal(msg)
	if err != nil {
		return err
	}
	out := nats.NewMsg(wire.InvoiceIssuedSubject(inv.BAN))
	out.Data = data
	out.Header.Set("Content-Type", "application/json")
	if _, err := p.js.PublishMsg(ctx, out, jetstream.WithMsgID(fmt.Sprintf("invoice-issued-%s-%s", inv.BAN, inv.Month))); err != nil {
		return err
	}
	record, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	// The id depends on the BAN and month alone, so replicas recording
	// the same announcement append one event.
	id := uuid.NewSHA1(namespace, []byte(AnnouncedType+"\x00"+inv.BAN+"\x00"+inv.Month.String()))
	if _, err := p.store.Append(ctx, announcedStream(inv.BAN), eventlog.Any, eventlog.Event{ID: id, Type: AnnouncedType, Data: record}); err != nil {
		return fmt.Errorf("record the announcement of %s %s: %w", inv.BAN, inv.Month, err)
	}
	p.last[inv.BAN] = inv.Month
	return nil
}

// lastAnnounced reads the month of the BAN's last recorded announcement.
func (p *Publisher) lastAnnounced(ctx context.Context, ban string) (calendar.Month, bool, error) {
	ev, err := p.store.Latest(ctx, announcedStream(ban))
	if errors.Is(err, eventlog.ErrStreamNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var prev billingv1.InvoiceIssued
	if err := proto.Unmarshal(ev.Data, &prev); err != nil {
		return 0, false, fmt.Errorf("last announcement of %s: %w", ban, err)
	}
	m, err := calendar.Parse(prev.Month)
	if err != nil {
		return 0, false, fmt.Errorf("last announcement of %s: %w", ban, err)
	}
	return m, true, nil
}
