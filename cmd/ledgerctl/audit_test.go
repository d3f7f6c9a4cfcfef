package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/audit"
	"github.com/ledger-billing/ledger/services/ctl"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/synth"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// auditedLedger starts a ledgerd that seals every 100 ms, runs the demo on
// it, and waits until every issued document is recorded and the log is
// sealed through its last billing event. It returns the ledgerd, its data
// directory and the file of its public key, as `audit public-key` wrote it.
func auditedLedger(t *testing.T) (*ledger, string, string) {
	t.Helper()
	dir := t.TempDir()
	l := sealingLedger(t, daemontest.Config(dir))
	l.must(t, "demo")
	waitAudited(t, l)
	key := filepath.Join(t.TempDir(), "ledgerd.pub")
	if err := os.WriteFile(key, []byte(l.must(t, "audit", "public-key", "--data-dir", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return l, dir, key
}

// sealingLedger starts a ledgerd with cfg that seals every 100 ms.
func sealingLedger(t *testing.T, cfg daemon.Config) *ledger {
	t.Helper()
	cfg.SealInterval = 100 * time.Millisecond
	l, err := dialLedger(daemontest.Start(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.conn.Close() })
	return l
}

// waitAudited waits until l has recorded every document it issued and
// sealed the log through its last billing event.
func waitAudited(t *testing.T, l *ledger) { waitRecorded(t, l, 0) }

// waitRecorded waits until l has recorded every document it issued but
// unrecorded (those whose record met another) and sealed the log through
// its last billing event.
func waitRecorded(t *testing.T, l *ledger, unrecorded int) {
	t.Helper()
	log := testkit.Log(t, l.d.EventstoreURL())
	testkit.Eventually(t, "every issued document recorded and the log sealed", func() error {
		var left, recorded int
		if _, err := l.d.Runner().Read(func(p *billing.Projection) error {
			left, recorded = len(p.Unrecorded(1000)), len(p.Issued())
			return nil
		}); err != nil {
			return err
		}
		if left != unrecorded || recorded == 0 {
			return fmt.Errorf("%d documents recorded, %d not yet", recorded, left)
		}
		chain := l.d.Runner().Chain()
		last, err := log.Latest(t.Context(), audit.SealStream)
		if err != nil {
			return err
		}
		var seal billingv1.LogSealed
		if err := proto.Unmarshal(last.Data, &seal); err != nil {
			return err
		}
		if seal.Events != chain.Events {
			return fmt.Errorf("sealed through %d billing events of %d", seal.Events, chain.Events)
		}
		return nil
	})
}

// copyOf takes a backup of l's store into a new data directory.
func copyOf(t *testing.T, l *ledger) string {
	t.Helper()
	dir := t.TempDir()
	l.must(t, "--http", l.d.HTTPAddr(), "backup", filepath.Join(dir, "eventstore"))
	return dir
}

// verify runs audit verify on a copy of a data directory.
func verify(t *testing.T, dir, key string) result {
	t.Helper()
	r := ctlEnv(t.Context(), "audit", "verify", "--data-dir", dir, "--public-key", key)
	t.Log(r.stdout)
	return r
}

func TestAuditVerify(t *testing.T) {
	l, dataDir, key := auditedLedger(t)

	// A usage message of our own, to damage later.
	_, js := testkit.JetStream(t, l.d.NATSURL())
	marked := &billingv1.UsageReported{EventId: "audit-marked", Records: []*billingv1.UsageRecord{{
		RecordId: "marker-0001", Vendor: "AWS", AccountId: "111111111111", Service: "AmazonEC2", ChargeCategory: "Usage",
		ChargePeriodStart: timestamppb.New(time.Date(2025, 4, 3, 0, 0, 0, 0, time.UTC)),
		ChargePeriodEnd:   timestamppb.New(time.Date(2025, 4, 3, 1, 0, 0, 0, time.UTC)),
		Cost:              &billingv1.Money{Amount: "1.25", Currency: "USD"},
	}}}
	if err := publish(t.Context(), js, marked); err != nil {
		t.Fatal(err)
	}
	waitDraft(t, l, ctl.DemoBAN, "2025-04", 125)
	waitAudited(t, l)

	clean := copyOf(t, l)
	r := verify(t, clean, key)
	if r.code != 0 || !strings.Contains(r.stdout, "OK: ") {
		t.Fatalf("verify of an untouched history: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"Seals checked:        ", "Documents checked:    "} {
		line := lineWith(r.stdout, want)
		if n, _ := strconv.Atoi(strings.Fields(strings.TrimPrefix(line, want))[0]); n == 0 {
			t.Errorf("verify checked no %s: %q", want, line)
		}
	}

	// The same through the store's port, as an auditor with read access
	// to a KurrentDB would.
	if r := ctlEnv(t.Context(), "audit", "verify", "--eventstore-url", l.d.EventstoreURL(), "--public-key", key); r.code != 0 || !strings.Contains(r.stdout, "OK: ") {
		t.Fatalf("verify --eventstore-url: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	t.Run("data changed in a copy", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
			t.Fatal(err)
		}
		rewrite(t, filepath.Join(dir, "eventstore"), []byte("marker-0001"), []byte("marker-0002"))
		r := verify(t, dir, key)
		wantFault(t, r, "stream usage-audit-marked", "does not match its stream, id, type and data")
	})

	t.Run("event appended through the store's port", func(t *testing.T) {
		forged := proto.CloneOf(marked)
		forged.EventId = "audit-forged"
		data, _ := proto.Marshal(forged)
		client := testkit.Client(t, l.d.EventstoreURL())
		if _, err := client.AppendToStream(t.Context(), "usage-audit-forged", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}},
			esdb.EventData{EventID: uuid.New(), EventType: "billing.v1.UsageReported", ContentType: esdb.ContentTypeBinary, Data: data}); err != nil {
			t.Fatal(err)
		}
		// ledgerd bills it like any other: only the signature tells.
		waitDraft(t, l, ctl.DemoBAN, "2025-04", 250)
		wantFault(t, verify(t, copyOf(t, l), key), "stream usage-audit-forged", "not signed")
	})

	t.Run("stream tombstoned", func(t *testing.T) {
		client := testkit.Client(t, l.d.EventstoreURL())
		if _, err := client.TombstoneStream(t.Context(), "usage-audit-marked", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
			t.Fatal(err)
		}
		wantFault(t, verify(t, copyOf(t, l), key), "stream usage-audit-marked", "was tombstoned")
	})

	t.Run("DocumentIssued with another digest", func(t *testing.T) {
		// Signed with ledgerd's own key, so that only the digest can tell.
		signer, err := audit.LoadSigner(filepath.Join(dataDir, audit.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		log := testkit.Log(t, l.d.EventstoreURL())
		log.SignWith(signer)
		stream := audit.IssuedStream(billing.BillingCycle, ctl.DemoBAN, "2025-02")
		data, _ := proto.Marshal(&billingv1.DocumentIssued{Ban: ctl.DemoBAN, Month: "2025-02", View: "billing_cycle",
			Total: &billingv1.Money{Amount: "1.00", Currency: "USD"}, Digest: strings.Repeat("0", 64)})
		a, err := log.Append(t.Context(), stream, eventlog.Any, eventlog.Event{ID: uuid.New(), Type: audit.IssuedType, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		wantFault(t, verify(t, copyOf(t, l), key), "DocumentIssued of the billing_cycle document of BAN-1001 for 2025-02 records digest 0000")
		// The running ledgerd lists it among the exceptions.
		r := l.ctl(t.Context(), "exceptions", "--json")
		if !strings.Contains(r.stdout, "EXCEPTION_KIND_DIGEST_MISMATCH") {
			t.Errorf("ledgerctl exceptions after a DocumentIssued at %d with another digest:\n%s", a.Position, r.stdout)
		}
	})
}

// wantFault checks that verify failed (exit status 1) and printed a fault
// with every one of parts in it.
func wantFault(t *testing.T, r result, parts ...string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stdout, "FAILED: ") {
		t.Fatalf("verify: exit %d, want 1 and FAILED\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return
		}
	}
	t.Errorf("verify printed no fault with %q:\n%s", parts, r.stdout)
}

func lineWith(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return prefix + "0"
}

// rewrite replaces old with new (of the same length) in every value of the
// Pebble store in dir: a change to one event's data made with a disk
// editor, below the store's own checks.
func rewrite(t *testing.T, dir string, old, new []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for it.First(); it.Valid(); it.Next() {
		if v := it.Value(); bytes.Contains(v, old) {
			if err := db.Set(bytes.Clone(it.Key()), bytes.ReplaceAll(v, old, new), pebble.Sync); err != nil {
				t.Fatal(err)
			}
			changed++
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if changed == 0 {
		t.Fatalf("no value of the store holds %q", old)
	}
}

// TestAuditReplay replays the demo's history through the close of
// February: the invoice as it was issued, digest and all; through the
// position before March's close: March's draft, with the late February
// record that came after February's close as an update line.
func TestAuditReplay(t *testing.T) {
	l, _, _ := auditedLedger(t)
	var copied string // one backup, taken at the first replay, for all of them
	replay := func(through uint64, month string, more ...string) *billingv1.GetInvoiceResponse {
		t.Helper()
		if copied == "" {
			copied = copyOf(t, l)
		}
		out := l.must(t, append([]string{"--json", "audit", "replay", "--data-dir", copied, "--through-position", strconv.FormatUint(through, 10), "--ban", ctl.DemoBAN, "--month", month}, more...)...)
		var resp billingv1.GetInvoiceResponse
		if err := protojson.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("audit replay --json: %v\n%s", err, out)
		}
		return &resp
	}
	feb, err := l.svc.GetInvoice(t.Context(), &billingv1.GetInvoiceRequest{Ban: ctl.DemoBAN, Month: "2025-02"})
	if err != nil {
		t.Fatal(err)
	}
	closeFeb := feb.GetInvoice().GetPosition()
	got := replay(closeFeb, "2025-02")
	if got.Digest == "" || got.Digest != feb.Digest {
		t.Errorf("replay through February's close: digest %q, GetInvoice's %q", got.Digest, feb.Digest)
	}
	got.Invoice.Position, feb.Invoice.Position = 0, 0
	if !proto.Equal(got.Invoice, feb.Invoice) {
		t.Errorf("replay through February's close:\n%v\nGetInvoice:\n%v", got.Invoice, feb.Invoice)
	}
	if before := replay(closeFeb-1, "2025-02"); before.GetInvoice().GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT || before.Digest != "" {
		t.Errorf("replay through the position before February's close: %v, digest %q; want the draft", before.GetInvoice().GetStatus(), before.Digest)
	}

	// The vendor view of February, as finalized: the digest its
	// DocumentIssued records.
	var recorded billingv1.DocumentIssued
	first, err := testkit.Log(t, l.d.EventstoreURL()).First(t.Context(), audit.IssuedStream(billing.VendorCycle, ctl.DemoBAN, ctl.DemoFinalized))
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(first.Data, &recorded); err != nil {
		t.Fatal(err)
	}
	if v := replay(1<<62, ctl.DemoFinalized, "--view", "vendor"); v.Digest == "" || v.Digest != recorded.Digest {
		t.Errorf("replay of the vendor view of %s: digest %q, its DocumentIssued %q", ctl.DemoFinalized, v.Digest, recorded.Digest)
	}

	mar, err := l.svc.GetInvoice(t.Context(), &billingv1.GetInvoiceRequest{Ban: ctl.DemoBAN, Month: "2025-03"})
	if err != nil {
		t.Fatal(err)
	}
	draft := replay(mar.GetInvoice().GetPosition()-1, "2025-03").GetInvoice()
	if draft.GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT {
		t.Fatalf("March before its close: %v, want a draft", draft.GetStatus())
	}
	update := false
	for _, line := range draft.GetLines() {
		update = update || line.GetKind() == billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE && line.GetForMonth() == "2025-02"
	}
	if !update {
		t.Errorf("March's draft through the position before its close has no update of February: %v", draft.GetLines())
	}
	if draft.GetTotal().GetAmount() != mar.GetInvoice().GetTotal().GetAmount() {
		t.Errorf("March's draft before its close totals %s, the issued invoice %s", draft.GetTotal().GetAmount(), mar.GetInvoice().GetTotal().GetAmount())
	}
}

// quiet keeps Pebble's informational logs out of the test's output.
type quiet struct{}

func (quiet) Infof(string, ...any)         {}
func (quiet) Errorf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (quiet) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// TestAuditTwoLedgerds runs two ledgerd on one NATS and one store, with one
// signing key, each sealing every 100 ms: they record each document once,
// with the digest both compute, and write one seal chain between them,
// which verify checks seal by seal.
func TestAuditTwoLedgerds(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := sealingLedger(t, daemontest.Config(dirA))
	cfgB := daemontest.Config(dirB)
	cfgB.NATSURL, cfgB.EventstoreURL = a.d.NATSURL(), a.d.EventstoreURL()
	cfgB.SigningKey = filepath.Join(dirA, audit.KeyFile)
	b := sealingLedger(t, cfgB)

	a.must(t, "demo")
	waitAudited(t, a)
	waitAudited(t, b)
	for _, month := range []string{"2025-01", "2025-02", "2025-03"} {
		ra, err := a.svc.GetInvoice(t.Context(), &billingv1.GetInvoiceRequest{Ban: ctl.DemoBAN, Month: month})
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.svc.GetInvoice(t.Context(), &billingv1.GetInvoiceRequest{Ban: ctl.DemoBAN, Month: month, MinPosition: ra.Position})
		if err != nil {
			t.Fatal(err)
		}
		if ra.Digest == "" || ra.Digest != rb.Digest {
			t.Errorf("%s: digests %q and %q; A: %v %d lines, B: %v %d lines", month, ra.Digest, rb.Digest, ra.GetInvoice().GetStatus(), len(ra.GetInvoice().GetLines()), rb.GetInvoice().GetStatus(), len(rb.GetInvoice().GetLines()))
		}
	}
	// One DocumentIssued per document, and seals that never fork.
	log := testkit.Log(t, a.d.EventstoreURL())
	var prev uint64
	seals := 0
	if err := log.ReadStream(t.Context(), audit.SealStream, func(ev eventlog.Recorded) error {
		var s billingv1.LogSealed
		if err := proto.Unmarshal(ev.Data, &s); err != nil {
			return err
		}
		if s.Events <= prev {
			return fmt.Errorf("seal at revision %d covers %d events, after one of %d", ev.Revision, s.Events, prev)
		}
		prev = s.Events
		seals++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	issued, streams := 0, map[string]bool{}
	if _, err := log.ReadAll(t.Context(), func(ev eventlog.Recorded) error {
		if ev.Type == audit.IssuedType {
			issued++
			streams[ev.Stream] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if issued != len(streams) || issued == 0 {
		t.Errorf("%d DocumentIssued in the history for %d documents", issued, len(streams))
	}
	key := filepath.Join(t.TempDir(), "ledgerd.pub")
	if err := os.WriteFile(key, []byte(a.must(t, "audit", "public-key", "--data-dir", dirA)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, copyOf(t, a), key); r.code != 0 {
		t.Fatalf("verify of two ledgerds' history (%d seals): exit %d\n%s", seals, r.code, r.stdout)
	}
}

// TestAuditVerifyLargeHistory verifies a generated history of 60,000
// usage records with reserved instances, reconciliations, three closes and
// a finalization, as one ledgerd wrote it, and logs how fast verify read
// it (the figures are BenchmarkVerify's business).
func TestAuditVerifyLargeHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("a 60,000-record history: not in -short")
	}
	dir := t.TempDir()
	l := sealingLedger(t, daemontest.Config(dir))
	_, js := testkit.JetStream(t, l.d.NATSURL())
	g := synth.New(synth.Config{Seed: 7, RunID: "large", Orgs: 3, AccountsPerOrg: 100, Months: 3, RecordsPerMessage: 1000})
	msgs := g.Hierarchy()
	for range 60 {
		msgs = append(msgs, g.Usage())
	}
	months := g.Months()
	for _, m := range months {
		msgs = append(msgs, g.Extras(m)...)
	}
	for _, m := range months {
		msgs = append(msgs, wire.CloseMessage(wire.SourceLedgerctl, m))
	}
	msgs = append(msgs, wire.FinalizeMessage(wire.SourceLedgerctl, months[0]))
	for _, m := range msgs {
		if err := publish(t.Context(), js, m); err != nil {
			t.Fatal(err)
		}
	}
	last := months[len(months)-1].String()
	testkit.Eventually(t, "the last month issued", func() error {
		resp, err := l.svc.GetInvoice(t.Context(), &billingv1.GetInvoiceRequest{Ban: g.BAN(0), Month: last, PageSize: 1})
		if err != nil {
			return err
		}
		if resp.GetInvoice().GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED {
			return fmt.Errorf("%s %s is %v", g.BAN(0), last, resp.GetInvoice().GetStatus())
		}
		return nil
	})
	waitAudited(t, l)
	key := filepath.Join(t.TempDir(), "ledgerd.pub")
	if err := os.WriteFile(key, []byte(l.must(t, "audit", "public-key", "--data-dir", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	copied := copyOf(t, l)
	start := time.Now()
	r := verify(t, copied, key)
	took := time.Since(start)
	if r.code != 0 || !strings.Contains(r.stdout, "OK: ") {
		t.Fatalf("verify of a generated history: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if docs := lineWith(r.stdout, "Documents checked:    "); strings.HasSuffix(docs, " 0") {
		t.Errorf("verify checked no document: %s", docs)
	}
	t.Logf("verified 60,000 records in %s", took.Round(time.Millisecond))
}

// TestAuditDigestConflict records, before January is closed, a
// DocumentIssued of its invoice with another digest (as a replica that
// disagreed would have): when ledgerd issues the invoice its own record
// meets it, which is an error in the log, a count in /metrics and, on
// every ledgerd, an exception; and verify fails on it.
func TestAuditDigestConflict(t *testing.T) {
	dir := t.TempDir()
	l := sealingLedger(t, daemontest.Config(dir))
	signer, err := audit.LoadSigner(filepath.Join(dir, audit.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	log := testkit.Log(t, l.d.EventstoreURL())
	log.SignWith(signer) // as a replica with the same key would
	stream := audit.IssuedStream(billing.BillingCycle, ctl.DemoBAN, ctl.DemoFirst)
	data, _ := proto.Marshal(&billingv1.DocumentIssued{Ban: ctl.DemoBAN, Month: ctl.DemoFirst, View: "billing_cycle",
		Total: &billingv1.Money{Amount: "1.00", Currency: "USD"}, Digest: strings.Repeat("f", 64)})
	if _, err := log.Append(t.Context(), stream, eventlog.NoStream, eventlog.Event{ID: uuid.New(), Type: audit.IssuedType, Data: data}); err != nil {
		t.Fatal(err)
	}
	l.must(t, "demo")
	testkit.Eventually(t, "the conflict counted", func() error {
		resp, err := http.Get("http://" + l.d.HTTPAddr() + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), "\nledger_audit_digest_conflicts_total 1\n") {
			return errors.New("ledger_audit_digest_conflicts_total is not 1")
		}
		return nil
	})
	if r := l.ctl(t.Context(), "exceptions", "--json"); !strings.Contains(r.stdout, "EXCEPTION_KIND_DIGEST_MISMATCH") {
		t.Errorf("ledgerctl exceptions: no DIGEST_MISMATCH\n%s", r.stdout)
	}
	waitRecorded(t, l, 1)
	key := filepath.Join(t.TempDir(), "ledgerd.pub")
	if err := os.WriteFile(key, []byte(l.must(t, "audit", "public-key", "--data-dir", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFault(t, verify(t, copyOf(t, l), key), "DocumentIssued of the billing_cycle document of BAN-1001 for 2025-01")
}

// TestAuditAcrossSnapshotRestart stops a ledgerd (which writes a snapshot,
// seal chain and all), starts it again from the snapshot, bills more, and
// verifies the whole history: the seals written after the restart continue
// the chain that verify computes from the first event.
func TestAuditAcrossSnapshotRestart(t *testing.T) {
	l, dir, key := auditedLedger(t)
	before := l.d.Runner().Chain()
	l.d.Close()
	if snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*.snap")); len(snaps) == 0 {
		t.Fatal("no snapshot written at a clean stop")
	}
	l = sealingLedger(t, daemontest.Config(dir))
	daemontest.WaitReady(t, l.d)
	if got := l.d.Runner().Chain(); got != before {
		t.Fatalf("the seal chain after a restart from the snapshot is %+v, before it %+v", got, before)
	}
	_, js := testkit.JetStream(t, l.d.NATSURL())
	if err := publish(t.Context(), js, &billingv1.UsageReported{EventId: "after-restart", Records: []*billingv1.UsageRecord{{
		RecordId: "1", Vendor: "AWS", AccountId: "111111111111", Service: "AmazonEC2", ChargeCategory: "Usage",
		ChargePeriodStart: timestamppb.New(time.Date(2025, 4, 3, 0, 0, 0, 0, time.UTC)),
		Cost:              &billingv1.Money{Amount: "2.50", Currency: "USD"},
	}}}); err != nil {
		t.Fatal(err)
	}
	waitDraft(t, l, ctl.DemoBAN, "2025-04", 250)
	waitAudited(t, l)
	if r := verify(t, copyOf(t, l), key); r.code != 0 {
		t.Fatalf("verify after a restart from a snapshot: exit %d\n%s", r.code, r.stdout)
	}
}
