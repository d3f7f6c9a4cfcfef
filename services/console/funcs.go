package console

import (
	"html/template"
	"strconv"
	"strings"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// funcs are the templates' functions.
var funcs = template.FuncMap{
	"kind":   kindName,
	"status": statusName,
	"exception": func(k billingv1.ExceptionKind) string {
		return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k.String(), "EXCEPTION_KIND_"), "_", " "))
	},
	"link": link,
	"itoa": strconv.Itoa,
	"f":    func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"money": func(m *billingv1.Money) string {
		if m == nil {
			return ""
		}
		return m.GetAmount()
	},
	"negative": func(m *billingv1.Money) bool { return strings.HasPrefix(m.GetAmount(), "-") },
	"region": func(s string) string {
		if s == "" {
			return "global"
		}
		return s
	},
}

// kindName is a line kind as people read it.
func kindName(k billingv1.LineKind) string {
	switch k {
	case billingv1.LineKind_LINE_KIND_CHARGES:
		return "Charges"
	case billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT:
		return "Inter-Customer Adjustment"
	case billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT:
		return "Intra-Org Adjustment"
	case billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE:
		return "Update to Previous Month"
	case billingv1.LineKind_LINE_KIND_POST_BILL_UPDATE:
		return "Post-Bill Update"
	}
	return k.String()
}

// statusName is an invoice status as people read it.
func statusName(s billingv1.InvoiceStatus) string {
	switch s {
	case billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT:
		return "draft"
	case billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED:
		return "issued"
	}
	return s.String()
}
