package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// childEnv makes the test binary run as ledgerd itself, with the arguments
// in the variable, so tests can kill a real ledgerd process.
const childEnv = "LEDGERD_TEST_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childEnv); ok {
		os.Exit(exitCode(run(strings.Fields(args))))
	}
	os.Exit(m.Run())
}

type ports struct{ nats, store, grpc, http string }

func newPorts(t *testing.T) ports {
	return ports{testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)}
}

func (p ports) args(dir string) string {
	return fmt.Sprintf("--data-dir %s --nats-listen %s --eventstore-listen %s --grpc-listen %s --http-listen %s --clock=false --log-level warn",
		dir, p.nats, p.store, p.grpc, p.http)
}

// startChild starts ledgerd as a process and waits until it answers
// /healthz. The process is killed when the test ends, if it has not been.
func startChild(t *testing.T, dir string, p ports) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+p.args(dir))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testkit.Eventually(t, "ledgerd answering /healthz", func() error {
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return cmd
}

func usage(i int) *billingv1.UsageReported {
	return &billingv1.UsageReported{EventId: fmt.Sprintf("u-%05d", i), Records: []*billingv1.UsageRecord{{
		RecordId: "r", Vendor: "AWS", AccountId: "111111111111", Service: "Amazon EC2", ChargeCategory: "Usage",
		ChargePeriodStart: timestamppb.New(time.Date(2018, 1, 1+i%28, 0, 0, 0, 0, time.UTC)),
		Cost:              &billingv1.Money{Amount: "0.01", Currency: "USD"},
	}}}
}

func seed() []proto.Message {
	return []proto.Message{
		&billingv1.OrganizationRegistered{EventId: "org-1", OrgId: "acme", Name: "Acme", Ban: "BAN-100", Currency: "USD"},
		&billingv1.CostCenterCreated{EventId: "cc-1", OrgId: "acme", CostCenterId: "cc-1"},
		&billingv1.WorkspaceCreated{EventId: "ws-1", OrgId: "acme", WorkspaceId: "ws-1", CostCenterId: "cc-1"},
		&billingv1.ProviderRegistered{EventId: "p-1", OrgId: "acme", ProviderId: "p-1", WorkspaceId: "ws-1", Vendor: "AWS", AccountId: "111111111111"},
	}
}

// publishAll publishes and waits for every acknowledgement: once
// acknowledged, a message is JetStream's to keep.
func publishAll(t *testing.T, js jetstream.JetStream, msgs []proto.Message) {
	t.Helper()
	for _, m := range msgs {
		subject, _ := wire.Subject(m)
		data, _ := proto.Marshal(m)
		if _, err := js.PublishAsync(subject, data); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publishes not acknowledged in 60 s")
	}
}

// TestKilledRepeatedlyBillsEverythingOnce kills ledgerd with SIGKILL again
// and again while thousands of messages are published to it and ingested.
// The publisher retries what was not acknowledged, as a metering service
// does. Afterwards every message is billed exactly once: the month's total
// is the sum of them all.
func TestKilledRepeatedlyBillsEverythingOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test skipped in -short mode")
	}
	const kills, messages = 10, 4000
	dir, p := t.TempDir(), newPorts(t)
	rng := rand.New(rand.NewPCG(7, 7))
	pending := seed()
	for i := range messages {
		pending = append(pending, usage(i))
	}
	for range kills {
		cmd := startChild(t, dir, p)
		// The kill lands at a random moment while messages are published
		// and ingested.
		killer := time.AfterFunc(time.Duration(50+rng.IntN(250))*time.Millisecond, func() { cmd.Process.Kill() })
		pending = publishUntilFailure(t, "nats://"+p.nats, pending)
		killer.Stop()
		cmd.Process.Kill()
		_ = cmd.Wait()
	}

	cfg := daemontest.Config(dir)
	cfg.NATSListen, cfg.EventstoreListen, cfg.GRPCListen, cfg.HTTPListen = p.nats, p.store, p.grpc, p.http
	d := daemontest.Start(t, cfg)
	// A running ledgerd acknowledges everything; on a loaded machine not
	// always within one attempt's grace, so retry, as publishers do.
	testkit.Eventually(t, "a running ledgerd acknowledging every message", func() error {
		if pending = publishUntilFailure(t, d.NATSURL(), pending); len(pending) > 0 {
			return fmt.Errorf("%d messages not acknowledged", len(pending))
		}
		return nil
	})
	waitDrained(t, d)
	m, _ := calendar.Parse("2018-01")
	var got string
	if _, err := d.Runner().Read(func(pr *billing.Projection) error {
		inv, err := pr.Invoice("BAN-100", m)
		if err == nil {
			got = money.Format(&inv.Total, inv.Currency)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d.%02d", messages/100, messages%100); got != want {
		t.Fatalf("after %d kills the month totals %s, want %s (%d messages of 0.01)", kills, got, want, messages)
	}
}

// publishUntilFailure publishes msgs and returns those not acknowledged
// (the server went away), in order, for the next attempt.
func publishUntilFailure(t *testing.T, url string, msgs []proto.Message) []proto.Message {
	t.Helper()
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		return msgs // killed before we connected
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		t.Fatal(err)
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		subject, _ := wire.Subject(m)
		data, _ := proto.Marshal(m)
		if futures[i], err = js.PublishAsync(subject, data); err != nil {
			break
		}
	}
	// Acknowledgements lost with the server never come: after a while,
	// whatever is not acknowledged is left for the next attempt.
	expired := make(chan struct{})
	timer := time.AfterFunc(2*time.Second, func() { close(expired) })
	defer timer.Stop()
	var left []proto.Message
	for i, f := range futures {
		if f == nil {
			left = append(left, msgs[i])
			continue
		}
		select {
		case <-f.Ok():
			continue
		default:
		}
		select {
		case <-f.Ok():
		case <-f.Err():
			left = append(left, msgs[i])
		case <-expired:
			left = append(left, msgs[i])
		}
	}
	return left
}

// waitDrained waits until ingestion has taken and acknowledged every
// message and the projections have applied everything in the store.
func waitDrained(t *testing.T, d *daemon.Daemon) {
	t.Helper()
	ctx := testkit.Context(t, 90*time.Second)
	_, js := testkit.JetStream(t, d.NATSURL())
	testkit.Eventually(t, "ingestion drained", func() error {
		cons, err := js.Consumer(ctx, wire.StreamIn, wire.Consumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("%d messages pending, %d awaiting acknowledgement", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	last, err := testkit.Log(t, d.EventstoreURL()).Last(ctx, billing.EventTypePrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Runner().WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
}

// TestExternalNATSServer runs ledgerd with --nats-url against a nats-server
// process built from the same module version with the Go toolchain.
func TestExternalNATSServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nats-server; skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "nats-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	addr := testkit.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	srv := exec.Command(bin, "-js", "-sd", t.TempDir(), "-a", host, "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	url := "nats://" + addr
	testkit.Eventually(t, "nats-server up", func() error {
		nc, err := nats.Connect(url)
		if err != nil {
			return err
		}
		nc.Close()
		return nil
	})

	dir, p := t.TempDir(), newPorts(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+p.args(dir)+" --nats-url "+url)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()

	// The streams appear on the external server, created by ledgerd.
	nc, js := testkit.JetStream(t, url)
	testkit.Eventually(t, "BILLING_IN on the external server", func() error {
		_, err := js.Stream(t.Context(), wire.StreamIn)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("BILLING_IN on the external server: %v", err)
		}
		return err
	})
	issued, err := nc.SubscribeSync(wire.InvoiceIssuedPrefix + "BAN-100")
	if err != nil {
		t.Fatal(err)
	}
	msgs := append(seed(), usage(1), usage(2),
		&billingv1.BillingCycleClosed{EventId: "c", Month: "2018-01", ClosedAt: timestamppb.New(time.Date(2018, 2, 1, 0, 0, 0, 0, time.UTC))})
	publishAll(t, js, msgs)
	msg, err := issued.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no invoice announced through the external server: %v", err)
	}
	if !strings.Contains(string(msg.Data), `"amount":"0.02"`) {
		t.Fatalf("announcement %s, want a total of 0.02", msg.Data)
	}
}
