package ingest

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/services/synth"
	"github.com/ledger-billing/ledger/services/wire"
)

// usagePayload is one UsageReported of 1,000 synthetic records as a
// metering service publishes it, the message ledgerbench measures.
func usagePayload(b *testing.B) []byte {
	b.Helper()
	data, err := proto.Marshal(synth.New(synth.Config{Seed: 1}).Usage())
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkIngestCPU splits what ingestion spends on a message of 1,000
// usage records before its append, and what the projections spend to decode
// it again, per message: the parts ledgerd's profile shows while ingesting.
func BenchmarkIngestCPU(b *testing.B) {
	data := usagePayload(b)
	subject := wire.SubjectPrefix + "usage_reported"
	k, pm, rej := decode(subject, nil, data)
	if rej != nil {
		b.Fatal(rej)
	}
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := proto.Unmarshal(data, k.New()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if rej := validate(pm); rej != nil {
				b.Fatal(rej)
			}
		}
	})
	b.Run("identify", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := identify(k, pm, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What identify's encoding took before it used the generated encoder.
	b.Run("encode-protobuf-go", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := (proto.MarshalOptions{Deterministic: true}).Marshal(pm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := encode(pm); err != nil {
				b.Fatal(err)
			}
		}
	})
	id, err := identify(k, pm, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("projections-decode", func(b *testing.B) {
		b.SetBytes(int64(len(id.Data)))
		for b.Loop() {
			if _, err := billing.Decode(id.Type, id.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
