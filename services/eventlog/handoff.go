package eventlog

import (
	"bytes"
	"sync"

	"github.com/google/uuid"
)

// handoffMax bounds the decoded events a Log holds for its followers. An
// appender that waits for its event to be applied (ingestion, 16 messages
// in flight by default) keeps far fewer waiting; when a follower lags (a
// replay at start) the oldest are dropped, and the follower decodes those
// itself. Each entry holds a decoded message and its data, up to about
// 1 MB for 1,000 usage records: 64 of them bound what this costs.
const handoffMax = 64

type handoffKey struct {
	stream string
	id     uuid.UUID
}

type handoffEntry struct {
	data    []byte
	decoded any
}

// handoff hands what an appender decoded to the followers of the same Log,
// so that an event appended and then followed in one process is decoded
// once: ingestion has the message it validated, and the projections would
// otherwise decode the same bytes again (about a tenth of ledgerd's CPU
// while ingesting usage). It is a cache: a miss costs a decode, never a
// different answer, because an entry is handed over only with data equal
// byte for byte to what the follower received.
type handoff struct {
	mu      sync.Mutex
	entries map[handoffKey]handoffEntry
	ring    [handoffMax]handoffKey // insertion order; the oldest is replaced
	next    int
}

func (h *handoff) put(stream string, id uuid.UUID, data []byte, decoded any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entries == nil {
		h.entries = make(map[handoffKey]handoffEntry, handoffMax)
	}
	k := handoffKey{stream, id}
	delete(h.entries, h.ring[h.next])
	h.ring[h.next] = k
	h.next = (h.next + 1) % handoffMax
	h.entries[k] = handoffEntry{data: data, decoded: decoded}
}

func (h *handoff) drop(stream string, id uuid.UUID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.entries, handoffKey{stream, id})
}

// take returns and forgets what was decoded for the event, if its data is
// the data appended.
func (h *handoff) take(rec *Recorded) any {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.entries) == 0 {
		return nil
	}
	k := handoffKey{rec.Stream, rec.ID}
	e, ok := h.entries[k]
	if !ok {
		return nil
	}
	delete(h.entries, k)
	if !bytes.Equal(e.data, rec.Data) {
		return nil
	}
	return e.decoded
}
