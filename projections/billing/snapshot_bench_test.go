package billing

import (
	"bufio"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

var snapshotRecords = flag.Int("snapshot.records", benchRecords, "usage records of BenchmarkSnapshot's history (10000000 for the figures of README, \"Snapshots\")")

// BenchmarkSnapshot folds the benchmark's history (-snapshot.records
// records over 10,000 accounts and 12 months, every month closed), then
// per iteration writes a snapshot to a file and reads it back: what a
// ledgerd does at a snapshot and at a start from one, without the store.
// It reports the fold's time (the replay a snapshot saves, without reading
// and decoding the store's events), the write and read times, the file's
// size, and what writing allocates (streamed: a small fraction of the
// live heap, not a copy of it).
func BenchmarkSnapshot(b *testing.B) {
	providers, orgs := benchHierarchy()
	p := New()
	pos := uint64(0)
	apply := func(m proto.Message) {
		pos++
		if _, err := p.Apply(pos, m); err != nil {
			b.Fatal(err)
		}
	}
	foldStart := time.Now()
	for _, o := range orgs {
		apply(o)
	}
	for _, pr := range providers {
		apply(pr)
	}
	benchUsage(*snapshotRecords, func(u *billingv1.UsageReported) { apply(u) })
	first := calendar.New(2018, time.January)
	for m := first; m < first+12; m++ {
		apply(&billingv1.BillingCycleClosed{EventId: "close-" + m.String(), Month: m.String(), ClosedAt: nil})
	}
	fold := time.Since(foldStart)
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)

	path := filepath.Join(b.TempDir(), "snap")
	var writeTime, readTime time.Duration
	var size int64
	var writeAlloc uint64
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if err := p.WriteSnapshot(w); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		writeTime = time.Since(start)
		runtime.ReadMemStats(&after)
		writeAlloc = after.TotalAlloc - before.TotalAlloc
		st, _ := os.Stat(path)
		size = st.Size()

		start = time.Now()
		f, err = os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		gc := debug.SetGCPercent(-1) // as services/runner loads one
		q, err := ReadSnapshot(&readerWithLen{f: f, n: size})
		debug.SetGCPercent(gc)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		readTime = time.Since(start)
		if q.Position() != p.Position() {
			b.Fatalf("restored at %d, want %d", q.Position(), p.Position())
		}
	}
	b.ReportMetric(fold.Seconds(), "fold-s")
	b.ReportMetric(writeTime.Seconds(), "write-s")
	b.ReportMetric(readTime.Seconds(), "read-s")
	b.ReportMetric(float64(size)/1e6, "file-MB")
	b.ReportMetric(float64(live.HeapAlloc)/1e6, "live-heap-MB")
	b.ReportMetric(float64(writeAlloc)/1e6, "write-alloc-MB")
}

// readerWithLen tells ReadSnapshot how many bytes remain, as
// services/snapshot's bounded reader does.
type readerWithLen struct {
	f *os.File
	n int64
}

func (r *readerWithLen) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.n -= int64(n)
	return n, err
}

func (r *readerWithLen) Len() int { return int(r.n) }
