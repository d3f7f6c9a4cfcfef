package billing

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/services/synth"
)

// BenchmarkChargeLogBytes folds 2,000,000 records of ledgerbench's
// generator (services/synth) and reports what the cells' charge logs hold
// per record folded: their length, their capacity, and the heap their
// allocations take (a capacity rounded up to the allocator's size class),
// and their length per entry. It measures memory, not time: run it with
// -benchtime 1x.
//
// It folds four shapes. "random" is synth's own: every record at a random
// hour of a random month, as ledgerbench sends them. "ordered" keeps
// synth's accounts and amounts but sends the year hour by hour, as a
// vendor's feed does. The default 10,000 accounts leave about one record a
// cell at this size; 200 accounts give a cell about as many records as
// 100,000,000 records over 10,000 accounts do, the size of issue 15.
func BenchmarkChargeLogBytes(b *testing.B) {
	const records = 2_000_000
	for _, accounts := range []int{10_000, 200} {
		for _, ordered := range []bool{false, true} {
			shape := "random"
			if ordered {
				shape = "ordered"
			}
			b.Run(fmt.Sprintf("%s/accounts=%d", shape, accounts), func(b *testing.B) {
				for range b.N {
					p := foldSynth(b, accounts, records, ordered)
					var st chargeLogStats
					for i := range p.cells.n {
						c := p.cells.at(i)
						st.add(c.rest, c.n)
					}
					b.ReportMetric(float64(st.len)/records, "len-B/record")
					b.ReportMetric(float64(st.cap)/records, "cap-B/record")
					b.ReportMetric(float64(st.heap)/records, "heap-B/record")
					b.ReportMetric(float64(st.len)/float64(max(st.entries, 1)), "len-B/entry")
				}
			})
		}
	}
}

type chargeLogStats struct {
	len, cap, heap, entries int
	classes                 map[int]int
}

func (s *chargeLogStats) add(l chargeLog, n uint32) {
	s.len += len(l)
	s.cap += cap(l)
	s.heap += s.class(cap(l))
	if n > 1 {
		s.entries += int(n) - 1
	}
}

// class returns the bytes the allocator takes for c bytes: append from
// nothing rounds its capacity up to the size class, as make does without
// saying so.
func (s *chargeLogStats) class(c int) int {
	if c == 0 {
		return 0
	}
	if s.classes == nil {
		s.classes = make(map[int]int)
	}
	if _, ok := s.classes[c]; !ok {
		s.classes[c] = cap(append([]byte(nil), make([]byte, c)...))
	}
	return s.classes[c]
}

// foldSynth folds synth's hierarchy for accounts accounts, then records
// usage records in its messages of 1,000; ordered, the messages go through
// the year hour by hour instead of at random instants.
func foldSynth(b *testing.B, accounts, records int, ordered bool) *Projection {
	b.Helper()
	g := synth.New(synth.Config{Orgs: 10, AccountsPerOrg: accounts / 10})
	p := New()
	pos := uint64(0)
	for _, m := range g.Hierarchy() {
		pos++
		if _, err := p.Apply(pos, m); err != nil {
			b.Fatal(err)
		}
	}
	months := g.Months()
	first, end := months[0].Start(), months[len(months)-1].End()
	hours := int(end.Sub(first) / time.Hour)
	msgs := records / 1000
	for k := range msgs {
		u := g.Usage()
		if ordered {
			for i, r := range u.Records {
				at := first.Add(time.Duration((k*len(u.Records)+i)*hours/(msgs*len(u.Records))) * time.Hour)
				r.ChargePeriodStart, r.ChargePeriodEnd = timestamppb.New(at), timestamppb.New(at.Add(time.Hour))
			}
		}
		pos++
		if _, err := p.Apply(pos, u); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// chargeLogCharges returns 64 charges of a cell as synth makes them: at
// random hours of a month, of events some messages apart, of ten fraction
// digits.
func chargeLogCharges() (ms int64, ats []int64, evs []uint32, amounts []apd.Decimal) {
	rng := rand.New(rand.NewPCG(1, 2))
	ms = calendar.New(2025, time.January).Start().UnixNano()
	ev := uint32(300)
	for range 64 {
		ats = append(ats, ms+int64(rng.IntN(27*24))*int64(time.Hour))
		ev += uint32(rng.IntN(60))
		evs = append(evs, ev)
		var d apd.Decimal
		d.Coeff.SetUint64(rng.Uint64N(500_000_000_000))
		d.Exponent = -10
		amounts = append(amounts, d)
	}
	return ms, ats, evs, amounts
}

// BenchmarkChargeLogAdd adds 64 charges to a cell: the fold's cost of the
// log, without the rest of the fold (whose time varies more than this).
func BenchmarkChargeLogAdd(b *testing.B) {
	ms, ats, evs, amounts := chargeLogCharges()
	for range b.N {
		var c cell
		for i := range ats {
			c.add(ms, ats[i], evs[i], &amounts[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ats)), "ns/charge")
}

// BenchmarkChargeLogCharges decodes a cell of 64 charges, as a back-dated
// change that opens it does.
func BenchmarkChargeLogCharges(b *testing.B) {
	ms, ats, evs, amounts := chargeLogCharges()
	c := cell{key: cellKey{month: calendar.New(2025, time.January)}}
	for i := range ats {
		c.add(ms, ats[i], evs[i], &amounts[i])
	}
	b.ResetTimer()
	for range b.N {
		_ = c.charges()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ats)), "ns/charge")
}
