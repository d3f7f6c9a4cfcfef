package clock_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/clock"
	"github.com/ledger-billing/ledger/services/wire"
)

// history is a real billing projection fed by the test, standing where the
// runner stands in ledgerd.
type history struct {
	p   *billing.Projection
	pos uint64
}

func (h *history) Read(fn func(p *billing.Projection) error) (uint64, error) { return h.pos, fn(h.p) }
func (h *history) WaitFor(context.Context, uint64) error                     { return nil }

func (h *history) apply(t *testing.T, msg proto.Message) {
	t.Helper()
	h.pos++
	if _, err := h.p.Apply(h.pos, msg); err != nil {
		t.Fatalf("apply %v: %v", msg, err)
	}
}

func closeOf(month string) *billingv1.BillingCycleClosed {
	return &billingv1.BillingCycleClosed{EventId: "close-" + month, Month: month, ClosedAt: timestamppb.Now()}
}

func TestTick(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	cases := []struct {
		name   string
		closed []string
		final  []string
		now    string
		want   string // event_id published, or empty
	}{
		{"a ledger never closed is not started by the clock", nil, nil, "2026-11-01T00:00:00Z", ""},
		{"the previous month closes at 00:00 on the 1st", []string{"2026-09"}, nil, "2026-11-01T00:00:00Z", "clock-billing-cycle-closed-2026-10"},
		{"a restart later in the month still closes it", []string{"2026-09"}, nil, "2026-11-05T13:00:00Z", "clock-billing-cycle-closed-2026-10"},
		{"nothing to do once closed, before the 10th", []string{"2026-09", "2026-10"}, nil, "2026-11-09T23:59:59Z", ""},
		{"the vendor cycle is finalized on the 10th", []string{"2026-09", "2026-10"}, nil, "2026-11-10T00:00:00Z", "clock-vendor-cycle-finalized-2026-10"},
		{"nothing once finalized", []string{"2026-09", "2026-10"}, []string{"2026-10"}, "2026-11-20T00:00:00Z", ""},
		{"history is never backfilled", []string{"2018-01"}, nil, "2026-11-01T00:00:00Z", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &history{p: billing.New()}
			for _, m := range tc.closed {
				h.apply(t, closeOf(m))
			}
			for _, m := range tc.final {
				h.apply(t, &billingv1.VendorCycleFinalized{EventId: "final-" + m, Month: m, FinalizedAt: timestamppb.Now()})
			}
			var published []proto.Message
			c := clock.New(clock.Config{
				Cycles:  h,
				Now:     func() time.Time { return at(tc.now) },
				Publish: func(_ context.Context, m proto.Message) error { published = append(published, m); return nil },
			})
			did, err := c.Tick(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if did || len(published) > 0 {
					t.Fatalf("published %v, want nothing", published)
				}
				return
			}
			if len(published) != 1 || published[0].(interface{ GetEventId() string }).GetEventId() != tc.want {
				t.Fatalf("published %v, want %s", published, tc.want)
			}
			// The message depends on the month alone, so that a second
			// clock publishes the same bytes.
			c2 := clock.New(clock.Config{Cycles: h, Now: func() time.Time { return at(tc.now).Add(time.Hour) },
				Publish: func(_ context.Context, m proto.Message) error { published = append(published, m); return nil }})
			if _, err := c2.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(published[0], published[1]) {
				t.Fatalf("two ticks published %v and %v", published[0], published[1])
			}
		})
	}
}

func TestCloseMessageIsValidAndOrdered(t *testing.T) {
	h := &history{p: billing.New()}
	h.apply(t, closeOf("2026-09"))
	c := wire.CloseMessage(wire.SourceClock, calendar.New(2026, time.October))
	if c.Month != "2026-10" || !c.ClosedAt.AsTime().Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("close message %v", c)
	}
	h.apply(t, c) // the rules accept it as the next close
	f := wire.FinalizeMessage(wire.SourceClock, calendar.New(2026, time.October))
	if !f.FinalizedAt.AsTime().Equal(time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("finalize message %v", f)
	}
	h.apply(t, f)
}

func TestNextBoundary(t *testing.T) {
	for in, want := range map[string]string{
		"2026-11-01T00:00:00Z": "2026-11-10T00:00:00Z",
		"2026-11-09T23:59:59Z": "2026-11-10T00:00:00Z",
		"2026-11-10T00:00:00Z": "2026-12-01T00:00:00Z",
		"2026-12-31T23:00:00Z": "2027-01-01T00:00:00Z",
	} {
		tm, _ := time.Parse(time.RFC3339, in)
		if got := clock.NextBoundary(tm).Format(time.RFC3339); got != want {
			t.Errorf("NextBoundary(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestRunWaitsOnItsOwnTime runs a clock whose time source (Config.Now) is
// set to another instant than the machine's, as a test's or a replica's
// may be: it must wait for the next boundary by its own time, neither
// ticking without pause nor sleeping by the machine's calendar, and
// publish the close when its own time reaches the 1st.
func TestRunWaitsOnItsOwnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &history{p: billing.New()}
		h.apply(t, closeOf("2017-12"))
		h.apply(t, &billingv1.VendorCycleFinalized{EventId: "final-2017-12", Month: "2017-12", FinalizedAt: timestamppb.Now()})
		looks := &counted{history: h}
		// A minute before January ends by the clock's time; the bubble's
		// own time starts in 2000.
		start := time.Now()
		now := func() time.Time { return time.Date(2018, 1, 31, 23, 59, 0, 0, time.UTC).Add(time.Since(start)) }
		// The clock's goroutine writes what the test reads: the bubble's
		// time orders them, but the race detector sees no edge between a
		// read before a sleep and a write after the clock wakes.
		var mu sync.Mutex
		var published []proto.Message
		c := clock.New(clock.Config{Cycles: looks, Now: now,
			Publish: func(_ context.Context, m proto.Message) error {
				mu.Lock()
				defer mu.Unlock()
				published = append(published, m)
				return nil
			}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		sent := func() []proto.Message {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(published)
		}

		time.Sleep(59 * time.Second)
		synctest.Wait()
		if reads, sent := looks.reads.Load(), sent(); reads != 1 || len(sent) != 0 {
			t.Fatalf("a second before the boundary: %d looks, published %v; want one look and nothing", reads, sent)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if sent := sent(); len(sent) != 1 || sent[0].(interface{ GetEventId() string }).GetEventId() != "clock-billing-cycle-closed-2018-01" {
			t.Fatalf("a second after the boundary: published %v, want January's close", sent)
		}
	})
}

// counted counts the clock's looks at the history.
type counted struct {
	*history
	reads atomic.Int64
}

func (c *counted) Read(fn func(p *billing.Projection) error) (uint64, error) {
	c.reads.Add(1)
	return c.history.Read(fn)
}
