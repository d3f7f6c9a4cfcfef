package daemon_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/audit"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// TestReplicas runs two ledgerd on one NATS and one store (DESIGN.md,
// "Scale"): A in process, with the embedded NATS and store, and B as a real
// ledgerd process pointed at them, sharing A's signing key. Usage is
// published while both ingest from the one durable consumer; B is killed
// with SIGKILL while it holds messages it has taken and not acknowledged,
// and publishing goes on. Every message is billed exactly once: the draft
// is the exact sum, the store holds one event per message, nothing is
// dead-lettered, and every message B held is acknowledged after its
// redelivery. B comes back on its data directory, and both answer the
// month's issued invoice alike, digest and all.
func TestReplicas(t *testing.T) {
	bin := buildLedgerd(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	cfgA := daemontest.Config(dirA)
	// Every publish fsynced would make the publisher, not ingestion, the
	// bottleneck, and leave no backlog to kill B in; what is under test is
	// the consumer, not NATS's durability.
	cfgA.NATSSync = false
	a := daemontest.Start(t, cfgA)
	// B's flags, as an operator runs a replica; the store's URL carries
	// its password, so it goes in the environment rather than in argv.
	argsB := []string{"--data-dir", dirB, "--nats-url", a.NATSURL(),
		"--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--clock=false", "--signing-key", filepath.Join(dirA, audit.KeyFile), "--log-level", "info"}
	envB := []string{"LEDGER_EVENTSTORE_URL=" + a.EventstoreURL()}
	b := startReplica(t, bin, envB, argsB)
	waitReadyz(t, "A", a.HTTPAddr())
	waitReadyz(t, "B", b.http)

	nc, js := testkit.JetStream(t, a.NATSURL())
	w := watchConsumer(t, nc)
	ctx := testkit.Context(t, 2*time.Minute)
	in, err := js.Stream(ctx, wire.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, wire.StreamIn, wire.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	// The organization first, all of it taken before any usage, since
	// either ledgerd may take any message.
	seedOrganization(t, js)
	waitDrained(t, in, cons)

	const messages, beforeKill = 2000, 1200
	var wantCents int64
	for k := range messages {
		wantCents += cents(k)
	}
	killed, published := make(chan struct{}), make(chan error, 1)
	go func() {
		published <- func() error {
			// Asynchronous publishes, so that a backlog builds up; the
			// window bounds what is unconfirmed.
			pub, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
			if err != nil {
				return err
			}
			acks := make([]jetstream.PubAckFuture, 0, messages)
			for k := range messages {
				if k == beforeKill {
					select {
					case <-killed:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				f, err := pub.PublishMsgAsync(usageMsg(k))
				if err != nil {
					return fmt.Errorf("message %d: %w", k, err)
				}
				acks = append(acks, f)
			}
			// Every publish confirmed, or the total would be off for a
			// reason that is not ledgerd's.
			for k, f := range acks {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					return fmt.Errorf("message %d: %w", k, err)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}()
	}()

	// Kill B once both ledgerd are ingesting usage (each one's /metrics
	// counts some) and the consumer has messages out, unacknowledged, and
	// more waiting behind them: B, busy with a backlog, then holds messages
	// it has taken and not acknowledged. The condition is polled often,
	// since the backlog lasts a second or two; it is bounded like any wait.
	deadline := time.Now().Add(testkit.EventuallyWithin)
	var ingestedA, ingestedB int
	for {
		ci, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ingestedA, ingestedB = usageIngested(t, a.HTTPAddr()), usageIngested(t, b.http)
		why := ""
		switch {
		case ingestedA == 0 || ingestedB == 0:
			why = fmt.Sprintf("usage ingested: %d by A, %d by B", ingestedA, ingestedB)
		case ci.NumPending == 0 || ci.NumAckPending < 2:
			why = fmt.Sprintf("consumer: %d waiting, %d unacknowledged", ci.NumPending, ci.NumAckPending)
		}
		if why == "" {
			t.Logf("killing B: usage ingested: %d by A, %d by B; consumer: %d waiting, %d unacknowledged",
				ingestedA, ingestedB, ci.NumPending, ci.NumAckPending)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no moment to kill B mid-ingest within %s: %s", testkit.EventuallyWithin, why)
		}
		select {
		case err := <-published:
			t.Fatalf("publishing stopped before B was killed: %v (%s)", err, why)
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.kill(t)
	close(killed)

	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publishing: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("publishing did not end")
	}
	// What B held comes back after the consumer's ack wait, to A: every
	// delivery is acknowledged in the end, some only on a later delivery
	// (A acknowledges well within the ack wait; B never will).
	waitDrained(t, in, cons)
	w.check(t)
	if left := w.unacknowledged(); len(left) > 0 {
		t.Errorf("BILLING_IN sequences delivered and never acknowledged: %v", left)
	}
	redelivered := w.redelivered()
	if len(redelivered) == 0 {
		t.Errorf("no message was acknowledged after a redelivery: B held none when it was killed")
	}
	t.Logf("acknowledged after a redelivery (held by B when it was killed): %d messages", len(redelivered))

	// One event per message in the store, and A's draft is their sum.
	log := testkit.Log(t, a.EventstoreURL())
	usage, last := 0, uint64(0)
	if _, err := log.ReadAll(ctx, func(ev eventlog.Recorded) error {
		if ev.Type == "billing.v1.UsageReported" {
			usage++
		}
		last = max(last, ev.Position)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if usage != messages {
		t.Errorf("%d UsageReported events in the store for %d messages", usage, messages)
	}
	if err := a.Runner().WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d.%02d", wantCents/100, wantCents%100)
	inv, err := invoice(a, "BAN-100", "2018-01")
	if err != nil {
		t.Fatal(err)
	}
	if got := total(inv); got != want {
		t.Fatalf("A's draft 2018-01 totals %s, want %s: a message was lost or billed twice", got, want)
	}
	dlq, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if n := dlq.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}

	// B again, on its data directory: it replays the history, and both
	// answer January, once closed, alike.
	b = startReplica(t, bin, envB, argsB)
	waitReadyz(t, "B restarted", b.http)
	jan, _ := calendar.Parse("2018-01")
	publishProto(t, js, wire.CloseMessage(wire.SourceLedgerctl, jan))
	clientA, clientB := queryClient(t, a.GRPCAddr()), queryClient(t, b.grpc)
	var ra *billingv1.GetInvoiceResponse
	testkit.Eventually(t, "January issued on A", func() error {
		var err error
		ra, err = clientA.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01"})
		if err == nil && ra.GetInvoice().GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED {
			err = fmt.Errorf("January is %v", ra.GetInvoice().GetStatus())
		}
		return err
	})
	rb, err := clientB.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: ra.Position})
	if err != nil {
		t.Fatal(err)
	}
	if got := ra.GetInvoice().GetTotal().GetAmount(); got != want {
		t.Errorf("January issued with %s, want %s", got, want)
	}
	if ra.Digest == "" || ra.Digest != rb.Digest {
		t.Errorf("digests: A %q, B %q", ra.Digest, rb.Digest)
	}
	if !proto.Equal(ra.Invoice, rb.Invoice) {
		t.Errorf("January on A:\n%v\non B:\n%v", ra.Invoice, rb.Invoice)
	}
	waitOneEvent(t, log, audit.IssuedStream(billing.BillingCycle, "BAN-100", "2018-01"))
}

// TestReplicaClocks runs two ledgerd on one NATS and one store, both with
// the cycle clock on and both clocks running across January's end: each
// publishes January's close, which is appended once and issues the invoice
// once, and both answer it with the same digest.
func TestReplicaClocks(t *testing.T) {
	ns := testkit.NATS(t)
	store := testkit.StartStore(t, eventstore.Config{})
	shared := func(dir string) daemon.Config {
		cfg := daemontest.Config(dir)
		cfg.NATSURL, cfg.EventstoreURL = ns.ClientURL(), store.URL()
		return cfg
	}

	// The history, with the clock off: December closed by hand (the
	// clock never starts a ledger's cycles), usage in January.
	dirA := t.TempDir()
	setup := daemontest.Start(t, shared(dirA))
	nc, js := testkit.JetStream(t, ns.ClientURL())
	seedOrganization(t, js)
	publishProto(t, js, ec2("u-dec", "2017-12-10T00:00:00Z", "1.00"))
	dec, _ := calendar.Parse("2017-12")
	publishProto(t, js, wire.CloseMessage(wire.SourceLedgerctl, dec))
	// December's vendor cycle too, or the clocks would finalize it first
	// and look again only 30 s later.
	publishProto(t, js, wire.FinalizeMessage(wire.SourceLedgerctl, dec))
	publishProto(t, js, ec2("u-jan", "2018-01-10T00:00:00Z", "7.25"))
	testkit.Eventually(t, "January's usage billed", func() error {
		inv, err := invoice(setup, "BAN-100", "2018-01")
		if err == nil && total(inv) != "7.25" {
			err = fmt.Errorf("draft %s", total(inv))
		}
		return err
	})
	setup.Close()

	// Both clocks run from three seconds before January ends, as two
	// machines' clocks would: both wait for the boundary and publish the
	// close at once, or, if starting took longer, on their first look.
	closes, err := nc.SubscribeSync(wire.SubjectPrefix + "billing_cycle_closed")
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	now := func() time.Time { return time.Date(2018, 1, 31, 23, 59, 57, 0, time.UTC).Add(time.Since(started)) }
	cfgA, cfgB := shared(dirA), shared(t.TempDir())
	cfgB.SigningKey = filepath.Join(dirA, audit.KeyFile)
	for _, cfg := range []*daemon.Config{&cfgA, &cfgB} {
		cfg.Clock, cfg.Now = true, now
	}
	a, b := daemontest.Start(t, cfgA), daemontest.Start(t, cfgB)

	ctx := testkit.Context(t, time.Minute)
	log := testkit.Log(t, store.URL())
	closed := waitOneEvent(t, log, "billingcycle-2018-01")
	clientA, clientB := queryClient(t, a.GRPCAddr()), queryClient(t, b.GRPCAddr())
	ra, err := clientA.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: closed.Position})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := clientB.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: closed.Position})
	if err != nil {
		t.Fatal(err)
	}
	if ra.GetInvoice().GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED || ra.GetInvoice().GetTotal().GetAmount() != "7.25" {
		t.Fatalf("January on A: %v %s, want ISSUED 7.25", ra.GetInvoice().GetStatus(), ra.GetInvoice().GetTotal().GetAmount())
	}
	if ra.Digest == "" || ra.Digest != rb.Digest || !proto.Equal(ra.Invoice, rb.Invoice) {
		t.Errorf("January: A %q\n%v\nB %q\n%v", ra.Digest, ra.Invoice, rb.Digest, rb.Invoice)
	}
	issued := waitOneEvent(t, log, audit.IssuedStream(billing.BillingCycle, "BAN-100", "2018-01"))
	var doc billingv1.DocumentIssued
	if err := proto.Unmarshal(issued.Data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Digest != ra.Digest {
		t.Errorf("DocumentIssued records digest %q, GetInvoice answers %q", doc.Digest, ra.Digest)
	}

	// How many closes the clocks published depends on whether the second
	// clock looked before the first close was applied; each is taken
	// once, none dead-lettered.
	n := 0
	for {
		if _, err := closes.NextMsg(0); err != nil {
			break
		}
		n++
	}
	t.Logf("the clocks published January's close %d times", n)
	if n == 0 {
		t.Errorf("no clock published January's close")
	}
	dlq, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := dlq.CachedInfo().State.Msgs; msgs != 0 {
		t.Errorf("%d dead letters, want none", msgs)
	}
	closesInAll := 0
	if _, err := log.ReadAll(ctx, func(ev eventlog.Recorded) error {
		if ev.Type == "billing.v1.BillingCycleClosed" && strings.HasSuffix(ev.Stream, "-2018-01") {
			closesInAll++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if closesInAll != 1 {
		t.Errorf("%d closes of 2018-01 in the history, want 1", closesInAll)
	}
}

// waitOneEvent waits until stream has an event, and checks it has exactly
// one: what several ledgerd append with expected revision no_stream.
func waitOneEvent(t *testing.T, log *eventlog.Log, stream string) eventlog.Recorded {
	t.Helper()
	var events []eventlog.Recorded
	testkit.Eventually(t, "stream "+stream, func() error {
		events = nil
		err := log.ReadStream(t.Context(), stream, func(ev eventlog.Recorded) error {
			events = append(events, ev)
			return nil
		})
		if err == nil && len(events) == 0 {
			err = errors.New("no events yet")
		}
		return err
	})
	if len(events) != 1 {
		t.Fatalf("stream %s has %d events, want 1", stream, len(events))
	}
	return events[0]
}

// waitDrained waits until the consumer has taken and acknowledged every
// message of BILLING_IN (a work queue drops what is acknowledged).
func waitDrained(t *testing.T, in jetstream.Stream, cons jetstream.Consumer) {
	t.Helper()
	testkit.Eventually(t, "BILLING_IN drained", func() error {
		info, err := in.Info(t.Context())
		if err != nil {
			return err
		}
		ci, err := cons.Info(t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 || ci.NumPending != 0 || ci.NumAckPending != 0 {
			return fmt.Errorf("%d messages in %s; consumer: %d waiting, %d unacknowledged", info.State.Msgs, wire.StreamIn, ci.NumPending, ci.NumAckPending)
		}
		return nil
	})
}

func queryClient(t *testing.T, addr string) billingv1.BillingServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return billingv1.NewBillingServiceClient(conn)
}

// waitReadyz waits until a ledgerd's /readyz answers 200.
func waitReadyz(t *testing.T, name, addr string) {
	t.Helper()
	testkit.Eventually(t, name+" ready", func() error {
		code, body, err := readyz(addr)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz %d: %s", code, body)
		}
		return err
	})
}

var usageMetric = regexp.MustCompile(`(?m)^ledger_ingest_messages_total\{message="usage_reported"\} (\d+)$`)

// usageIngested is what a ledgerd's /metrics counts of usage messages it
// appended.
func usageIngested(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := usageMetric.FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// buildLedgerd builds cmd/ledgerd into a temporary directory: B runs the
// very binary operators run.
func buildLedgerd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ledgerd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ledger-billing/ledger/cmd/ledgerd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/ledgerd: %v\n%s", err, out)
	}
	return bin
}

// replica is ledgerd running as a child process.
type replica struct {
	cmd        *exec.Cmd
	grpc, http string // the addresses it logged it listens on
	exited     chan struct{}
	stderr     *testkit.LogBuffer
}

var startedLine = regexp.MustCompile(`msg="ledgerd: started" grpc=(\S+) .* http=(\S+) `)

// startReplica starts bin with args and env added to the test's, and
// returns once it logged the addresses it listens on. It is stopped
// (SIGINT) when the test ends, if still running; its log is shown if the
// test failed.
func startReplica(t *testing.T, bin string, env, args []string) *replica {
	t.Helper()
	r := &replica{cmd: exec.Command(bin, args...), exited: make(chan struct{}), stderr: &testkit.LogBuffer{}}
	r.cmd.Env = append(os.Environ(), env...)
	pipe, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			fmt.Fprintln(r.stderr, sc.Text())
			if m := startedLine.FindStringSubmatch(sc.Text()); m != nil {
				started <- [2]string{m[1], m[2]}
			}
		}
		_ = r.cmd.Wait() // after the pipe is read to its end, as Wait requires
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("ledgerd %s (pid %d) logged:\n%s", strings.Join(args, " "), r.cmd.Process.Pid, r.stderr)
		}
	})
	select {
	case addrs := <-started:
		r.grpc, r.http = addrs[0], addrs[1]
	case <-r.exited:
		t.Fatalf("ledgerd exited before it started: %v\n%s", r.cmd.ProcessState, r.stderr)
	case <-time.After(daemontest.ReplayWithin):
		t.Fatalf("ledgerd did not log its addresses within %s:\n%s", daemontest.ReplayWithin, r.stderr)
	}
	return r
}

// kill ends the replica with SIGKILL, as a crash or the OOM killer would,
// and waits until it is gone.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-r.exited
}

// stop asks the replica to shut down (SIGINT, as Ctrl-C), and kills it if it has
// not within 30 s.
func (r *replica) stop(t *testing.T) {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("ledgerd (pid %d) did not stop within 30s of SIGINT", r.cmd.Process.Pid)
		r.kill(t)
	}
}

// consumerWatch follows ledgerd's durable consumer on the wire: the
// messages JetStream delivers (to the inboxes of the pull requests of
// either ledgerd) and the acknowledgements that come back, each naming the
// delivery it acknowledges.
type consumerWatch struct {
	subs []*nats.Subscription

	mu        sync.Mutex
	delivered map[uint64]bool   // stream sequences delivered, to either
	acked     map[uint64]uint64 // stream sequence: the delivery acknowledged
}

func watchConsumer(t *testing.T, nc *nats.Conn) *consumerWatch {
	t.Helper()
	w := &consumerWatch{delivered: map[uint64]bool{}, acked: map[uint64]uint64{}}
	// Large enough for the whole test; a message it had no room for is
	// counted as dropped, which check reports.
	ch := make(chan *nats.Msg, 1<<16)
	for _, subject := range []string{nats.InboxPrefix + ">", "$JS.ACK.>"} {
		sub, err := nc.ChanSubscribe(subject, ch)
		if err != nil {
			t.Fatal(err)
		}
		w.subs = append(w.subs, sub)
	}
	// Both subscriptions in place before anything is published.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			select {
			case msg := <-ch:
				w.see(msg)
			case <-t.Context().Done():
				return
			}
		}
	}()
	return w
}

func (w *consumerWatch) see(msg *nats.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if msg.Sub.Subject != "$JS.ACK.>" {
		// A delivery keeps its own subject; its reply subject is where
		// to acknowledge it.
		if _, seq, ok := ackSubject(msg.Reply); ok {
			w.delivered[seq] = true
		}
		return // or a status message, a reply to a request
	}
	if string(msg.Data) != "+ACK" {
		return // in progress, a nak
	}
	if deliveries, seq, ok := ackSubject(msg.Subject); ok {
		w.acked[seq] = deliveries
	}
}

// check fails the test if the watch missed a message.
func (w *consumerWatch) check(t *testing.T) {
	t.Helper()
	for _, sub := range w.subs {
		if n, err := sub.Dropped(); err != nil || n > 0 {
			t.Fatalf("watching the consumer on %s: %d messages dropped (%v)", sub.Subject, n, err)
		}
	}
}

// unacknowledged lists the sequences delivered and not acknowledged.
func (w *consumerWatch) unacknowledged() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []uint64
	for seq := range w.delivered {
		if _, ok := w.acked[seq]; !ok {
			out = append(out, seq)
		}
	}
	return out
}

// redelivered lists the sequences acknowledged on a later delivery than
// the first.
func (w *consumerWatch) redelivered() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []uint64
	for seq, deliveries := range w.acked {
		if deliveries > 1 {
			out = append(out, seq)
		}
	}
	return out
}

// ackSubject parses an acknowledgement subject of ledgerd's consumer on
// BILLING_IN: $JS.ACK.[<domain>.<account>.]<stream>.<consumer>.<deliveries>.<stream sequence>...
func ackSubject(subject string) (deliveries, seq uint64, ok bool) {
	tok := strings.Split(subject, ".")
	for i := 2; i+3 < len(tok); i++ {
		if tok[0] == "$JS" && tok[1] == "ACK" && tok[i] == wire.StreamIn && tok[i+1] == wire.Consumer {
			d, err1 := strconv.ParseUint(tok[i+2], 10, 64)
			s, err2 := strconv.ParseUint(tok[i+3], 10, 64)
			return d, s, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
}
