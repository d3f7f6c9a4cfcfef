package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := New(time.Millisecond, 5*time.Millisecond)
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{1, 2, 4, 5, 5}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits = %v, want %v ms", got, want)
		}
	}
	b.Reset()
	if b.Next() != time.Millisecond {
		t.Fatalf("after Reset, Next = %v, want 1ms", b.Next())
	}
}

func TestZeroBackoffUsesDefaults(t *testing.T) {
	var b Backoff
	if b.Next() != FirstDefault {
		t.Fatalf("Next = %v, want %v", b.Next(), FirstDefault)
	}
	b = Backoff{First: time.Hour}
	if b.Next() != MaxDefault {
		t.Fatalf("a first wait above the ceiling: Next = %v, want %v", b.Next(), MaxDefault)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := New(time.Hour, time.Hour)
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on an ended context = %v, want context.Canceled", err)
	}
}

func TestOutage(t *testing.T) {
	var o Outage
	if d, err := o.For(); d != 0 || err != nil {
		t.Fatalf("a new outage: %v, %v", d, err)
	}
	first := errors.New("first")
	o.Fail(first)
	d1, err := o.For()
	if err != first {
		t.Fatalf("after a failure: %v", err)
	}
	second := errors.New("second")
	o.Fail(second)
	d2, err := o.For()
	if err != second || d2 < d1 {
		t.Fatalf("the outage runs from the first failure with the last error: %v after %v, %v", d2, d1, err)
	}
	o.Clear()
	if d, err := o.For(); d != 0 || err != nil {
		t.Fatalf("after Clear: %v, %v", d, err)
	}
}
