package ctl

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// The FOCUS columns an import reads. Other columns, x_ columns among
// them, are ignored.
const (
	colSubAccountID         = "SubAccountId"
	colSubAccountName       = "SubAccountName"
	colProviderName         = "ProviderName"
	colServiceName          = "ServiceName"
	colRegionID             = "RegionId"
	colChargePeriodStart    = "ChargePeriodStart"
	colChargePeriodEnd      = "ChargePeriodEnd"
	colChargeCategory       = "ChargeCategory"
	colBilledCost           = "BilledCost"
	colBillingCurrency      = "BillingCurrency"
	colID                   = "Id"
	colConsumedQuantity     = "ConsumedQuantity"
	colConsumedUnit         = "ConsumedUnit"
	colChargeDescription    = "ChargeDescription"
	colCommitmentDiscountID = "CommitmentDiscountId"
	colChargeClass          = "ChargeClass"
	colInvoiceID            = "InvoiceId"
	// FOCUS 1.3 added ServiceProviderName and HostProviderName beside
	// ProviderName and PublisherName; 1.4 dropped the latter two.
	colServiceProviderName = "ServiceProviderName"
	colHostProviderName    = "HostProviderName"
	colInvoiceDetailID     = "InvoiceDetailId"
	colBillingAccountType  = "BillingAccountType"
	colSubAccountType      = "SubAccountType"
)

// focusRequired are the columns without which a row cannot be billed; the
// provider is ProviderName or, from FOCUS 1.3, ServiceProviderName
// (checked apart).
var focusRequired = []string{
	colSubAccountID, colServiceName, colChargePeriodStart,
	colChargeCategory, colBilledCost, colBillingCurrency,
}

// FOCUS versions as recognised from a header's columns.
const (
	Focus10 = "1.0"
	Focus11 = "1.1"
	Focus12 = "1.2"
	Focus13 = "1.3"
	Focus14 = "1.4"
)

// focusVersion recognises the FOCUS version of a header by the columns
// each version added or dropped: 1.4 drops ProviderName for
// ServiceProviderName and adds InvoiceDetailId; 1.3 adds
// ServiceProviderName and HostProviderName (or the allocation and
// contract columns) beside ProviderName; 1.2 adds InvoiceId,
// BillingAccountType and SubAccountType; 1.1 adds the capacity
// reservation, SKU meter and subcategory columns. A file that has none of
// them reads as 1.0. A version is the least that explains the columns: a
// 1.2 export that omits every optional 1.2 column reads as 1.0, which
// changes nothing in what is billed.
func focusVersion(has func(string) bool) string {
	switch {
	case has(colInvoiceDetailID), has(colServiceProviderName) && !has(colProviderName):
		return Focus14
	case has(colServiceProviderName), has(colHostProviderName), has("ContractApplied"), has("AllocatedMethodId"):
		return Focus13
	case has(colInvoiceID), has(colBillingAccountType), has(colSubAccountType):
		return Focus12
	case has("CapacityReservationId"), has("SkuMeter"), has("ServiceSubcategory"), has("CommitmentDiscountQuantity"):
		return Focus11
	}
	return Focus10
}

// vendors maps FOCUS ProviderName values, case-insensitively, to the
// vendor names Ledger uses (AWS, Azure, GCP, Oracle). FOCUS names the company
// ("Microsoft"), Ledger the cloud ("Azure"). A provider not listed keeps
// its own name, which Ledger accepts as any other non-empty vendor.
var vendors = map[string]string{
	"aws":                         "AWS",
	"amazon":                      "AWS",
	"amazon web services":         "AWS",
	"microsoft":                   "Azure",
	"microsoft azure":             "Azure",
	"azure":                       "Azure",
	"google":                      "GCP",
	"google cloud":                "GCP",
	"google cloud platform":       "GCP",
	"gcp":                         "GCP",
	"oracle":                      "Oracle",
	"oracle cloud infrastructure": "Oracle",
	"oci":                         "Oracle",
}

// Vendor returns Ledger's vendor name for a FOCUS ProviderName.
func Vendor(providerName string) string {
	name := strings.TrimSpace(providerName)
	if v, ok := vendors[strings.ToLower(name)]; ok {
		return v
	}
	return name
}

// chargeCategories are FOCUS's ChargeCategory values (1.0 to 1.4), by
// lower case.
var chargeCategories = map[string]string{
	"usage": "Usage", "purchase": "Purchase", "credit": "Credit", "tax": "Tax", "adjustment": "Adjustment",
}

// timeLayouts are the forms of FOCUS date-times accepted: ISO 8601 in UTC,
// with or without the T and the zone (FOCUS requires UTC, so a time
// without a zone is UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// idLengthMax is the longest id ledgerd accepts (services/ingest): a row
// with a longer one is refused here, by line, rather than as a whole batch
// in the dead letters.
const idLengthMax = wire.IDLengthMax

// sourceNameMax bounds the file name a record's source carries: with the
// row's number it stays within the text ledgerd accepts
// (wire.TextLengthMax), however long a name the file system allows.
const sourceNameMax = 512

// focusRow is one row of a FOCUS file as a usage record.
type focusRow struct {
	line   int // the line of the file the row starts on
	record *billingv1.UsageRecord
	// hasID reports a row with an Id; record_id is "line-N" otherwise.
	hasID bool
	// accountName is SubAccountName, which names the provider of an
	// account that the import registers.
	accountName string
	month       calendar.Month
	// inRow says line counts the rows of a Parquet file.
	inRow bool
}

// focusReader reads the rows of a FOCUS file, from whichever source
// (CSV, gzip-compressed CSV, Parquet) holds them.
type focusReader struct {
	src     rowSource
	col     map[string]int
	version string
	// rowName prefixes the record_id of a row without an Id: "line-" (of
	// a CSV file) or "row-" (of a Parquet file), then its number.
	rowName string
	// name is the file's base name, which each record's source names
	// (without the directory: the same file imported from elsewhere is
	// the same source).
	name string
}

// rowSource yields the cells of a file's rows, each with where it is.
// A row that cannot be read (not CSV, a truncated gzip stream) is a
// problem without a column; an I/O error, an error; io.EOF at the end.
type rowSource interface {
	next() (line int, cells []string, problem *RowProblem, err error)
}

// newFocusReader reads the header of a CSV file. A missing required
// column is a *FileError naming it.
func newFocusReader(r io.Reader, file string) (*focusReader, error) {
	src, header, err := newCSVSource(r, file)
	if err != nil {
		return nil, err
	}
	return newFocusReaderOf(src, header, file, RowProblem{Line: 1})
}

// newFocusReaderOf maps a header's columns and checks the required ones
// are there; at says where a problem with the header is reported.
func newFocusReaderOf(src rowSource, header []string, file string, at RowProblem) (*focusReader, error) {
	f := &focusReader{src: src, col: make(map[string]int, len(header)), rowName: "line-", name: sourceName(file)}
	if at.InRow {
		f.rowName = "row-"
	}
	for i, name := range header {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")) // a BOM, as spreadsheets write
		if _, dup := f.col[name]; !dup {
			f.col[name] = i
		}
	}
	has := func(name string) bool { _, ok := f.col[name]; return ok }
	f.version = focusVersion(has)
	var missing []RowProblem
	headerProblem := func(col, reason string) {
		p := at
		p.Column, p.Reason = col, reason
		missing = append(missing, p)
	}
	for _, name := range focusRequired {
		if !has(name) {
			headerProblem(name, "the header has no such column; FOCUS requires it")
		}
	}
	if !has(colProviderName) && !has(colServiceProviderName) {
		headerProblem(colProviderName, "the header has neither ProviderName (FOCUS 1.0 to 1.3) nor ServiceProviderName (1.3 and later)")
	}
	if len(missing) > 0 {
		return nil, &FileError{File: file, Problems: missing}
	}
	return f, nil
}

// next returns the next row, or io.EOF. A row with bad cells returns nil
// and its problems; a row that cannot be read, a problem without a
// column; anything else (an I/O error), an error.
func (f *focusReader) next() (*focusRow, []RowProblem, error) {
	line, cells, problem, err := f.src.next()
	if err != nil {
		return nil, nil, err
	}
	if problem != nil {
		return nil, []RowProblem{*problem}, nil
	}
	row, problems, err := f.row(line, cells)
	if f.rowName == "row-" {
		for i := range problems {
			problems[i].InRow = true
		}
		if row != nil {
			row.inRow = true
		}
	}
	return row, problems, err
}

// cell returns the value of a column, "" for NULL, an empty cell or a
// column the file does not have.
func (f *focusReader) cell(cells []string, name string) string {
	i, ok := f.col[name]
	if !ok || i >= len(cells) {
		return ""
	}
	v := strings.TrimSpace(cells[i])
	if v == "NULL" {
		return ""
	}
	return v
}

func (f *focusReader) row(line int, cells []string) (*focusRow, []RowProblem, error) {
	var problems []RowProblem
	bad := func(col, format string, args ...any) {
		problems = append(problems, RowProblem{Line: line, Column: col, Reason: fmt.Sprintf(format, args...)})
	}
	get := func(col string, required bool) string {
		v := f.cell(cells, col)
		switch {
		case v == "" && required:
			bad(col, "is empty; a billed row needs it")
		case len(v) > idLengthMax:
			bad(col, "is %d bytes long; at most %d", len(v), idLengthMax)
		case !printable(v):
			bad(col, "%q holds control characters", v)
		}
		return v
	}
	r := &billingv1.UsageRecord{
		AccountId:    get(colSubAccountID, true),
		Service:      get(colServiceName, true),
		Region:       get(colRegionID, false),
		Unit:         f.cell(cells, colConsumedUnit),
		Description:  f.cell(cells, colChargeDescription),
		CommitmentId: get(colCommitmentDiscountID, false),
	}
	// InvoiceId and where the row is go into the history with the
	// record, so that a charge leads back to the vendor's invoice and to
	// the row it was read from.
	r.InvoiceId = get(colInvoiceID, false)
	if f.rowName == "row-" {
		r.Source = fmt.Sprintf("%s:row %d", f.name, line)
	} else {
		r.Source = fmt.Sprintf("%s:%d", f.name, line)
	}
	row := &focusRow{line: line, record: r, accountName: f.cell(cells, colSubAccountName)}

	providerCol := colProviderName
	if _, ok := f.col[colProviderName]; !ok {
		providerCol = colServiceProviderName // FOCUS 1.4
	}
	if provider := get(providerCol, true); provider != "" {
		r.Vendor = Vendor(provider)
	}
	if id := get(colID, false); id != "" {
		r.RecordId, row.hasID = id, true
	} else {
		r.RecordId = fmt.Sprintf("%s%d", f.rowName, line)
	}
	// A Correction (FOCUS 1.2 and later) is billed as any late usage: by
	// its charge period, on the invoice of its month if still open, else
	// as an "Update to Previous Month's" line of the next one. That is
	// FOCUS's delta style of correction, which is Ledger's own.
	if v := f.cell(cells, colChargeClass); v != "" && !strings.EqualFold(v, "Correction") {
		bad(colChargeClass, "%q is not a FOCUS charge class (Correction, or empty)", v)
	}
	if v := f.cell(cells, colChargeCategory); v == "" {
		bad(colChargeCategory, "is empty; a billed row needs it")
	} else if cat, ok := chargeCategories[strings.ToLower(v)]; ok {
		r.ChargeCategory = cat
	} else {
		bad(colChargeCategory, "%q is not a FOCUS charge category (Usage, Purchase, Credit, Tax or Adjustment)", v)
	}

	start, err := focusTime(f.cell(cells, colChargePeriodStart), true)
	if err != nil {
		bad(colChargePeriodStart, "%v", err)
	} else {
		r.ChargePeriodStart = timestamppb.New(start)
		row.month = calendar.Of(start)
	}
	if end, err := focusTime(f.cell(cells, colChargePeriodEnd), false); err != nil {
		bad(colChargePeriodEnd, "%v", err)
	} else if !end.IsZero() {
		r.ChargePeriodEnd = timestamppb.New(end)
		if r.ChargePeriodStart != nil && end.Before(start) {
			bad(colChargePeriodEnd, "%s is before ChargePeriodStart %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
		}
	}

	cost := &billingv1.Money{}
	if v := f.cell(cells, colBilledCost); v == "" {
		bad(colBilledCost, "is empty; a billed row needs an amount")
	} else if cost.Amount, err = decimal(v); err != nil {
		bad(colBilledCost, "%q is not a decimal amount", v)
	}
	if v := f.cell(cells, colBillingCurrency); v == "" {
		bad(colBillingCurrency, "is empty; a billed row needs a currency")
	} else if c, err := money.ParseCurrency(strings.ToUpper(v)); err != nil {
		bad(colBillingCurrency, "%q is not an ISO 4217 currency code", v)
	} else {
		cost.Currency = c.Code()
	}
	r.Cost = cost
	if v := f.cell(cells, colConsumedQuantity); v != "" {
		if r.Quantity, err = decimal(v); err != nil {
			bad(colConsumedQuantity, "%q is not a decimal quantity", v)
		}
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	return row, nil, nil
}

// focusTime reads a FOCUS date-time; empty is the zero time, an error
// only if required.
func focusTime(s string, required bool) (time.Time, error) {
	if s == "" {
		if required {
			return time.Time{}, errors.New("is empty; a billed row needs the start of its charge period")
		}
		return time.Time{}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if err := timestamppb.New(t).CheckValid(); err != nil {
				return time.Time{}, fmt.Errorf("%q is out of range: %v", s, err)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time like 2024-09-01T00:00:00Z or 2024-09-01 00:00:00", s)
}

// decimal reads an amount as FOCUS writers write them, exponents included
// ("1.5E-7"), and returns it as the plain decimal Ledger's messages carry.
// Exact: apd converts the notation without rounding.
func decimal(s string) (string, error) {
	var d apd.Decimal
	if err := money.ParseDecimal(&d, s); err == nil {
		return s, nil
	}
	if _, _, err := d.SetString(s); err != nil || d.Form != apd.Finite {
		return "", fmt.Errorf("%q is not a decimal", s)
	}
	plain := d.Text('f')
	if err := money.ParseDecimal(&d, plain); err != nil {
		return "", err
	}
	return plain, nil
}

// sourceName is the name of a file as a record's source: its base name,
// control characters replaced (ledgerd refuses them in text) and cut to
// sourceNameMax bytes.
func sourceName(file string) string {
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(filepath.Base(file), "?"))
	if len(name) > sourceNameMax {
		name = strings.ToValidUTF8(name[:sourceNameMax], "")
	}
	return name
}

// printable reports whether s has no control characters, which ledgerd
// refuses in ids.
func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}
