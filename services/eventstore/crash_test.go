package eventstore_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

const (
	crashDirEnv     = "LEDGER_CRASH_TEST_DIR"
	crashWriters    = 8
	crashStreams    = 3 // per writer
	crashKills      = 20
	crashAppendsMax = 5 // events per append
)

// TestCrashRecovery kills a process that appends concurrently with SIGKILL
// at random moments, again and again. After every kill the store is opened
// again and must hold every acknowledged append intact, with contiguous
// revisions, increasing positions and no part of any unacknowledged append.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(2026, 11))
	acked := map[string]ackedAppend{} // by append id
	for kill := range crashKills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acks := make(chan ackedAppend, 1024)
		go readAcks(stdout, acks)

		// Let it run for a random number of acknowledged appends and a
		// random time beyond them, so the kill lands anywhere: between
		// appends, in the middle of a group, during an fsync.
		want := 10 + rng.IntN(150)
		deadline := time.After(30 * time.Second)
		for got := 0; got < want; got++ {
			select {
			case a, ok := <-acks:
				if !ok {
					t.Fatalf("kill %d: child exited early: %v", kill, cmd.Wait())
				}
				acked[a.id] = a
			case <-deadline:
				t.Fatalf("kill %d: only %d acknowledged appends in 30s", kill, got)
			}
		}
		time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond) // the random moment itself
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		for a := range acks { // acknowledgements printed before the kill count too
			acked[a.id] = a
		}
		verifyAfterCrash(t, dir, acked)
	}
	t.Logf("%d kills, %d acknowledged appends verified", crashKills, len(acked))
}

type ackedAppend struct {
	id       string
	stream   string
	firstRev uint64
	count    int
}

func readAcks(r io.Reader, out chan<- ackedAppend) {
	defer close(out)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "ACK" {
			continue // test framework output, or a line cut by the kill
		}
		rev, err1 := strconv.ParseUint(f[3], 10, 64)
		n, err2 := strconv.Atoi(f[4])
		if err1 == nil && err2 == nil {
			out <- ackedAppend{id: f[1], stream: f[2], firstRev: rev, count: n}
		}
	}
}

func verifyAfterCrash(t *testing.T, dir string, acked map[string]ackedAppend) {
	t.Helper()
	st := testkit.StartStore(t, eventstore.Config{Dir: dir})
	defer st.Stop()
	c := testkit.Client(t, st.URL())
	defer c.Close()

	type seen struct {
		stream string
		rev    uint64
		index  int
		count  int
	}
	byAppend := map[string][]seen{}
	total := 0
	for w := range crashWriters {
		for s := range crashStreams {
			stream := crashStream(w, s)
			evs, err := readStream(t, c, stream, esdb.ReadStreamOptions{}, 1<<20)
			if errorCode(err) == esdb.ErrorCodeResourceNotFound {
				continue
			}
			if err != nil {
				t.Fatalf("read %s: %v", stream, err)
			}
			for i, ev := range evs {
				if ev.Event.EventNumber != uint64(i) {
					t.Fatalf("%s: event %d has revision %d: revisions not contiguous", stream, i, ev.Event.EventNumber)
				}
				id, index, count, ok := parseCrashEvent(ev.Event.Data, ev.Event.UserMetadata)
				if !ok {
					t.Fatalf("%s revision %d is torn: data %q", stream, i, ev.Event.Data)
				}
				byAppend[id] = append(byAppend[id], seen{stream, ev.Event.EventNumber, index, count})
			}
			total += len(evs)
		}
	}
	for id, parts := range byAppend {
		if len(parts) != parts[0].count {
			t.Fatalf("append %s is half-written: %d of %d events", id, len(parts), parts[0].count)
		}
		for i, p := range parts {
			if p.index != i || p.rev != parts[0].rev+uint64(i) || p.stream != parts[0].stream {
				t.Fatalf("append %s is out of order: %+v", id, parts)
			}
		}
	}
	for id, a := range acked {
		parts, ok := byAppend[id]
		if !ok {
			t.Fatalf("acknowledged append %s (%s at %d) is lost", id, a.stream, a.firstRev)
		}
		if parts[0].stream != a.stream || parts[0].rev != a.firstRev || len(parts) != a.count {
			t.Fatalf("acknowledged append %s read back as %+v, acknowledged as %+v", id, parts, a)
		}
	}
	all := readAll(t, c, esdb.ReadAllOptions{}, 1<<30)
	if len(all) != total {
		t.Fatalf("$all holds %d events, the streams %d", len(all), total)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Event.Position.Commit <= all[i-1].Event.Position.Commit {
			t.Fatalf("$all position %d after %d", all[i].Event.Position.Commit, all[i-1].Event.Position.Commit)
		}
	}
}

func crashStream(writer, stream int) string { return fmt.Sprintf("crash-%d-%d", writer, stream) }

// crashEvent encodes an event so that a torn or mixed-up one is detectable:
// the data names its append and place in it, the metadata is its checksum.
func crashEvent(id string, index, count int) esdb.EventData {
	data := fmt.Sprintf("%s/%d/%d", id, index, count)
	sum := sha256.Sum256([]byte(data))
	return esdb.EventData{EventID: uuid.New(), EventType: "crash", ContentType: esdb.ContentTypeBinary,
		Data: []byte(data), Metadata: []byte(hex.EncodeToString(sum[:]))}
}

func parseCrashEvent(data, meta []byte) (id string, index, count int, ok bool) {
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != string(meta) {
		return "", 0, 0, false
	}
	f := strings.Split(string(data), "/")
	if len(f) != 3 {
		return "", 0, 0, false
	}
	index, err1 := strconv.Atoi(f[1])
	count, err2 := strconv.Atoi(f[2])
	return f[0], index, count, err1 == nil && err2 == nil
}

// TestCrashChild is the process TestCrashRecovery kills. It runs only when
// started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	c := testkit.Client(t, testkit.StartStore(t, eventstore.Config{Dir: dir}).URL())
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			next := make([]uint64, crashStreams)
			for s := range crashStreams {
				last, err := readStream(t, c, crashStream(w, s), esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1)
				if err == nil && len(last) == 1 {
					next[s] = last[0].Event.EventNumber + 1
				}
			}
			for {
				s := rng.IntN(crashStreams)
				n := 1 + rng.IntN(crashAppendsMax)
				id := uuid.NewString()
				var evs []esdb.EventData
				for i := range n {
					evs = append(evs, crashEvent(id, i, n))
				}
				var expected esdb.ExpectedRevision = esdb.NoStream{}
				if next[s] > 0 {
					expected = esdb.Revision(next[s] - 1)
				}
				if _, err := c.AppendToStream(ctxT(t), crashStream(w, s), esdb.AppendToStreamOptions{ExpectedRevision: expected}, evs...); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				out.Lock()
				fmt.Printf("ACK %s %s %d %d\n", id, crashStream(w, s), next[s], n)
				out.Unlock()
				next[s] += uint64(n)
			}
		})
	}
	wg.Wait()
}
