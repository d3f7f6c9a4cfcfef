package eventstore_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// TestHugeFilterRegexRefused subscribes with a 16 MB regex, which once
// took the store's memory to 2.3 GB to compile: it is refused with
// INVALID_ARGUMENT, the heap stays near where it was, and the store goes on
// serving.
func TestHugeFilterRegexRefused(t *testing.T) {
	st := testkit.StartStore(t, eventstore.Config{})
	c := testkit.Client(t, st.URL())
	appendOK(t, c, "before", esdb.NoStream{}, event("t", "a"))

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sub, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{
		Filter: &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: strings.Repeat("(a|b)*", 16<<20/6)},
	})
	if err == nil {
		ev := sub.Recv()
		sub.Close()
		if ev.SubscriptionDropped == nil {
			t.Fatalf("a 16 MB regex was taken: %+v", ev)
		}
		err = ev.SubscriptionDropped.Error
	}
	if s, ok := status.FromError(unwrapStatus(err)); !ok || s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "at most 1024") {
		t.Fatalf("subscription with a 16 MB regex: %v, want INVALID_ARGUMENT saying the bound", err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The request itself is 16 MB, held by gRPC and the client in this
	// process; compiling it would take a hundred times that.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 256<<20 {
		t.Errorf("the heap grew by %d MB refusing one request", grown>>20)
	}
	appendOK(t, c, "after", esdb.NoStream{}, event("t", "b"))
}

// unwrapStatus finds the gRPC status in the client's error, which wraps it.
func unwrapStatus(err error) error {
	for e := err; e != nil; {
		if _, ok := status.FromError(e); ok {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}
