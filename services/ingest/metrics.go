package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
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
