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
