package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/document"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/ingest"
	"github.com/ledger-billing/ledger/services/wire"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Keys are the public keys ledgerd signed with; required.
	Keys Keys
	// Progress, if set, is called about once a second with how far the
	// verification has read.
	Progress func(Progress)
}

// Progress is how far a verification has read.
type Progress struct {
	Events   uint64 // events read from $all
	Position uint64 // $all position of the last
}

// Fault is one thing a verification found wrong, at the first event or
// document where it shows.
type Fault struct {
	Position uint64 // $all position of the event at fault (0 for a document)
	Stream   string
	EventID  string
	Problem  string
}

func (f Fault) String() string {
	switch {
	case f.Stream == "":
		return f.Problem
	case f.EventID == "":
		return fmt.Sprintf("%s (stream %s, position %d)", f.Problem, f.Stream, f.Position)
	}
	return fmt.Sprintf("%s (stream %s, event %s, position %d)", f.Problem, f.Stream, f.EventID, f.Position)
}

// Report is what a verification checked and found.
type Report struct {
	Events     uint64 // events read from $all, system streams included
	Signed     uint64 // signatures checked
	Chained    uint64 // links of the chain
	Seals      uint64 // seals checked
	Unsealed   uint64 // chained events after the last seal: covered by signatures alone
	Documents  uint64 // DocumentIssued digests checked
	Refused    uint64 // events the rules refused, as ledgerd's did (duplicates, a close out of order)
	Unrecorded uint64 // issued documents without a DocumentIssued yet (a ledgerd stopped before recording)
	Position   uint64 // the $all position verified through
	// Faults, the first at fault first; at most faultsMax are kept, and
	// FaultCount counts them all.
	Faults     []Fault
	FaultCount uint64
}

// OK reports whether the history passed.
func (r *Report) OK() bool { return r.FaultCount == 0 }

const faultsMax = 100

func (r *Report) fault(f Fault) {
	r.FaultCount++
	if len(r.Faults) < faultsMax {
		r.Faults = append(r.Faults, f)
	}
}

// Verify reads the whole history through log and checks it (README,
// "Auditing"): every event outside the store's own streams is signed by
// one of opts.Keys and neither a tombstone nor stream metadata; the chain
// over the billing events matches every seal; every billing event decodes,
// every input validates as ingestion validates it, and the whole history
// replays through a fresh projection without breaking an invariant; every
// DocumentIssued's digest is the one of the document the replay yields.
// An error is returned only if the history could not be read; what is
// wrong with it is in the Report.
func Verify(ctx context.Context, log *eventlog.Log, opts VerifyOptions) (*Report, error) {
	if len(opts.Keys) == 0 {
		return nil, errors.New("audit: verify needs the public key ledgerd signs with")
	}
	rep := &Report{}
	seals, err := readSeals(ctx, log, rep)
	if err != nil {
		return nil, err
	}
	p := billing.New()
	p.CheckDigests(document.DigestOf)
	var chain Chain
	var lastSealed uint64
	var link []byte
	f := newFolder(p)
	lastProgress := time.Now()
	_, err = log.ReadAll(ctx, func(ev eventlog.Recorded) error {
		rep.Events++
		rep.Position = ev.Position
		if opts.Progress != nil && time.Since(lastProgress) >= time.Second {
			lastProgress = time.Now()
			opts.Progress(Progress{Events: rep.Events, Position: ev.Position})
		}
		at := func(format string, args ...any) Fault {
			return Fault{Position: ev.Position, Stream: ev.Stream, EventID: ev.ID.String(), Problem: fmt.Sprintf(format, args...)}
		}
		switch {
		case strings.HasPrefix(ev.Stream, "$$"):
			rep.fault(at("metadata was set on stream %s (ledgerd sets none; $maxAge, $tb or $acl could hide or remove events)", strings.TrimPrefix(ev.Stream, "$$")))
			return nil
		case strings.HasPrefix(ev.Stream, "$"):
			return nil // the store's own streams
		case ev.Type == "$streamDeleted":
			rep.fault(at("stream %s was tombstoned: ledgerd deletes no stream, so its events are gone from the history", ev.Stream))
			return nil
		}
		rep.Signed++
		link = Link(link[:0], ev.Stream, ev.ID, ev.Type, ev.Data)
		if err := opts.Keys.CheckLink(link, ev.Metadata); err != nil {
			rep.fault(at("event of type %s was not written by ledgerd: %v", ev.Type, err))
		}
		if !strings.HasPrefix(ev.Type, billing.EventTypePrefix) {
			return nil // ledgerd's other records (announcements)
		}
		if Chained(ev.Type) {
			chain.AddLink(link, ev.Position)
			rep.Chained++
			if s, ok := seals[chain.events]; ok {
				delete(seals, chain.events)
				rep.Seals++
				lastSealed = chain.events
				if st := chain.State(); st.Value != s.Chain {
					rep.fault(at("the chain through this event is %s, but the seal of %d events (position %d) records %s: an event up to here was changed, removed or inserted",
						st.Value, s.Events, s.ThroughPosition, s.Chain))
				}
			}
		}
		msg, err := billing.Decode(ev.Type, ev.Data)
		if err != nil {
			rep.fault(at("event does not decode: %v", err))
			return nil
		}
		if _, input := wire.InputFor(msg); input {
			if err := ingest.Validate(msg); err != nil {
				rep.fault(at("event is not valid input: %v", err))
			}
		}
		f.send(ev, msg)
		return nil
	})
	broken, refused := f.wait()
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	rep.Refused = refused
	if broken != nil {
		rep.fault(Fault{Position: broken.pos, Stream: broken.stream, EventID: broken.id,
			Problem: "the replay breaks an invariant of the billing rules here, as ledgerd's would: " + broken.cause})
	}
	rep.Unsealed = rep.Chained - lastSealed
	for n, s := range seals {
		rep.fault(Fault{Problem: fmt.Sprintf("the seal of %d events (through position %d) covers more billing events than the history holds (%d): events were removed", n, s.ThroughPosition, rep.Chained)})
	}
	for _, r := range p.Issued() {
		rep.Documents++
		if r.Mismatch() {
			problem := r.Problem
			if problem == "" {
				problem = fmt.Sprintf("records digest %s, but the history yields %s", r.Digest, r.Computed)
			}
			rep.fault(Fault{Position: r.Position, Stream: IssuedStream(r.View, r.BAN, r.Month.String()),
				Problem: fmt.Sprintf("DocumentIssued of the %s document of %s for %s %s", billing.ViewNames[r.View], r.BAN, r.Month, problem)})
		}
	}
	rep.Unrecorded = uint64(len(p.Unrecorded(1 << 30)))
	// The fold ran beside the reading: its faults came in late.
	slices.SortStableFunc(rep.Faults, func(a, b Fault) int { return cmp.Compare(a.Position, b.Position) })
	return rep, nil
}

// folder applies events to a projection on a goroutine of its own, in the
// order sent, so that a verification or a replay reads, checks and decodes
// the next events while the fold applies the ones before, as the runner
// does: on a machine of two cores, the two halves take about as long.
type folder struct {
	p       *billing.Projection
	events  chan folded
	done    chan struct{}
	broken  *brokenRule // the first event that broke an invariant; nothing applied after it
	refused uint64
}

type folded struct {
	pos        uint64
	stream, id string
	msg        proto.Message
}

func newFolder(p *billing.Projection) *folder {
	f := &folder{p: p, events: make(chan folded, 64), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for e := range f.events {
			if f.broken != nil {
				continue
			}
			if err := apply(f.p, e.pos, e.msg); err != nil {
				var broken *brokenRule
				switch {
				case errors.As(err, &broken):
					broken.pos, broken.stream, broken.id = e.pos, e.stream, e.id
					f.broken = broken
				case !errors.Is(err, billing.ErrStalePosition):
					f.refused++ // as ledgerd refused it: a duplicate, a close out of order
				}
			}
		}
	}()
	return f
}

func (f *folder) send(ev eventlog.Recorded, msg proto.Message) {
	f.events <- folded{pos: ev.Position, stream: ev.Stream, id: ev.ID.String(), msg: msg}
}

// wait waits until every event sent is applied.
func (f *folder) wait() (*brokenRule, uint64) {
	close(f.events)
	<-f.done
	return f.broken, f.refused
}

// readSeals reads stream "seal": the seals by the number of events each
// covers. A seal that does not decode, or covers fewer events than the one
// before, is a fault.
func readSeals(ctx context.Context, log *eventlog.Log, rep *Report) (map[uint64]*billingv1.LogSealed, error) {
	seals := map[uint64]*billingv1.LogSealed{}
	var prev uint64
	err := log.ReadStream(ctx, SealStream, func(ev eventlog.Recorded) error {
		m, err := billing.Decode(ev.Type, ev.Data)
		s, ok := m.(*billingv1.LogSealed)
		if err != nil || !ok {
			rep.fault(Fault{Position: ev.Position, Stream: ev.Stream, EventID: ev.ID.String(), Problem: fmt.Sprintf("an event of type %s in the seal stream", ev.Type)})
			return nil
		}
		if s.Events <= prev {
			rep.fault(Fault{Position: ev.Position, Stream: ev.Stream, EventID: ev.ID.String(), Problem: fmt.Sprintf("a seal of %d events after one of %d", s.Events, prev)})
		}
		prev = s.Events
		seals[s.Events] = s
		return nil
	})
	if errors.Is(err, eventlog.ErrStreamNotFound) {
		return seals, nil
	}
	return seals, err
}

// brokenRule is a panic of the fold during a replay, and the event that
// caused it.
type brokenRule struct {
	cause      string
	pos        uint64
	stream, id string
}

func (b *brokenRule) Error() string { return b.cause }

// apply is Apply with a panic (a broken invariant) returned as an error,
// as the runner reports one.
func apply(p *billing.Projection, pos uint64, msg proto.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &brokenRule{cause: fmt.Sprint(r)}
		}
	}()
	_, err = p.Apply(pos, msg)
	return err
}

// errThrough ends a replay's read at its position.
var errThrough = errors.New("audit: through the position")

// Replay folds the billing events of the history through position through
// into a fresh projection: the documents as they were known then.
// Signatures and seals are Verify's business, not checked here.
func Replay(ctx context.Context, log *eventlog.Log, through uint64, progress func(Progress)) (*billing.Projection, error) {
	p := billing.New()
	p.CheckDigests(document.DigestOf)
	f := newFolder(p)
	var n uint64
	last := time.Now()
	_, err := log.ReadAll(ctx, func(ev eventlog.Recorded) error {
		if ev.Position > through {
			return errThrough
		}
		n++
		if progress != nil && time.Since(last) >= time.Second {
			last = time.Now()
			progress(Progress{Events: n, Position: ev.Position})
		}
		if !strings.HasPrefix(ev.Type, billing.EventTypePrefix) || strings.HasPrefix(ev.Stream, "$") {
			return nil
		}
		msg, err := billing.Decode(ev.Type, ev.Data)
		if err != nil {
			return nil // as the runner: stored, but no rule can use it
		}
		f.send(ev, msg)
		return nil
	})
	broken, _ := f.wait()
	if err != nil && !errors.Is(err, errThrough) {
		return nil, err
	}
	if broken != nil {
		return nil, fmt.Errorf("audit: the event at position %d (stream %s) breaks an invariant of the billing rules: %s", broken.pos, broken.stream, broken.cause)
	}
	return p, nil
}
