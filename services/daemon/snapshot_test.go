package daemon_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/snapshot"
	"github.com/ledger-billing/ledger/services/testkit"
)

// getInvoices asks a ledgerd's gRPC service for the invoices of BAN-100
// of three months (two issued, one draft), and their digests.
func getInvoices(t *testing.T, d *daemon.Daemon) []*billingv1.GetInvoiceResponse {
	t.Helper()
	conn, err := grpc.NewClient(d.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := billingv1.NewBillingServiceClient(conn)
	var out []*billingv1.GetInvoiceResponse
	for _, m := range []string{"2018-01", "2018-02", "2018-03"} {
		resp, err := client.GetInvoice(testkit.Context(t, 10*time.Second), &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: m})
		if err != nil {
			t.Fatalf("GetInvoice %s: %v", m, err)
		}
		out = append(out, resp)
	}
	return out
}

// TestRestartFromSnapshot: a ledgerd stopped cleanly leaves a snapshot; the
// next start loads it (and says from which position), is ready, and
// answers GetInvoice exactly as a ledgerd that replayed the history from
// scratch; no more than two snapshots are kept.
func TestRestartFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.Config(dir))
	nc, js := testkit.JetStream(t, d.NATSURL())
	issued := announcements(t, nc)
	seedOrganization(t, js)
	for i, m := range []string{"2018-01", "2018-02"} {
		for j := range 3 {
			publishProto(t, js, ec2(fmt.Sprintf("u-%d-%d", i, j), m+"-1"+fmt.Sprint(j)+"T00:00:00Z", fmt.Sprintf("%d.25", j+1)))
		}
		publishProto(t, js, &billingv1.BillingCycleClosed{EventId: "c-" + m, Month: m, ClosedAt: ts(m + "-28T00:00:00Z")})
	}
	publishProto(t, js, ec2("u-late", "2018-03-05T00:00:00Z", "9.99"))
	var last uint64
	for range 2 {
		msg, err := issued.NextMsg(20 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var inv billingv1.InvoiceIssued
		if err := protojson.Unmarshal(msg.Data, &inv); err != nil {
			t.Fatal(err)
		}
		last = inv.Position
	}
	if err := d.Runner().WaitFor(testkit.Context(t, 20*time.Second), last); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the late usage applied", func() error {
		inv, err := invoice(d, "BAN-100", "2018-03")
		if err != nil {
			return err
		}
		if total(inv) != "9.99" {
			return fmt.Errorf("March draft total %s, want 9.99", total(inv))
		}
		return nil
	})
	before := getInvoices(t, d)
	pos, _ := d.Runner().Progress()
	nc.Close()
	d.Close()

	snapDir := filepath.Join(dir, "snapshots")
	snaps, _ := snapshot.List(snapDir)
	if len(snaps) != 1 || filepath.Base(snaps[0]) != fmt.Sprintf("%020d.snap", pos) {
		t.Fatalf("after a clean stop at position %d: snapshots %v", pos, snaps)
	}

	// Started again, from the snapshot.
	var logs testkit.LogBuffer
	cfg := daemontest.Config(dir)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	again := daemontest.Start(t, cfg)
	daemontest.WaitReady(t, again)
	if !strings.Contains(logs.String(), "restored from a snapshot") || !strings.Contains(logs.String(), fmt.Sprintf("position=%d", pos)) {
		t.Fatalf("the start from a snapshot at %d logged:\n%s", pos, logs.String())
	}
	fromSnapshot := getInvoices(t, again)
	again.Close()

	// And with snapshots off: a full replay of the same store.
	cfg = daemontest.Config(dir)
	cfg.Snapshots = false
	replayed := daemontest.Start(t, cfg)
	daemontest.WaitReady(t, replayed)
	fromScratch := getInvoices(t, replayed)
	replayed.Close()

	for i := range before {
		if !proto.Equal(fromSnapshot[i], fromScratch[i]) || !proto.Equal(fromSnapshot[i], before[i]) {
			t.Fatalf("GetInvoice %d after a start from a snapshot:\n%v\nafter a full replay:\n%v\nbefore the stop:\n%v", i, fromSnapshot[i], fromScratch[i], before[i])
		}
	}

	// A start with nothing new writes no new snapshot; one with news does,
	// and the oldest goes.
	for i := range 3 {
		d := daemontest.Start(t, daemontest.Config(dir))
		daemontest.WaitReady(t, d)
		_, js := testkit.JetStream(t, d.NATSURL())
		publishProto(t, js, ec2(fmt.Sprint("u-more-", i), "2018-03-06T00:00:00Z", "1.00"))
		testkit.Eventually(t, "the usage applied", func() error {
			inv, err := invoice(d, "BAN-100", "2018-03")
			if err != nil {
				return err
			}
			if want := fmt.Sprintf("%d.99", 10+i); total(inv) != want {
				return fmt.Errorf("March draft total %s, want %s", total(inv), want)
			}
			return nil
		})
		d.Close()
	}
	if snaps, _ := snapshot.List(snapDir); len(snaps) != snapshot.Keep {
		t.Fatalf("snapshots kept: %v, want %d", snaps, snapshot.Keep)
	}
}
