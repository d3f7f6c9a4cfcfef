package runner_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/runner"
	"github.com/ledger-billing/ledger/services/snapshot"
	"github.com/ledger-billing/ledger/services/testkit"
)

// appendHistory appends a small history from event n on: usage of two
// months and a close; it returns the last position.
func appendHistory(t *testing.T, log *eventlog.Log, n int, month string) uint64 {
	t.Helper()
	var last uint64
	for i := range 25 {
		last = appendMsg(t, log, &billingv1.UsageReported{EventId: fmt.Sprint("u", n, "-", i), Records: []*billingv1.UsageRecord{{
			RecordId: "r", Vendor: "AWS", AccountId: fmt.Sprint(i % 3), Service: "S", ChargeCategory: "Usage",
			ChargePeriodStart: timestamppb.New(time.Date(2025, 1, 2+i, 0, 0, 0, 0, time.UTC)), Cost: &billingv1.Money{Amount: fmt.Sprintf("%d.25", i), Currency: "USD"},
		}}})
	}
	if month != "" {
		last = appendMsg(t, log, &billingv1.BillingCycleClosed{EventId: "close-" + month, Month: month, ClosedAt: timestamppb.New(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC))})
	}
	return last
}

func appendHierarchy(t *testing.T, log *eventlog.Log) {
	t.Helper()
	for _, m := range []proto.Message{
		&billingv1.OrganizationRegistered{EventId: "org", OrgId: "acme", Ban: "BAN-1", Currency: "USD"},
		&billingv1.CostCenterCreated{EventId: "cc", OrgId: "acme", CostCenterId: "cc"},
		&billingv1.WorkspaceCreated{EventId: "ws", OrgId: "acme", WorkspaceId: "ws", CostCenterId: "cc"},
		&billingv1.ProviderRegistered{EventId: "p0", OrgId: "acme", ProviderId: "p0", WorkspaceId: "ws", Vendor: "AWS", AccountId: "0"},
		&billingv1.ProviderRegistered{EventId: "p1", OrgId: "acme", ProviderId: "p1", WorkspaceId: "ws", Vendor: "AWS", AccountId: "1"},
	} {
		appendMsg(t, log, m)
	}
}

// runUntil runs a runner until it has passed position last, then stops it
// (which writes a snapshot if it keeps them), and returns it with the
// projection's state as snapshot bytes: two runners with the same state
// give the same bytes.
func runUntil(t *testing.T, log *eventlog.Log, opts runner.Options, last uint64) (*runner.Runner, []byte) {
	t.Helper()
	r := runner.New(log, opts)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := r.WaitFor(testkit.Context(t, 20*time.Second), last); err != nil {
		t.Fatal(err)
	}
	var state bytes.Buffer
	if _, err := r.Read(func(p *billing.Projection) error { return p.WriteSnapshot(&state) }); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r, state.Bytes()
}

// counter is a runner user's state kept in a snapshot section: the
// number of events applied, counted from OnApplied-like hooks. Here it
// only records what it was given, to check what the runner hands back.
type counter struct {
	saved  int
	loaded []string
}

func (c *counter) section() runner.Section {
	return runner.Section{
		Save: func() ([]byte, error) { c.saved++; return []byte(fmt.Sprint("saved ", c.saved)), nil },
		Load: func(data []byte) error {
			if data == nil {
				c.loaded = append(c.loaded, "<initial>")
			} else {
				c.loaded = append(c.loaded, string(data))
			}
			return nil
		},
	}
}

// TestRunnerSnapshots: a runner writes snapshots every N events and when
// it stops, keeps two, and a new runner starts from the newest and ends
// with the state of a full replay, its sections given back; damaged or
// incompatible snapshots are skipped with a log line naming them.
func TestRunnerSnapshots(t *testing.T) {
	log := testkit.Log(t, testkit.StartStore(t, eventstore.Config{}).URL())
	dir := filepath.Join(t.TempDir(), "snapshots")
	appendHierarchy(t, log)
	last := appendHistory(t, log, 1, "2025-01")

	var c counter
	opts := func(logs *testkit.LogBuffer) runner.Options {
		return runner.Options{
			Logger:           slog.New(slog.NewTextHandler(logs, nil)),
			SnapshotDir:      dir,
			SnapshotEvery:    10,
			SnapshotSections: map[string]runner.Section{"counter": c.section()},
		}
	}
	// A crash's leftover: a temporary file, which the next write removes.
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000003.tmp"), []byte("LEDGSNAP"), 0o640); err != nil {
		t.Fatal(err)
	}
	var logs1 testkit.LogBuffer
	runUntil(t, log, opts(&logs1), last)
	snaps, tmps := snapshot.List(dir)
	if len(snaps) != snapshot.Keep || len(tmps) != 0 {
		t.Fatalf("snapshots %v and temporary files %v, want %d and none", snaps, tmps, snapshot.Keep)
	}
	if want := fmt.Sprintf("%020d.snap", last); filepath.Base(snaps[0]) != want {
		t.Fatalf("newest snapshot %s, want %s (the position at the stop)", snaps[0], want)
	}
	if !strings.Contains(logs1.String(), "no valid snapshot") || c.saved < 3 {
		t.Fatalf("the first run saved %d sections and logged:\n%s", c.saved, logs1.String())
	}

	// More history, then a start from the snapshot.
	savedAtStop := c.saved
	last = appendHistory(t, log, 2, "")
	var logs2 testkit.LogBuffer
	_, fromSnapshot := runUntil(t, log, opts(&logs2), last)
	_, replayed := runUntil(t, log, runner.Options{}, last)
	if !bytes.Equal(fromSnapshot, replayed) {
		t.Fatal("the state after a start from a snapshot differs from a full replay's")
	}
	if !strings.Contains(logs2.String(), "restored from a snapshot") || !strings.Contains(logs2.String(), filepath.Base(snaps[0])) {
		t.Fatalf("the start from a snapshot logged:\n%s", logs2.String())
	}
	if got := c.loaded[len(c.loaded)-1]; got != fmt.Sprint("saved ", savedAtStop) {
		t.Fatalf("section loaded %q, want the last saved at the stop (%d)", got, savedAtStop)
	}

	// Damage both snapshots kept (a flipped byte), and put a newer one of
	// another format version beside them: all three are skipped, named,
	// and the runner replays the history.
	snaps, _ = snapshot.List(dir)
	for _, p := range snaps {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// Whole files (their checksums right) of another format version and
	// of another encoding of the projection.
	newer := filepath.Join(dir, fmt.Sprintf("%020d.snap", last+1))
	newest := filepath.Join(dir, fmt.Sprintf("%020d.snap", last+2))
	for path, header := range map[string][]byte{newer: {99, 1, 0, 0}, newest: {snapshot.Version, billing.SnapshotVersion + 1, 0, 0}} {
		b := append([]byte("LEDGSNAP"), header...)
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var logs3 testkit.LogBuffer
	_, afterDamage := runUntil(t, log, opts(&logs3), last)
	if !bytes.Equal(afterDamage, replayed) {
		t.Fatal("the state after skipping damaged snapshots differs from a full replay's")
	}
	for _, p := range append(snaps, newer, newest) {
		if !strings.Contains(logs3.String(), "snapshot: skipped") || !strings.Contains(logs3.String(), filepath.Base(p)) {
			t.Fatalf("no log line skipping %s:\n%s", p, logs3.String())
		}
	}
	if !strings.Contains(logs3.String(), "checksum mismatch") || !strings.Contains(logs3.String(), "format version 99") ||
		!strings.Contains(logs3.String(), fmt.Sprintf("encoding is version %d", billing.SnapshotVersion+1)) {
		t.Fatalf("the causes are not logged:\n%s", logs3.String())
	}
	if got := c.loaded[len(c.loaded)-1]; got != "<initial>" {
		t.Fatalf("section loaded %q before a full replay, want the initial state", got)
	}
}
