package billing

import (
	"fmt"
	"sync"
	"testing"
)

// TestIssuedDigestComputedOnce: an issued document's digest is computed
// once however many ask for it, at once or later; a draft's at every call,
// since a draft is made anew for each.
func TestIssuedDigestComputedOnce(t *testing.T) {
	l := newLedger(t)
	acme(l, "USD")
	l.apply(provider("acme", "p1", "ws-shared", "AWS", "111", ""))
	l.apply(usage(rec("AWS", "111", "EC2", "eu-west-1", "2018-03-14T23:00:00Z", "10.00", "USD")))
	var mu sync.Mutex
	calls := 0
	digester := func(inv *Invoice) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return fmt.Sprintf("%s/%s/%s", inv.BAN, inv.Month, inv.Total.String()), nil
	}

	draft := l.invoice("BAN-A", "2018-03")
	for range 2 {
		if d, err := draft.DigestWith(digester); err != nil || d != "BAN-A/2018-03/10.00" {
			t.Fatalf("draft digest = %q, %v", d, err)
		}
	}
	if calls != 2 {
		t.Fatalf("a draft's digest computed %d times for 2 calls, want 2", calls)
	}

	l.apply(closeCycle("2018-03", "2018-04-01T00:00:00Z"))
	calls = 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			// Each asks the projection, as the recorder, the announcer and
			// the fold do: the same issued document.
			if d, err := l.invoice("BAN-A", "2018-03").DigestWith(digester); err != nil || d != "BAN-A/2018-03/10.00" {
				t.Errorf("issued digest = %q, %v", d, err)
			}
		})
	}
	wg.Wait()
	if calls != 1 {
		t.Fatalf("an issued document's digest computed %d times for 8 calls, want 1", calls)
	}
}
