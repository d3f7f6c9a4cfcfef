package billing

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Projection is the billing fold. The zero value is not usable; call New.
//
// It is not safe for concurrent use. Apply mutates; the query methods only
// read, so a caller may guard it with a sync.RWMutex: Apply under the write
// lock, queries under the read lock.
//
// WriteSnapshot and ReadSnapshot (snapshot.go) save and restore its state:
// a field added here, or to any type it holds, is added to the encode and
// decode methods beside that type, and SnapshotVersion bumped.
type Projection struct {
	h       hierarchy.Hierarchy
	pos     uint64
	started bool

	// The parts that own their invariants (see their types): what the
	// fold interns, the exceptions, the adjustments and the cycles.
	ids         interner
	exceptions  exceptions
	adjustments adjustments
	cycles      cycles

	// What the fold owns itself (usage.go): the attribution of each
	// account's charges, the cells of exact sums, and the
	// organization-months that bills are computed from.
	accounts      []accountState           // by account index
	providerAccts map[providerKey][]uint32 // every account a provider id was registered for

	targets   []target
	targetIdx map[hierarchy.Attribution]uint32

	orgs      []*orgState
	orgIdx    map[string]uint32
	banOrgs   map[string][]uint32 // BAN -> organizations whose charges it bills
	orgMonths map[orgMonthKey]*orgMonth
	monthOrgs map[calendar.Month][]*orgMonth
	dirty     []*orgMonth

	cells   cellStore
	cellIdx map[cellKey]uint32

	// What the history says was issued (issued.go), for the auditors,
	// and how this projection checks it.
	issued   []IssuedRecord
	recorded map[issuedKey][]uint64 // the through positions recorded, per document
	digester Digester

	// Scratch values of the hot path, reused so that folding a record does
	// not allocate. Not state: snapshots leave them out.
	amount     apd.Decimal
	monthCache struct {
		from, until int64
		month       calendar.Month
	}
}

// New returns an empty projection, at position 0.
func New() *Projection {
	return &Projection{
		ids:           newInterner(),
		exceptions:    newExceptions(),
		adjustments:   newAdjustments(),
		cycles:        newCycles(),
		providerAccts: make(map[providerKey][]uint32),
		targetIdx:     make(map[hierarchy.Attribution]uint32),
		orgIdx:        make(map[string]uint32),
		banOrgs:       make(map[string][]uint32),
		orgMonths:     make(map[orgMonthKey]*orgMonth),
		monthOrgs:     make(map[calendar.Month][]*orgMonth),
		cellIdx:       make(map[cellKey]uint32),
	}
}

// Applied is what an event changed that the caller must act on: the
// invoices a BillingCycleClosed issued (one per BAN known at the close,
// sorted by BAN; the daemon publishes an InvoiceIssued for each), and the
// vendor views a VendorCycleFinalized froze.
type Applied struct {
	Issued    []*Invoice
	Finalized []*Invoice
}

type providerKey struct{ org, id string }

// Position returns the $all position of the last applied event: every
// answer reflects the history up to and including it.
func (p *Projection) Position() uint64 { return p.pos }

// Apply folds one event, at $all position pos, into the projection. Events
// must come in log order: a position at or before the current one is
// ErrStalePosition and changes nothing. Any other error means the event
// was refused as a whole (a duplicate event_id, an invalid field, a cycle
// out of order): the projection moves to pos and is otherwise unchanged, so
// that a replay refuses the same events. Invalid usage records inside a
// valid UsageReported are not errors: they are kept as exceptions.
func (p *Projection) Apply(pos uint64, msg proto.Message) (Applied, error) {
	if p.started && pos <= p.pos {
		return Applied{}, fmt.Errorf("%w: %d, at %d", ErrStalePosition, pos, p.pos)
	}
	p.pos, p.started = pos, true
	// The audit's events carry no event_id: they are ledgerd's own
	// records, named by their streams (README, "Auditing").
	switch m := msg.(type) {
	case *billingv1.LogSealed:
		return Applied{}, nil // the chain is the auditors' (services/audit), not the bill's
	case *billingv1.DocumentIssued:
		return Applied{}, p.applyIssued(pos, m)
	}
	eventID, err := EventID(msg)
	if err != nil {
		return Applied{}, err
	}
	if eventID == "" {
		return Applied{}, fmt.Errorf("%w: event_id is empty", ErrInvalidEvent)
	}
	if p.ids.hasEvent(eventID) {
		return Applied{}, fmt.Errorf("%w: %q", ErrDuplicateEvent, eventID)
	}
	switch m := msg.(type) {
	case *billingv1.UsageReported:
		p.applyUsage(p.ids.event(eventID), m)
	case *billingv1.OrganizationRegistered:
		err = p.applyOrganization(m)
	case *billingv1.CostCenterCreated:
		err = p.h.AddCostCenter(hierarchy.CostCenter{OrgID: m.OrgId, ID: m.CostCenterId, Name: m.Name, BAN: m.Ban, Effective: effective(m.EffectiveAt)})
		if err == nil {
			p.reattribute(m.OrgId, effective(m.EffectiveAt), nil)
		}
	case *billingv1.WorkspaceCreated:
		err = p.h.AddWorkspace(hierarchy.Workspace{OrgID: m.OrgId, ID: m.WorkspaceId, CostCenterID: m.CostCenterId, Name: m.Name, Effective: effective(m.EffectiveAt)})
		if err == nil {
			p.reattribute(m.OrgId, effective(m.EffectiveAt), nil)
		}
	case *billingv1.ProviderRegistered:
		err = p.applyProvider(m)
	case *billingv1.ReservedInstancePurchased:
		err = p.applyPurchase(eventID, m)
	case *billingv1.ReservedInstanceBenefitReported:
		err = p.applyBenefits(eventID, m)
	case *billingv1.VendorReconciliationCompleted:
		err = p.applyReconciliation(eventID, m)
	case *billingv1.BillingCycleClosed:
		var issued []*Invoice
		issued, err = p.applyClose(pos, m)
		if err == nil {
			p.ids.event(eventID)
		}
		return Applied{Issued: issued}, err
	case *billingv1.VendorCycleFinalized:
		var views []*Invoice
		views, err = p.applyFinalize(pos, m)
		if err == nil {
			p.ids.event(eventID)
		}
		return Applied{Finalized: views}, err
	default:
		return Applied{}, fmt.Errorf("%w: %s", ErrUnknownEvent, msg.ProtoReflect().Descriptor().FullName())
	}
	if err != nil {
		return Applied{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	p.ids.event(eventID) // no-op for the kinds that interned already
	return Applied{}, nil
}

type eventIDer interface{ GetEventId() string }

// EventID returns the event_id of a message of the catalogue, the
// idempotency key every message carries; ErrUnknownEvent for any other.
func EventID(msg proto.Message) (string, error) {
	if msg == nil {
		return "", fmt.Errorf("%w: nil message", ErrUnknownEvent)
	}
	m, ok := msg.(eventIDer)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownEvent, msg.ProtoReflect().Descriptor().FullName())
	}
	return m.GetEventId(), nil
}

// effective converts an effective_at; absent is the beginning.
func effective(ts *timestamppb.Timestamp) int64 {
	if ts == nil {
		return hierarchy.Beginning
	}
	return instant(ts)
}

// instant converts a timestamp to Unix nanoseconds, clamped to the years
// 1678 to 2262 that int64 nanoseconds can hold.
func instant(ts *timestamppb.Timestamp) int64 {
	const maxSeconds = math.MaxInt64/1_000_000_000 - 1
	s := ts.GetSeconds()
	switch {
	case s > maxSeconds:
		return math.MaxInt64 - 1
	case s < -maxSeconds:
		return math.MinInt64 + 1
	}
	return s*1e9 + int64(ts.GetNanos())
}

// monthOf returns the UTC month of an instant, remembering the last month
// so that a run of records of one month costs two comparisons.
func (p *Projection) monthOf(t int64) calendar.Month {
	c := &p.monthCache
	if c.from <= t && t < c.until {
		return c.month
	}
	m := calendar.Of(time.Unix(0, t))
	c.month, c.from, c.until = m, m.Start().UnixNano(), m.End().UnixNano()
	return m
}

// monthEnd is the instant at which monthly items (reconciliations, RI
// benefits) of m are attributed: its last nanosecond.
func monthEnd(m calendar.Month) int64 { return m.End().UnixNano() - 1 }

func (p *Projection) applyOrganization(m *billingv1.OrganizationRegistered) error {
	cur, err := money.ParseCurrency(m.Currency)
	if err != nil {
		return fmt.Errorf("currency: %w", err)
	}
	added, err := p.h.RegisterOrganization(hierarchy.Organization{ID: m.OrgId, Name: m.Name, BAN: m.Ban, Currency: cur})
	if err != nil || !added {
		return err
	}
	p.org(m.OrgId)
	// Any waiting charge of a provider of this organization can now go.
	p.retryPending(nil)
	return nil
}

func (p *Projection) applyProvider(m *billingv1.ProviderRegistered) error {
	err := p.h.AddProvider(hierarchy.Provider{
		OrgID: m.OrgId, ID: m.ProviderId, WorkspaceID: m.WorkspaceId, Vendor: m.Vendor,
		AccountID: m.AccountId, Name: m.Name, Alias: m.Alias, Effective: effective(m.EffectiveAt),
	})
	if err != nil {
		return err
	}
	a := p.account(m.Vendor, m.AccountId)
	k := providerKey{m.OrgId, m.ProviderId}
	if !slices.Contains(p.providerAccts[k], a) {
		p.providerAccts[k] = append(p.providerAccts[k], a)
	}
	p.reattribute(m.OrgId, effective(m.EffectiveAt), p.providerAccts[k])
	for _, a := range p.providerAccts[k] {
		p.retryMismatched(a)
	}
	p.retryPending(&a)
	return nil
}

// retryPending attributes what waits for the hierarchy: the unassigned
// charges of one account (all accounts if nil), and all unresolved
// reconciliations and RI benefits, which are few.
func (p *Projection) retryPending(acct *uint32) {
	if acct != nil {
		p.retryUnassigned(*acct)
	} else {
		for _, a := range p.exceptions.unassigned.accountsWaiting() {
			p.retryUnassigned(a)
		}
	}
	recons, benefits := p.adjustments.takeUnresolved()
	for _, r := range recons {
		p.placeRecon(r)
	}
	for _, b := range benefits {
		p.placeBenefit(b)
	}
}
