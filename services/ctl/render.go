package ctl

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// table is an aligned text table: a header, rows, and the columns whose
// cells are right-aligned (amounts).
type table struct {
	header []string
	rows   [][]string
	right  map[int]bool
}

func newTable(header ...string) *table {
	return &table{header: header, right: make(map[int]bool)}
}

// alignRight right-aligns the columns at these indexes.
func (t *table) alignRight(cols ...int) *table {
	for _, c := range cols {
		t.right[c] = true
	}
	return t
}

// add appends a row. Every cell is escaped: names, aliases and
// descriptions come from the history, which a careless or hostile
// publisher wrote, and a newline, a tab or an ANSI escape sequence in one
// must not garble the table or the terminal.
func (t *table) add(cells ...string) {
	for i := range cells {
		cells[i] = escape(cells[i])
	}
	t.rows = append(t.rows, cells)
}

// escape writes the control characters of s (and bytes that are not
// UTF-8) as Go escapes (\n, \x1b, \ufffd), leaving everything else as it is.
func escape(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, "\\x%02x", s[i])
				continue
			}
			b.WriteString(`\ufffd`)
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// write lays the table out with text/tabwriter. tabwriter aligns every
// column to the left; right-aligned columns are padded here, to the width
// of their widest cell, before it sees them.
func (t *table) write(w io.Writer) error {
	width := make(map[int]int)
	for _, row := range append([][]string{t.header}, t.rows...) {
		for i, cell := range row {
			if t.right[i] {
				width[i] = max(width[i], utf8.RuneCountInString(cell))
			}
		}
	}
	var out bytes.Buffer
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	for _, row := range append([][]string{t.header}, t.rows...) {
		cells := make([]string, len(row))
		for i, cell := range row {
			if t.right[i] {
				cell = strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)) + cell
			}
			cells[i] = cell
		}
		// Every cell is written, empty ones too: tabwriter's columns are
		// runs of lines with a cell there, so a row ending early (a
		// lineage row under a detail) would align the rows below it
		// apart from those above.
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Trailing blanks, the padding of empty last cells, would only be
	// noise.
	for line := range strings.Lines(out.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// jsonOptions is how responses print with --json: protojson with the
// field names of the .proto files, as the API documents them.
var jsonOptions = protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true}

func (c *Client) printJSON(m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("ctl: encode %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	_, err = fmt.Fprintf(c.cfg.Out, "%s\n", b)
	return err
}

// amount writes a Money as a table shows it: "4.00 USD".
func amount(m *billingv1.Money) string {
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m.GetAmount() + " " + m.GetCurrency())
}

// statusName, kindName, viewName and exceptionName drop the enum prefixes
// that the wire needs and a table does not.
func statusName(s billingv1.InvoiceStatus) string {
	return strings.TrimPrefix(s.String(), "INVOICE_STATUS_")
}

func viewName(v billingv1.BillingView) string {
	switch v {
	case billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE:
		return "vendor cycle"
	default:
		return "billing cycle"
	}
}

var kindNames = map[billingv1.LineKind]string{
	billingv1.LineKind_LINE_KIND_CHARGES:                   "charges",
	billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT: "inter-customer",
	billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT:      "intra-org",
	billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE:     "previous month",
	billingv1.LineKind_LINE_KIND_POST_BILL_UPDATE:          "post-bill",
}

func kindName(k billingv1.LineKind) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return k.String()
}

var exceptionNames = map[billingv1.ExceptionKind]string{
	billingv1.ExceptionKind_EXCEPTION_KIND_UNASSIGNED_USAGE:   "unassigned usage",
	billingv1.ExceptionKind_EXCEPTION_KIND_PENDING_RI_BENEFIT: "pending RI benefit",
	billingv1.ExceptionKind_EXCEPTION_KIND_CURRENCY_MISMATCH:  "currency mismatch",
	billingv1.ExceptionKind_EXCEPTION_KIND_INVALID_RECORD:     "invalid record",
}

func exceptionName(k billingv1.ExceptionKind) string {
	if n, ok := exceptionNames[k]; ok {
		return n
	}
	return k.String()
}

// writeLines writes invoice lines, each followed by its details (service,
// region, amount) indented under it, and a total. withBAN adds the BAN of
// each line, for documents spanning an organization's BANs. lineage adds,
// under each detail, one row per event_id behind it, indented further:
// one per row, because an audit follows them one at a time and greps for
// them, and a detail may have many.
func writeLines(w io.Writer, lines []*billingv1.InvoiceLine, total *billingv1.Money, withBAN, lineage bool) error {
	header := []string{"VENDOR", "ACCOUNT", "NAME", "COST CENTER", "MONTH", "DESCRIPTION", "DETAIL", "AMOUNT"}
	if withBAN {
		header = append([]string{"BAN"}, header...)
	}
	t := newTable(header...).alignRight(len(header)-2, len(header)-1)
	row := func(ban string, cells ...string) {
		if withBAN {
			cells = append([]string{ban}, cells...)
		}
		t.add(cells...)
	}
	for _, l := range lines {
		row(l.GetBan(), l.GetVendor(), l.GetAccountId(), l.GetProviderName(), l.GetCostCenterId(), l.GetForMonth(),
			l.GetDescription(), "", amount(l.GetAmount()))
		for _, d := range l.GetDetails() {
			row("", "", "", "", "", "", "  "+detailName(d), amount(d.GetAmount()), "")
			if !lineage {
				continue
			}
			for _, id := range d.GetEventIds() {
				row("", "", "", "", "", "", "    event "+id, "", "")
			}
		}
	}
	last := make([]string, len(header))
	if len(lines) == 0 {
		last[len(header)-3] = "(no lines)"
		t.add(last...)
		last = make([]string, len(header))
	}
	last[0], last[len(header)-1] = "TOTAL", amount(total)
	t.add(last...)
	return t.write(w)
}

// detailName says what a detail is: its service, and its region or its
// own description ("Amazon EC2 (us-east-1)", "Amazon EC2 (Vendor
// reconciliation)"); a detail with neither is a global service.
func detailName(d *billingv1.InvoiceLineDetail) string {
	var about []string
	if d.GetRegion() != "" {
		about = append(about, d.GetRegion())
	}
	if d.GetDescription() != "" {
		about = append(about, d.GetDescription())
	}
	if len(about) == 0 {
		about = append(about, "global")
	}
	return d.GetService() + " (" + strings.Join(about, ", ") + ")"
}

// sum adds amounts that the service wrote, exactly; they all carry the
// currency's minor-unit digits, so the sum does too.
func sum(currency string, amounts ...*billingv1.Money) (*billingv1.Money, error) {
	c, err := money.ParseCurrency(currency)
	if err != nil {
		return nil, err
	}
	var total, x apd.Decimal
	for _, a := range amounts {
		if err := money.ParseDecimal(&x, a.GetAmount()); err != nil {
			return nil, fmt.Errorf("ctl: amount from ledgerd: %w", err)
		}
		money.Add(&total, &total, &x)
	}
	return &billingv1.Money{Amount: money.Format(&total, c), Currency: c.Code()}, nil
}

// barWidthMax is the width of the dashboard's longest bar, in characters.
const barWidthMax = 40

// bar draws amount as a bar scaled to peak: an integer division of exact
// decimals (money is never a float, not even for a picture). Zero and
// negative amounts have no bar; any positive amount has at least one mark.
func bar(amount, peak *apd.Decimal) string {
	if amount.Sign() <= 0 || peak.Sign() <= 0 {
		return ""
	}
	ctx := apd.BaseContext.WithPrecision(34)
	var scaled, n apd.Decimal
	if _, err := ctx.Mul(&scaled, amount, apd.New(barWidthMax, 0)); err != nil {
		return ""
	}
	if _, err := ctx.QuoInteger(&n, &scaled, peak); err != nil {
		return ""
	}
	width, err := n.Int64()
	if err != nil {
		return ""
	}
	return strings.Repeat("█", int(min(max(width, 1), barWidthMax)))
}
