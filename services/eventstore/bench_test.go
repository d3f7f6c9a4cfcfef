package eventstore_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// BenchmarkAppend measures synced appends through the official client over
// loopback: 1 and 100 events per append, 1 and 16 concurrent writers, with
// payloads the size of a small usage message. Concurrent writers share
// fsyncs through group commit.
func BenchmarkAppend(b *testing.B) {
	for _, events := range []int{1, 100} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("events=%d/writers=%d", events, writers), func(b *testing.B) {
				c := testkit.Client(b, testkit.StartStore(b, eventstore.Config{MaxAppendSize: 16 << 20}).URL())
				payload := make([]byte, 200)
				var seq atomic.Int64
				b.SetBytes(int64(events * len(payload)))
				b.ResetTimer()
				var wg sync.WaitGroup
				per := (b.N + writers - 1) / writers
				for w := range writers {
					wg.Go(func() {
						batch := make([]esdb.EventData, events)
						for i := 0; i < per && seq.Add(1) <= int64(b.N); i++ {
							for j := range batch {
								batch[j] = esdb.EventData{EventID: uuid.New(), EventType: "bench", ContentType: esdb.ContentTypeBinary, Data: payload}
							}
							stream := fmt.Sprintf("bench-%d-%d", w, i)
							if _, err := c.AppendToStream(ctxT(b), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, batch...); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkReadAll measures a forward $all read of 10,000 events of 1 KiB.
func BenchmarkReadAll(b *testing.B) {
	c := testkit.Client(b, testkit.StartStore(b, eventstore.Config{MaxAppendSize: 16 << 20}).URL())
	const total = 10_000
	payload := make([]byte, 1024)
	for i := 0; i < total; i += 500 {
		batch := make([]esdb.EventData, 500)
		for j := range batch {
			batch[j] = esdb.EventData{EventID: uuid.New(), EventType: "bench", ContentType: esdb.ContentTypeBinary, Data: payload}
		}
		appendOK(b, c, fmt.Sprintf("read-%d", i), esdb.NoStream{}, batch...)
	}
	b.SetBytes(total * int64(len(payload)))
	b.ResetTimer()
	for b.Loop() {
		if got := readAll(b, c, esdb.ReadAllOptions{}, total); len(got) != total {
			b.Fatalf("read %d events, want %d", len(got), total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
}
