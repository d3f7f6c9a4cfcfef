package eventstore_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// TestLargeEventsAcrossRestart appends events the size of usage messages,
// enough of them that the store flushes them out of its memtable into
// Pebble's blob files (value separation), mixed with small ones that stay
// in the tables, and reads them all back, byte for byte, before and after
// the store is reopened.
func TestLargeEventsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	st := testkit.StartStore(t, eventstore.Config{Dir: dir, MaxAppendSize: 16 << 20})
	c := testkit.Client(t, st.URL())
	rng := rand.New(rand.NewPCG(15, 2026))
	// 120 events of 64 KiB: about 8 MB, twice Pebble's default memtable.
	const large, size = 120, 64 << 10
	want := map[string][]byte{}
	for i := range large {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32()) // incompressible, like no real event, but the worst case
		}
		small := []byte(fmt.Sprintf("small-%d", i))
		stream := fmt.Sprintf("large-%d", i)
		appendOK(t, c, stream, esdb.NoStream{},
			esdb.EventData{EventID: uuid.New(), EventType: "large", ContentType: esdb.ContentTypeBinary, Data: data},
			esdb.EventData{EventID: uuid.New(), EventType: "small", ContentType: esdb.ContentTypeBinary, Data: small})
		want[stream+"/0"], want[stream+"/1"] = data, small
	}
	check := func(when string) {
		t.Helper()
		for i := range large {
			stream := fmt.Sprintf("large-%d", i)
			evs, err := testkit.ReadStream(ctxT(t), c, stream, 10)
			if err != nil {
				t.Fatalf("%s: read %s: %v", when, stream, err)
			}
			if len(evs) != 2 {
				t.Fatalf("%s: %s holds %d events; want 2", when, stream, len(evs))
			}
			for _, ev := range evs {
				key := fmt.Sprintf("%s/%d", stream, ev.Event.EventNumber)
				if !bytes.Equal(ev.Event.Data, want[key]) {
					t.Fatalf("%s: event %s reads back %d bytes, not the %d appended", when, key, len(ev.Event.Data), len(want[key]))
				}
			}
		}
	}
	check("before the restart")
	st.Restart()
	check("after the restart")
	if blobs, err := filepath.Glob(filepath.Join(dir, "*.blob")); err != nil || len(blobs) == 0 {
		t.Errorf("no blob files in the store (%v): the large events were not separated from the tables", err)
	}
}
