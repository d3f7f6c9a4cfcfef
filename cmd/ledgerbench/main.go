// Command ledgerbench measures a running ledgerd (services/bench) and
// prints one table: ingestion end to end beside raw JetStream and the raw
// store, replay beside a raw $all read, a snapshot's write and a restart
// to ready from it, query latency and throughput, and
// ledgerd's peak memory. Run it against a ledgerd with a fresh data
// directory:
//
//	go run ./cmd/ledgerd --data-dir /tmp/bench-data &
//	go run ./cmd/ledgerbench --data-dir /tmp/bench-data --records 1000000
//
// It reads the embedded store directly, with the password and
// certificate ledgerd keeps in its data directory. Its query callers'
// garbage collector runs at 1 GiB above their live heap, as a program
// that reads pages at thousands a second should have it; set GOGC to
// measure with another setting (GOGC=100: Go's default).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/ledger-billing/ledger/services/bench"
	"github.com/ledger-billing/ledger/services/daemon"
)

func main() {
	cfg := bench.Config{Progress: os.Stderr}
	flag.StringVar(&cfg.GRPC, "grpc", "127.0.0.1:9090", "ledgerd's gRPC address")
	flag.StringVar(&cfg.NATS, "nats", "nats://127.0.0.1:4222", "ledgerd's NATS")
	flag.StringVar(&cfg.Eventstore, "eventstore", "", "ledgerd's event store (default: its embedded store at --eventstore-listen, with the password and certificate in --data-dir)")
	dataDir := flag.String("data-dir", "./ledger-data", "ledgerd's data directory, for the embedded store's password and certificate")
	storeAddr := flag.String("eventstore-listen", "127.0.0.1:2113", "ledgerd's --eventstore-listen, with --data-dir")
	flag.StringVar(&cfg.HTTP, "http", "127.0.0.1:8080", "ledgerd's HTTP address (for /metrics)")
	flag.IntVar(&cfg.Records, "records", 1_000_000, "usage records to ingest")
	flag.IntVar(&cfg.Batch, "batch", 1000, "records per UsageReported message")
	flag.IntVar(&cfg.Orgs, "orgs", 10, "organizations")
	flag.IntVar(&cfg.AccountsPerOrg, "accounts-per-org", 1000, "accounts per organization (the first organization's BAN holds them all)")
	flag.IntVar(&cfg.Months, "months", 12, "months the usage spreads over")
	flag.IntVar(&cfg.RawSample, "raw-sample", 10_000_000, "records kept for the raw JetStream and store measurements (a larger run measures them on its first records)")
	flag.IntVar(&cfg.Segment, "segment", 10_000_000, "records per ingest segment, whose rates are reported apart")
	flag.DurationVar(&cfg.QueryDuration, "query-duration", 5*time.Second, "how long each query measurement runs")
	levels := flag.String("concurrency", "1,16,64", "query concurrency levels")
	flag.Parse()
	for _, s := range strings.Split(*levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			fmt.Fprintf(os.Stderr, "ledgerbench: --concurrency %q: want numbers like 1,16,64\n", *levels)
			os.Exit(2)
		}
		cfg.Concurrency = append(cfg.Concurrency, c)
	}
	if cfg.Eventstore == "" {
		url, err := daemon.StoreURL(*dataDir, *storeAddr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ledgerbench: %v (--data-dir, or --eventstore)\n", err)
			os.Exit(2)
		}
		cfg.Eventstore = url
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledgerbench:", err)
		os.Exit(1)
	}
	if err := report.Print(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ledgerbench:", err)
		os.Exit(1)
	}
}
