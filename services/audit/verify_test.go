package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/synth"
	"github.com/ledger-billing/ledger/services/testkit"
)

// history appends a generated history of usage messages of 1,000 records
// each, signed, to a fresh store, and seals it; it returns the log and the
// keys to verify it with.
func history(tb testing.TB, messages int) (*eventlog.Log, Keys) {
	tb.Helper()
	st := testkit.StartStore(tb, eventstore.Config{MaxAppendSize: 16 << 20})
	log := testkit.Log(tb, st.URL())
	_, key, _ := ed25519.GenerateKey(nil)
	signer := NewSigner(key)
	log.SignWith(signer)
	g := synth.New(synth.Config{Seed: 1, Orgs: 3, AccountsPerOrg: 300, Months: 3})
	msgs := g.Hierarchy()
	for range messages {
		msgs = append(msgs, g.Usage())
	}
	var chain Chain
	ctx := context.Background()
	for i, m := range msgs {
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		typ := string(m.ProtoReflect().Descriptor().FullName())
		stream, id := fmt.Sprintf("m-%d", i), uuid.New()
		a, err := log.Append(ctx, stream, eventlog.NoStream, eventlog.Event{ID: id, Type: typ, Data: data})
		if err != nil {
			tb.Fatal(err)
		}
		chain.Add(stream, id, typ, data, a.Position)
	}
	st2 := chain.State()
	seal, _ := proto.Marshal(&billingv1.LogSealed{ThroughPosition: st2.Position, Events: st2.Events, Chain: st2.Value})
	if _, err := log.Append(ctx, SealStream, eventlog.NoStream, eventlog.Event{ID: uuid.New(), Type: SealType, Data: seal}); err != nil {
		tb.Fatal(err)
	}
	return log, Keys{signer.KeyID(): signer.Public()}
}

func TestVerifySeals(t *testing.T) {
	log, keys := history(t, 3)
	rep, err := Verify(t.Context(), log, VerifyOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Seals != 1 || rep.Unsealed != 0 {
		t.Fatalf("a sealed, signed history: %+v", rep)
	}
	// A seal that claims more events than the history holds: events
	// were removed after it was written.
	seal, _ := proto.Marshal(&billingv1.LogSealed{ThroughPosition: 1, Events: rep.Chained + 5, Chain: strings.Repeat("ab", 32)})
	if _, err := log.Append(t.Context(), SealStream, eventlog.Any, eventlog.Event{ID: uuid.New(), Type: SealType, Data: seal}); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(t.Context(), log, VerifyOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(rep.Faults[0].Problem, "covers more billing events than the history holds") {
		t.Fatalf("a seal beyond the history: %+v", rep.Faults)
	}
	// Another key: every event is someone else's.
	_, other, _ := ed25519.GenerateKey(nil)
	pub := other.Public().(ed25519.PublicKey)
	rep, err = Verify(t.Context(), log, VerifyOptions{Keys: Keys{KeyID(pub): pub}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FaultCount < rep.Signed || !strings.Contains(rep.Faults[0].Problem, "not among the public keys given") {
		t.Fatalf("verified with another key: %d faults for %d events: %v", rep.FaultCount, rep.Signed, rep.Faults[:1])
	}
}

// BenchmarkVerify measures verify beside a bare replay of the same
// history (200,000 records in messages of 1,000): DESIGN.md says its speed
// is the replay speed, and this is where that is checked.
func BenchmarkVerify(b *testing.B) {
	const messages = 200
	log, keys := history(b, messages)
	records := float64(messages * 1000)
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			if _, err := Replay(context.Background(), log, 1<<62, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(records*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			rep, err := Verify(context.Background(), log, VerifyOptions{Keys: keys})
			if err != nil || !rep.OK() {
				b.Fatal(err, rep.Faults)
			}
		}
		b.ReportMetric(records*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
