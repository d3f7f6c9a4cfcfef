package ctl

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/cockroachdb/apd/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// The FOCUS 1.0 columns an import reads. Other columns are ignored.
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
)

// focusRequired are the columns without which a row cannot be billed.
var focusRequired = []string{
	colSubAccountID, colProviderName, colServiceName, colChargePeriodStart,
	colChargeCategory, colBilledCost, colBillingCurrency,
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

// chargeCategories are FOCUS 1.0's ChargeCategory values, by lower case.
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
const idLengthMax = 256

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
}

// focusReader reads the rows of a FOCUS 1.0 CSV file.
type focusReader struct {
	r   *csv.Reader
	col map[string]int
}

// newFocusReader reads the header. A missing required column is a
// *FileError naming it.
func newFocusReader(r io.Reader, file string) (*focusReader, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &FileError{File: file, Problems: []RowProblem{{Line: 1, Reason: "the file is empty; want a FOCUS 1.0 header line"}}}
	}
	if err != nil {
		return nil, csvError(file, err)
	}
	f := &focusReader{r: cr, col: make(map[string]int, len(header))}
	for i, name := range header {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")) // a BOM, as spreadsheets write
		if _, dup := f.col[name]; !dup {
			f.col[name] = i
		}
	}
	var missing []RowProblem
	for _, name := range focusRequired {
		if _, ok := f.col[name]; !ok {
			missing = append(missing, RowProblem{Line: 1, Column: name, Reason: "the header has no such column; FOCUS 1.0 requires it"})
		}
	}
	if len(missing) > 0 {
		return nil, &FileError{File: file, Problems: missing}
	}
	return f, nil
}

func csvError(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &FileError{File: file, Problems: []RowProblem{{Line: pe.StartLine, Reason: "not CSV: " + pe.Err.Error()}}}
	}
	return fmt.Errorf("read %s: %w", file, err)
}

// next returns the next row, or io.EOF. A row with bad cells returns nil
// and its problems; a line that is not CSV, a problem without a column;
// anything else (an I/O error), an error.
func (f *focusReader) next() (*focusRow, []RowProblem, error) {
	cells, err := f.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, []RowProblem{{Line: pe.StartLine, Reason: "not CSV: " + pe.Err.Error()}}, nil
		}
		return nil, nil, err
	}
	line, _ := f.r.FieldPos(0)
	return f.row(line, cells)
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
	row := &focusRow{line: line, record: r, accountName: f.cell(cells, colSubAccountName)}

	if provider := get(colProviderName, true); provider != "" {
		r.Vendor = Vendor(provider)
	}
	if id := get(colID, false); id != "" {
		r.RecordId, row.hasID = id, true
	} else {
		r.RecordId = fmt.Sprintf("line-%d", line)
	}
	if v := f.cell(cells, colChargeCategory); v == "" {
		bad(colChargeCategory, "is empty; a billed row needs it")
	} else if cat, ok := chargeCategories[strings.ToLower(v)]; ok {
		r.ChargeCategory = cat
	} else {
		bad(colChargeCategory, "%q is not a FOCUS 1.0 charge category (Usage, Purchase, Credit, Tax or Adjustment)", v)
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
