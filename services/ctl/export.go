package ctl

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/parquet-go/parquet-go"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
)

// DefaultIssuerName is InvoiceIssuerName when --issuer is not given:
// FOCUS requires a value, and Ledger does not know the reseller's name.
const DefaultIssuerName = "Ledger"

// ExportOptions configures ExportFOCUS.
type ExportOptions struct {
	// BAN and Month name the invoice; required.
	BAN, Month string
	// View is "billing" (the invoice, the default) or "vendor" (the
	// month as the vendor billed it, with its post-bill updates).
	View string
	// Format is "csv" (the default) or "parquet".
	Format string
	// Version is the FOCUS version written: "1.2" (the default) or "1.4".
	Version string
	// Output is the file written; empty: Config.Out.
	Output string
	// Issuer is InvoiceIssuerName; empty: DefaultIssuerName.
	Issuer string
}

// focusExportColumns are the columns of an export, by version: 1.4 names
// the providers ServiceProviderName and HostProviderName and numbers the
// rows with InvoiceDetailId.
func focusExportColumns(version string) []string {
	cols := []string{
		"InvoiceId", "BillingAccountId", "BillingAccountName", "BillingAccountType",
		"SubAccountId", "SubAccountName", "SubAccountType", "InvoiceIssuerName",
	}
	if version == Focus14 {
		cols = append(cols, "ServiceProviderName", "HostProviderName", "InvoiceDetailId")
	} else {
		cols = append(cols, "ProviderName", "PublisherName")
	}
	return append(cols,
		"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
		"ChargeCategory", "ChargeClass", "ChargeDescription", "ServiceName", "RegionId",
		"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "x_EventIds")
}

// subAccountTypes are the vendors' names for what FOCUS calls a sub
// account, by Ledger's vendor name.
var subAccountTypes = map[string]string{"AWS": "Account", "Azure": "Subscription", "GCP": "Project", "Oracle": "Tenancy"}

// ExportFOCUS writes the invoice of a BAN for a month as FOCUS rows, one
// per detail of each line (a line without details, an intra-organization
// adjustment, is one row of its amount), so the BilledCost of the rows
// sums to the invoice's total exactly. Update and post-bill lines are
// ChargeClass "Correction": FOCUS's delta style, an amount that adds to
// what was billed before, which is what those lines are.
func (c *Client) ExportFOCUS(ctx context.Context, opt ExportOptions) error {
	if err := required("ban", opt.BAN); err != nil {
		return err
	}
	if _, _, err := month("month", opt.Month, true); err != nil {
		return err
	}
	view, err := parseView(opt.View)
	if err != nil {
		return err
	}
	version := cmp.Or(opt.Version, Focus12)
	if version != Focus12 && version != Focus14 {
		return usage("--focus-version %q: want 1.2 or 1.4", opt.Version)
	}
	format := strings.ToLower(cmp.Or(opt.Format, "csv"))
	if format != "csv" && format != "parquet" {
		return usage("--format %q: want csv or parquet", opt.Format)
	}
	resp, err := call(ctx, c, pages.Client(pages.Invoice, billingv1.BillingServiceClient.GetInvoice), &billingv1.GetInvoiceRequest{Ban: opt.BAN, Month: opt.Month, IncludeLineage: true})
	if err != nil {
		return err
	}
	if view == billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE {
		if resp, err = c.vendorInvoice(ctx, resp.GetInvoice(), true); err != nil {
			return err
		}
	}
	inv := resp.GetInvoice()
	if inv.GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED {
		fmt.Fprintf(c.cfg.Err, "note: the invoice of %s for %s is a draft (its billing cycle is not closed): the export changes as events arrive\n", inv.GetBan(), inv.GetMonth())
	}
	rows, err := focusRows(inv, version, cmp.Or(opt.Issuer, DefaultIssuerName))
	if err != nil {
		return err
	}

	out := c.cfg.Out
	var file *os.File
	if opt.Output != "" {
		if file, err = os.Create(opt.Output); err != nil {
			return usage("export focus: %v", err)
		}
		defer file.Close()
		out = file
	}
	bw := bufio.NewWriter(out)
	cols := focusExportColumns(version)
	if format == "parquet" {
		err = writeParquetText(bw, cols, rows)
	} else {
		err = writeCSV(bw, cols, rows)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && file != nil {
		err = file.Close()
	}
	if err != nil {
		return fmt.Errorf("export focus: write %s: %w", cmp.Or(opt.Output, "the output"), err)
	}
	if opt.Output != "" {
		fmt.Fprintf(c.cfg.Err, "Wrote %s: %s FOCUS %s %s of invoice %s, total %s %s.\n", opt.Output, thousands(len(rows)), version,
			plural(len(rows), "row", "rows"), invoiceID(inv), inv.GetTotal().GetAmount(), inv.GetCurrency())
	}
	return nil
}

// invoiceID is the FOCUS InvoiceId of an invoice: <BAN>-<YYYY-MM>.
func invoiceID(inv *billingv1.Invoice) string { return inv.GetBan() + "-" + inv.GetMonth() }

// focusRows are the rows of an invoice, with the columns of
// focusExportColumns(version). It checks that they sum to the total: a
// file that does not is never written.
func focusRows(inv *billingv1.Invoice, version, issuer string) ([][]string, error) {
	m, err := calendar.Parse(inv.GetMonth())
	if err != nil {
		return nil, fmt.Errorf("export focus: the invoice's month %q: %w", inv.GetMonth(), err)
	}
	cur, err := money.ParseCurrency(inv.GetCurrency())
	if err != nil {
		return nil, fmt.Errorf("export focus: the invoice's currency %q: %w", inv.GetCurrency(), err)
	}
	id := invoiceID(inv)
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	var rows [][]string
	var sum, amt apd.Decimal
	for _, l := range inv.GetLines() {
		forMonth := m
		if fm, err := calendar.Parse(l.GetForMonth()); err == nil {
			forMonth = fm
		}
		category, class := "Usage", ""
		switch l.GetKind() {
		case billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT, billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT:
			category = "Adjustment"
		case billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE, billingv1.LineKind_LINE_KIND_POST_BILL_UPDATE:
			class = "Correction"
		}
		details := l.GetDetails()
		if len(details) == 0 {
			details = []*billingv1.InvoiceLineDetail{{Service: cmp.Or(l.GetService(), l.GetDescription()), Amount: l.GetAmount()}}
		}
		for _, d := range details {
			if err := money.ParseDecimal(&amt, d.GetAmount().GetAmount()); err != nil {
				return nil, fmt.Errorf("export focus: an amount %q of the invoice: %w", d.GetAmount().GetAmount(), err)
			}
			money.Add(&sum, &sum, &amt)
			description := l.GetDescription()
			if d.GetDescription() != "" {
				description = strings.TrimSpace(description + " (" + d.GetDescription() + ")")
			}
			vendor := l.GetVendor()
			cells := []string{
				id, inv.GetBan(), inv.GetOrgId(), "Billing Account Number",
				l.GetAccountId(), l.GetProviderName(), cmp.Or(subAccountTypes[vendor], "Account"), issuer,
			}
			if version == Focus14 {
				cells = append(cells, vendor, vendor, fmt.Sprintf("%s-%d", id, len(rows)+1))
			} else {
				cells = append(cells, vendor, vendor)
			}
			cells = append(cells,
				stamp(m.Start()), stamp(m.End()), stamp(forMonth.Start()), stamp(forMonth.End()),
				category, class, description, d.GetService(), d.GetRegion(),
				// EffectiveCost, ListCost and ContractedCost: FOCUS requires
				// them; Ledger re-bills what the vendor billed and knows no
				// list price, discount or amortization of its own, so all
				// three are the billed cost (README, "Export").
				d.GetAmount().GetAmount(), d.GetAmount().GetAmount(), d.GetAmount().GetAmount(), d.GetAmount().GetAmount(),
				inv.GetCurrency(), strings.Join(d.GetEventIds(), " "))
			rows = append(rows, cells)
		}
	}
	var total apd.Decimal
	if err := money.ParseDecimal(&total, inv.GetTotal().GetAmount()); err != nil {
		return nil, fmt.Errorf("export focus: the invoice's total %q: %w", inv.GetTotal().GetAmount(), err)
	}
	if sum.Cmp(&total) != 0 {
		return nil, fmt.Errorf("export focus: the rows of %s sum to %s, its total is %s: not written", id, money.Format(&sum, cur), inv.GetTotal().GetAmount())
	}
	return rows, nil
}

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

// writeParquetText writes rows of text cells as a Parquet file whose
// columns are all optional UTF-8 strings, an empty cell written as null.
// Strings, decimals among them, keep every amount exact: a double would
// not, and a DECIMAL column needs one scale for all the currencies' and
// vendors' digits.
func writeParquetText(w io.Writer, header []string, rows [][]string) error {
	group := parquet.Group{}
	for _, name := range header {
		group[name] = parquet.Optional(parquet.String())
	}
	schema := parquet.NewSchema("focus", group)
	// A Group orders its columns by name: map each header cell to its
	// column index.
	index := make([]int, len(header))
	for i, name := range header {
		col, ok := schema.Lookup(name)
		if !ok {
			return fmt.Errorf("parquet: no column %q in the schema", name)
		}
		index[i] = col.ColumnIndex
	}
	pw := parquet.NewWriter(w, schema)
	row := make(parquet.Row, len(header))
	for _, cells := range rows {
		for i, v := range cells {
			if v == "" {
				row[index[i]] = parquet.NullValue().Level(0, 0, index[i])
			} else {
				row[index[i]] = parquet.ByteArrayValue([]byte(v)).Level(0, 1, index[i])
			}
		}
		if _, err := pw.WriteRows([]parquet.Row{slices.Clone(row)}); err != nil {
			return err
		}
	}
	return pw.Close()
}
