package ctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/document"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/audit"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
)

// The audit commands are the one place ledgerctl links the fold, the
// KurrentDB client and the embedded store: an auditor replays the history
// offline, from a copy, with nothing of ledgerd's running (README,
// "Auditing").

// AuditSource is the history an audit reads: a store's connection string,
// or a copy of a ledgerd data directory (or a backup), opened read-only.
type AuditSource struct {
	StoreURL string
	DataDir  string
}

// openHistory connects to the history: to the store at StoreURL, or to an
// embedded store serving DataDir's copy read-only on a loopback port of
// this process, through the official client either way.
func openHistory(src AuditSource) (*eventlog.Log, func(), error) {
	switch {
	case src.StoreURL != "" && src.DataDir != "":
		return nil, nil, usage("give either --eventstore-url or --data-dir, not both")
	case src.StoreURL != "":
		l, err := eventlog.Dial(src.StoreURL, nil)
		if err != nil {
			return nil, nil, err
		}
		return l, func() { l.Close() }, nil
	case src.DataDir == "":
		return nil, nil, usage("give --eventstore-url URL or --data-dir DIR (a copy of ledgerd's data directory)")
	}
	// A data directory holds the store in eventstore/; a backup
	// (ledgerctl backup) is the store itself.
	dir := filepath.Join(src.DataDir, "eventstore")
	if _, err := os.Stat(dir); err != nil {
		dir = src.DataDir
	}
	srv, err := eventstore.Open(eventstore.Config{Dir: dir, ReadOnly: true})
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	go srv.Serve(lis)
	l, err := eventlog.Dial("esdb://"+lis.Addr().String()+"?tls=false", nil)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return l, func() { l.Close(); srv.Close() }, nil
}

// AuditPublicKey prints the public half of ledgerd's signing key, read
// from keyFile or, if empty, from dataDir's signing.key.
func (c *Client) AuditPublicKey(dataDir, keyFile string) error {
	if keyFile == "" {
		keyFile = filepath.Join(dataDir, audit.KeyFile)
	}
	s, err := audit.LoadSigner(keyFile)
	if err != nil {
		return err
	}
	_, err = c.cfg.Out.Write(audit.PublicKeyPEM(s.Public()))
	return err
}

// ErrAuditFailed reports a history that did not pass verification.
var ErrAuditFailed = errors.New("the history did not pass verification")

// AuditVerify verifies the history against the public keys in
// publicKeyFile and prints what it checked; ErrAuditFailed (exit status 1)
// if anything is wrong, after printing the faults, the first at fault
// first.
func (c *Client) AuditVerify(ctx context.Context, src AuditSource, publicKeyFile string) error {
	if publicKeyFile == "" {
		return usage("--public-key FILE is required: the public key ledgerd signs with (ledgerctl audit public-key)")
	}
	text, err := os.ReadFile(publicKeyFile)
	if err != nil {
		return err
	}
	keys, err := audit.ParsePublicKeys(text)
	if err != nil {
		return fmt.Errorf("%s: %w", publicKeyFile, err)
	}
	log, closeLog, err := openHistory(src)
	if err != nil {
		return err
	}
	defer closeLog()
	rep, err := audit.Verify(ctx, log, audit.VerifyOptions{Keys: keys, Progress: func(p audit.Progress) {
		fmt.Fprintf(c.errOut(), "verified %d events, through position %d\n", p.Events, p.Position)
	}})
	if err != nil {
		return err
	}
	out := c.cfg.Out
	fmt.Fprintf(out, "Events read:          %d (through position %d)\n", rep.Events, rep.Position)
	fmt.Fprintf(out, "Signatures checked:   %d\n", rep.Signed)
	fmt.Fprintf(out, "Billing events:       %d, of which %d after the last seal (covered by their signatures)\n", rep.Chained, rep.Unsealed)
	fmt.Fprintf(out, "Seals checked:        %d\n", rep.Seals)
	fmt.Fprintf(out, "Documents checked:    %d\n", rep.Documents)
	if rep.Refused > 0 {
		fmt.Fprintf(out, "Refused by the rules: %d (as ledgerd refused them; they change no document)\n", rep.Refused)
	}
	if rep.Unrecorded > 0 {
		fmt.Fprintf(out, "Not yet recorded:     %d issued documents have no DocumentIssued yet (ledgerd records them when it next runs)\n", rep.Unrecorded)
	}
	if rep.OK() {
		fmt.Fprintln(out, "OK: the history is the one ledgerd wrote, and every issued document follows from it.")
		return nil
	}
	fmt.Fprintf(out, "FAILED: %d faults", rep.FaultCount)
	if int(rep.FaultCount) > len(rep.Faults) {
		fmt.Fprintf(out, " (the first %d listed)", len(rep.Faults))
	}
	fmt.Fprintln(out, ":")
	for _, f := range rep.Faults {
		fmt.Fprintf(out, "  %s\n", escape(f.String()))
	}
	return ErrAuditFailed
}

func (c *Client) errOut() interface{ Write([]byte) (int, error) } {
	if c.cfg.Err == nil {
		return discard{}
	}
	return c.cfg.Err
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// ReplayOptions name the document an audit replay prints.
type ReplayOptions struct {
	Through string // $all position, required
	BAN     string // with Month: the BAN's invoice or vendor view
	Org     string // with Month: the organization's usage month
	Month   string
	View    string // billing or vendor
	Lineage bool
}

// AuditReplay replays the history through a position and prints the
// document as it then was: what was known at that point.
func (c *Client) AuditReplay(ctx context.Context, src AuditSource, opt ReplayOptions) error {
	through, err := strconv.ParseUint(opt.Through, 10, 64)
	if err != nil || opt.Through == "" {
		return usage("--through-position: %q is not a $all position (a whole number)", opt.Through)
	}
	if (opt.BAN == "") == (opt.Org == "") {
		return usage("give either --ban or --org")
	}
	m, _, err := month("month", opt.Month, true)
	if err != nil {
		return err
	}
	v, err := parseView(opt.View)
	if err != nil {
		return err
	}
	view := billing.BillingCycle
	if v == billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE {
		view = billing.VendorCycle
	}
	log, closeLog, err := openHistory(src)
	if err != nil {
		return err
	}
	defer closeLog()
	p, err := audit.Replay(ctx, log, through, func(pr audit.Progress) {
		fmt.Fprintf(c.errOut(), "replayed %d events, through position %d\n", pr.Events, pr.Position)
	})
	if err != nil {
		return err
	}
	if opt.Org != "" {
		u, err := p.UsageMonth(opt.Org, m, view)
		if err != nil {
			return err
		}
		um := document.UsageMonth(u, opt.Lineage)
		if c.cfg.JSON {
			return c.printJSON(&billingv1.GetUsageMonthResponse{Month: um, Position: p.Position()})
		}
		fmt.Fprintf(c.cfg.Out, "Usage of %s in %s, %s view, as the history through position %d yields it.\n\n", escape(um.GetOrgId()), escape(um.GetMonth()), viewName(um.GetView()), through)
		return writeLines(c.cfg.Out, um.GetLines(), um.GetTotal(), true, opt.Lineage)
	}
	var doc *billing.Invoice
	if view == billing.VendorCycle {
		doc, err = p.VendorView(opt.BAN, m)
	} else {
		doc, err = p.Invoice(opt.BAN, m)
	}
	if err != nil {
		return err
	}
	inv := document.Invoice(doc, opt.Lineage)
	resp := &billingv1.GetInvoiceResponse{Invoice: inv, Position: p.Position()}
	if doc.Status == billing.Issued {
		if resp.Digest, err = document.DigestOf(doc); err != nil {
			return err
		}
	}
	if c.cfg.JSON {
		return c.printJSON(resp)
	}
	title := "Invoice"
	if view == billing.VendorCycle {
		title = "Vendor cycle view"
	}
	fmt.Fprintf(c.cfg.Out, "%s %s %s: %s\n", title, escape(inv.GetBan()), escape(inv.GetMonth()), invoiceState(inv, v))
	fmt.Fprintf(c.cfg.Out, "Organization %s, amounts in %s; as the history through position %d yields it.\n", escape(inv.GetOrgId()), escape(inv.GetCurrency()), through)
	if resp.Digest != "" {
		fmt.Fprintf(c.cfg.Out, "Digest %s\n", resp.Digest)
	}
	fmt.Fprintln(c.cfg.Out)
	return writeLines(c.cfg.Out, inv.GetLines(), inv.GetTotal(), false, opt.Lineage)
}
