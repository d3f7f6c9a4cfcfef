package billing

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

const (
	benchAccounts = 10_000
	benchOrgs     = 100
	benchRecords  = 1_000_000
	benchBatch    = 10_000 // records per UsageReported, the catalogue's limit
)

// benchHistory returns the hierarchy events and the usage messages of the
// benchmark: 10,000 accounts in 100 organizations, 1,000,000 records over
// 12 months, five services and four regions.
func benchHistory() (setup []*billingv1.ProviderRegistered, orgs []*billingv1.OrganizationRegistered, msgs []*billingv1.UsageReported) {
	setup, orgs = benchHierarchy()
	benchUsage(benchRecords, func(u *billingv1.UsageReported) { msgs = append(msgs, u) })
	return setup, orgs, msgs
}

// benchHierarchy returns the organizations and providers of the benchmark.
func benchHierarchy() (setup []*billingv1.ProviderRegistered, orgs []*billingv1.OrganizationRegistered) {
	for o := range benchOrgs {
		m := org(fmt.Sprintf("org-%03d", o), fmt.Sprintf("BAN-%03d", o), "USD")
		m.EventId = "org-" + m.OrgId
		orgs = append(orgs, m)
	}
	for a := range benchAccounts {
		m := provider(fmt.Sprintf("org-%03d", a%benchOrgs), fmt.Sprintf("p-%05d", a), "ws", "AWS", fmt.Sprintf("%012d", a), "")
		m.EventId = "provider-" + m.ProviderId
		setup = append(setup, m)
	}
	return setup, orgs
}

// benchUsage calls fn with usage messages of benchBatch records, records
// in all, one at a time: a history of ten million records need not be
// held at once.
func benchUsage(records int, fn func(*billingv1.UsageReported)) {
	rng := rand.New(rand.NewPCG(2018, 12))
	services := []string{"Amazon EC2", "Amazon S3", "Amazon RDS", "AWS Lambda", "Amazon CloudFront"}
	regions := []string{"us-east-1", "eu-west-1", "ap-northeast-1", ""}
	start := calendar.New(2018, time.January).Start()
	for i := range records / benchBatch {
		u := &billingv1.UsageReported{EventId: fmt.Sprintf("usage-%05d", i)}
		for j := range benchBatch {
			at := start.Add(time.Duration(rng.IntN(365*24)) * time.Hour)
			u.Records = append(u.Records, &billingv1.UsageRecord{
				RecordId:          fmt.Sprintf("r%d", j),
				Vendor:            "AWS",
				AccountId:         fmt.Sprintf("%012d", rng.IntN(benchAccounts)),
				Service:           services[rng.IntN(len(services))],
				Region:            regions[rng.IntN(len(regions))],
				ChargeCategory:    "Usage",
				ChargePeriodStart: timestamppb.New(at),
				ChargePeriodEnd:   timestamppb.New(at.Add(time.Hour)),
				Cost:              &billingv1.Money{Amount: fmt.Sprintf("%d.%08d", rng.IntN(100), rng.IntN(100_000_000)), Currency: "USD"},
			})
		}
		fn(u)
	}
}

// BenchmarkFoldUsage folds 1,000,000 usage records over 10,000 accounts and
// 12 months into a new projection per iteration, and reports records/s and
// the heap the projection holds per account. "shuffled" folds them in no
// order, as ledgerbench publishes them: almost every record meets an
// account and a cell that are not in the processor's caches. "grouped"
// folds the same records sorted by account and instant, in the same
// message sizes, as a cloud's cost export lists them: the fold's cost on
// records that arrive together with their neighbours.
func BenchmarkFoldUsage(b *testing.B) {
	providers, orgs, msgs := benchHistory()
	// The framework calls each function more than once; the records are
	// sorted and copied once, and only when "grouped" runs.
	grouped := sync.OnceValue(func() []*billingv1.UsageReported { return groupedByAccount(msgs) })
	b.Run("shuffled", func(b *testing.B) { benchFold(b, providers, orgs, msgs) })
	b.Run("grouped", func(b *testing.B) { benchFold(b, providers, orgs, grouped()) })
}

// groupedByAccount returns the records of msgs sorted by account, then
// instant, in messages of benchBatch.
func groupedByAccount(msgs []*billingv1.UsageReported) []*billingv1.UsageReported {
	var all []*billingv1.UsageRecord
	for _, u := range msgs {
		all = append(all, u.Records...)
	}
	slices.SortStableFunc(all, func(x, y *billingv1.UsageRecord) int {
		return cmp.Or(cmp.Compare(x.AccountId, y.AccountId), x.ChargePeriodStart.AsTime().Compare(y.ChargePeriodStart.AsTime()))
	})
	// Each record is copied in its new order, as a decoded message lays
	// its records out: read in an order other than their allocation's,
	// the records themselves would miss the caches, which no message
	// does.
	var out []*billingv1.UsageReported
	for i := 0; i < len(all); i += benchBatch {
		u := &billingv1.UsageReported{EventId: fmt.Sprintf("grouped-%05d", len(out))}
		for _, r := range all[i:min(i+benchBatch, len(all))] {
			u.Records = append(u.Records, proto.CloneOf(r))
		}
		out = append(out, u)
	}
	return out
}

// benchFold folds msgs into a new projection with the hierarchy of
// providers and orgs per iteration; only the usage is timed.
func benchFold(b *testing.B, providers []*billingv1.ProviderRegistered, orgs []*billingv1.OrganizationRegistered, msgs []*billingv1.UsageReported) {
	var heapPerAccount float64
	records := 0
	for _, u := range msgs {
		records += len(u.Records)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p := New()
		pos := uint64(0)
		for _, o := range orgs {
			pos++
			if _, err := p.Apply(pos, o); err != nil {
				b.Fatal(err)
			}
		}
		for _, pr := range providers {
			pos++
			if _, err := p.Apply(pos, pr); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for _, u := range msgs {
			pos++
			if _, err := p.Apply(pos, u); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heapPerAccount = float64(after.HeapAlloc-before.HeapAlloc) / benchAccounts
		runtime.KeepAlive(p)
		b.StartTimer()
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(heapPerAccount, "B/account")
}

// BenchmarkCloseYear closes the 12 months of the folded year, one after
// the other: the cost of issuing 12 × 100 invoices over 10,000 accounts.
func BenchmarkCloseYear(b *testing.B) {
	providers, orgs, msgs := benchHistory()
	for range b.N {
		b.StopTimer()
		p := New()
		pos := uint64(0)
		for _, o := range orgs {
			pos++
			p.Apply(pos, o)
		}
		for _, pr := range providers {
			pos++
			p.Apply(pos, pr)
		}
		for _, u := range msgs {
			pos++
			p.Apply(pos, u)
		}
		b.StartTimer()
		for m := calendar.New(2018, time.January); m < calendar.New(2019, time.January); m++ {
			pos++
			c := closeCycle(m.String(), (m+1).String()+"-01T00:00:00Z")
			c.EventId = "close-" + c.Month
			a, err := p.Apply(pos, c)
			if err != nil || len(a.Issued) != benchOrgs {
				b.Fatalf("close %s: %v, %d issued", m, err, len(a.Issued))
			}
		}
	}
}

// BenchmarkBackDatedChange applies hierarchy changes effective from the
// beginning to the folded benchmark year: a workspace nobody bills to (every
// cell of its organization is looked at, nothing moves), and a change of
// the workspace all of an organization's 100 accounts bill to (each of its
// charges, about 10,000, moves to a new attribution).
func BenchmarkBackDatedChange(b *testing.B) {
	providers, orgs, msgs := benchHistory()
	p := New()
	pos := uint64(0)
	apply := func(m proto.Message) {
		pos++
		if _, err := p.Apply(pos, m); err != nil {
			b.Fatal(err)
		}
	}
	for _, o := range orgs {
		apply(o)
	}
	for _, pr := range providers {
		apply(pr)
	}
	for _, u := range msgs {
		apply(u)
	}
	n := 0
	b.Run("nothing moves", func(b *testing.B) {
		for range b.N {
			n++
			ws := workspace("org-000", fmt.Sprintf("ws-empty-%d", n), "cc", "")
			ws.EventId = "ws-" + ws.WorkspaceId
			apply(ws)
		}
	})
	b.Run("an organization moves", func(b *testing.B) {
		for range b.N {
			n++
			ws := workspace("org-000", "ws", fmt.Sprintf("cc-%d", n%2), "")
			ws.EventId = fmt.Sprintf("ws-move-%d", n)
			apply(ws)
		}
	})
}

const (
	heldAccounts = 1_000
	heldRecords  = 1_000_000
	heldBatch    = 1_000 // records per UsageReported
	heldMonths   = 3
)

// heldHistory returns the usage of the held-usage benchmarks: 1,000,000
// records of 1,000 accounts over three months, five services and four
// regions, in messages of 1,000 records, each message spread over the
// accounts as a metering service's batches are. With register, it also
// returns an organization and a provider for every account, so that the
// same records are billed rather than held.
func heldHistory(register bool) (setup []proto.Message, msgs []*billingv1.UsageReported) {
	rng := rand.New(rand.NewPCG(2018, 3))
	if register {
		o := org("org-held", "BAN-HELD", "USD")
		o.EventId = "org-held"
		setup = append(setup, o)
		for a := range heldAccounts {
			m := provider("org-held", fmt.Sprintf("p-%05d", a), "ws", "AWS", fmt.Sprintf("%012d", a), "")
			m.EventId = "provider-" + m.ProviderId
			setup = append(setup, m)
		}
	}
	services := []string{"Amazon EC2", "Amazon S3", "Amazon RDS", "AWS Lambda", "Amazon CloudFront"}
	regions := []string{"us-east-1", "eu-west-1", "ap-northeast-1", ""}
	start := calendar.New(2018, time.January).Start()
	hours := int(calendar.New(2018, time.January+heldMonths).Start().Sub(start).Hours())
	for i := range heldRecords / heldBatch {
		u := &billingv1.UsageReported{EventId: fmt.Sprintf("held-%05d", i)}
		for j := range heldBatch {
			at := start.Add(time.Duration(rng.IntN(hours)) * time.Hour)
			u.Records = append(u.Records, &billingv1.UsageRecord{
				RecordId:          fmt.Sprintf("r%d", j),
				Vendor:            "AWS",
				AccountId:         fmt.Sprintf("%012d", rng.IntN(heldAccounts)),
				Service:           services[rng.IntN(len(services))],
				Region:            regions[rng.IntN(len(regions))],
				ChargeCategory:    "Usage",
				ChargePeriodStart: timestamppb.New(at),
				ChargePeriodEnd:   timestamppb.New(at.Add(time.Hour)),
				Cost:              &billingv1.Money{Amount: fmt.Sprintf("%d.%08d", rng.IntN(100), rng.IntN(100_000_000)), Currency: "USD"},
			})
		}
		msgs = append(msgs, u)
	}
	return setup, msgs
}

// BenchmarkFoldHeldUsage folds 1,000,000 usage records of 1,000 accounts
// into a new projection per iteration, the accounts unregistered ("held":
// every record waits as unassigned usage) or registered ("billed"), and
// reports the live heap the fold added per record: held usage must cost
// about what billed usage costs (DESIGN 6.1), whoever sends it. It also
// reports the entries of the full exceptions list.
func BenchmarkFoldHeldUsage(b *testing.B) {
	for _, bc := range []struct {
		name     string
		register bool
	}{{"held", false}, {"billed", true}} {
		b.Run(bc.name, func(b *testing.B) {
			setup, msgs := heldHistory(bc.register)
			var perRecord float64
			var entries int
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				p := New()
				pos := uint64(0)
				for _, m := range setup {
					pos++
					if _, err := p.Apply(pos, m); err != nil {
						b.Fatal(err)
					}
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				for _, u := range msgs {
					pos++
					if _, err := p.Apply(pos, u); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				perRecord = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / heldRecords
				ex, err := p.Exceptions("")
				if err != nil {
					b.Fatal(err)
				}
				entries = len(ex)
				runtime.KeepAlive(p)
				b.StartTimer()
			}
			b.ReportMetric(float64(heldRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(perRecord, "B/record")
			b.ReportMetric(float64(entries), "exceptions")
		})
	}
}

// BenchmarkListHeldExceptions lists the exceptions of 1,000,000 held
// records: the work ListExceptions does under the projection's read lock.
func BenchmarkListHeldExceptions(b *testing.B) {
	_, msgs := heldHistory(false)
	p := New()
	for i, u := range msgs {
		if _, err := p.Apply(uint64(i+1), u); err != nil {
			b.Fatal(err)
		}
	}
	msgs = nil
	b.ResetTimer()
	for range b.N {
		if _, err := p.Exceptions(""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReleaseHeldUsage registers the 1,000 accounts of 1,000,000
// held records, an organization then a provider for each: every record
// leaves the unassigned usage for its cell, each at its own instant.
func BenchmarkReleaseHeldUsage(b *testing.B) {
	setup, _ := heldHistory(true)
	_, msgs := heldHistory(false)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p := New()
		pos := uint64(0)
		for _, u := range msgs {
			pos++
			if _, err := p.Apply(pos, u); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for _, m := range setup {
			pos++
			if _, err := p.Apply(pos, m); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if ex, _ := p.Exceptions(""); len(ex) != 0 {
			b.Fatalf("%d exceptions left after the registrations", len(ex))
		}
		b.StartTimer()
	}
}
