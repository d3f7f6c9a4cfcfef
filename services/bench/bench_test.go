package bench_test

import (
	"bytes"
	"context"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ledger-billing/ledger/services/bench"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
)

// TestRunSmall runs every step of ledgerbench against a real ledgerd on a
// small history: each query answers (its calls are counted) and the
// report has every row. It measures nothing worth reading.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ledgerd and ingests 20,000 records")
	}
	d := daemontest.Start(t, daemontest.Config(t.TempDir()))
	daemontest.WaitReady(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	gcBefore := debug.SetGCPercent(100)
	debug.SetGCPercent(gcBefore)
	limitBefore := debug.SetMemoryLimit(-1)
	r, err := bench.Run(ctx, bench.Config{
		GRPC: d.GRPCAddr(), NATS: d.NATSURL(), Eventstore: d.EventstoreURL(), HTTP: d.HTTPAddr(),
		Records: 20_000, Batch: 500, Orgs: 2, AccountsPerOrg: 150, Months: 2,
		QueryDuration: 100 * time.Millisecond, Concurrency: []int{1, 4},
		Progress: &progress, Seed: 1,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if r.Records != 20_000 || r.Messages != 40 || len(r.Segments) == 0 {
		t.Errorf("ingested %d records in %d messages, %d segments; want 20,000 in 40", r.Records, r.Messages, len(r.Segments))
	}
	want := []string{"GetInvoice", "GetUsageMonth", "GetInvoice page of 100", "GetInvoice page of 100, message reused", "GetInvoice page of 100, undecoded"}
	if len(r.Queries) != len(want)*2 {
		t.Fatalf("%d query figures, want %d", len(r.Queries), len(want)*2)
	}
	for i, q := range r.Queries {
		if q.Name != want[i/2] || q.Calls == 0 || q.P99 < q.P50 {
			t.Errorf("query figure %d: %+v; want %q with calls", i, q, want[i/2])
		}
	}
	if strings.Contains(progress.String(), "warning") {
		t.Errorf("ledgerbench warned:\n%s", progress.String())
	}
	var out bytes.Buffer
	if err := r.Print(&out); err != nil || !strings.Contains(out.String(), "undecoded") {
		t.Errorf("report (%v):\n%s", err, out.String())
	}
	// The callers' collector had its headroom while they ran (unless GOGC
	// is set), and has its settings back.
	if _, set := os.LookupEnv("GOGC"); !set {
		if r.CallersGC.Headroom != 1<<30 || !strings.Contains(out.String(), "collecting at 1024 MiB above the live heap") {
			t.Errorf("callers' collector %+v; report:\n%s", r.CallersGC, out.String())
		}
	}
	if got := debug.SetGCPercent(gcBefore); got != gcBefore {
		t.Errorf("GOGC after Run = %d, want %d as before", got, gcBefore)
	}
	if got := debug.SetMemoryLimit(-1); got != limitBefore {
		t.Errorf("memory limit after Run = %d, want %d as before", got, limitBefore)
	}
}
