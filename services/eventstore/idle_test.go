package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// TestSubscriptionSurvivesIdleness holds a subscription open through 60 s
// without traffic, longer than the client's 10 s keepalive pings and any
// server keepalive policy, then checks it still delivers. It only waits, so
// it is a soak test: LEDGER_SOAK=1, or -run naming it, runs it.
func TestSubscriptionSurvivesIdleness(t *testing.T) {
	testkit.Soak(t)
	t.Parallel()
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.End{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := next(t, sub); !got.caughtUp {
		t.Fatalf("first item %+v, want caught up", got)
	}
	// The idleness is the condition under test, so here a fixed wait is
	// the point rather than a shortcut.
	time.Sleep(60 * time.Second)
	appendOK(t, c, "after-idle", esdb.NoStream{}, event("t", "awake"))
	if got := next(t, sub); got.data != "awake" {
		t.Fatalf("after 60 s idle got %+v, want the new event", got)
	}
}
