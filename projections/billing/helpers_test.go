package billing

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/testkit"
)

// ledger feeds a projection events at increasing positions, the way the
// runner does, and keeps the history for replays.
type ledger struct {
	t       testing.TB
	p       *Projection
	pos     uint64
	n       int
	history []proto.Message
	issued  map[calendar.Month][]*Invoice
}

func newLedger(t testing.TB) *ledger {
	return &ledger{t: t, p: New(), issued: make(map[calendar.Month][]*Invoice)}
}

// apply folds an event, giving it an event_id if it has none; any error
// fails the test.
func (l *ledger) apply(msg proto.Message) Applied {
	l.t.Helper()
	a, err := l.try(msg)
	if err != nil {
		l.t.Fatalf("apply %T: %v", msg, err)
	}
	return a
}

func (l *ledger) try(msg proto.Message) (Applied, error) {
	l.n++
	setEventID(msg, fmt.Sprintf("ev-%04d", l.n))
	l.pos += 10
	l.history = append(l.history, msg)
	a, err := l.p.Apply(l.pos, msg)
	for _, inv := range a.Issued {
		l.issued[inv.Month] = append(l.issued[inv.Month], inv)
	}
	return a, err
}

func setEventID(msg proto.Message, id string) {
	f := msg.ProtoReflect().Descriptor().Fields().ByName("event_id")
	if msg.ProtoReflect().Get(f).String() == "" {
		msg.ProtoReflect().Set(f, protoreflectString(id))
	}
}

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

func month(s string) calendar.Month {
	m, err := calendar.Parse(s)
	if err != nil {
		panic(err)
	}
	return m
}

func org(id, ban, currency string) *billingv1.OrganizationRegistered {
	return &billingv1.OrganizationRegistered{OrgId: id, Name: id, Ban: ban, Currency: currency}
}

func costCenter(orgID, id, ban, effective string) *billingv1.CostCenterCreated {
	m := &billingv1.CostCenterCreated{OrgId: orgID, CostCenterId: id, Name: id, Ban: ban}
	if effective != "" {
		m.EffectiveAt = ts(effective)
	}
	return m
}

func workspace(orgID, id, cc, effective string) *billingv1.WorkspaceCreated {
	m := &billingv1.WorkspaceCreated{OrgId: orgID, WorkspaceId: id, CostCenterId: cc, Name: id}
	if effective != "" {
		m.EffectiveAt = ts(effective)
	}
	return m
}

func provider(orgID, id, ws, vendor, account, effective string) *billingv1.ProviderRegistered {
	m := &billingv1.ProviderRegistered{OrgId: orgID, ProviderId: id, WorkspaceId: ws, Vendor: vendor, AccountId: account, Name: id, Alias: strings.ToLower(id)}
	if effective != "" {
		m.EffectiveAt = ts(effective)
	}
	return m
}

func rec(vendor, account, service, region, start, amount, currency string) *billingv1.UsageRecord {
	return &billingv1.UsageRecord{
		Vendor: vendor, AccountId: account, Service: service, Region: region, ChargeCategory: "Usage",
		ChargePeriodStart: ts(start), ChargePeriodEnd: ts(start), Cost: &billingv1.Money{Amount: amount, Currency: currency},
	}
}

func usage(records ...*billingv1.UsageRecord) *billingv1.UsageReported {
	for i, r := range records {
		if r.RecordId == "" {
			r.RecordId = fmt.Sprintf("r%d", i)
		}
	}
	return &billingv1.UsageReported{Records: records}
}

func purchase(ri, vendor, account, service, region string) *billingv1.ReservedInstancePurchased {
	return &billingv1.ReservedInstancePurchased{RiId: ri, Vendor: vendor, AccountId: account, Service: service, Region: region}
}

func benefits(m string, bs ...*billingv1.ReservedInstanceBenefit) *billingv1.ReservedInstanceBenefitReported {
	return &billingv1.ReservedInstanceBenefitReported{Month: m, Benefits: bs}
}

func riBenefit(ri, consumer, amount, currency string) *billingv1.ReservedInstanceBenefit {
	return &billingv1.ReservedInstanceBenefit{RiId: ri, ConsumerAccountId: consumer, Amount: &billingv1.Money{Amount: amount, Currency: currency}}
}

func reconciliation(vendor, m string, lines ...*billingv1.ReconciliationLine) *billingv1.VendorReconciliationCompleted {
	return &billingv1.VendorReconciliationCompleted{Vendor: vendor, Month: m, Lines: lines}
}

func reconLine(account, service, amount, currency string) *billingv1.ReconciliationLine {
	return &billingv1.ReconciliationLine{AccountId: account, Service: service, VendorCost: &billingv1.Money{Amount: amount, Currency: currency}}
}

func closeCycle(m, at string) *billingv1.BillingCycleClosed {
	return &billingv1.BillingCycleClosed{Month: m, ClosedAt: ts(at)}
}

func finalize(m, at string) *billingv1.VendorCycleFinalized {
	return &billingv1.VendorCycleFinalized{Month: m, FinalizedAt: ts(at)}
}

func (l *ledger) invoice(ban, m string) *Invoice {
	l.t.Helper()
	inv, err := l.p.Invoice(ban, month(m))
	if err != nil {
		l.t.Fatalf("Invoice(%s, %s): %v", ban, m, err)
	}
	return inv
}

// text renders a document for golden files and failure messages.
func text(inv *Invoice) string {
	var b strings.Builder
	view := "invoice"
	if inv.View == VendorCycle {
		view = "vendor view"
	}
	fmt.Fprintf(&b, "%s %s %s org=%s %s %s position=%d", view, inv.BAN, inv.Month, inv.OrgID, inv.Status, inv.Currency, inv.Position)
	if !inv.IssuedAt.IsZero() {
		fmt.Fprintf(&b, " issued_at=%s", inv.IssuedAt.Format(time.RFC3339))
	}
	b.WriteString("\n")
	for _, l := range inv.Lines {
		fmt.Fprintf(&b, "  %-26s %s %s provider=%q alias=%q cost_center=%q for=%s service=%q %q %s\n",
			l.Kind, l.Vendor, l.AccountID, l.ProviderName, l.Alias, l.CostCenterID, l.ForMonth, l.Service, l.Description, money.Format(&l.Amount, inv.Currency))
		for _, d := range l.Details {
			fmt.Fprintf(&b, "      %s / %q %s %s events=%s\n", d.Service, d.Region, d.Description, money.Format(&d.Amount, inv.Currency), strings.Join(d.EventIDs, ","))
		}
	}
	fmt.Fprintf(&b, "  total %s\n", money.Format(&inv.Total, inv.Currency))
	return b.String()
}

// golden compares a rendering with its file in testdata/ (-update
// rewrites it), through the test kit every package shares.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testkit.Golden(t, name, []byte(got))
}

func amt(t testing.TB, s string) *apd.Decimal {
	t.Helper()
	var d apd.Decimal
	if err := money.ParseDecimal(&d, s); err != nil {
		t.Fatal(err)
	}
	return &d
}

// wantAmount fails unless got equals want (compared with Cmp).
func wantAmount(t testing.TB, what string, got *apd.Decimal, want string) {
	t.Helper()
	if got.Cmp(amt(t, want)) != 0 {
		t.Fatalf("%s = %s, want %s", what, got.Text('f'), want)
	}
}

// lineAmount finds the one line of a kind, account (and for update lines
// month and service) and returns its amount, or fails.
func lineAmount(t testing.TB, inv *Invoice, kind LineKind, account string, forMonth string, service string) *apd.Decimal {
	t.Helper()
	var found *apd.Decimal
	for i := range inv.Lines {
		l := &inv.Lines[i]
		if l.Kind == kind && l.AccountID == account && (forMonth == "" || l.ForMonth.String() == forMonth) && (service == "" || l.Service == service) {
			if found != nil {
				t.Fatalf("two %s lines for %s in\n%s", kind, account, text(inv))
			}
			found = &l.Amount
		}
	}
	if found == nil {
		t.Fatalf("no %s line for %s %s %s in\n%s", kind, account, forMonth, service, text(inv))
	}
	return found
}

func noLine(t testing.TB, inv *Invoice, kind LineKind, account string) {
	t.Helper()
	for _, l := range inv.Lines {
		if l.Kind == kind && l.AccountID == account {
			t.Fatalf("unexpected %s line for %s in\n%s", kind, account, text(inv))
		}
	}
}

// bill returns V(M, p) of an organization at the current position: the
// month's own lines (charges and adjustments) across all its BANs, as if the
// month were billed now. It is the quantity conservation is stated in.
func (p *Projection) bill(org string, m calendar.Month) ([]Line, error) {
	if _, err := p.h.Organization(org); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownOrganization, org)
	}
	om := p.orgMonthOf(org, m)
	if om == nil {
		return nil, nil
	}
	lines := p.lines(om, p.value(om), nil, 0)
	slices.SortStableFunc(lines, func(a, b Line) int { return lineCmp(&a, &b) })
	return lines, nil
}

// orgIDs returns the ids of the registered organizations, in the order
// they were registered: each has its state from its registration on.
func (p *Projection) orgIDs() []string {
	ids := make([]string, len(p.orgs))
	for i, o := range p.orgs {
		ids[i] = o.id
	}
	return ids
}

func protoreflectString(s string) protoreflect.Value { return protoreflect.ValueOfString(s) }
