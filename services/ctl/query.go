package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
)

// rangeMonths is how many months a range covers when neither end is
// given: a year, ending with the current month.
const rangeMonths = 12

// month reads a month flag; empty is an error only if required.
func month(flag, s string, required bool) (calendar.Month, bool, error) {
	if s == "" {
		if required {
			return 0, false, usage("--%s is required (a month written YYYY-MM)", flag)
		}
		return 0, false, nil
	}
	m, err := calendar.Parse(s)
	if err != nil {
		return 0, false, usage("--%s %q is not a month written YYYY-MM", flag, s)
	}
	return m, true, nil
}

// monthRange reads --from and --to. Without either, the range is the year
// up to the current month; with one, the year from or up to it.
func (c *Client) monthRange(from, to string) (string, string, error) {
	f, hasFrom, err := month("from", from, false)
	if err != nil {
		return "", "", err
	}
	t, hasTo, err := month("to", to, false)
	if err != nil {
		return "", "", err
	}
	switch {
	case !hasTo && hasFrom:
		t = f + rangeMonths - 1
	case !hasTo:
		t = calendar.Of(c.cfg.Now())
	}
	if !hasFrom {
		f = t - rangeMonths + 1
	}
	if t < f {
		return "", "", usage("--to %s precedes --from %s", t, f)
	}
	return f.String(), t.String(), nil
}

// parseView reads --view: billing (the default) or vendor.
func parseView(s string) (billingv1.BillingView, error) {
	switch strings.ToLower(s) {
	case "", "billing", "billing-cycle", "billing_view_billing_cycle":
		return billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE, nil
	case "vendor", "vendor-cycle", "billing_view_vendor_cycle":
		return billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, nil
	}
	return 0, usage("--view %q is not a view: want billing or vendor", s)
}

// parseKind reads --kind of adjustments: inter, intra, or empty for both.
func parseKind(s string) ([]billingv1.LineKind, error) {
	inter, intra := billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT, billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT
	switch strings.ToLower(s) {
	case "":
		return []billingv1.LineKind{inter, intra}, nil
	case "inter", "inter-customer", "line_kind_inter_customer_adjustment":
		return []billingv1.LineKind{inter}, nil
	case "intra", "intra-org", "line_kind_intra_org_adjustment":
		return []billingv1.LineKind{intra}, nil
	}
	return nil, usage("--kind %q is not an adjustment kind: want inter or intra", s)
}

func required(flag, value string) error {
	if value == "" {
		return usage("--%s is required", flag)
	}
	return nil
}

// Invoice prints the invoice of ban for month: with view "vendor", its
// vendor billing cycle view. With lineage, it asks for the details'
// lineage (include_lineage) and lists each detail's event_ids under it.
func (c *Client) Invoice(ctx context.Context, ban, monthText, view string, lineage bool) error {
	if err := required("ban", ban); err != nil {
		return err
	}
	if _, _, err := month("month", monthText, true); err != nil {
		return err
	}
	v, err := parseView(view)
	if err != nil {
		return err
	}
	resp, err := call(ctx, c, pages.Client(pages.Invoice, billingv1.BillingServiceClient.GetInvoice), &billingv1.GetInvoiceRequest{Ban: ban, Month: monthText, IncludeLineage: lineage})
	if err != nil {
		return err
	}
	if v == billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE {
		if resp, err = c.vendorInvoice(ctx, resp.GetInvoice(), lineage); err != nil {
			return err
		}
	}
	if c.cfg.JSON {
		return c.printJSON(resp)
	}
	inv := resp.GetInvoice()
	title := "Invoice"
	if v == billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE {
		title = "Vendor cycle view"
	}
	fmt.Fprintf(c.cfg.Out, "%s %s %s: %s\n", title, escape(inv.GetBan()), escape(inv.GetMonth()), invoiceState(inv, v))
	fmt.Fprintf(c.cfg.Out, "Organization %s, amounts in %s.\n\n", escape(inv.GetOrgId()), escape(inv.GetCurrency()))
	return writeLines(c.cfg.Out, inv.GetLines(), inv.GetTotal(), false, lineage)
}

func invoiceState(inv *billingv1.Invoice, v billingv1.BillingView) string {
	switch {
	case v == billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE:
		return "the month as billed, plus what the vendor changed after the bill"
	case inv.GetStatus() == billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED:
		return "ISSUED at " + inv.GetIssuedAt().AsTime().UTC().Format("2006-01-02T15:04:05Z07:00")
	default:
		return fmt.Sprintf("%s (the billing cycle of %s is not closed: this changes as events arrive)", statusName(inv.GetStatus()), inv.GetMonth())
	}
}

// vendorInvoice builds the vendor billing cycle view of one BAN from its
// organization's, whose lines each name their BAN: GetInvoice has no view
// of its own.
func (c *Client) vendorInvoice(ctx context.Context, inv *billingv1.Invoice, lineage bool) (*billingv1.GetInvoiceResponse, error) {
	um, err := call(ctx, c, pages.Client(pages.UsageMonth, billingv1.BillingServiceClient.GetUsageMonth), &billingv1.GetUsageMonthRequest{
		OrgId: inv.GetOrgId(), Month: inv.GetMonth(), View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, IncludeLineage: lineage,
	})
	if err != nil {
		return nil, err
	}
	out := &billingv1.Invoice{
		Ban: inv.GetBan(), OrgId: inv.GetOrgId(), Month: inv.GetMonth(), Status: billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED,
		Currency: inv.GetCurrency(), Position: um.GetPosition(),
	}
	var amounts []*billingv1.Money
	for _, l := range um.GetMonth().GetLines() {
		if l.GetBan() == inv.GetBan() {
			out.Lines = append(out.Lines, l)
			amounts = append(amounts, l.GetAmount())
		}
	}
	if out.Total, err = sum(inv.GetCurrency(), amounts...); err != nil {
		return nil, err
	}
	return &billingv1.GetInvoiceResponse{Invoice: out, Position: um.GetPosition()}, nil
}

// Invoices lists the invoices of ban from one month to another.
func (c *Client) Invoices(ctx context.Context, ban, from, to string) error {
	if err := required("ban", ban); err != nil {
		return err
	}
	from, to, err := c.monthRange(from, to)
	if err != nil {
		return err
	}
	resp, err := call(ctx, c, pages.Client(pages.Invoices, billingv1.BillingServiceClient.ListInvoices), &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: from, ToMonth: to})
	if err != nil {
		return err
	}
	if c.cfg.JSON {
		return c.printJSON(resp)
	}
	t := newTable("BAN", "MONTH", "STATUS", "TOTAL").alignRight(3)
	for _, s := range resp.GetInvoices() {
		t.add(s.GetBan(), s.GetMonth(), statusName(s.GetStatus()), amount(s.GetTotal()))
	}
	if len(resp.GetInvoices()) == 0 {
		fmt.Fprintf(c.cfg.Out, "No invoices of %s from %s to %s (months before the first closed billing cycle have none).\n", ban, from, to)
		return nil
	}
	return t.write(c.cfg.Out)
}

// Usage prints an organization's usage: with a month, its lines across
// all the organization's BANs (with lineage, each detail's event_ids under
// it, as Invoice); else its total per month of a range, which has no
// details, so lineage is for a month only.
func (c *Client) Usage(ctx context.Context, org, monthText, from, to, view string, lineage bool) error {
	if err := required("org", org); err != nil {
		return err
	}
	v, err := parseView(view)
	if err != nil {
		return err
	}
	if monthText != "" && (from != "" || to != "") {
		return usage("give either --month or --from/--to, not both")
	}
	if lineage && monthText == "" {
		return usage("--lineage needs --month: totals per month have no details")
	}
	if monthText != "" {
		if _, _, err := month("month", monthText, true); err != nil {
			return err
		}
		resp, err := call(ctx, c, pages.Client(pages.UsageMonth, billingv1.BillingServiceClient.GetUsageMonth), &billingv1.GetUsageMonthRequest{OrgId: org, Month: monthText, View: v, IncludeLineage: lineage})
		if err != nil {
			return err
		}
		if c.cfg.JSON {
			return c.printJSON(resp)
		}
		um := resp.GetMonth()
		fmt.Fprintf(c.cfg.Out, "Usage of %s in %s, %s view.\n\n", escape(um.GetOrgId()), escape(um.GetMonth()), viewName(um.GetView()))
		return writeLines(c.cfg.Out, um.GetLines(), um.GetTotal(), true, lineage)
	}
	from, to, err = c.monthRange(from, to)
	if err != nil {
		return err
	}
	resp, err := call(ctx, c, billingv1.BillingServiceClient.GetUsageHistory, &billingv1.GetUsageHistoryRequest{OrgId: org, FromMonth: from, ToMonth: to, View: v})
	if err != nil {
		return err
	}
	if c.cfg.JSON {
		return c.printJSON(resp)
	}
	fmt.Fprintf(c.cfg.Out, "Usage of %s from %s to %s, %s view.\n\n", org, from, to, viewName(v))
	t := newTable("MONTH", "AVAILABLE", "TOTAL").alignRight(2)
	for _, m := range resp.GetMonths() {
		available := "yes"
		if !m.GetAvailable() {
			available = "no"
		}
		t.add(m.GetMonth(), available, amount(m.GetTotal()))
	}
	return t.write(c.cfg.Out)
}

// Dashboard prints the invoice totals of an organization, or of one of its
// cost centers, per month, with bars.
func (c *Client) Dashboard(ctx context.Context, org, costCenter, from, to string) error {
	if err := required("org", org); err != nil {
		return err
	}
	from, to, err := c.monthRange(from, to)
	if err != nil {
		return err
	}
	resp, err := call(ctx, c, billingv1.BillingServiceClient.GetDashboard, &billingv1.GetDashboardRequest{OrgId: org, CostCenterId: costCenter, FromMonth: from, ToMonth: to})
	if err != nil {
		return err
	}
	if c.cfg.JSON {
		return c.printJSON(resp)
	}
	who := org
	if costCenter != "" {
		who = fmt.Sprintf("cost center %s of %s", costCenter, org)
	}
	fmt.Fprintf(c.cfg.Out, "Invoiced to %s per month (issued invoices; drafts for open months).\n\n", who)
	values := make([]apd.Decimal, len(resp.GetBars()))
	var peak apd.Decimal
	for i, b := range resp.GetBars() {
		if err := money.ParseDecimal(&values[i], b.GetAmount().GetAmount()); err != nil {
			return fmt.Errorf("ctl: amount from ledgerd: %w", err)
		}
		if values[i].Cmp(&peak) > 0 {
			peak.Set(&values[i])
		}
	}
	t := newTable("MONTH", "AMOUNT", "").alignRight(1)
	for i, b := range resp.GetBars() {
		t.add(b.GetMonth(), amount(b.GetAmount()), bar(&values[i], &peak))
	}
	return t.write(c.cfg.Out)
}

// Adjustments prints an organization's adjustment ledgers for a month:
// inter-customer, intra-organization, or both.
func (c *Client) Adjustments(ctx context.Context, org, monthText, kind string) error {
	if err := required("org", org); err != nil {
		return err
	}
	if _, _, err := month("month", monthText, true); err != nil {
		return err
	}
	kinds, err := parseKind(kind)
	if err != nil {
		return err
	}
	var resps []*billingv1.ListAdjustmentsResponse
	for _, k := range kinds {
		resp, err := call(ctx, c, pages.Client(pages.Adjustments, billingv1.BillingServiceClient.ListAdjustments), &billingv1.ListAdjustmentsRequest{OrgId: org, Month: monthText, Kind: k})
		if err != nil {
			return err
		}
		resps = append(resps, resp)
	}
	if c.cfg.JSON {
		if len(resps) == 1 {
			return c.printJSON(resps[0])
		}
		return c.printJSONObject(map[string]*billingv1.ListAdjustmentsResponse{
			"inter_customer": resps[0], "intra_org": resps[1],
		})
	}
	fmt.Fprintf(c.cfg.Out, "Adjustments of %s in %s.\n\n", org, monthText)
	t := newTable("KIND", "VENDOR", "ACCOUNT", "COUNTERPARTY", "RI", "DESCRIPTION", "AMOUNT").alignRight(6)
	for _, resp := range resps {
		for _, a := range resp.GetAdjustments() {
			t.add(kindName(a.GetKind()), a.GetVendor(), a.GetAccountId(), a.GetCounterpartyAccountId(), a.GetRiId(), a.GetDescription(), amount(a.GetAmount()))
		}
	}
	if len(t.rows) == 0 {
		fmt.Fprintln(c.cfg.Out, "No adjustments.")
		return nil
	}
	return t.write(c.cfg.Out)
}

// printJSONObject prints responses as one JSON object, each under its key:
// a reader of --json gets one document per command.
func (c *Client) printJSONObject(parts map[string]*billingv1.ListAdjustmentsResponse) error {
	obj := make(map[string]json.RawMessage, len(parts))
	for k, m := range parts {
		b, err := jsonOptions.Marshal(m)
		if err != nil {
			return err
		}
		obj[k] = b
	}
	b, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.cfg.Out, "%s\n", b)
	return err
}

// Exceptions prints the amounts on no invoice: all, or an organization's.
func (c *Client) Exceptions(ctx context.Context, org string) error {
	resp, err := call(ctx, c, pages.Client(pages.Exceptions, billingv1.BillingServiceClient.ListExceptions), &billingv1.ListExceptionsRequest{OrgId: org})
	if err != nil {
		return err
	}
	if c.cfg.JSON {
		return c.printJSON(resp)
	}
	if len(resp.GetExceptions()) == 0 {
		if org != "" {
			fmt.Fprintf(c.cfg.Out, "No exceptions of %s. Unassigned usage belongs to no organization yet: run without --org to see it.\n", org)
			return nil
		}
		fmt.Fprintln(c.cfg.Out, "No exceptions: every amount is on an invoice.")
		return nil
	}
	t := newTable("MONTH", "KIND", "VENDOR", "ACCOUNT", "AMOUNT", "EVENT", "REASON").alignRight(4)
	for _, e := range resp.GetExceptions() {
		t.add(e.GetMonth(), exceptionName(e.GetKind()), e.GetVendor(), e.GetAccountId(), amount(e.GetAmount()), e.GetEventId(), e.GetReason())
	}
	return t.write(c.cfg.Out)
}

// Organizations prints the organizations the caller may read, with their
// cost centers and the BAN each bills to.
func (c *Client) Organizations(ctx context.Context) error {
	resp, err := call(ctx, c, billingv1.BillingServiceClient.ListOrganizations, &billingv1.ListOrganizationsRequest{})
	if err != nil {
		return err
	}
	if c.cfg.JSON {
		return c.printJSON(resp)
	}
	if len(resp.GetOrganizations()) == 0 {
		fmt.Fprintln(c.cfg.Out, "No organizations: ledgerctl demo registers one.")
		return nil
	}
	t := newTable("ORG", "NAME", "CURRENCY", "BAN", "COST CENTER", "COST CENTER NAME", "COST CENTER BAN")
	for _, o := range resp.GetOrganizations() {
		t.add(o.GetOrgId(), o.GetName(), o.GetCurrency(), o.GetBan(), "", "", "")
		for _, cc := range o.GetCostCenters() {
			t.add("", "", "", "", cc.GetCostCenterId(), cc.GetName(), cc.GetBan())
		}
	}
	return t.write(c.cfg.Out)
}
