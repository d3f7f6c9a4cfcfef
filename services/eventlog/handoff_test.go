package eventlog

import (
	"testing"

	"github.com/google/uuid"
)

// TestHandoffBoundedAndExact: the hand-off keeps at most handoffMax
// entries, dropping the oldest, and hands an entry over once, and only for
// the very data appended.
func TestHandoffBoundedAndExact(t *testing.T) {
	var h handoff
	ids := make([]uuid.UUID, handoffMax+1)
	for i := range ids {
		ids[i] = uuid.New()
		h.put("s", ids[i], []byte{byte(i)}, i)
	}
	if n := len(h.entries); n != handoffMax {
		t.Fatalf("%d entries kept; want %d", n, handoffMax)
	}
	if got := h.take(&Recorded{Stream: "s", ID: ids[0], Data: []byte{0}}); got != nil {
		t.Errorf("the oldest entry was handed over after %d newer ones: %v", handoffMax, got)
	}
	if got := h.take(&Recorded{Stream: "s", ID: ids[1], Data: []byte{1}}); got != 1 {
		t.Errorf("take = %v; want 1", got)
	}
	if got := h.take(&Recorded{Stream: "s", ID: ids[1], Data: []byte{1}}); got != nil {
		t.Errorf("an entry was handed over twice: %v", got)
	}
	if got := h.take(&Recorded{Stream: "s", ID: ids[2], Data: []byte{9}}); got != nil {
		t.Errorf("an entry was handed over for other data: %v", got)
	}
	if got := h.take(&Recorded{Stream: "t", ID: ids[3], Data: []byte{3}}); got != nil {
		t.Errorf("an entry was handed over for another stream: %v", got)
	}
}
