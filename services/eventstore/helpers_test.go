package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/services/testkit"
)

// ctxT bounds one call of the tests.
func ctxT(t testing.TB) context.Context { return testkit.Context(t, 30*time.Second) }

// event makes an event whose data names it, so reads can be checked.
func event(typ, data string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeBinary, Data: []byte(data)}
}

func appendOK(t testing.TB, c *esdb.Client, stream string, expected esdb.ExpectedRevision, events ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	res, err := c.AppendToStream(ctxT(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, events...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

// errorCode is the client's error code, through any wrapping the client adds.
func errorCode(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// drain reads a read to its end (testkit.Drain); t is for the callers'
// symmetry with the other helpers.
func drain(t testing.TB, rs *esdb.ReadStream, err error) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	return testkit.Drain(rs, err)
}

func readStream(t testing.TB, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(ctxT(t), stream, opts, count)
	return drain(t, rs, err)
}

func readAll(t testing.TB, c *esdb.Client, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := c.ReadAll(ctxT(t), opts, count)
	evs, err := drain(t, rs, err)
	if err != nil {
		t.Fatalf("read $all: %v", err)
	}
	return evs
}

func dataOf(evs []*esdb.ResolvedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Event.Data)
	}
	return out
}

// subscriptionItem is one thing a subscription delivered, flattened so that
// tests can compare sequences.
type subscriptionItem struct {
	data       string // an event's data
	checkpoint uint64 // a checkpoint's position
	caughtUp   bool
}

// next receives the next item, failing the test on a drop or a timeout.
func next(t testing.TB, sub *esdb.Subscription) subscriptionItem {
	t.Helper()
	got := make(chan *esdb.SubscriptionEvent, 1)
	go func() { got <- sub.Recv() }()
	select {
	case ev := <-got:
		switch {
		case ev.EventAppeared != nil:
			return subscriptionItem{data: string(ev.EventAppeared.Event.Data)}
		case ev.CheckPointReached != nil:
			return subscriptionItem{checkpoint: ev.CheckPointReached.Commit}
		case ev.CaughtUp != nil:
			return subscriptionItem{caughtUp: true}
		case ev.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
		t.Fatalf("unexpected subscription event %+v", ev)
	case <-time.After(20 * time.Second):
		t.Fatal("no subscription event within 20s")
	}
	return subscriptionItem{}
}
