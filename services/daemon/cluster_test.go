package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/retry"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// TestJetStreamClusterLeaderKilledMidIngest runs ledgerd on a three-node
// JetStream cluster with three replicas of its streams (DESIGN.md,
// "Scale"), kills BILLING_IN's stream leader while usage is being published
// and ingested, and checks that every message is billed exactly once: the
// draft's total is the exact sum of what was published, nothing is
// dead-lettered, the consumer drains BILLING_IN on the new leader, and the
// killed node rejoins.
//
// The publisher retries a publish that fails in the leader change with the
// same Nats-Msg-Id, as a metering service must, so that a publish stored
// but not acknowledged is not stored twice; and ledgerd's content-derived
// event ids make a redelivery (an acknowledgement lost with the old
// consumer leader) an idempotent append.
func TestJetStreamClusterLeaderKilledMidIngest(t *testing.T) {
	cl := testkit.NATSCluster(t, 3)
	cfg := daemontest.Config(t.TempDir())
	cfg.NATSURL, cfg.NATSReplicas = cl.URL(), 3
	d := daemontest.Start(t, cfg)
	daemontest.WaitReady(t, d)

	nc, js := testkit.JetStream(t, cl.URL())
	// Requests end with the test, each try bounded (requestTry, or the
	// client's default): one sent while a stream or consumer has no
	// leader goes unanswered, and the next try may find the new one.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	in, err := js.Stream(ctx, wire.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	if r := in.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("ledgerd created %s with %d replicas, want 3 (--nats-replicas)", wire.StreamIn, r)
	}
	seedOrganization(t, js)
	// The consumer's own Raft group elects a leader after the stream's;
	// once the organization is taken, ledgerd is ingesting.
	var cons jetstream.Consumer
	testkit.Eventually(t, "ledgerd taking the organization", func() error {
		var err error
		if cons == nil {
			if cons, err = js.Consumer(ctx, wire.StreamIn, wire.Consumer); err != nil {
				return err
			}
		}
		ci, err := consumerInfo(ctx, cons)
		if err != nil {
			return err
		}
		if ci.AckFloor.Stream < 4 {
			return fmt.Errorf("acknowledged up to sequence %d of 4", ci.AckFloor.Stream)
		}
		return nil
	})

	// One node leads both BILLING_IN and ledgerd's consumer, so that the
	// kill takes both leaders at once: the consumer's leader goes with
	// the deliveries ledgerd has yet to acknowledge.
	var leader string
	testkit.Eventually(t, "one node leading "+wire.StreamIn+" and its consumer", func() error {
		s := cl.StreamLeader(wire.StreamIn)
		if s == nil {
			return fmt.Errorf("%s has no leader", wire.StreamIn)
		}
		leader = s.Name()
		ci, err := consumerInfo(ctx, cons)
		if err != nil {
			return err
		}
		if ci.Cluster.Leader == leader {
			return nil
		}
		if err := stepDownConsumer(ctx, nc, leader); err != nil {
			return err
		}
		return fmt.Errorf("consumer led by %s, asked to move to %s", ci.Cluster.Leader, leader)
	})

	// Usage of 2018-01, each message a different number of cents, so that
	// one counted twice (or lost) changes the total.
	const messages = 900
	var wantCents int64
	for k := range messages {
		wantCents += cents(k)
	}

	// The publisher has its own connection to every node. It sends the
	// first half at once, so that ledgerd has a backlog to work through
	// (messages taken but not acknowledged, others not yet taken) when the
	// leader is killed, and the rest one by one into and after the
	// election.
	pubConn, err := nats.Connect(cl.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pubConn.Close)
	pubJS, err := jetstream.New(pubConn)
	if err != nil {
		t.Fatal(err)
	}
	burst := make([]jetstream.PubAckFuture, 0, messages/2)
	for k := range messages / 2 {
		f, err := pubJS.PublishMsgAsync(usageMsg(k))
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, f)
	}
	burstCtx := testkit.Context(t, testkit.ClusterWithin)
	for k, f := range burst {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publishing message %d: %v", k, err)
		case <-burstCtx.Done():
			t.Fatalf("publishing message %d: %v", k, burstCtx.Err())
		}
	}
	killed, published := make(chan struct{}), make(chan error, 1)
	// Publishes that failed and were sent again, and those of them found
	// already stored; read after published.
	var retried, duplicates int
	pubCtx := testkit.Context(t, testkit.ClusterWithin)
	go func() {
		select {
		case <-killed:
		case <-pubCtx.Done():
			published <- pubCtx.Err()
			return
		}
		for k := messages / 2; k < messages; k++ {
			n, dup, err := publishOnce(pubCtx, pubJS, k)
			retried += n
			if dup {
				duplicates++
			}
			if err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()

	if ci, err := consumerInfo(ctx, cons); err == nil {
		// Whether ledgerd had a backlog then is a matter of timing, which
		// a pass/fail test must not depend on; the log says.
		t.Logf("killing %s, leader of %s (consumer led by %s: %d pending, %d unacknowledged)",
			leader, wire.StreamIn, ci.Cluster.Leader, ci.NumPending, ci.NumAckPending)
	}
	killedName := leader
	cl.Kill(killedName)
	close(killed)

	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publishing across the leader change: %v", err)
		}
	case <-pubCtx.Done():
		t.Fatal("publishing across the leader change did not end")
	}
	newLeader := cl.WaitStreamLeader(wire.StreamIn)
	t.Logf("%s now leads %s; %d publishes were retried, %d of them found stored", newLeader.Name(), wire.StreamIn, retried, duplicates)

	// The consumer recovers: everything is taken and acknowledged (a work
	// queue drops what is acknowledged), which ledgerd does only after the
	// projections applied it.
	testkit.Eventually(t, "BILLING_IN drained by ledgerd", func() error {
		info, err := streamInfo(ctx, js, wire.StreamIn)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d messages left in %s", info.State.Msgs, wire.StreamIn)
		}
		ci, err := consumerInfo(ctx, cons)
		if err != nil {
			return err
		}
		if ci.NumPending != 0 || ci.NumAckPending != 0 {
			return fmt.Errorf("consumer: %d pending, %d unacknowledged", ci.NumPending, ci.NumAckPending)
		}
		return nil
	})
	inv, err := invoice(d, "BAN-100", "2018-01")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := total(inv), fmt.Sprintf("%d.%02d", wantCents/100, wantCents%100); got != want {
		t.Fatalf("draft 2018-01 totals %s, want %s: a message was lost or billed twice", got, want)
	}
	testkit.Eventually(t, "no dead letters", func() error {
		info, err := streamInfo(ctx, js, wire.StreamDLQ)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			t.Fatalf("%d dead letters, want none", info.State.Msgs)
		}
		return nil
	})

	// The killed node rejoins and catches up with the stream it led.
	cl.Restart(killedName)
	cl.WaitCurrent(killedName, wire.StreamIn)
	testkit.Eventually(t, killedName+" back among "+wire.StreamIn+"'s replicas", func() error {
		info, err := streamInfo(ctx, js, wire.StreamIn)
		if err != nil {
			return err
		}
		for _, p := range info.Cluster.Replicas {
			if p.Name == killedName && p.Current && !p.Offline {
				return nil
			}
		}
		return fmt.Errorf("%s not a current replica: leader %s, replicas %+v", killedName, info.Cluster.Leader, info.Cluster.Replicas)
	})
}

// requestTry bounds one try of a JetStream request in a wait: answered in
// a millisecond when the stream or consumer has a leader, never while it
// elects one (the client's default would wait 5 s for nothing).
const requestTry = time.Second

// streamInfo is the stream's state from its leader (see consumerInfo).
func streamInfo(ctx context.Context, js jetstream.JetStream, stream string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTry)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", stream)
	}
	return info, nil
}

// consumerInfo is the consumer's state from its leader. While the
// consumer has none, the meta leader answers for it with its assignment,
// counting nothing, which must not pass for a drained consumer.
func consumerInfo(ctx context.Context, cons jetstream.Consumer) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTry)
	defer cancel()
	ci, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	if ci.Cluster == nil || ci.Cluster.Leader == "" {
		return nil, fmt.Errorf("consumer %s has no leader", ci.Name)
	}
	return ci, nil
}

// stepDownConsumer asks the leader of ledgerd's consumer to hand over to
// the named node (JetStream's leader stepdown with a preferred placement).
func stepDownConsumer(ctx context.Context, nc *nats.Conn, to string) error {
	req, err := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: to}})
	if err != nil {
		return err
	}
	reqCtx, cancel := context.WithTimeout(ctx, requestTry)
	defer cancel()
	msg, err := nc.RequestWithContext(reqCtx, fmt.Sprintf("$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", wire.StreamIn, wire.Consumer), req)
	if err != nil {
		return err
	}
	var resp server.JSApiConsumerLeaderStepDownResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	return nil
}

// cents is the cost of the k-th usage message.
func cents(k int) int64 { return int64(100 + k) }

// usageMsg is the k-th usage message, its Nats-Msg-Id its event id.
func usageMsg(k int) *nats.Msg {
	c := cents(k)
	m := ec2(fmt.Sprintf("u-%04d", k), "2018-01-10T00:00:00Z", fmt.Sprintf("%d.%02d", c/100, c%100))
	data, err := proto.Marshal(m)
	if err != nil {
		panic(err) // a message built above always marshals
	}
	msg := &nats.Msg{Subject: "billing.in.usage_reported", Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, m.EventId)
	return msg
}

// publishTry bounds one try of a publish: short, so that a try sent into
// the election fails and is sent again with the same Nats-Msg-Id (what a
// metering service must do, and what the test exercises), long enough for
// a stored publish's acknowledgement on a loaded machine most of the time.
const publishTry = 500 * time.Millisecond

// publishOnce publishes the k-th usage message until JetStream
// acknowledges it, with one Nats-Msg-Id for every try, and returns how
// many tries failed and whether JetStream took the last as a duplicate of
// one of them (stored, but its acknowledgement lost). A try fails while
// the stream has no leader (a timeout, no responders) or the connection
// moves to another node.
func publishOnce(ctx context.Context, js jetstream.JetStream, k int) (failed int, duplicate bool, err error) {
	msg := usageMsg(k)
	b := retry.New(50*time.Millisecond, time.Second)
	for ; ; failed++ {
		tryCtx, cancel := context.WithTimeout(ctx, publishTry)
		ack, err := js.PublishMsg(tryCtx, msg)
		cancel()
		if err == nil {
			return failed, ack.Duplicate, nil
		}
		if ctx.Err() != nil {
			return failed, false, fmt.Errorf("message %d, after %d tries: %w", k, failed+1, err)
		}
		if err := b.Wait(ctx); err != nil {
			return failed, false, err
		}
	}
}
