package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/document"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/access"
)

// Bounds of the waits for min_position. waitMax caps each, whatever the
// call's deadline: a client that forgot one, or set a day, must not hold a
// goroutine and a stream for as long as the position takes, which for a
// position from another cluster or a typo is forever. waitersMax caps how
// many wait at once; the next call is RESOURCE_EXHAUSTED at once, so a
// flood of waiting calls costs its sender, not the server's memory.
const (
	waitMax    = 60 * time.Second
	waitersMax = 10_000
)

// Projections is what the service reads: the billing projection behind a
// lock, and where it stands in the log. services/runner's Runner is the one
// implementation; the service declares only what it uses.
type Projections interface {
	// Read calls fn with the projection under a read lock and returns the
	// position fn's answers reflect.
	Read(fn func(p *billing.Projection) error) (uint64, error)
	// WaitFor returns once the projection has caught up with the log and
	// passed pos, or with ctx's error.
	WaitFor(ctx context.Context, pos uint64) error
	// Progress reports the position reached and whether the projection has
	// caught up with the live end of the log.
	Progress() (pos uint64, caughtUp bool)
}

// Service is billing.v1.BillingService over a projection. Register it with
// billingv1.RegisterBillingServiceServer, or use NewServer.
type Service struct {
	billingv1.UnimplementedBillingServiceServer

	runner  Projections
	logger  *slog.Logger
	waitMax time.Duration
	waiters chan struct{} // one per call waiting for its min_position
	// frozen holds the converted and encoded issued documents; see
	// frozenCache.
	frozen *frozenCache
}

// New returns the service answering from r, which the caller runs. A nil
// logger discards.
func New(r Projections, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{runner: r, logger: logger, waitMax: waitMax, waiters: make(chan struct{}, waitersMax), frozen: newFrozenCache(cacheBytesMax)}
}

// request is what every request of the service has.
type request interface {
	protoreflect.ProtoMessage
	GetMinPosition() uint64
}

// read is the one path of every call: a request that failed validation
// (invalid not nil; handlers keep the first field at fault with cmp.Or, so
// a message names one field, in field order) is answered at once; else read waits until the
// projections have passed the request's min_position, calls fn under the
// read lock, and returns the position fn's answer reflects. Any error comes
// back as the status the client gets.
func (s *Service) read(ctx context.Context, req request, invalid error, fn func(*billing.Projection) error) (uint64, error) {
	if invalid != nil {
		return 0, s.status(req, invalid)
	}
	if err := s.wait(ctx, req.GetMinPosition()); err != nil {
		return 0, s.status(req, err)
	}
	pos, err := s.readRecovering(fn)
	if err != nil {
		return 0, s.status(req, err)
	}
	return pos, nil
}

// readRecovering is runner.Read, with a panic of the rules (a broken
// invariant: billing.InvariantError) turned into an error for this call
// alone, which the status table answers INTERNAL and logs: one document
// that does not foot must not take the service down for every caller.
func (s *Service) readRecovering(fn func(*billing.Projection) error) (pos uint64, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("query: the billing rules panicked answering a call", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("query: %v", p)
		}
	}()
	return s.runner.Read(fn)
}

// wait returns once the runner has caught up with the log and passed
// minPos, within the call's deadline and at most waitMax. It waits
// for the catch-up even for minPos 0: an answer from part of the history
// could be a draft of an invoice already issued, and a wrong invoice is
// worse than a late one.
//
// When time runs out the code is DEADLINE_EXCEEDED, the code the client's
// own deadline gives, so a client sees one code whichever side gave up
// first; gRPC's retry policies do not retry it blindly, which suits a
// position that may never come (another cluster's, a typo). Before the
// catch-up it is UNAVAILABLE instead: that replica is starting, and another
// one, or the same one shortly, will answer.
func (s *Service) wait(ctx context.Context, minPos uint64) error {
	if pos, caughtUp := s.runner.Progress(); caughtUp && pos >= minPos {
		return nil // the common case: nothing to wait for, no slot taken
	}
	select {
	case s.waiters <- struct{}{}:
		defer func() { <-s.waiters }()
	default:
		return ErrTooManyWaiters
	}
	ctx, cancel := context.WithTimeout(ctx, s.waitMax)
	defer cancel()
	err := s.runner.WaitFor(ctx, minPos)
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	pos, caughtUp := s.runner.Progress()
	if !caughtUp {
		return &positionError{err: ErrReplaying, want: minPos, pos: pos}
	}
	return &positionError{err: ErrNotReached, want: minPos, pos: pos}
}

// GetInvoice returns the invoice of a BAN for a month, or a page of its
// lines, their details with their lineage only if the request sets
// include_lineage.
func (s *Service) GetInvoice(ctx context.Context, req *billingv1.GetInvoiceRequest) (*billingv1.GetInvoiceResponse, error) {
	invalid := required("ban", req.GetBan())
	m, err := parseMonth("month", req.GetMonth())
	invalid = cmp.Or(invalid, err)
	pg, err := newPager(req)
	invalid = cmp.Or(invalid, err)
	lineage := req.GetIncludeLineage()
	var issued *billing.Invoice
	var whole *billingv1.Invoice
	var sum string // the digest of an issued invoice
	pos, err := s.read(ctx, req, invalid, func(p *billing.Projection) error {
		if err := allowBAN(ctx, p, req.GetBan()); err != nil {
			return err
		}
		inv, err := p.Invoice(req.GetBan(), m)
		if err != nil {
			return err
		}
		// An invoice without lines costs less to convert than to hold,
		// and one of a BAN named after the close is made anew each call.
		if inv.Status == billing.Issued && len(inv.Lines) > 0 {
			issued = inv
			return nil
		}
		// A draft is the projection's answer of this position only.
		whole = document.Invoice(inv, lineage)
		if inv.Status == billing.Issued {
			sum = invoiceDigest(whole) // issued without lines: small
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if issued != nil {
		// Issued invoices are frozen, so this may run after the read
		// lock: a miss's conversion holds up no event.
		f := s.issuedInvoice(issued, lineage)
		whole, sum = f.msg.(*billingv1.Invoice), f.digest
	}
	frozen := whole.GetStatus() == billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED
	c, err := pg.cut(len(whole.GetLines()), whole.GetPosition(), frozen, func() digest {
		return answerDigest(whole.GetLines(), whole.GetTotal(), whole.GetIssuedAt())
	})
	if err != nil {
		return nil, s.status(req, err)
	}
	resp := &billingv1.GetInvoiceResponse{Invoice: whole, Position: pos, NextPageToken: c.next, Digest: sum}
	if c.from > 0 || c.to < len(whole.GetLines()) {
		// A page is a message of its own around the whole document's
		// lines; the whole, when it fits, is the frozen cache's message,
		// which the codec writes from its bytes, and so is a page of an
		// issued invoice (see cacheKey).
		build := func() proto.Message {
			page := withoutField(whole, "lines")
			page.Lines = whole.GetLines()[c.from:c.to:c.to] // capped: an append must not write into the whole
			page.Position = c.position
			return page
		}
		if issued == nil {
			resp.Invoice = build().(*billingv1.Invoice)
		} else {
			k := cacheKey{id: issued.BAN, month: issued.Month, view: issued.View, lineage: lineage, from: c.from, to: c.to}
			resp.Invoice = s.frozenPage(k, []*billing.Invoice{issued}, build).(*billingv1.Invoice)
		}
	}
	return resp, nil
}

// frozenPage returns the message of a page of a frozen document (k names
// it, with its bounds), from the frozen cache or built and put there. An
// issued document's page is the same message at every position: the
// page's position is the document's own (pager.cut binds a frozen
// document's tokens to it).
func (s *Service) frozenPage(k cacheKey, docs []*billing.Invoice, build func() proto.Message) proto.Message {
	if f := s.frozen.get(k); f != nil && sameDocs(f.docs, docs) {
		return f.msg
	}
	return s.frozen.put(k, docs, build()).msg
}

// issuedInvoice returns the cache entry of an issued invoice, with or
// without its lineage: its message and digest, from the frozen cache or
// converted and put there.
func (s *Service) issuedInvoice(inv *billing.Invoice, lineage bool) *frozen {
	k := cacheKey{id: inv.BAN, month: inv.Month, view: inv.View, lineage: lineage}
	if f := s.frozen.get(k); f != nil && f.docs[0] == inv {
		return f
	}
	return s.frozen.put(k, []*billing.Invoice{inv}, document.Invoice(inv, lineage))
}

// ListInvoices summarizes the invoices of a BAN over a range of months.
func (s *Service) ListInvoices(ctx context.Context, req *billingv1.ListInvoicesRequest) (*billingv1.ListInvoicesResponse, error) {
	invalid := required("ban", req.GetBan())
	from, to, err := parseRange(req.GetFromMonth(), req.GetToMonth())
	invalid = cmp.Or(invalid, err)
	pg, err := newPager(req)
	invalid = cmp.Or(invalid, err)
	resp := &billingv1.ListInvoicesResponse{}
	pos, err := s.read(ctx, req, invalid, func(p *billing.Projection) error {
		if err := allowBAN(ctx, p, req.GetBan()); err != nil {
			return err
		}
		list, err := p.Invoices(req.GetBan(), from, to)
		if err != nil || len(list) == 0 {
			return err
		}
		// The summaries carry no currency; the invoice of a listed month
		// does, and is a lookup for an issued month.
		first, err := p.Invoice(req.GetBan(), list[0].Month)
		if err != nil {
			return err
		}
		for i := range list {
			sum := &list[i]
			resp.Invoices = append(resp.Invoices, &billingv1.InvoiceSummary{
				Ban:    sum.BAN,
				Month:  sum.Month.String(),
				Status: document.Statuses[sum.Status],
				Total:  document.Amount(&sum.Total, first.Currency),
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Position = pos
	return pageList(s, req, pg, pos, resp, &resp.Invoices, &resp.NextPageToken)
}

// GetUsageHistory returns an organization's total per month of a range.
func (s *Service) GetUsageHistory(ctx context.Context, req *billingv1.GetUsageHistoryRequest) (*billingv1.GetUsageHistoryResponse, error) {
	invalid := required("org_id", req.GetOrgId())
	from, to, err := parseRange(req.GetFromMonth(), req.GetToMonth())
	invalid = cmp.Or(invalid, err)
	view, err := parseView(req.GetView())
	invalid = cmp.Or(invalid, err)
	resp := &billingv1.GetUsageHistoryResponse{}
	pos, err := s.read(ctx, req, invalid, func(p *billing.Projection) error {
		c, err := p.Currency(req.GetOrgId())
		if err != nil {
			return err
		}
		months, err := p.UsageHistory(req.GetOrgId(), from, to, view)
		if err != nil {
			return err
		}
		resp.Months = make([]*billingv1.UsageHistoryMonth, len(months))
		for i := range months {
			m := &months[i]
			resp.Months[i] = &billingv1.UsageHistoryMonth{Month: m.Month.String(), Total: document.Amount(&m.Total, c), Available: m.Available}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Position = pos
	return resp, nil
}

// GetUsageMonth returns the lines of all of an organization's BANs for a
// month, or a page of them, their details with their lineage only if the
// request sets include_lineage. In the vendor cycle view, a month not yet
// finalized is FAILED_PRECONDITION saying from when, from the projection's
// *billing.NotFinalizedError.
func (s *Service) GetUsageMonth(ctx context.Context, req *billingv1.GetUsageMonthRequest) (*billingv1.GetUsageMonthResponse, error) {
	invalid := required("org_id", req.GetOrgId())
	m, err := parseMonth("month", req.GetMonth())
	invalid = cmp.Or(invalid, err)
	view, err := parseView(req.GetView())
	invalid = cmp.Or(invalid, err)
	pg, err := newPager(req)
	invalid = cmp.Or(invalid, err)
	lineage := req.GetIncludeLineage()
	k := cacheKey{usage: true, id: req.GetOrgId(), month: m, view: view, lineage: lineage}
	var whole *billingv1.UsageMonth
	var frozen *billing.UsageMonth
	var docs []*billing.Invoice
	// docPos is the document's position for its page tokens: for a month
	// made of frozen documents, that of the close or finalization that froze
	// them, which never changes; else the projection's.
	var docPos uint64
	pos, err := s.read(ctx, req, invalid, func(p *billing.Projection) error {
		// A held month stands for an organization that exists and a view
		// that is available for good, so it answers before any error.
		if f := s.frozen.get(k); f != nil && f.current(p) {
			whole, docs = f.msg.(*billingv1.UsageMonth), f.docs
			return nil
		}
		u, err := p.UsageMonth(req.GetOrgId(), m, view)
		if err != nil {
			return err
		}
		if docs = usageDocs(p, u); docs != nil {
			frozen = u
			return nil
		}
		docPos = u.Position
		whole = document.UsageMonth(u, lineage)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if frozen != nil {
		// u is the call's own, its lines copies of frozen documents' and
		// their details those documents': safe to read after the lock.
		whole = s.frozen.put(k, docs, document.UsageMonth(frozen, lineage)).msg.(*billingv1.UsageMonth)
	}
	if docs != nil {
		docPos = docs[0].Position
	}
	c, err := pg.cut(len(whole.GetLines()), docPos, docs != nil, func() digest {
		return answerDigest(whole.GetLines(), whole.GetTotal())
	})
	if err != nil {
		return nil, s.status(req, err)
	}
	resp := &billingv1.GetUsageMonthResponse{Month: whole, Position: pos, NextPageToken: c.next}
	if c.from > 0 || c.to < len(whole.GetLines()) {
		// As GetInvoice's pages: a message of its own, sharing the lines,
		// held when the month is frozen.
		build := func() proto.Message {
			page := withoutField(whole, "lines")
			page.Lines = whole.GetLines()[c.from:c.to:c.to] // capped: an append must not write into the whole
			return page
		}
		if docs == nil {
			resp.Month = build().(*billingv1.UsageMonth)
		} else {
			pk := k
			pk.from, pk.to = c.from, c.to
			resp.Month = s.frozenPage(pk, docs, build).(*billingv1.UsageMonth)
		}
	}
	return resp, nil
}

// GetDashboard returns the invoice totals of an organization, or of one of
// its cost centers, per month of a range.
func (s *Service) GetDashboard(ctx context.Context, req *billingv1.GetDashboardRequest) (*billingv1.GetDashboardResponse, error) {
	invalid := required("org_id", req.GetOrgId())
	from, to, err := parseRange(req.GetFromMonth(), req.GetToMonth())
	invalid = cmp.Or(invalid, err)
	resp := &billingv1.GetDashboardResponse{}
	pos, err := s.read(ctx, req, invalid, func(p *billing.Projection) error {
		c, err := p.Currency(req.GetOrgId())
		if err != nil {
			return err
		}
		bars, err := p.Dashboard(req.GetOrgId(), req.GetCostCenterId(), from, to)
		if err != nil {
			return err
		}
		resp.Bars = make([]*billingv1.DashboardBar, len(bars))
		for i := range bars {
			resp.Bars[i] = &billingv1.DashboardBar{Month: bars[i].Month.String(), Amount: document.Amount(&bars[i].Amount, c)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Position = pos
	return resp, nil
}

// ListAdjustments returns an adjustment ledger of an organization for a
// month.
func (s *Service) ListAdjustments(ctx context.Context, req *billingv1.ListAdjustmentsRequest) (*billingv1.ListAdjustmentsResponse, error) {
	invalid := required("org_id", req.GetOrgId())
	m, err := parseMonth("month", req.GetMonth())
	invalid = cmp.Or(invalid, err)
	kind, ok := adjustmentKinds[req.GetKind()]
	if !ok {
		invalid = cmp.Or(invalid, billing.ErrInvalidKind)
	}
	pg, err := newPager(req)
	invalid = cmp.Or(invalid, err)
	resp := &billingv1.ListAdjustmentsResponse{}
	pos, err := s.read(ctx, req, invalid, func(p *billing.Projection) error {
		c, err := p.Currency(req.GetOrgId())
		if err != nil {
			return err
		}
		adj, err := p.Adjustments(req.GetOrgId(), m, kind)
		if err != nil {
			return err
		}
		resp.Adjustments = make([]*billingv1.Adjustment, len(adj))
		for i := range adj {
			resp.Adjustments[i] = adjustmentProto(&adj[i], c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Position = pos
	return pageList(s, req, pg, pos, resp, &resp.Adjustments, &resp.NextPageToken)
}

// ListExceptions lists the amounts that are on no invoice. A caller
// limited to some organizations (an org_admin) who names none gets theirs
// alone: not the unassigned usage, which has no organization yet and may
// well be another's.
func (s *Service) ListExceptions(ctx context.Context, req *billingv1.ListExceptionsRequest) (*billingv1.ListExceptionsResponse, error) {
	resp := &billingv1.ListExceptionsResponse{}
	orgs, limited := access.Organizations(ctx)
	pg, invalid := newPager(req)
	pos, err := s.read(ctx, req, invalid, func(p *billing.Projection) error {
		list, err := p.Exceptions(req.GetOrgId())
		if err != nil {
			return err
		}
		if limited {
			list = slices.DeleteFunc(list, func(e billing.Exception) bool { return !slices.Contains(orgs, e.OrgID) })
		}
		resp.Exceptions = make([]*billingv1.Exception, len(list))
		for i := range list {
			resp.Exceptions[i] = exceptionProto(&list[i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Position = pos
	return pageList(s, req, pg, pos, resp, &resp.Exceptions, &resp.NextPageToken)
}

// pageList cuts a list response's entries, all of them as the projection
// has them now, to the request's page. A list may name drafts (a month's
// invoice, an exception billed since), so its tokens are bound to the
// digest of the whole list, as a draft's are.
func pageList[R any, M proto.Message](s *Service, req pagedRequest, pg *pager, pos uint64, resp R, entries *[]M, next *string) (R, error) {
	var zero R
	all := *entries
	c, err := pg.cut(len(all), pos, false, func() digest {
		return answerDigest(all)
	})
	if err != nil {
		return zero, s.status(req, err)
	}
	*entries, *next = all[c.from:c.to:c.to], c.next
	return resp, nil
}

// allowBAN decides, under the read lock and before any lookup of the
// BAN's documents, whether the call may read ban: a call limited to some
// organizations (services/access) may read only their BANs, and gets the
// same PERMISSION_DENIED for another organization's BAN as for one that
// does not exist, so that it learns nothing of what exists (AIP-211).
func allowBAN(ctx context.Context, p *billing.Projection, ban string) error {
	orgs, limited := access.Organizations(ctx)
	if !limited {
		return nil
	}
	if org, ok := p.OrganizationOfBAN(ban); ok && slices.Contains(orgs, org) {
		return nil
	}
	return access.Denied(ctx, access.KindBAN)
}

// ListOrganizations lists the organizations with their cost centers and
// BANs: every one, or an org_admin's own (services/access).
func (s *Service) ListOrganizations(ctx context.Context, req *billingv1.ListOrganizationsRequest) (*billingv1.ListOrganizationsResponse, error) {
	resp := &billingv1.ListOrganizationsResponse{}
	orgs, limited := access.Organizations(ctx)
	pos, err := s.read(ctx, req, nil, func(p *billing.Projection) error {
		for _, o := range p.Organizations() {
			if limited && !slices.Contains(orgs, o.ID) {
				continue
			}
			msg := &billingv1.Organization{OrgId: o.ID, Name: o.Name, Currency: o.Currency.Code(), Ban: o.BAN}
			for _, cc := range o.CostCenters {
				msg.CostCenters = append(msg.CostCenters, &billingv1.CostCenter{CostCenterId: cc.ID, Name: cc.Name, Ban: cc.BAN})
			}
			resp.Organizations = append(resp.Organizations, msg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Position = pos
	return resp, nil
}
