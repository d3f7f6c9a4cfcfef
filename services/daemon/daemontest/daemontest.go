// Package daemontest starts a whole ledgerd in process for tests, as
// net/http/httptest starts a server: every listener on an ephemeral
// loopback port, the data directory where the test says, and the cycle
// clock off (tests close cycles themselves). The parts alone (NATS, the
// store) are in services/testkit.
package daemontest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ledger-billing/ledger/services/daemon"
)

// Config is daemon.Defaults for a test in dir: ephemeral loopback ports,
// no cycle clock, and with -v warnings and errors logged to stderr.
func Config(dir string) daemon.Config {
	cfg := daemon.Defaults()
	cfg.DataDir = dir
	cfg.NATSListen, cfg.EventstoreListen, cfg.GRPCListen, cfg.HTTPListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Clock = false
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return cfg
}

// Start starts ledgerd with cfg and closes it when the test ends. It
// returns once every listener is up; the projections may still replay.
func Start(t testing.TB, cfg daemon.Config) *daemon.Daemon {
	t.Helper()
	d, err := daemon.Start(cfg)
	if err != nil {
		t.Fatalf("start ledgerd: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

// ReplayWithin bounds WaitReady: a test's history replays in well under it.
const ReplayWithin = 60 * time.Second

// WaitReady waits until d's projections have replayed the history.
func WaitReady(t testing.TB, d *daemon.Daemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ReplayWithin)
	defer cancel()
	if err := d.Runner().WaitFor(ctx, 0); err != nil {
		t.Fatalf("ledgerd did not replay its history: %v", err)
	}
}

// Restart starts ledgerd again on dir (after the test closed the last one)
// and waits until it has replayed it.
func Restart(t testing.TB, dir string) *daemon.Daemon {
	t.Helper()
	d := Start(t, Config(dir))
	WaitReady(t, d)
	return d
}
