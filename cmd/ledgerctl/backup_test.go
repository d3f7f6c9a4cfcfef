package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/ctl"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// loadAccount is the account the load of TestBackupUnderLoad bills, in the
// demo's cost center cc-eng (BAN-1001).
const loadAccount = "123412341234"

// loadUsage is the n-th message of the load: 1.00 USD in April 2025, the
// month after the demo's last close, so it lands on a draft.
func loadUsage(n int) *billingv1.UsageReported {
	return &billingv1.UsageReported{EventId: fmt.Sprintf("backup-load-%d", n), Records: []*billingv1.UsageRecord{{
		RecordId: "r1", Vendor: "AWS", AccountId: loadAccount, Service: "Amazon EC2", Region: "us-east-1",
		ChargeCategory: "Usage", ChargePeriodStart: timestamppb.New(time.Date(2025, 4, 10, 0, 0, 0, 0, time.UTC)),
		Cost: &billingv1.Money{Amount: "1.00", Currency: "USD"},
	}}}
}

func publish(ctx context.Context, js jetstream.JetStream, msg proto.Message) error {
	subject, err := wire.Subject(msg)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, subject, data)
	return err
}

// cents reads a USD amount as the query service writes it ("-20.00").
func cents(t *testing.T, amount string) int64 {
	t.Helper()
	whole, frac, ok := strings.Cut(amount, ".")
	n, err1 := strconv.ParseInt(whole+frac, 10, 64)
	if !ok || len(frac) != 2 || err1 != nil {
		t.Fatalf("amount %q is not written with two decimals", amount)
	}
	return n
}

// draftCents is the total of ban's invoice of month, in cents.
func draftCents(t *testing.T, l *ledger, ban, month string) int64 {
	t.Helper()
	resp, err := getInvoice(l.svc, t.Context(), &billingv1.GetInvoiceRequest{Ban: ban, Month: month})
	if err != nil {
		t.Fatal(err)
	}
	return cents(t, resp.GetInvoice().GetTotal().GetAmount())
}

// waitDraft waits until ban's invoice of month totals want cents.
func waitDraft(t *testing.T, l *ledger, ban, month string, want int64) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("%s %s at %d cents", ban, month, want), func() error {
		if got := draftCents(t, l, ban, month); got != want {
			return fmt.Errorf("%d cents", got)
		}
		return nil
	})
}

// issuedInvoices returns every issued invoice of the demo's BANs, with its
// lineage, by "BAN month".
func issuedInvoices(t *testing.T, l *ledger) map[string]*billingv1.Invoice {
	t.Helper()
	out := map[string]*billingv1.Invoice{}
	for _, ban := range []string{ctl.DemoBAN, ctl.DemoDataBAN, ctl.DemoOtherBAN} {
		list, err := listInvoices(l.svc, t.Context(), &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: "2025-01", ToMonth: "2025-12"})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.GetInvoices() {
			if s.GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED {
				continue
			}
			resp, err := getInvoice(l.svc, t.Context(), &billingv1.GetInvoiceRequest{Ban: ban, Month: s.GetMonth(), IncludeLineage: true})
			if err != nil {
				t.Fatal(err)
			}
			out[ban+" "+s.GetMonth()] = resp.GetInvoice()
		}
	}
	return out
}

// TestBackupUnderLoad takes `ledgerctl backup` while a metering service
// publishes usage through NATS, and starts a second ledgerd on a fresh
// data directory whose eventstore/ is the backup. Every invoice issued
// before the backup began is identical there (lines, lineage, totals,
// positions); the load in the backup is billed once, and the backup ends
// where it said; and fed the whole load again, as a publisher would replay
// what NATS held, the restored ledgerd bills each message once, as the
// original does.
func TestBackupUnderLoad(t *testing.T) {
	l := newLedger(t)
	l.must(t, "demo")
	_, js := testkit.JetStream(t, l.d.NATSURL())
	if err := publish(t.Context(), js, &billingv1.ProviderRegistered{EventId: "backup-load-provider", OrgId: ctl.DemoOrg,
		ProviderId: "p-load", WorkspaceId: "ws-platform", Vendor: "AWS", AccountId: loadAccount, Name: "Load"}); err != nil {
		t.Fatal(err)
	}
	const month = "2025-04"
	base := draftCents(t, l, ctl.DemoBAN, month)

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	// attempted counts the messages the load has begun to publish: the
	// last may or may not have reached NATS when the load is stopped.
	var attempted atomic.Int64
	loadDone := make(chan error, 1)
	go func() {
		for n := 0; ctx.Err() == nil; n++ {
			attempted.Store(int64(n + 1))
			if err := publish(ctx, js, loadUsage(n)); err != nil && ctx.Err() == nil {
				loadDone <- err
				return
			}
		}
		loadDone <- nil
	}()
	// Some of the load billed before the backup begins, so that the
	// backup must hold it.
	const billedBefore = 20
	testkit.Eventually(t, "the load billed", func() error {
		if got := draftCents(t, l, ctl.DemoBAN, month) - base; got < billedBefore*100 {
			return fmt.Errorf("%d cents of load billed", got)
		}
		return nil
	})

	issued := issuedInvoices(t, l)
	if len(issued) < 9 {
		t.Fatalf("%d invoices issued by the demo, want its three BANs' three months", len(issued))
	}
	restored := t.TempDir()
	began := attempted.Load()
	r := l.ctl(t.Context(), "--http", l.d.HTTPAddr(), "--json", "backup", filepath.Join(restored, "eventstore"))
	ended := attempted.Load()
	stop()
	if err := <-loadDone; err != nil {
		t.Fatalf("publishing the load: %v", err)
	}
	// The message in doubt is published again: ledgerd bills it once
	// whether or not the first attempt reached NATS.
	loaded := attempted.Load()
	if err := publish(t.Context(), js, loadUsage(int(loaded-1))); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("ledgerctl backup: exit %d, stderr %q", r.code, r.stderr)
	}
	var summary ctl.BackupSummary
	if err := json.Unmarshal([]byte(r.stdout), &summary); err != nil {
		t.Fatalf("ledgerctl backup --json: %v\n%s", err, r.stdout)
	}
	t.Logf("backup %+v; load messages: %d when it began, %d when it ended, %d in all", summary, began, ended, loaded)

	d2 := daemontest.Restart(t, restored)
	l2, err := dialLedger(d2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l2.conn.Close() })

	for key, want := range issued {
		ban, m, _ := strings.Cut(key, " ")
		resp, err := getInvoice(l2.svc, t.Context(), &billingv1.GetInvoiceRequest{Ban: ban, Month: m, IncludeLineage: true})
		if err != nil {
			t.Fatalf("restored %s: %v", key, err)
		}
		if !proto.Equal(resp.GetInvoice(), want) {
			t.Errorf("restored invoice %s differs:\n got %v\nwant %v", key, resp.GetInvoice(), want)
		}
	}

	// What the backup holds of the load, read from the restored store.
	inBackup, last := 0, uint64(0)
	c := testkit.Client(t, d2.EventstoreURL())
	all, err := c.ReadAll(t.Context(), esdb.ReadAllOptions{}, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := all.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ev.Event.StreamID, "usage-backup-load-") {
			inBackup++
		}
		last = ev.Event.Position.Commit
	}
	all.Close()
	if last != summary.Position {
		t.Fatalf("the restored store ends at position %d; ledgerctl said %d", last, summary.Position)
	}
	if inBackup < billedBefore || int64(inBackup) > loaded {
		t.Fatalf("%d load messages in the backup; %d were billed before it began, %d published in all", inBackup, billedBefore, loaded)
	}
	if got, want := draftCents(t, l2, ctl.DemoBAN, month), base+int64(inBackup)*100; got != want {
		t.Fatalf("restored draft %s of %s: %d cents, want %d (the demo's %d and %d load messages once)", ctl.DemoBAN, month, got, want, base, inBackup)
	}

	// The restored ledgerd has a NATS of its own, empty: replaying the
	// whole load bills what came after the backup, and nothing twice.
	_, js2 := testkit.JetStream(t, d2.NATSURL())
	for n := range int(loaded) {
		if err := publish(t.Context(), js2, loadUsage(n)); err != nil {
			t.Fatal(err)
		}
	}
	waitDraft(t, l2, ctl.DemoBAN, month, base+loaded*100)
	waitDraft(t, l, ctl.DemoBAN, month, base+loaded*100)
}

// TestBackupCommand: what ledgerctl backup says when it cannot run.
func TestBackupCommand(t *testing.T) {
	store := testkit.StartStore(t, eventstore.Config{})
	cfg := daemontest.Config(t.TempDir())
	cfg.EventstoreURL = store.URL()
	external := daemontest.Start(t, cfg)
	dead := testkit.FreeAddr(t)

	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(full, "x")
	fresh := filepath.Join(t.TempDir(), "backup")
	for _, c := range []struct {
		args   string
		code   int
		stderr string
	}{
		{"backup", 2, "ledgerctl: backup needs DIR\n"},
		{"backup " + full, 2, "ledgerctl: backup: " + full + " is not empty; a backup goes into a new or empty directory, so that it holds the store and nothing else\n"},
		{"backup " + file, 2, "ledgerctl: backup: " + file + " is a file; a backup goes into a new or empty directory\n"},
		{"--http " + dead + " backup " + fresh, 1, "ledgerctl: cannot reach ledgerd at " + dead + " (is `go run ./cmd/ledgerd` running?)\n"},
		{"backup --http " + external.HTTPAddr() + " " + fresh, 1, "ledgerctl: ledgerd refused the backup: ledgerd uses an external event store (--eventstore-url): back it up with KurrentDB's own backups (HTTP 501)\n"},
	} {
		t.Run(c.args, func(t *testing.T) {
			r := ctlEnv(t.Context(), strings.Fields(c.args)...)
			if r.code != c.code || r.stderr != c.stderr || r.stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d, stderr %q", r.code, r.stderr, r.stdout, c.code, c.stderr)
			}
			if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed backup left %s behind (%v)", fresh, err)
			}
		})
	}
}
