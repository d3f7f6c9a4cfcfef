package billing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/snapcodec"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// snapshotHistory is a random history (randomHistory) with what it lacks
// for snapshots: invalid records, and DocumentIssued records.
func snapshotHistory(t *testing.T, seed uint64) []proto.Message {
	t.Helper()
	l := newLedger(t)
	randomHistory(seed, l, func(calendar.Month) {})
	noStart := rec("AWS", "bad-2", "Amazon EC2", "", "2018-03-01T00:00:00Z", "1.00", "USD")
	noStart.ChargePeriodStart = nil
	l.apply(usage(rec("AWS", "bad-1", "Amazon EC2", "", "2018-03-01T00:00:00Z", "not a number", "USD"), noStart))
	// A DocumentIssued has no event_id to give it.
	l.history = append(l.history, &billingv1.DocumentIssued{Ban: "BAN-o1", Month: "2018-01", View: "billing_cycle",
		Total: &billingv1.Money{Amount: "12.34", Currency: "USD"}, Digest: "ab", ThroughPosition: 10})
	l.apply(usage(rec("AWS", "bad-3", "Amazon S3", "", "2018-06-02T00:00:00Z", "1.5", "")))
	return l.history
}

// fold applies msgs (clones: Apply keeps parts of what it is given) at
// positions 10, 20, ... from the index first, and returns what each
// issued or froze, rendered.
func fold(t *testing.T, p *Projection, msgs []proto.Message, first int) []string {
	t.Helper()
	var out []string
	for i, msg := range msgs {
		a, err := p.Apply(uint64(first+i+1)*10, proto.Clone(msg))
		out = append(out, fmt.Sprintf("%v", err))
		for _, inv := range slices.Concat(a.Issued, a.Finalized) {
			out = append(out, text(inv))
		}
	}
	return out
}

func snapshotBytes(t testing.TB, p *Projection) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteSnapshot(&b); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	return b.Bytes()
}

// TestSnapshotRoundTrip: a projection restored from a snapshot taken at
// any point of a history answers every query as the original does, before
// and after both apply the rest of the history; and a snapshot of the
// restored projection is the same bytes.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			history := snapshotHistory(t, seed)
			rng := rand.New(rand.NewPCG(seed, 99))
			cuts := []int{0, len(history)}
			for range 3 {
				cuts = append(cuts, rng.IntN(len(history)))
			}
			for _, cut := range cuts {
				orig := New()
				fold(t, orig, history[:cut], 0)
				snap := snapshotBytes(t, orig)
				restored, err := ReadSnapshot(bytes.NewReader(snap))
				if err != nil {
					t.Fatalf("cut %d: ReadSnapshot: %v", cut, err)
				}
				if again := snapshotBytes(t, restored); !bytes.Equal(again, snap) {
					t.Fatalf("cut %d: the restored projection writes other bytes (%d, was %d)", cut, len(again), len(snap))
				}
				sameAnswers(t, fmt.Sprintf("cut %d", cut), orig, restored)

				a, b := fold(t, orig, history[cut:], cut), fold(t, restored, history[cut:], cut)
				if !slices.Equal(a, b) {
					t.Fatalf("cut %d: applying the rest gives other results", cut)
				}
				sameAnswers(t, fmt.Sprintf("cut %d, then the rest", cut), orig, restored)
				if !bytes.Equal(snapshotBytes(t, orig), snapshotBytes(t, restored)) {
					t.Fatalf("cut %d: after the rest, the snapshots differ", cut)
				}
			}
			t.Logf("%d events, snapshot of the whole history %d bytes", len(history), len(snapshotBytes(t, func() *Projection {
				p := New()
				fold(t, p, history, 0)
				return p
			}())))
		})
	}
}

// sameAnswers compares every query's answers of two projections.
func sameAnswers(t *testing.T, what string, a, b *Projection) {
	t.Helper()
	from, to := month("2017-11"), month("2018-09")
	check := func(query string, fn func(p *Projection) any) {
		t.Helper()
		if x, y := render(fn(a)), render(fn(b)); x != y {
			t.Fatalf("%s: %s differs:\n%s\nwas\n%s", what, query, y, x)
		}
	}
	check("Position", func(p *Projection) any { return p.Position() })
	check("Organizations", func(p *Projection) any { return p.Organizations() })
	check("Issued", func(p *Projection) any { return p.Issued() })
	check("Exceptions", func(p *Projection) any { return answer(p.Exceptions("")) })
	for _, ban := range a.h.BANs() {
		check("Invoices "+ban, func(p *Projection) any { return answer(p.Invoices(ban, from, to)) })
		for m := from; m <= to; m++ {
			check("Invoice "+ban+" "+m.String(), func(p *Projection) any { return answer(p.Invoice(ban, m)) })
			check("VendorView "+ban+" "+m.String(), func(p *Projection) any { return answer(p.VendorView(ban, m)) })
		}
	}
	for _, o := range a.Organizations() {
		org := o.ID
		check("Exceptions "+org, func(p *Projection) any { return answer(p.Exceptions(org)) })
		check("Currency "+org, func(p *Projection) any { return answer(p.Currency(org)) })
		for _, view := range []View{BillingCycle, VendorCycle} {
			check("UsageHistory "+org, func(p *Projection) any { return answer(p.UsageHistory(org, from, to, view)) })
			for m := from; m <= to; m++ {
				check("UsageMonth "+org+" "+m.String(), func(p *Projection) any { return answer(p.UsageMonth(org, m, view)) })
			}
		}
		for _, cc := range []string{"", "cc-default", "cc-own"} {
			check("Dashboard "+org+" "+cc, func(p *Projection) any { return answer(p.Dashboard(org, cc, from, to)) })
		}
		for m := from; m <= to; m++ {
			for _, kind := range []LineKind{InterCustomerAdjustment, IntraOrgAdjustment} {
				check("Adjustments "+org+" "+m.String(), func(p *Projection) any { return answer(p.Adjustments(org, m, kind)) })
			}
		}
	}
}

type answered struct {
	Value any
	Err   string
}

func answer[T any](v T, err error) answered {
	a := answered{Value: v}
	if err != nil {
		a.Err = fmt.Sprintf("%T %v", err, err)
	}
	return a
}

// render writes a value in full, decimals as their text (so "1.0" and
// "1.00" differ, as they would on the wire) and instants in RFC 3339: a
// deep comparison that does not depend on how apd keeps a coefficient.
func render(v any) string {
	var b strings.Builder
	renderValue(&b, reflect.ValueOf(v))
	return b.String()
}

var (
	decimalType = reflect.TypeFor[apd.Decimal]()
	timeType    = reflect.TypeFor[time.Time]()
)

func renderValue(b *strings.Builder, v reflect.Value) {
	if !v.IsValid() {
		b.WriteString("<nil>")
		return
	}
	switch v.Type() {
	case decimalType:
		d := v.Interface().(apd.Decimal)
		fmt.Fprintf(b, "dec(%s)", d.String())
		return
	case timeType:
		b.WriteString(v.Interface().(time.Time).Format(time.RFC3339Nano))
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteString("&")
		renderValue(b, v.Elem())
	case reflect.Struct:
		b.WriteString(v.Type().Name() + "{")
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				// money.Currency: its code is its String.
				if s, ok := v.Interface().(fmt.Stringer); ok {
					b.WriteString(s.String())
					break
				}
				continue
			}
			b.WriteString(f.Name + ":")
			renderValue(b, v.Field(i))
			b.WriteString(" ")
		}
		b.WriteString("}")
	case reflect.Slice:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteString("[")
		for i := range v.Len() {
			renderValue(b, v.Index(i))
			b.WriteString(",")
		}
		b.WriteString("]")
	case reflect.Map:
		b.WriteString(fmt.Sprint(v.Interface())) // none in the answers but errors' fields
	default:
		fmt.Fprintf(b, "%v", v.Interface())
	}
}

// TestSnapshotCorrupt: a snapshot damaged anywhere, or cut short, is an
// error, never a panic nor a projection; another version is
// ErrSnapshotVersion.
func TestSnapshotCorrupt(t *testing.T) {
	p := New()
	fold(t, p, snapshotHistory(t, 7), 0)
	snap := snapshotBytes(t, p)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 100 {
		bad := slices.Clone(snap)
		switch rng.IntN(3) {
		case 0:
			bad = bad[:rng.IntN(len(bad))]
		default:
			i := rng.IntN(len(bad))
			bad[i] ^= byte(1 + rng.IntN(255))
		}
		// A flipped byte in a decimal or a string may still decode: the
		// file's checksum (services/snapshot) catches those. What must
		// never happen is a panic or a huge allocation.
		q, err := ReadSnapshot(bytes.NewReader(bad))
		if err == nil && q == nil {
			t.Fatal("no projection and no error")
		}
	}
	if _, err := ReadSnapshot(bytes.NewReader(snap[:len(snap)-1])); !errors.Is(err, snapcodec.ErrCorrupt) {
		t.Fatalf("a snapshot cut short: %v, want ErrCorrupt", err)
	}
	var b bytes.Buffer
	e := snapcodec.NewEncoder(&b)
	e.Mark("billing")
	e.Uvarint(SnapshotVersion + 1)
	_ = e.Flush()
	if _, err := ReadSnapshot(&b); !errors.Is(err, ErrSnapshotVersion) {
		t.Fatalf("another version: %v, want ErrSnapshotVersion", err)
	}
}

// FuzzReadSnapshot: whatever the bytes, ReadSnapshot returns a projection
// or an error; it neither panics nor allocates beyond what the bytes can
// describe. (Damaged files never reach it in ledgerd: services/snapshot
// checks their checksum first. This is its defence in depth.) A
// projection it returns can be snapshotted again, or says why not.
func FuzzReadSnapshot(f *testing.F) {
	l := newLedger(f)
	l.apply(org("o1", "BAN-1", "USD"))
	l.apply(costCenter("o1", "cc", "BAN-2", ""))
	l.apply(workspace("o1", "ws", "cc", ""))
	l.apply(provider("o1", "p1", "ws", "AWS", "1", ""))
	l.apply(usage(rec("AWS", "1", "Amazon EC2", "us-east-1", "2018-01-02T00:00:00Z", "1.25", "USD"),
		rec("AWS", "2", "Amazon EC2", "", "2018-01-02T00:00:00Z", "3.5", "USD")))
	l.apply(purchase("ri-1", "AWS", "1", "Amazon EC2", ""))
	l.apply(benefits("2018-01", riBenefit("ri-1", "2", "0.5", "USD")))
	l.apply(reconciliation("AWS", "2018-01", reconLine("1", "Amazon EC2", "2.00", "USD")))
	l.apply(closeCycle("2018-01", "2018-02-01T00:00:00Z"))
	f.Add(snapshotBytes(f, l.p))
	f.Add(snapshotBytes(f, New()))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			return
		}
		_ = p.WriteSnapshot(io.Discard) // an inconsistent state is an error, not a panic
	})
}
