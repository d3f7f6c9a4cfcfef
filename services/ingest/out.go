package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/retry"
	"github.com/ledger-billing/ledger/services/wire"
)

// outboxLen bounds the invoices waiting to be announced; the projection
// waits when it is full rather than dropping one.
const outboxLen = 4096

// Publisher announces issued invoices on billing.out.invoice_issued.<ban>.
//
// The projections issue invoices again on every replay, so before
// announcing an invoice the publisher looks at the last announcement of the
// BAN in BILLING_OUT: months close in order, so an invoice of a month at or
// before it was announced already. Each BAN is looked up once per run.
type Publisher struct {
	js    jetstream.JetStream
	log   *slog.Logger
	queue chan *billing.Invoice
	last  map[string]calendar.Month // by subject: the last month announced
}

// NewPublisher returns a Publisher; Run starts it.
func NewPublisher(js jetstream.JetStream, logger *slog.Logger) *Publisher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{js: js, log: logger, queue: make(chan *billing.Invoice, outboxLen), last: map[string]calendar.Month{}}
}

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
	subject := wire.InvoiceIssuedSubject(inv.BAN)
	last, known := p.last[subject]
	if !known {
		var err error
		if last, known, err = p.lastAnnounced(ctx, subject); err != nil {
			return err
		}
	}
	if known && inv.Month <= last {
		p.last[subject] = last
		return nil
	}
	msg := &billingv1.InvoiceIssued{
		Ban:      inv.BAN,
		OrgId:    inv.OrgID,
		Month:    inv.Month.String(),
		Total:    &billingv1.Money{Amount: money.Format(&inv.Total, inv.Currency), Currency: inv.Currency.Code()},
		IssuedAt: timestamppb.New(inv.IssuedAt),
		Position: inv.Position,
	}
	data, err := protojson.Marshal(msg)
	if err != nil {
		return err
	}
	out := nats.NewMsg(subject)
	out.Data = data
	out.Header.Set("Content-Type", "application/json")
	if _, err := p.js.PublishMsg(ctx, out, jetstream.WithMsgID(fmt.Sprintf("invoice-issued-%s-%s", inv.BAN, inv.Month))); err != nil {
		return err
	}
	p.last[subject] = inv.Month
	return nil
}

// lastAnnounced reads the month of the BAN's last announcement.
func (p *Publisher) lastAnnounced(ctx context.Context, subject string) (calendar.Month, bool, error) {
	stream, err := p.js.Stream(ctx, wire.StreamOut)
	if err != nil {
		return 0, false, err
	}
	raw, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var prev billingv1.InvoiceIssued
	if err := protojson.Unmarshal(raw.Data, &prev); err != nil {
		return 0, false, fmt.Errorf("last message on %s: %w", subject, err)
	}
	m, err := calendar.Parse(prev.Month)
	if err != nil {
		return 0, false, fmt.Errorf("last message on %s: %w", subject, err)
	}
	return m, true, nil
}
