// Package retry is how every part of Ledger waits between attempts at
// something that failed for a reason outside it: a store outage, a NATS
// reconnect, a subscription dropped, a ledgerd still starting. It is one
// doubling backoff with a floor and a ceiling, so no loop can spin and none
// can wait for ever once the cause is gone.
//
// It sits below every service and imports nothing of Ledger, so the
// command-line client can use it without linking the server.
package retry

import (
	"context"
	"time"
)

// Defaults of a zero Backoff: the first wait is short because most
// failures are brief (a leader election, a reconnect), and the ceiling is
// short enough that recovery is noticed within seconds.
const (
	FirstDefault = 50 * time.Millisecond
	MaxDefault   = 5 * time.Second
)

// Backoff doubles a wait from First up to Max. The zero value uses
// FirstDefault and MaxDefault. It is not safe for concurrent use: each loop
// keeps its own.
type Backoff struct {
	First, Max time.Duration
	next       time.Duration
}

// New returns a Backoff from first up to max; a zero bound takes its
// default.
func New(first, max time.Duration) *Backoff {
	return &Backoff{First: first, Max: max}
}

func (b *Backoff) bounds() (first, max time.Duration) {
	first, max = b.First, b.Max
	if first <= 0 {
		first = FirstDefault
	}
	if max <= 0 {
		max = MaxDefault
	}
	return min(first, max), max
}

// Next is the wait the next call to Wait takes.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		first, _ := b.bounds()
		b.next = first
	}
	return b.next
}

// Wait waits Next, then doubles it up to Max. It returns ctx's error if ctx
// ends first, and nil otherwise.
func (b *Backoff) Wait(ctx context.Context) error {
	wait := b.Next()
	t := time.NewTimer(wait)
	defer t.Stop()
	_, max := b.bounds()
	b.next = min(2*wait, max)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reset starts again from First, after a success.
func (b *Backoff) Reset() { b.next = 0 }
