package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/retry"
	"github.com/ledger-billing/ledger/services/testkit"
)

func ev(typ, data string) eventlog.Event {
	return eventlog.Event{ID: uuid.New(), Type: typ, Data: []byte(data)}
}

func TestAppend(t *testing.T) {
	st := testkit.StartStore(t, eventstore.Config{})
	l := testkit.Log(t, st.URL())
	ctx := context.Background()
	e := ev("billing.v1.Test", "a")
	first, err := l.Append(ctx, "usage-1", eventlog.NoStream, e)
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Append(ctx, "usage-1", eventlog.NoStream, e)
	if err != nil || again != first {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, first)
	}
	if _, err := l.Append(ctx, "usage-1", eventlog.NoStream, ev("billing.v1.Test", "b")); !errors.Is(err, eventlog.ErrWrongExpectedVersion) {
		t.Fatalf("conflicting append: %v, want ErrWrongExpectedVersion", err)
	}
	next, err := l.Append(ctx, "usage-1", esdb.Revision(first.Revision), ev("billing.v1.Test", "b"))
	if err != nil || next.Revision != 1 || next.Position <= first.Position {
		t.Fatalf("append at revision 0: %+v, %v", next, err)
	}
	if _, err := testkit.Client(t, st.URL()).TombstoneStream(ctx, "usage-1", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "usage-1", eventlog.Any, ev("billing.v1.Test", "c")); !errors.Is(err, eventlog.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream: %v, want ErrStreamDeleted", err)
	}
}

// TestFollowResubscribes stops the store in the middle of a subscription
// and starts it again on the same address: Follow must subscribe again from
// its last position and deliver every event exactly once, in order.
func TestFollowResubscribes(t *testing.T) {
	st := testkit.StartStore(t, eventstore.Config{})
	l := testkit.Log(t, st.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 5 {
		if _, err := l.Append(ctx, fmt.Sprintf("s-%d", i), eventlog.NoStream, ev("billing.v1.Test", fmt.Sprint(i)), ev("other.Noise", "x")); err != nil {
			t.Fatal(err)
		}
	}

	got := make(chan string, 100)
	caughtUp := make(chan struct{}, 10)
	followed := make(chan error, 1)
	var outage retry.Outage
	go func() {
		followed <- l.Follow(ctx, eventlog.FollowOptions{TypePrefix: "billing.v1.", RetryMax: 200 * time.Millisecond, Outage: &outage}, func(d eventlog.Delivery) error {
			if d.Event != nil {
				got <- string(d.Event.Data)
			}
			if d.CaughtUp {
				caughtUp <- struct{}{}
			}
			return nil
		})
	}()
	<-caughtUp
	st.Stop()
	testkit.Eventually(t, "the drop recorded as an outage", func() error {
		if _, err := outage.For(); err == nil {
			return errors.New("no outage recorded")
		}
		return nil
	})
	st.Restart()
	for i := 5; i < 10; i++ {
		if _, err := l.Append(ctx, fmt.Sprintf("s-%d", i), eventlog.NoStream, ev("billing.v1.Test", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		select {
		case d := <-got:
			if d != fmt.Sprint(i) {
				t.Fatalf("delivery %d = %s: want each event once, in order", i, d)
			}
		case <-ctx.Done():
			t.Fatalf("only %d deliveries", i)
		}
	}
	if d, err := outage.For(); err != nil {
		t.Errorf("after deliveries resumed, the outage of %s stands: %v", d, err)
	}
	cancel()
	if err := <-followed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v, want context.Canceled", err)
	}
	select {
	case d := <-got:
		t.Fatalf("extra delivery %s", d)
	default:
	}
}

func TestFollowStopsOnCallbackError(t *testing.T) {
	st := testkit.StartStore(t, eventstore.Config{})
	l := testkit.Log(t, st.URL())
	ctx := context.Background()
	if _, err := l.Append(ctx, "s", eventlog.NoStream, ev("billing.v1.Test", "x")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := l.Follow(ctx, eventlog.FollowOptions{}, func(d eventlog.Delivery) error {
		if d.Event != nil {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Follow = %v, want the callback's error", err)
	}
}

// TestDialErrorHidesPassword: a connection string that does not parse is
// reported without its password, which the parser's own error quotes.
func TestDialErrorHidesPassword(t *testing.T) {
	for _, bad := range []string{
		"esdb://admin:hunter22@kurrent-1:port?tls=true",
		"esdb://admin:hunter22@k1:2113,k2:x?tls=true",
		"http://admin:hunter22@kurrent-1:2113",
	} {
		_, err := eventlog.Dial(bad, nil)
		if err == nil {
			t.Fatalf("Dial(%q) did not fail", bad)
		}
		if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// TestFollowHandsOverDecoded: an event appended with what it decodes to
// reaches a follower of the same Log with it; one appended through another
// Log, or without it, arrives without, and the follower decodes it.
func TestFollowHandsOverDecoded(t *testing.T) {
	st := testkit.StartStore(t, eventstore.Config{})
	l := testkit.Log(t, st.URL())
	other := testkit.Log(t, st.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caughtUp := make(chan struct{})
	var once sync.Once
	got := make(chan *eventlog.Recorded, 3)
	go l.Follow(ctx, eventlog.FollowOptions{}, func(d eventlog.Delivery) error {
		switch {
		case d.CaughtUp:
			once.Do(func() { close(caughtUp) })
		case d.Event != nil:
			got <- d.Event
		}
		return nil
	})
	<-caughtUp
	decoded := &struct{ name string }{"decoded"}
	handed := ev("billing.v1.Test", "a")
	handed.Decoded = decoded
	plain := ev("billing.v1.Test", "b")
	elsewhere := ev("billing.v1.Test", "c")
	elsewhere.Decoded = decoded
	if _, err := l.Append(ctx, "s-1", eventlog.NoStream, handed); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "s-2", eventlog.NoStream, plain); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, "s-3", eventlog.NoStream, elsewhere); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id      uuid.UUID
		decoded any
	}{{handed.ID, decoded}, {plain.ID, nil}, {elsewhere.ID, nil}} {
		var rec *eventlog.Recorded
		select {
		case rec = <-got:
		case <-ctx.Done():
			t.Fatal("an appended event was not delivered")
		}
		if rec.ID != want.id || rec.Decoded != want.decoded {
			t.Errorf("delivered %s with Decoded %v; want %s with %v", rec.ID, rec.Decoded, want.id, want.decoded)
		}
	}
}
