package retry

import (
	"sync"
	"time"
)

// Outage remembers since when something has kept failing, and why, so that
// a readiness check can tell a blip (retried and gone) from an outage (a
// full disk, a lost connection) that an operator must hear of. The zero
// value is a working state. It is safe for concurrent use.
type Outage struct {
	mu    sync.Mutex
	since time.Time
	err   error
}

// Fail records a failure; the outage starts at the first one.
func (o *Outage) Fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.since = time.Now()
	}
	o.err = err
}

// Clear records a success: the outage, if any, is over.
func (o *Outage) Clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.since, o.err = time.Time{}, nil
}

// For reports how long it has been failing, and the last failure; zero and
// nil while it works.
func (o *Outage) For() (time.Duration, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return 0, nil
	}
	return time.Since(o.since), o.err
}
