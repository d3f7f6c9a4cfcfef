package console

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/access"
	"github.com/ledger-billing/ledger/services/pages"
)

// Defaults of the pages' query parameters.
const (
	defaultRange = 6
	// openSearch is how far back the console looks for the open month
	// (the first one whose invoice is a draft), from the clock's month.
	openSearch = 60
)

// errBadParam is a query parameter the console cannot read.
var errBadParam = errors.New("console: bad parameter")

// rangeOf reads the months parameter: one of Ranges.
func rangeOf(r *http.Request) (int, error) {
	s := r.URL.Query().Get("months")
	if s == "" {
		return defaultRange, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || !slices.Contains(Ranges, n) {
		return 0, fmt.Errorf("%w: months %q is not one of 3, 6, 12, 24", errBadParam, s)
	}
	return n, nil
}

// monthParam reads a month parameter, or returns def when it is absent.
func monthParam(r *http.Request, name string, def calendar.Month) (calendar.Month, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	m, err := calendar.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not a month written YYYY-MM", errBadParam, name, s)
	}
	return m, nil
}

// viewOf reads the view parameter: billing (the default) or vendor.
func viewOf(r *http.Request) (billingv1.BillingView, string, error) {
	switch v := r.URL.Query().Get("view"); v {
	case "", "billing":
		return billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE, "billing", nil
	case "vendor":
		return billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, "vendor", nil
	default:
		return 0, "", fmt.Errorf("%w: view %q is neither billing nor vendor", errBadParam, v)
	}
}

// organization returns an organization as ListOrganizations gives it to
// the caller, NOT_FOUND if it gives none of that id.
func (c *Console) organization(ctx context.Context, id string) (*billingv1.Organization, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "org_id is required: pick an organization")
	}
	if err := allowOrg(ctx, id); err != nil {
		return nil, err
	}
	resp, err := c.cfg.Queries.ListOrganizations(ctx, &billingv1.ListOrganizationsRequest{})
	if err != nil {
		return nil, err
	}
	for _, o := range resp.GetOrganizations() {
		if o.GetOrgId() == id {
			return o, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "org_id %q is not a registered organization", id)
}

// openMonth returns the month still open for a BAN: the first whose
// invoice is a draft, as ListInvoices says; the clock's month if no
// cycle ever closed. The latest months of the pages end with it.
func (c *Console) openMonth(ctx context.Context, ban string) (calendar.Month, error) {
	now := calendar.Of(c.cfg.Now())
	resp, err := pages.Invoices(ctx, c.cfg.Queries.ListInvoices, &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: (now - openSearch).String(), ToMonth: now.String()})
	if err != nil {
		return 0, err
	}
	for _, inv := range resp.GetInvoices() {
		if inv.GetStatus() == billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT {
			return calendar.Parse(inv.GetMonth())
		}
	}
	return now, nil
}

// statuses returns the status of ban's invoice of each month of a range
// that has one: "draft" or "issued".
func (c *Console) statuses(ctx context.Context, ban string, from, to calendar.Month) (map[string]string, error) {
	resp, err := pages.Invoices(ctx, c.cfg.Queries.ListInvoices, &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: from.String(), ToMonth: to.String()})
	if err != nil {
		return nil, err
	}
	st := make(map[string]string)
	for _, inv := range resp.GetInvoices() {
		st[inv.GetMonth()] = statusName(inv.GetStatus())
	}
	return st, nil
}

// window is the months a page shows: the latest n (the months
// parameter) up to the to parameter, by default the BAN's open month.
// Its error is errBadParam for a parameter, else that of a call.
func (c *Console) window(ctx context.Context, r *http.Request, ban string) (n int, from, to calendar.Month, err error) {
	if n, err = rangeOf(r); err != nil {
		return 0, 0, 0, err
	}
	if to, err = c.openMonth(ctx, ban); err != nil {
		return 0, 0, 0, err
	}
	if to, err = monthParam(r, "to", to); err != nil {
		return 0, 0, 0, err
	}
	return n, to - calendar.Month(n) + 1, to, nil
}

// failWindow answers window's error: 400 for a parameter, else as the
// failed call it is.
func (c *Console) failWindow(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBadParam) {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	c.failCall(w, r, err)
}

// link writes a console URL.
func link(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// organizations is the operator's list of organizations and their BANs
// (an org_admin's own); the console's home.
func (c *Console) organizations(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	resp, err := c.cfg.Queries.ListOrganizations(ctx, &billingv1.ListOrganizationsRequest{})
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "organizations", page{Title: "Organizations", Nav: "organizations", Data: resp.GetOrganizations()})
}

// dashboardData is the Billing Dashboard.
type dashboardData struct {
	Org        *billingv1.Organization
	CostCenter string
	Range      int
	Ranges     []int
	From, To   string
	Chart      chart
	Bars       []bar
}

// dashboard is the Billing Dashboard (seed 001): the billed amount per
// month of the latest months, the open month's draft drawn distinctly.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	q := r.URL.Query()
	// A bad range is the request's fault whatever the organization: said
	// before any call (window reads it again, cheaply).
	if _, err := rangeOf(r); err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	o, err := c.organization(ctx, q.Get("org"))
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	n, from, to, err := c.window(ctx, r, o.GetBan())
	if err != nil {
		c.failWindow(w, r, err)
		return
	}
	cc := q.Get("cost_center")
	resp, err := c.cfg.Queries.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: o.GetOrgId(), CostCenterId: cc, FromMonth: from.String(), ToMonth: to.String()})
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	statuses, err := c.statuses(ctx, o.GetBan(), from, to)
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	ch := layout(resp.GetBars(), statuses, func(m string) string {
		return link("/usage", "org", o.GetOrgId(), "months", strconv.Itoa(n), "to", to.String(), "month", m) + "#month-detail"
	})
	c.render(w, r, http.StatusOK, "dashboard", page{Title: "Billing Dashboard", Org: o.GetOrgId(), Nav: "dashboard", Data: dashboardData{
		Org: o, CostCenter: cc, Range: n, Ranges: Ranges, From: from.String(), To: to.String(), Chart: ch, Bars: ch.Bars,
	}})
}

// usageData is the Usage History.
type usageData struct {
	Org      *billingv1.Organization
	View     string
	Range    int
	Ranges   []int
	To       string
	Months   []usageMonth
	Selected string
	// Month is the selected month's lines; Unavailable says why there
	// are none to show (a vendor view not finalized yet).
	Month       *billingv1.UsageMonth
	Unavailable string
	Lineage     bool
	MayLineage  bool
}

// usageMonth is a row of the months list.
type usageMonth struct {
	Month     string
	Total     string
	Available bool
	Href      string
	Selected  bool
}

// usage is the Usage History (seeds 001, 002): the latest months with
// their totals, and below the selected month's line items.
func (c *Console) usage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	q := r.URL.Query()
	// A bad range is the request's fault whatever the organization: said
	// before any call (window reads it again, cheaply).
	if _, err := rangeOf(r); err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	view, viewName, err := viewOf(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	o, err := c.organization(ctx, q.Get("org"))
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	n, from, to, err := c.window(ctx, r, o.GetBan())
	if err != nil {
		c.failWindow(w, r, err)
		return
	}
	selected, err := monthParam(r, "month", 0)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	hist, err := c.cfg.Queries.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: o.GetOrgId(), FromMonth: from.String(), ToMonth: to.String(), View: view})
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	d := usageData{Org: o, View: viewName, Range: n, Ranges: Ranges, To: to.String(), MayLineage: access.MayReadLineage(ctx)}
	d.Lineage = d.MayLineage && q.Get("lineage") == "1"
	if selected != 0 {
		d.Selected = selected.String()
	}
	// Newest first: the latest month is the one people look for.
	months := hist.GetMonths()
	for i := len(months) - 1; i >= 0; i-- {
		m := months[i]
		d.Months = append(d.Months, usageMonth{
			Month: m.GetMonth(), Total: m.GetTotal().GetAmount(), Available: m.GetAvailable(),
			Href:     link("/usage", "org", o.GetOrgId(), "view", viewName, "months", strconv.Itoa(n), "to", to.String(), "month", m.GetMonth()) + "#month-detail",
			Selected: m.GetMonth() == d.Selected,
		})
	}
	if selected != 0 {
		resp, err := pages.UsageMonth(ctx, c.cfg.Queries.GetUsageMonth, &billingv1.GetUsageMonthRequest{OrgId: o.GetOrgId(), Month: selected.String(), View: view, IncludeLineage: d.Lineage})
		switch {
		case status.Code(err) == codes.FailedPrecondition:
			d.Unavailable = status.Convert(err).Message()
		case err != nil:
			c.failCall(w, r, err)
			return
		default:
			d.Month = resp.GetMonth()
		}
	}
	c.render(w, r, http.StatusOK, "usage", page{Title: "Usage History", Org: o.GetOrgId(), Nav: "usage", Data: d})
}

// invoicesData is the list of a BAN's invoices.
type invoicesData struct {
	BAN      string
	Range    int
	Ranges   []int
	Invoices []*billingv1.InvoiceSummary
}

// invoices lists the invoices of a BAN over the latest months.
func (c *Console) invoices(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	ban := r.URL.Query().Get("ban")
	n, from, to, err := c.window(ctx, r, ban)
	if err != nil {
		c.failWindow(w, r, err)
		return
	}
	resp, err := pages.Invoices(ctx, c.cfg.Queries.ListInvoices, &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: from.String(), ToMonth: to.String()})
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	list := slices.Clone(resp.GetInvoices())
	slices.Reverse(list)
	c.render(w, r, http.StatusOK, "invoices", page{Title: "Invoices of " + ban, Nav: "invoices", Data: invoicesData{BAN: ban, Range: n, Ranges: Ranges, Invoices: list}})
}

// getInvoice reads the invoice a request names.
func (c *Console) getInvoice(ctx context.Context, r *http.Request) (*billingv1.Invoice, error) {
	q := r.URL.Query()
	resp, err := pages.Invoice(ctx, c.cfg.Queries.GetInvoice, &billingv1.GetInvoiceRequest{Ban: q.Get("ban"), Month: q.Get("month")})
	if err != nil {
		return nil, err
	}
	return resp.GetInvoice(), nil
}

// invoice is the document of a BAN for a month, as a printable page.
func (c *Console) invoice(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	inv, err := c.getInvoice(ctx, r)
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "invoice", page{Title: "Invoice " + inv.GetBan() + " " + inv.GetMonth(), Org: inv.GetOrgId(), Nav: "invoices", Data: inv})
}

// csvHeader is the header row of an invoice's CSV.
var csvHeader = []string{"ban", "month", "status", "kind", "vendor", "account_id", "provider_name", "alias", "cost_center_id", "for_month", "service", "description", "amount", "currency"}

// invoiceCSV is the lines of an invoice as CSV, one row per line.
func (c *Console) invoiceCSV(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	inv, err := c.getInvoice(ctx, r)
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="invoice-%s-%s.csv"`, fileSafe(inv.GetBan()), inv.GetMonth()))
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for _, l := range inv.GetLines() {
		_ = cw.Write([]string{
			cell(inv.GetBan()), inv.GetMonth(), statusName(inv.GetStatus()), kindName(l.GetKind()),
			cell(l.GetVendor()), cell(l.GetAccountId()), cell(l.GetProviderName()), cell(l.GetAlias()), cell(l.GetCostCenterId()),
			l.GetForMonth(), cell(l.GetService()), cell(l.GetDescription()), l.GetAmount().GetAmount(), inv.GetCurrency(),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		c.log.Warn("console: CSV cut short", "err", err)
	}
}

// cell keeps a text from the history from being read as a formula by a
// spreadsheet (OWASP, CSV injection). Amounts, which are numbers, are
// written as they are.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// fileSafe keeps the characters of a file name that need no quoting.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// adjustmentsData is the adjustments page.
type adjustmentsData struct {
	Org      *billingv1.Organization
	Month    string
	Previous string
	Next     string
	Inter    []*billingv1.Adjustment
	Intra    []*billingv1.Adjustment
}

// adjustments shows an organization's inter-customer and intra-organization
// adjustment ledgers for a month (by default, the last closed one).
func (c *Console) adjustments(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	o, err := c.organization(ctx, r.URL.Query().Get("org"))
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	open, err := c.openMonth(ctx, o.GetBan())
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	m, err := monthParam(r, "month", open-1)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	d := adjustmentsData{Org: o, Month: m.String(),
		Previous: link("/adjustments", "org", o.GetOrgId(), "month", (m - 1).String()),
		Next:     link("/adjustments", "org", o.GetOrgId(), "month", (m + 1).String())}
	for _, k := range []billingv1.LineKind{billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT, billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT} {
		resp, err := pages.Adjustments(ctx, c.cfg.Queries.ListAdjustments, &billingv1.ListAdjustmentsRequest{OrgId: o.GetOrgId(), Month: m.String(), Kind: k})
		if err != nil {
			c.failCall(w, r, err)
			return
		}
		if k == billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT {
			d.Inter = resp.GetAdjustments()
		} else {
			d.Intra = resp.GetAdjustments()
		}
	}
	c.render(w, r, http.StatusOK, "adjustments", page{Title: "Adjustments", Org: o.GetOrgId(), Nav: "adjustments", Data: d})
}

// exceptionsData is the exceptions page.
type exceptionsData struct {
	Org        string
	Exceptions []*billingv1.Exception
}

// exceptions lists the amounts on no invoice: an organization's, or (no
// org) every one the caller may see.
func (c *Console) exceptions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callCtx(r)
	defer cancel()
	org := r.URL.Query().Get("org")
	if org != "" {
		if err := allowOrg(ctx, org); err != nil {
			c.failCall(w, r, err)
			return
		}
	}
	resp, err := pages.Exceptions(ctx, c.cfg.Queries.ListExceptions, &billingv1.ListExceptionsRequest{OrgId: org})
	if err != nil {
		c.failCall(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "exceptions", page{Title: "Exceptions", Org: org, Nav: "exceptions", Data: exceptionsData{Org: org, Exceptions: resp.GetExceptions()}})
}
