// Command ledgerd is Ledger's daemon: NATS ingestion into the event store,
// the billing projections and the gRPC query service, in one process.
//
// With no flags it is a complete system on one machine: embedded NATS with
// JetStream and the embedded event store, both in --data-dir. With
// --nats-url and --eventstore-url it runs against a NATS cluster and a
// KurrentDB cluster instead. Every flag can also be set in the environment
// as LEDGER_ and the flag's name in upper snake case (LEDGER_DATA_DIR).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/ledger-billing/ledger/services/audit"
	"github.com/ledger-billing/ledger/services/daemon"
)

// defaultGCPercent is the garbage collector's target unless GOGC is set.
// Ledger's heap is mostly long-lived billing state (about 40 bytes a usage
// record), so Go's default of 100, which lets the heap grow to twice what
// is live before collecting, mostly buys RSS: at 50, 10,000,000 records
// peak under 1 GiB instead of 1.4, for about 15% of the ingest rate.
const defaultGCPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(exitCode(run(os.Args[1:])))
}

// exitCode reports run's error, if any, and says how ledgerd exits: 1 for
// any failure (one sentence on stderr), 0 for -h, which printed the usage
// as asked.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintln(os.Stderr, "ledgerd:", err)
	return 1
}

func run(args []string) error {
	cfg := daemon.Defaults()
	fs := flag.NewFlagSet("ledgerd", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the embedded NATS and event store data")
	fs.StringVar(&cfg.NATSURL, "nats-url", cfg.NATSURL, "external NATS URL (empty: embedded NATS)")
	fs.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen, "embedded NATS client address")
	fs.BoolVar(&cfg.NATSSync, "nats-sync", cfg.NATSSync, "embedded NATS: fsync every JetStream write, so an acknowledged publish survives power loss")
	fs.IntVar(&cfg.NATSReplicas, "nats-replicas", cfg.NATSReplicas, "replicas of the JetStream streams ledgerd creates (3 on a NATS cluster)")
	fs.DurationVar(&cfg.DLQMaxAge, "dlq-max-age", cfg.DLQMaxAge, "how long BILLING_DLQ keeps a dead letter, when ledgerd creates it")
	fs.StringVar(&cfg.EventstoreURL, "eventstore-url", cfg.EventstoreURL, "KurrentDB connection string, e.g. esdb://node1:2113?tls=true (empty: embedded store)")
	fs.StringVar(&cfg.EventstoreListen, "eventstore-listen", cfg.EventstoreListen, "embedded event store gRPC address")
	fs.StringVar(&cfg.GRPCListen, "grpc-listen", cfg.GRPCListen, "gRPC query service address")
	fs.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "HTTP address of /healthz, /readyz, /metrics and POST /backup")
	fs.BoolVar(&cfg.Clock, "clock", cfg.Clock, "close billing cycles on the 1st and finalize vendor cycles on the 10th (00:00 UTC)")
	fs.BoolVar(&cfg.Snapshots, "snapshots", cfg.Snapshots, "keep snapshots of the projections in <data-dir>/snapshots and start from the newest (false: every start replays the whole history)")
	fs.IntVar(&cfg.SnapshotEvery, "snapshot-every", cfg.SnapshotEvery, "events applied between two snapshots (0: only at a clean shutdown)")
	fs.DurationVar(&cfg.ClockSkew, "clock-skew", cfg.ClockSkew, "how far ahead of ledgerd's clock a publisher's may run: a month closes once it has ended by ledgerd's clock plus this")
	fs.StringVar(&cfg.AuthJWKS, "auth-jwks", cfg.AuthJWKS, "JWKS of the keys that sign callers' bearer tokens: a file or an https URL (empty: no authentication, for loopback)")
	fs.StringVar(&cfg.AuthIssuer, "auth-issuer", cfg.AuthIssuer, "the issuer (iss) bearer tokens must carry; required with --auth-jwks")
	fs.StringVar(&cfg.AuthAudience, "auth-audience", cfg.AuthAudience, "an audience (aud) bearer tokens must carry")
	fs.StringVar(&cfg.SigningKey, "signing-key", cfg.SigningKey, "PEM file of the Ed25519 key ledgerd signs the events it appends with (empty: DATA-DIR/signing.key, generated at first start)")
	fs.DurationVar(&cfg.SealInterval, "seal-interval", audit.SealInterval, "how long after the last seal ledgerd seals the log again if it has new billing events (it also seals every 10,000)")
	securityFlags(fs, &cfg.Security)
	var memLimit memoryLimit
	fs.Var(&memLimit, "memory-limit", "soft limit of ledgerd's memory, e.g. 3GiB or none (default: GOMEMLIMIT, else 90% of the container's limit, else none)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fromEnvironment(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.SnapshotEvery < 0 {
		return fmt.Errorf("--snapshot-every %d: must be 0 (only at shutdown) or more", cfg.SnapshotEvery)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if limit, source := memLimit.apply(); limit > 0 {
		cfg.Logger.Info("ledgerd: memory limit", "limit", formatBytes(limit), "from", source)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := daemon.Start(cfg)
	if err != nil {
		return err
	}
	err = d.Wait(ctx)
	cfg.Logger.Info("ledgerd: shutting down")
	d.Close()
	return err
}

// fromEnvironment sets each flag from LEDGER_<NAME> when present; flags on
// the command line, parsed afterwards, win.
func fromEnvironment(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := "LEDGER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && err == nil {
			if setErr := f.Value.Set(v); setErr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, setErr)
			}
		}
	})
	return err
}
