package ingest

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// Metrics counts what ingestion does. A nil *Metrics counts nothing, so
// tests and tools need not build one.
type Metrics struct {
	messages    *prometheus.CounterVec
	records     prometheus.Counter
	deadLetters *prometheus.CounterVec
	terminated  *prometheus.CounterVec
	retries     prometheus.Counter
}

// NewMetrics registers ingestion's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_ingest_messages_total", Help: "Messages appended to the event store (or found already there), by message.",
		}, []string{"message"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_ingest_usage_records_total", Help: "Usage records in the UsageReported messages ingested.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_ingest_dead_letters_total", Help: "Messages sent to the dead letters, by Billing-Error-Code.",
		}, []string{"code"}),
		terminated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_ingest_terminated_total", Help: "Bad messages terminated because their dead letter could not be published, by Billing-Error-Code.",
		}, []string{"code"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_ingest_store_retries_total", Help: "Store calls retried because the store was unavailable.",
		}),
	}
	reg.MustRegister(m.messages, m.records, m.deadLetters, m.terminated, m.retries)
	// Every code from zero: a rule on the increase of a series that does
	// not exist yet would never fire.
	for _, code := range wire.Codes {
		m.deadLetters.WithLabelValues(code)
		m.terminated.WithLabelValues(code)
	}
	return m
}

func (m *Metrics) ingested(token string, msg proto.Message) {
	if m == nil {
		return
	}
	m.messages.WithLabelValues(token).Inc()
	if u, ok := msg.(*billingv1.UsageReported); ok {
		m.records.Add(float64(len(u.Records)))
	}
}

func (m *Metrics) deadLetter(code string) {
	if m != nil {
		m.deadLetters.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) terminate(code string) {
	if m != nil {
		m.terminated.WithLabelValues(code).Inc()
	}
}

func (m *Metrics) storeRetry() {
	if m != nil {
		m.retries.Inc()
	}
}

// ConsumerCollector reports the durable consumer's backlog on each scrape:
// messages not yet delivered, delivered but not acknowledged, and
// redelivered. A growing backlog, or redeliveries, is what an operator
// alerts on before a publisher notices.
type ConsumerCollector struct {
	js                               jetstream.JetStream
	consumer                         string
	pending, ackPending, redelivered *prometheus.Desc
}

// NewConsumerCollector returns the collector of consumer on BILLING_IN.
func NewConsumerCollector(js jetstream.JetStream, consumer string) *ConsumerCollector {
	return &ConsumerCollector{
		js: js, consumer: consumer,
		pending:     prometheus.NewDesc("ledger_ingest_consumer_pending_messages", "Messages of BILLING_IN not yet delivered to ledgerd.", nil, nil),
		ackPending:  prometheus.NewDesc("ledger_ingest_consumer_ack_pending_messages", "Messages delivered to ledgerd and not yet acknowledged.", nil, nil),
		redelivered: prometheus.NewDesc("ledger_ingest_consumer_redelivered_messages", "Messages delivered more than once and not yet acknowledged.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ConsumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
}

// consumerInfoWait bounds a scrape's look at the consumer: a scrape must
// answer even when NATS does not.
const consumerInfoWait = 2 * time.Second

// Collect implements prometheus.Collector. When NATS does not answer, the
// metrics are absent from the scrape rather than stale.
func (c *ConsumerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), consumerInfoWait)
	defer cancel()
	cons, err := c.js.Consumer(ctx, wire.StreamIn, c.consumer)
	if err != nil {
		return
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending))
	ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending))
	ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered))
}
