package ctl

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/hierarchy"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// BatchRecordsMax is the number of rows of a FOCUS file per UsageReported
// message: ledgerd takes up to 10,000, and a thousand keeps every message
// far below NATS's default 1 MiB payload limit, with descriptions.
//
// It is part of every batch's identity (a batch's event_id derives from
// its rows), so changing it would make a file imported before and after
// the change bill twice: never.
const BatchRecordsMax = 1000

// problemsMax bounds the bad rows an import lists: enough to see a
// pattern; the rest are counted.
const problemsMax = 20

// Names of what --register creates in the organization.
const (
	registerCostCenter = "focus"
	registerWorkspace  = "focus"
	registerName       = "FOCUS import"
)

// ImportOptions configures ImportFOCUS.
type ImportOptions struct {
	// Org is the organization the file's accounts belong to; required.
	Org string
	// Register registers each account of the file as a provider of Org,
	// in a cost center and workspace "focus" billed to Org's default BAN,
	// and Org itself if ledgerd does not know it.
	Register bool
	// BAN and Name of Org, when Register registers it: default
	// "BAN-<org>" and the org id. Its currency is the first row's.
	BAN, Name string
}

// ImportSummary is what ImportFOCUS did; it is the --json output.
type ImportSummary struct {
	File string `json:"file"`
	// FocusVersion is the FOCUS version recognised from the columns.
	FocusVersion string   `json:"focus_version"`
	Org          string   `json:"org_id"`
	Rows         int      `json:"rows"`
	Batches      int      `json:"batches"`
	EventIDs     []string `json:"event_ids"`
	// Lineage says, per batch, which rows of the file it carries and the
	// InvoiceIds (FOCUS 1.2 and later) they name: an invoice detail's
	// event_ids lead to the batches, and these to the source rows.
	Lineage                []BatchLineage `json:"lineage"`
	Months                 []string       `json:"months"`
	Accounts               int            `json:"accounts"`
	RegisteredOrganization bool           `json:"registered_organization,omitempty"`
	RegisteredAccounts     int            `json:"registered_accounts,omitempty"`
}

// scan is what a first reading of a file finds.
type scan struct {
	version  string
	rows     int
	currency string
	months   map[calendar.Month]bool
	accounts []account // in order of first appearance
}

type account struct {
	vendor, id, name string
}

// ImportFOCUS imports a FOCUS file (1.0 to 1.4, the version recognised
// from its columns; CSV, gzip-compressed CSV or Parquet, recognised by its
// first bytes) as UsageReported messages of up to BatchRecordsMax rows,
// and waits until ledgerd has stored them all and its projections have
// applied them. Memory does not grow with the file: rows are streamed, a
// batch at a time.
//
// It reads the file twice. The first reading checks every row and
// publishes nothing if one is bad: a bad row is reported by line and
// column, with up to problemsMax of them, rather than skipped, because a
// skipped row would later be imported from a corrected file in a batch of
// other content, so every row of that batch would bill twice. The second
// reading publishes, batch by batch.
//
// A batch's event_id derives from its rows: for each, the vendor, the
// account, and the FOCUS Id (or, for a row without one, its line and its
// content). Importing the same file again publishes the same messages,
// which ledgerd takes once; a file whose rows reuse Ids with other amounts
// (a restatement) meets a conflict, reported, instead of billing twice.
func (c *Client) ImportFOCUS(ctx context.Context, path string, opt ImportOptions) error {
	if path == "" {
		return usage("import focus needs a FILE")
	}
	if err := required("org", opt.Org); err != nil {
		return err
	}
	check := c.newProgress(0)
	s, err := scanFOCUS(path, check.checked)
	check.done()
	if err != nil {
		return err
	}
	summary := &ImportSummary{File: path, FocusVersion: s.version, Org: opt.Org, Rows: s.rows, Accounts: len(s.accounts)}
	for m := range s.months {
		summary.Months = append(summary.Months, m.String())
	}
	slices.Sort(summary.Months)

	pub, err := c.publication(ctx)
	if err != nil {
		return err
	}
	if opt.Register {
		if err := c.register(ctx, pub, opt, s, summary); err != nil {
			return err
		}
	}
	prog := c.newProgress(s.rows)
	err = publishFOCUS(ctx, path, pub, prog, summary)
	if err == nil {
		err = pub.await(ctx, prog.ingested)
	}
	prog.done()
	if err != nil {
		return err
	}
	return c.reportImport(summary)
}

// scanFOCUS reads a whole file once, checking every row, and tells
// checked (if not nil) how many it has read so far.
func scanFOCUS(path string, checked func(rows int)) (*scan, error) {
	r, f, err := openFOCUS(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &scan{months: make(map[calendar.Month]bool), version: r.version}
	ferr := &FileError{File: path}
	note := func(ps ...RowProblem) {
		for _, p := range ps {
			if len(ferr.Problems) < problemsMax {
				ferr.Problems = append(ferr.Problems, p)
			} else {
				ferr.More++
			}
		}
	}
	seenAccount := make(map[[2]string]bool)
	batchIDs := make(map[string]int) // record_id -> line, within the batch being filled
	n := 0                           // rows of the batch being filled, good or bad
	for {
		row, problems, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if n == BatchRecordsMax {
			clear(batchIDs)
			n = 0
		}
		n++
		s.rows++
		if checked != nil {
			checked(s.rows)
		}
		if len(problems) > 0 {
			note(problems...)
			continue
		}
		rec := row.record
		// ledgerd refuses a message whose record ids repeat; say which
		// rows, rather than lose the batch to the dead letters.
		if first, dup := batchIDs[rec.RecordId]; dup {
			where := "line"
			if row.inRow {
				where = "row"
			}
			note(RowProblem{Line: row.line, InRow: row.inRow, Column: colID, Reason: fmt.Sprintf("%q repeats the Id of %s %d", rec.RecordId, where, first)})
			continue
		}
		batchIDs[rec.RecordId] = row.line
		if s.currency == "" {
			s.currency = rec.Cost.Currency
		}
		s.months[row.month] = true
		key := [2]string{hierarchy.VendorKey(rec.Vendor), rec.AccountId}
		if !seenAccount[key] {
			seenAccount[key] = true
			s.accounts = append(s.accounts, account{vendor: rec.Vendor, id: rec.AccountId, name: row.accountName})
		}
	}
	if len(ferr.Problems) > 0 {
		return nil, ferr
	}
	if s.rows == 0 {
		return nil, &FileError{File: path, Problems: []RowProblem{{Line: 2, Reason: "the file has a header but no rows"}}}
	}
	return s, nil
}

// publishFOCUS reads the file again and publishes its batches.
func publishFOCUS(ctx context.Context, path string, pub *publication, prog *progress, summary *ImportSummary) error {
	r, f, err := openFOCUS(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rows := 0
	batch := make([]*focusRow, 0, BatchRecordsMax)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		msg := usageBatch(batch)
		if err := pub.publish(ctx, msg); err != nil {
			return err
		}
		summary.Batches++
		summary.EventIDs = append(summary.EventIDs, msg.EventId)
		summary.Lineage = append(summary.Lineage, batchLineage(msg.EventId, batch))
		rows += len(batch)
		batch = batch[:0]
		prog.rows(rows, summary.Batches)
		return nil
	}
	for {
		row, problems, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if len(problems) > 0 {
			// The first reading found none: the file changed since.
			return fmt.Errorf("%s changed while being imported: %s", path, problems[0])
		}
		batch = append(batch, row)
		if len(batch) == BatchRecordsMax {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if rows != summary.Rows {
		return fmt.Errorf("%s changed while being imported: %d rows, then %d", path, summary.Rows, rows)
	}
	return nil
}

// BatchLineage is where one published batch came from.
type BatchLineage struct {
	EventID string `json:"event_id"`
	// FirstRow and LastRow are the lines (CSV) or rows (Parquet) of the
	// batch's first and last records.
	FirstRow int `json:"first_row"`
	LastRow  int `json:"last_row"`
	// InvoiceIDs are the distinct InvoiceIds of the batch's rows, in order
	// of first appearance; at most invoiceIDsMax.
	InvoiceIDs []string `json:"invoice_ids,omitempty"`
}

// invoiceIDsMax bounds the InvoiceIds a batch's lineage lists: a file
// names a handful, and the summary must not grow with a strange one.
const invoiceIDsMax = 16

func batchLineage(eventID string, rows []*focusRow) BatchLineage {
	l := BatchLineage{EventID: eventID, FirstRow: rows[0].line, LastRow: rows[len(rows)-1].line}
	for _, r := range rows {
		if id := r.record.InvoiceId; id != "" && len(l.InvoiceIDs) < invoiceIDsMax && !slices.Contains(l.InvoiceIDs, id) {
			l.InvoiceIDs = append(l.InvoiceIDs, id)
		}
	}
	return l
}

// usageBatch is the UsageReported of a batch of rows, with its event_id
// derived from them.
func usageBatch(rows []*focusRow) *billingv1.UsageReported {
	h := sha256.New()
	msg := &billingv1.UsageReported{Records: make([]*billingv1.UsageRecord, len(rows))}
	for i, row := range rows {
		r := row.record
		msg.Records[i] = r
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", hierarchy.VendorKey(r.Vendor), r.AccountId, r.RecordId)
		if !row.hasID {
			// "line-N" says where, not what: without an Id, the content is
			// the row's identity. Its content as ledgerctl read it before
			// records carried invoice_id and source: the same file makes
			// the same event_id across ledgerctl versions (a new one's
			// batch then meets the old one's as a conflict, never bills
			// twice), and source, which names the file, is no part of
			// what the row says.
			invoiceID, source := r.InvoiceId, r.Source
			r.InvoiceId, r.Source = "", ""
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			r.InvoiceId, r.Source = invoiceID, source
			h.Write(b)
		}
		h.Write([]byte{0x1e})
	}
	msg.EventId = "focus-" + hex.EncodeToString(h.Sum(nil))[:32]
	return msg
}

// register publishes what --register creates: the organization if ledgerd
// does not know it, and a cost center, a workspace and one provider per
// account of the file. Their event_ids derive from their content, so a
// second import publishes the same messages (taken once), and a provider
// named differently in a later file is a new version, never a conflict.
func (c *Client) register(ctx context.Context, pub *publication, opt ImportOptions, s *scan, summary *ImportSummary) error {
	_, err := call(ctx, c, billingv1.BillingServiceClient.ListExceptions, &billingv1.ListExceptionsRequest{OrgId: opt.Org, PageSize: 1})
	switch {
	case errors.Is(err, wire.ReasonUnknownOrganization):
		org := &billingv1.OrganizationRegistered{
			OrgId:    opt.Org,
			Name:     cmp.Or(opt.Name, opt.Org),
			Ban:      cmp.Or(opt.BAN, "BAN-"+opt.Org),
			Currency: s.currency,
		}
		if err := pub.publish(ctx, withContentID("ledgerctl-org-", org)); err != nil {
			return err
		}
		summary.RegisteredOrganization = true
	case err != nil:
		return err
	}
	for _, msg := range []proto.Message{
		&billingv1.CostCenterCreated{OrgId: opt.Org, CostCenterId: registerCostCenter, Name: registerName},
		&billingv1.WorkspaceCreated{OrgId: opt.Org, WorkspaceId: registerWorkspace, CostCenterId: registerCostCenter, Name: registerName},
	} {
		if err := pub.publish(ctx, withContentID("ledgerctl-", msg)); err != nil {
			return err
		}
	}
	for _, a := range s.accounts {
		p := &billingv1.ProviderRegistered{
			OrgId:       opt.Org,
			ProviderId:  boundedID("focus-" + hierarchy.VendorKey(a.vendor) + "-" + a.id),
			WorkspaceId: registerWorkspace,
			Vendor:      a.vendor,
			AccountId:   a.id,
			Name:        cmp.Or(a.name, a.id),
		}
		if err := pub.publish(ctx, withContentID("ledgerctl-provider-", p)); err != nil {
			return err
		}
		summary.RegisteredAccounts++
	}
	return nil
}

// withContentID sets a message's event_id to prefix and a digest of its
// content, and returns it.
func withContentID[M proto.Message](prefix string, msg M) M {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		panic(fmt.Sprintf("ctl: encode %T: %v", msg, err)) // an in-memory message always encodes
	}
	sum := sha256.Sum256(append([]byte(msg.ProtoReflect().Descriptor().FullName()+"\x00"), b...))
	id := prefix + hex.EncodeToString(sum[:12])
	msg.ProtoReflect().Set(msg.ProtoReflect().Descriptor().Fields().ByName("event_id"), protoreflect.ValueOfString(id))
	return msg
}

// boundedID keeps an id within idLengthMax: a long one is cut and ends
// with a digest of the whole, so two long ids stay distinct.
func boundedID(id string) string {
	if len(id) <= idLengthMax {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:idLengthMax-33] + "-" + hex.EncodeToString(sum[:16])
}

func (c *Client) reportImport(s *ImportSummary) error {
	if c.cfg.JSON {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.cfg.Out, "%s\n", b)
		return err
	}
	w := c.cfg.Out
	fmt.Fprintf(w, "Imported %s (FOCUS %s): %s %s in %s %s of UsageReported, for %s %s of organization %s.\n",
		filepath.Base(s.File), s.FocusVersion, thousands(s.Rows), plural(s.Rows, "row", "rows"), thousands(s.Batches), plural(s.Batches, "batch", "batches"),
		thousands(s.Accounts), plural(s.Accounts, "account", "accounts"), s.Org)
	if s.RegisteredOrganization {
		fmt.Fprintf(w, "Registered organization %s.\n", s.Org)
	}
	if s.RegisteredAccounts > 0 {
		fmt.Fprintf(w, "Registered %s %s as providers of %s, in cost center and workspace %q.\n",
			thousands(s.RegisteredAccounts), plural(s.RegisteredAccounts, "account", "accounts"), s.Org, registerWorkspace)
	}
	fmt.Fprintf(w, "ledgerd has stored and applied every message. Charges of %s.\n", strings.Join(s.Months, ", "))
	if len(s.Months) > 0 {
		last := s.Months[len(s.Months)-1]
		fmt.Fprintf(w, "\nNext, once the month is over and complete:\n  ledgerctl cycle close %s\n  ledgerctl usage --org %s --month %s\n", last, s.Org, last)
	}
	return nil
}
