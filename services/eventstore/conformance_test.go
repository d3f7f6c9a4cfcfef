package eventstore_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

func TestAppendExpectedRevisions(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	ctx := ctxT(t)

	first := event("t", "a")
	r1 := appendOK(t, c, "s-1", esdb.NoStream{}, first)
	if r1.NextExpectedVersion != 0 {
		t.Fatalf("first revision = %d, want 0", r1.NextExpectedVersion)
	}

	t.Run("same events again with no_stream give the same result", func(t *testing.T) {
		again := appendOK(t, c, "s-1", esdb.NoStream{}, first)
		if *again != *r1 {
			t.Fatalf("retry result %+v, want %+v", again, r1)
		}
	})
	t.Run("another event with no_stream is a wrong expected version", func(t *testing.T) {
		_, err := c.AppendToStream(ctx, "s-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, event("t", "b"))
		if errorCode(err) != esdb.ErrorCodeWrongExpectedVersion {
			t.Fatalf("err = %v, want wrong expected version", err)
		}
	})

	second := event("t", "b")
	r2 := appendOK(t, c, "s-1", esdb.Revision(0), second)
	if r2.NextExpectedVersion != 1 || r2.CommitPosition <= r1.CommitPosition {
		t.Fatalf("second append = %+v after %+v: want revision 1 and a later position", r2, r1)
	}

	cases := []struct {
		name     string
		expected esdb.ExpectedRevision
		events   []esdb.EventData
		wantErr  bool
		wantRev  uint64
	}{
		{"exact revision behind, same event: idempotent", esdb.Revision(0), []esdb.EventData{second}, false, 1},
		{"exact revision behind, other event: conflict", esdb.Revision(0), []esdb.EventData{event("t", "x")}, true, 0},
		{"exact revision ahead: conflict", esdb.Revision(5), []esdb.EventData{event("t", "x")}, true, 0},
		{"no_stream with both events: idempotent", esdb.NoStream{}, []esdb.EventData{first, second}, false, 1},
		{"no_stream with the events reordered: conflict", esdb.NoStream{}, []esdb.EventData{second, first}, true, 0},
		{"no_stream with more events than stored: conflict", esdb.NoStream{}, []esdb.EventData{first, second, event("t", "x")}, true, 0},
		{"any with the last event again: idempotent", esdb.Any{}, []esdb.EventData{second}, false, 1},
		{"stream_exists appends", esdb.StreamExists{}, []esdb.EventData{event("t", "c")}, false, 2},
		{"exact current revision appends", esdb.Revision(2), []esdb.EventData{event("t", "d")}, false, 3},
		{"any appends", esdb.Any{}, []esdb.EventData{event("t", "e")}, false, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.AppendToStream(ctx, "s-1", esdb.AppendToStreamOptions{ExpectedRevision: tc.expected}, tc.events...)
			if tc.wantErr {
				if errorCode(err) != esdb.ErrorCodeWrongExpectedVersion {
					t.Fatalf("err = %v, want wrong expected version", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			if res.NextExpectedVersion != tc.wantRev {
				t.Fatalf("revision = %d, want %d", res.NextExpectedVersion, tc.wantRev)
			}
		})
	}

	t.Run("stream_exists on a missing stream is a conflict", func(t *testing.T) {
		_, err := c.AppendToStream(ctx, "missing", esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}}, event("t", "x"))
		if errorCode(err) != esdb.ErrorCodeWrongExpectedVersion {
			t.Fatalf("err = %v, want wrong expected version", err)
		}
	})
	t.Run("the wrong expected version answer names both revisions", func(t *testing.T) {
		_, err := c.AppendToStream(ctx, "s-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(9)}, event("t", "x"))
		if err == nil || !containsAll(err.Error(), "expecting '9'", "got '4'") {
			t.Fatalf("err = %v, want it to name expected 9 and current 4", err)
		}
	})

	evs, err := readStream(t, c, "s-1", esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dataOf(evs), []string{"a", "b", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("stream holds %v, want %v: idempotent retries must not append", got, want)
	}
	for i, ev := range evs {
		if ev.Event.EventNumber != uint64(i) {
			t.Fatalf("event %d has revision %d", i, ev.Event.EventNumber)
		}
		if i > 0 && ev.Event.Position.Commit <= evs[i-1].Event.Position.Commit {
			t.Fatalf("positions do not increase: %d then %d", evs[i-1].Event.Position.Commit, ev.Event.Position.Commit)
		}
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestMetadataOnEveryEvent(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	before := time.Now()
	ev := esdb.EventData{EventID: uuid.New(), EventType: "billing.v1.Thing", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`), Metadata: []byte("custom")}
	appendOK(t, c, "m-1", esdb.NoStream{}, ev)
	evs, err := readStream(t, c, "m-1", esdb.ReadStreamOptions{}, 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read: %v, %d events", err, len(evs))
	}
	got := evs[0].Event
	if got.EventID != ev.EventID || got.EventType != "billing.v1.Thing" || got.ContentType != "application/json" ||
		string(got.UserMetadata) != "custom" || got.StreamID != "m-1" {
		t.Fatalf("read back %+v", got)
	}
	if got.CreatedDate.Before(before.Add(-time.Second)) || got.CreatedDate.After(time.Now().Add(time.Second)) {
		t.Fatalf("created %v is not the append time (%v)", got.CreatedDate, before)
	}
	for _, key := range []string{"type", "content-type", "created"} {
		if got.SystemMetadata[key] == "" {
			t.Errorf("system metadata %q missing", key)
		}
	}
}

func TestReadStream(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	var evs []esdb.EventData
	for i := range 10 {
		evs = append(evs, event("t", fmt.Sprint(i)))
	}
	appendOK(t, c, "r-1", esdb.NoStream{}, evs...)

	cases := []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  []string
	}{
		{"forwards from start", esdb.ReadStreamOptions{From: esdb.Start{}}, 3, []string{"0", "1", "2"}},
		{"forwards from a revision includes it", esdb.ReadStreamOptions{From: esdb.Revision(7)}, 10, []string{"7", "8", "9"}},
		{"backwards from end", esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 2, []string{"9", "8"}},
		{"backwards from a revision includes it", esdb.ReadStreamOptions{From: esdb.Revision(2), Direction: esdb.Backwards}, 10, []string{"2", "1", "0"}},
		{"forwards from end reads nothing", esdb.ReadStreamOptions{From: esdb.End{}}, 10, nil},
		{"forwards past the end reads nothing", esdb.ReadStreamOptions{From: esdb.Revision(50)}, 10, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readStream(t, c, "r-1", tc.opts, tc.count)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dataOf(got), tc.want) {
				t.Fatalf("read %v, want %v", dataOf(got), tc.want)
			}
		})
	}
	t.Run("a missing stream is not found", func(t *testing.T) {
		_, err := readStream(t, c, "nope", esdb.ReadStreamOptions{}, 10)
		if errorCode(err) != esdb.ErrorCodeResourceNotFound {
			t.Fatalf("err = %v, want resource not found", err)
		}
	})
	t.Run("a long stream reads in full across pages", func(t *testing.T) {
		var many []esdb.EventData
		for i := range 700 {
			many = append(many, event("t", fmt.Sprint(i)))
		}
		appendOK(t, c, "r-long", esdb.NoStream{}, many...)
		got, err := readStream(t, c, "r-long", esdb.ReadStreamOptions{}, 1000)
		if err != nil || len(got) != 700 || string(got[699].Event.Data) != "699" {
			t.Fatalf("read %d events, err %v", len(got), err)
		}
		back, err := readStream(t, c, "r-long", esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1000)
		if err != nil || len(back) != 700 || string(back[699].Event.Data) != "0" {
			t.Fatalf("read %d events backwards, err %v", len(back), err)
		}
	})
}

func TestReadAll(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	var positions []uint64
	for i := range 5 {
		r := appendOK(t, c, fmt.Sprintf("all-%d", i), esdb.NoStream{}, event("t", fmt.Sprint(i)))
		positions = append(positions, r.CommitPosition)
	}
	p := esdb.Position{Commit: positions[2], Prepare: positions[2]}

	if got := dataOf(readAll(t, c, esdb.ReadAllOptions{From: p}, 10)); !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Errorf("forward from P read %v: want P included", got)
	}
	if got := dataOf(readAll(t, c, esdb.ReadAllOptions{From: p, Direction: esdb.Backwards}, 10)); !slices.Equal(got, []string{"1", "0"}) {
		t.Errorf("backward from P read %v: want P excluded", got)
	}
	if got := dataOf(readAll(t, c, esdb.ReadAllOptions{From: esdb.Start{}}, 2)); !slices.Equal(got, []string{"0", "1"}) {
		t.Errorf("forward from start read %v", got)
	}
	if got := dataOf(readAll(t, c, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, 2)); !slices.Equal(got, []string{"4", "3"}) {
		t.Errorf("backward from end read %v", got)
	}
	if got := readAll(t, c, esdb.ReadAllOptions{From: esdb.End{}}, 10); len(got) != 0 {
		t.Errorf("forward from end read %v", dataOf(got))
	}
	all := readAll(t, c, esdb.ReadAllOptions{}, 100)
	for i, ev := range all {
		if ev.Commit == nil || *ev.Commit != ev.Event.Position.Commit {
			t.Fatalf("event %d carries no commit position", i)
		}
		if i > 0 && ev.Event.Position.Commit <= all[i-1].Event.Position.Commit {
			t.Fatalf("$all positions do not increase at %d", i)
		}
	}
}

func TestSubscribeToAll(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	var at uint64
	for i := range 3 {
		r := appendOK(t, c, fmt.Sprintf("sub-%d", i), esdb.NoStream{}, event("t", fmt.Sprint(i)))
		if i == 0 {
			at = r.CommitPosition
		}
	}
	sub, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{From: esdb.Position{Commit: at, Prepare: at}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	want := []subscriptionItem{{data: "1"}, {data: "2"}, {caughtUp: true}}
	for i, w := range want {
		if got := next(t, sub); got != w {
			t.Fatalf("item %d = %+v, want %+v (catch-up strictly after the start, then caught_up)", i, got, w)
		}
	}
	appendOK(t, c, "sub-live", esdb.NoStream{}, event("t", "live-1"), event("t", "live-2"))
	for _, w := range []string{"live-1", "live-2"} {
		if got := next(t, sub); got.data != w {
			t.Fatalf("live item = %+v, want %s", got, w)
		}
	}

	t.Run("from start and from end", func(t *testing.T) {
		fromStart, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{From: esdb.Start{}})
		if err != nil {
			t.Fatal(err)
		}
		defer fromStart.Close()
		if got := next(t, fromStart); got.data != "0" {
			t.Fatalf("first from start = %+v", got)
		}
		fromEnd, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{From: esdb.End{}})
		if err != nil {
			t.Fatal(err)
		}
		defer fromEnd.Close()
		if got := next(t, fromEnd); !got.caughtUp {
			t.Fatalf("first from end = %+v, want caught up", got)
		}
		appendOK(t, c, "sub-end", esdb.NoStream{}, event("t", "after-end"))
		if got := next(t, fromEnd); got.data != "after-end" {
			t.Fatalf("live from end = %+v", got)
		}
	})
}

func TestSubscribeToStream(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	appendOK(t, c, "ss", esdb.NoStream{}, event("t", "0"), event("t", "1"), event("t", "2"))
	appendOK(t, c, "other", esdb.NoStream{}, event("t", "other"))
	sub, err := c.SubscribeToStream(ctxT(t), "ss", esdb.SubscribeToStreamOptions{From: esdb.Revision(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, w := range []subscriptionItem{{data: "1"}, {data: "2"}, {caughtUp: true}} {
		if got := next(t, sub); got != w {
			t.Fatalf("got %+v, want %+v", got, w)
		}
	}
	appendOK(t, c, "other", esdb.Any{}, event("t", "other-2"))
	appendOK(t, c, "ss", esdb.Revision(2), event("t", "3"))
	if got := next(t, sub); got.data != "3" {
		t.Fatalf("live = %+v, want 3 (and nothing of other streams)", got)
	}
}

func TestFilteredSubscription(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	for i := range 40 {
		typ := "noise.Event"
		if i%10 == 0 {
			typ = "billing.v1.UsageReported"
		}
		appendOK(t, c, fmt.Sprintf("usage-%d", i), esdb.NoStream{}, event(typ, fmt.Sprint(i)))
	}
	cases := []struct {
		name   string
		filter *esdb.SubscriptionFilter
	}{
		{"event type prefix", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"billing.v1."}}},
		{"event type regex", &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: `^billing\.v1\.Usage`}},
		{"stream name regex", &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: `^usage-\d*0$`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: tc.filter, MaxSearchWindow: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			var events []string
			var checkpoints []uint64
			for {
				item := next(t, sub)
				if item.caughtUp {
					break
				}
				if item.data != "" {
					events = append(events, item.data)
				} else {
					checkpoints = append(checkpoints, item.checkpoint)
				}
			}
			if !slices.Equal(events, []string{"0", "10", "20", "30"}) {
				t.Fatalf("matched %v", events)
			}
			if len(checkpoints) != 5 || !slices.IsSorted(checkpoints) {
				t.Fatalf("checkpoints %v: want one every 8 of the 40 events, increasing", checkpoints)
			}
		})
	}
	t.Run("stream name prefix", func(t *testing.T) {
		sub, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{From: esdb.Start{},
			Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"usage-3"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var events []string
		for item := next(t, sub); !item.caughtUp; item = next(t, sub) {
			if item.data != "" {
				events = append(events, item.data)
			}
		}
		want := []string{"3", "30", "31", "32", "33", "34", "35", "36", "37", "38", "39"}
		if !slices.Equal(events, want) {
			t.Fatalf("matched %v, want %v", events, want)
		}
	})
}

func TestDeleteAndTombstone(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	ctx := ctxT(t)
	appendOK(t, c, "soft", esdb.NoStream{}, event("t", "0"), event("t", "1"))
	if _, err := c.DeleteStream(ctx, "soft", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := readStream(t, c, "soft", esdb.ReadStreamOptions{}, 10); errorCode(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("read after delete: %v, want not found", err)
	}
	r := appendOK(t, c, "soft", esdb.NoStream{}, event("t", "2"))
	if r.NextExpectedVersion != 2 {
		t.Fatalf("append after a soft delete got revision %d, want 2 (revisions continue)", r.NextExpectedVersion)
	}
	if got, _ := readStream(t, c, "soft", esdb.ReadStreamOptions{}, 10); !slices.Equal(dataOf(got), []string{"2"}) {
		t.Fatalf("read after re-append %v, want only the new event", dataOf(got))
	}

	t.Run("delete with a wrong expected revision fails", func(t *testing.T) {
		_, err := c.DeleteStream(ctx, "soft", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(0)})
		if status.Code(errors.Unwrap(errors.Unwrap(err))) != codes.FailedPrecondition {
			t.Fatalf("err = %v, want FailedPrecondition", err)
		}
	})

	t.Run("a stream that never existed deletes with any or no_stream, not with a revision", func(t *testing.T) {
		for i, expected := range []esdb.ExpectedRevision{esdb.Any{}, esdb.NoStream{}} {
			if _, err := c.DeleteStream(ctx, fmt.Sprintf("never-%d", i), esdb.DeleteStreamOptions{ExpectedRevision: expected}); err != nil {
				t.Errorf("delete with %T: %v, want success", expected, err)
			}
		}
		_, err := c.DeleteStream(ctx, "never-2", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(0)})
		if status.Code(errors.Unwrap(errors.Unwrap(err))) != codes.FailedPrecondition {
			t.Errorf("delete with revision 0: %v, want FailedPrecondition (wrong expected version)", err)
		}
	})

	appendOK(t, c, "hard", esdb.NoStream{}, event("t", "0"))
	if _, err := c.TombstoneStream(ctx, "hard", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	for name, op := range map[string]func() error{
		"read": func() error { _, err := readStream(t, c, "hard", esdb.ReadStreamOptions{}, 10); return err },
		"append": func() error {
			_, err := c.AppendToStream(ctx, "hard", esdb.AppendToStreamOptions{}, event("t", "x"))
			return err
		},
		"delete": func() error {
			_, err := c.DeleteStream(ctx, "hard", esdb.DeleteStreamOptions{})
			return err
		},
		"tombstone": func() error {
			_, err := c.TombstoneStream(ctx, "hard", esdb.TombstoneStreamOptions{})
			return err
		},
	} {
		if err := op(); errorCode(err) != esdb.ErrorCodeStreamDeleted {
			t.Errorf("%s of a tombstoned stream: %v, want stream deleted", name, err)
		}
	}
	last := readAll(t, c, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1)
	if len(last) != 1 || last[0].Event.EventType != "$streamDeleted" || last[0].Event.StreamID != "hard" {
		t.Fatalf("the tombstone is not the last event of $all: %+v", last)
	}
}

func TestStreamMetadata(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	ctx := ctxT(t)
	var evs []esdb.EventData
	for i := range 5 {
		evs = append(evs, event("t", fmt.Sprint(i)))
	}
	appendOK(t, c, "meta", esdb.NoStream{}, evs...)
	for _, maxCount := range []uint64{1, 3} {
		var meta esdb.StreamMetadata
		meta.SetMaxCount(maxCount)
		if _, err := c.SetStreamMetadata(ctx, "meta", esdb.AppendToStreamOptions{}, meta); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := c.GetStreamMetadata(ctx, "meta", esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if meta.MaxCount() == nil || *meta.MaxCount() != 3 {
		t.Fatalf("metadata max count = %v, want the latest (3)", meta.MaxCount())
	}
	got, err := readStream(t, c, "meta", esdb.ReadStreamOptions{}, 10)
	if err != nil || !slices.Equal(dataOf(got), []string{"2", "3", "4"}) {
		t.Fatalf("read %v (%v), want the last 3 under $maxCount", dataOf(got), err)
	}
}

// TestStreamMaxAge: events older than the stream's $maxAge disappear from
// reads of the stream and from a subscription's catch-up; newer ones stay;
// $all still holds them.
func TestStreamMaxAge(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	ctx := ctxT(t)
	appendOK(t, c, "aging", esdb.NoStream{}, event("t", "old-1"), event("t", "old-2"))
	var meta esdb.StreamMetadata
	meta.SetMaxAge(time.Second)
	if _, err := c.SetStreamMetadata(ctx, "aging", esdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatal(err)
	}
	if got, err := readStream(t, c, "aging", esdb.ReadStreamOptions{}, 10); err != nil || len(got) != 2 {
		t.Fatalf("read %v (%v), want both events while they are younger than $maxAge", dataOf(got), err)
	}
	testkit.Eventually(t, "the events aging out under a $maxAge of 1 s", func() error {
		got, err := readStream(t, c, "aging", esdb.ReadStreamOptions{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			return fmt.Errorf("read %v, want nothing", dataOf(got))
		}
		return nil
	})
	appendOK(t, c, "aging", esdb.StreamExists{}, event("t", "new"))
	if got, err := readStream(t, c, "aging", esdb.ReadStreamOptions{}, 10); err != nil || !slices.Equal(dataOf(got), []string{"new"}) {
		t.Fatalf("read %v (%v), want only the new event", dataOf(got), err)
	}
	sub, err := c.SubscribeToStream(ctx, "aging", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := next(t, sub); got.data != "new" {
		t.Fatalf("catch-up delivered %+v first, want the new event (the old ones aged out)", got)
	}
	var all []string
	for _, e := range readAll(t, c, esdb.ReadAllOptions{}, 100) {
		if e.Event.StreamID == "aging" {
			all = append(all, string(e.Event.Data))
		}
	}
	if !slices.Equal(all, []string{"old-1", "old-2", "new"}) {
		t.Fatalf("$all holds %v of the stream, want every event", all)
	}
}

func TestConcurrentAppendsShareSyncs(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	const writers, appends = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("conc-%d", w)
			for i := range appends {
				expected := esdb.ExpectedRevision(esdb.Revision(uint64(i - 1)))
				if i == 0 {
					expected = esdb.NoStream{}
				}
				_, err := c.AppendToStream(ctxT(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, event("t", fmt.Sprint(i)))
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if all := readAll(t, c, esdb.ReadAllOptions{}, 10_000); len(all) != writers*appends {
		t.Fatalf("$all holds %d events, want %d", len(all), writers*appends)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	first, err := eventstore.Open(eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// Closing without serving is a valid life cycle too.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	st := testkit.StartStore(t, eventstore.Config{Dir: dir})
	c := testkit.Client(t, st.URL())
	r := appendOK(t, c, "keep", esdb.NoStream{}, event("t", "0"))
	c.Close()
	st.Stop()

	again := testkit.Client(t, testkit.StartStore(t, eventstore.Config{Dir: dir}).URL())
	got, err := readStream(t, again, "keep", esdb.ReadStreamOptions{}, 10)
	if err != nil || !slices.Equal(dataOf(got), []string{"0"}) {
		t.Fatalf("after restart read %v, %v", dataOf(got), err)
	}
	r2 := appendOK(t, again, "keep", esdb.Revision(0), event("t", "1"))
	if r2.CommitPosition <= r.CommitPosition {
		t.Fatalf("position after restart %d is not after %d", r2.CommitPosition, r.CommitPosition)
	}
}

// TestReadAllOverPagesOfLargeEvents: reads and catch-up cross the server's
// page bounds (a page holds at most a few megabytes of event data) without
// losing, repeating or reordering an event, in both directions.
func TestReadAllOverPagesOfLargeEvents(t *testing.T) {
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{}).URL())
	const n = 40 // 40 events of 300 KB: several pages
	var want []string
	for i := range n {
		data := fmt.Sprintf("%03d", i) + strings.Repeat(".", 300<<10)
		appendOK(t, c, fmt.Sprintf("big-%d", i), esdb.NoStream{}, event("t", data))
		want = append(want, data)
	}
	if got := dataOf(readAll(t, c, esdb.ReadAllOptions{}, 1000)); !slices.Equal(got, want) {
		t.Fatalf("forward read got %d events, want the %d in order", len(got), n)
	}
	backwards := slices.Clone(want)
	slices.Reverse(backwards)
	if got := dataOf(readAll(t, c, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1000)); !slices.Equal(got, backwards) {
		t.Fatalf("backward read got %d events, want the %d in reverse order", len(got), n)
	}
	sub, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range n {
		if got := next(t, sub); got.data != want[i] {
			t.Fatalf("catch-up item %d = %.10q, want event %d", i, got.data, i)
		}
	}
	if got := next(t, sub); !got.caughtUp {
		t.Fatalf("after the %d events: %+v, want caught_up", n, got)
	}
}
