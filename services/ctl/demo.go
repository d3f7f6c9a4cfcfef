package ctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
	"github.com/ledger-billing/ledger/services/wire"
)

// The demo's organizations, BANs and months: fixed, so that its invoices
// are the same everywhere and a second run bills nothing more.
const (
	DemoOrg       = "acme"
	DemoOtherOrg  = "globex"
	DemoBAN       = "BAN-1001" // acme's default BAN: cost center cc-eng
	DemoDataBAN   = "BAN-1002" // cost center cc-data's own BAN
	DemoOtherBAN  = "BAN-2001" // globex
	DemoFirst     = "2025-01"
	DemoLast      = "2025-03"
	DemoFinalized = "2025-02" // the one finalized vendor cycle
)

// Demo accounts.
const (
	demoProd      = "111111111111"                         // AWS, acme Engineering: buys the RI
	demoStaging   = "222222222222"                         // AWS, acme Engineering
	demoAnalytics = "333333333333"                         // AWS, acme Data Science
	demoWeb       = "8f3c2a1e-4b5d-4c6e-9f70-112233445566" // Azure subscription, acme Engineering
	demoML        = "acme-ml-prod"                         // GCP project, acme Data Science
	demoSandbox   = "acme-sandbox"                         // GCP project nobody registered
	demoGlobex    = "999999999999"                         // AWS, globex: uses acme's RI
	demoRI        = "ri-0a1b2c3d4e5f"
)

// DemoMessages is the demo's history, in publishing order: two
// organizations, acme with two cost centers (one with its own BAN) and
// accounts at AWS, Azure and GCP, and globex with one AWS account; three
// months of usage; in January an RI bought by acme's production account
// whose benefit goes to two acme accounts and to globex; February's cycle
// closed, then a late February record and AWS's reconciliation of
// February, then February's vendor cycle finalized; and March's usage,
// with some from an account nobody registered (an exception), closed.
//
// Every figure is chosen so that the invoices can be derived by hand
// (docs/architecture.md, "The month's bill"): see demo_test.go.
func DemoMessages() []proto.Message {
	var msgs []proto.Message
	add := func(m ...proto.Message) { msgs = append(msgs, m...) }

	add(
		&billingv1.OrganizationRegistered{EventId: "ledgerctl-demo-org-acme", OrgId: DemoOrg, Name: "Acme Corp", Ban: DemoBAN, Currency: "USD"},
		&billingv1.CostCenterCreated{EventId: "ledgerctl-demo-cc-eng", OrgId: DemoOrg, CostCenterId: "cc-eng", Name: "Engineering"},
		&billingv1.CostCenterCreated{EventId: "ledgerctl-demo-cc-data", OrgId: DemoOrg, CostCenterId: "cc-data", Name: "Data Science", Ban: DemoDataBAN},
		&billingv1.WorkspaceCreated{EventId: "ledgerctl-demo-ws-platform", OrgId: DemoOrg, WorkspaceId: "ws-platform", CostCenterId: "cc-eng", Name: "Platform"},
		&billingv1.WorkspaceCreated{EventId: "ledgerctl-demo-ws-analytics", OrgId: DemoOrg, WorkspaceId: "ws-analytics", CostCenterId: "cc-data", Name: "Analytics"},
		demoProvider(DemoOrg, "p-aws-prod", "ws-platform", "AWS", demoProd, "Production", "prod"),
		demoProvider(DemoOrg, "p-aws-staging", "ws-platform", "AWS", demoStaging, "Staging", "staging"),
		demoProvider(DemoOrg, "p-azure-web", "ws-platform", "Azure", demoWeb, "Web Apps", "web"),
		demoProvider(DemoOrg, "p-aws-analytics", "ws-analytics", "AWS", demoAnalytics, "Analytics", "analytics"),
		demoProvider(DemoOrg, "p-gcp-ml", "ws-analytics", "GCP", demoML, "ML Training", "ml"),

		&billingv1.OrganizationRegistered{EventId: "ledgerctl-demo-org-globex", OrgId: DemoOtherOrg, Name: "Globex Inc", Ban: DemoOtherBAN, Currency: "USD"},
		&billingv1.CostCenterCreated{EventId: "ledgerctl-demo-cc-ops", OrgId: DemoOtherOrg, CostCenterId: "cc-ops", Name: "Operations"},
		&billingv1.WorkspaceCreated{EventId: "ledgerctl-demo-ws-main", OrgId: DemoOtherOrg, WorkspaceId: "ws-main", CostCenterId: "cc-ops", Name: "Main"},
		demoProvider(DemoOtherOrg, "p-aws-main", "ws-main", "AWS", demoGlobex, "Globex Main", "main"),

		&billingv1.ReservedInstancePurchased{EventId: "ledgerctl-demo-ri-purchase", RiId: demoRI, Vendor: "AWS", AccountId: demoProd,
			Service: "Amazon EC2", Region: "us-east-1", InstanceType: "m5.xlarge",
			TermStart: demoTime("2025-01-01T00:00:00Z"), TermEnd: demoTime("2026-01-01T00:00:00Z")},
	)

	// January: the RI's fee and a promotional credit on the production
	// account, usage elsewhere (two EC2 records of staging sum to 250.00
	// exactly), and the RI's benefits.
	add(&billingv1.UsageReported{EventId: "ledgerctl-demo-usage-2025-01", Records: []*billingv1.UsageRecord{
		demoRecord("r01", "AWS", demoProd, "Amazon EC2", "us-east-1", "Purchase", "2025-01-01", "300.00", "RI fee, m5.xlarge, 1 year", demoRI),
		demoRecord("r02", "AWS", demoProd, "Amazon EC2", "us-east-1", "Credit", "2025-01-15", "-20.00", "Promotional credit", ""),
		demoRecord("r03", "AWS", demoStaging, "Amazon EC2", "us-east-1", "Usage", "2025-01-10", "120.1234", "m5.large hours", ""),
		demoRecord("r04", "AWS", demoStaging, "Amazon EC2", "us-east-1", "Usage", "2025-01-20", "129.8766", "m5.large hours", ""),
		demoRecord("r05", "AWS", demoAnalytics, "Amazon EC2", "us-east-1", "Usage", "2025-01-10", "180.00", "c5.xlarge hours", ""),
		demoRecord("r06", "AWS", demoAnalytics, "Amazon S3", "us-east-1", "Usage", "2025-01-10", "20.00", "Standard storage", ""),
		demoRecord("r07", "Azure", demoWeb, "Virtual Machines", "westeurope", "Usage", "2025-01-12", "180.00", "D4s v5 hours", ""),
		demoRecord("r08", "Azure", demoWeb, "Storage", "westeurope", "Usage", "2025-01-12", "20.00", "Hot block blobs", ""),
		demoRecord("r09", "GCP", demoML, "Compute Engine", "us-central1", "Usage", "2025-01-08", "100.00", "n2-standard-8 hours", ""),
		demoRecord("r10", "AWS", demoGlobex, "Amazon EC2", "us-east-1", "Usage", "2025-01-05", "75.00", "t3.large hours", ""),
	}})
	add(&billingv1.ReservedInstanceBenefitReported{EventId: "ledgerctl-demo-ri-benefits-2025-01", Month: "2025-01", Benefits: []*billingv1.ReservedInstanceBenefit{
		{RiId: demoRI, ConsumerAccountId: demoStaging, Amount: usd("150.00")},
		{RiId: demoRI, ConsumerAccountId: demoAnalytics, Amount: usd("100.00")},
		{RiId: demoRI, ConsumerAccountId: demoGlobex, Amount: usd("50.00")},
	}})
	add(CloseMessage(demoMonth("2025-01")))

	// February: the two ML records sum to 90.005, billed as 90.01.
	add(&billingv1.UsageReported{EventId: "ledgerctl-demo-usage-2025-02", Records: []*billingv1.UsageRecord{
		demoRecord("r01", "AWS", demoProd, "Amazon EC2", "us-east-1", "Usage", "2025-02-03", "60.00", "m5.large hours", ""),
		demoRecord("r02", "AWS", demoStaging, "Amazon EC2", "us-east-1", "Usage", "2025-02-03", "210.00", "m5.large hours", ""),
		demoRecord("r03", "AWS", demoAnalytics, "Amazon EC2", "us-east-1", "Usage", "2025-02-03", "150.00", "c5.xlarge hours", ""),
		demoRecord("r04", "Azure", demoWeb, "Virtual Machines", "westeurope", "Usage", "2025-02-03", "170.00", "D4s v5 hours", ""),
		demoRecord("r05", "GCP", demoML, "Compute Engine", "us-central1", "Usage", "2025-02-03", "60.0025", "n2-standard-8 hours", ""),
		demoRecord("r06", "GCP", demoML, "Compute Engine", "us-central1", "Usage", "2025-02-17", "30.0025", "n2-standard-8 hours", ""),
		demoRecord("r07", "AWS", demoGlobex, "Amazon EC2", "us-east-1", "Usage", "2025-02-05", "80.00", "t3.large hours", ""),
	}})
	add(CloseMessage(demoMonth("2025-02")))
	// After February's close: a late record, and AWS's reconciliation
	// saying staging's EC2 cost 215.00, not 210.00. Both are post-bill
	// updates in February's vendor view and updates on March's invoice.
	add(&billingv1.UsageReported{EventId: "ledgerctl-demo-usage-2025-02-late", Records: []*billingv1.UsageRecord{
		demoRecord("r01", "Azure", demoWeb, "Storage", "westeurope", "Usage", "2025-02-27", "12.50", "Hot block blobs", ""),
	}})
	add(&billingv1.VendorReconciliationCompleted{EventId: "ledgerctl-demo-reconciliation-aws-2025-02", Vendor: "AWS", Month: "2025-02",
		Lines: []*billingv1.ReconciliationLine{{AccountId: demoStaging, Service: "Amazon EC2", VendorCost: usd("215.00")}}})
	add(FinalizeMessage(demoMonth(DemoFinalized)))

	add(&billingv1.UsageReported{EventId: "ledgerctl-demo-usage-2025-03", Records: []*billingv1.UsageRecord{
		demoRecord("r01", "AWS", demoProd, "Amazon EC2", "us-east-1", "Usage", "2025-03-03", "65.00", "m5.large hours", ""),
		demoRecord("r02", "AWS", demoStaging, "Amazon EC2", "us-east-1", "Usage", "2025-03-03", "220.00", "m5.large hours", ""),
		demoRecord("r03", "AWS", demoAnalytics, "Amazon EC2", "us-east-1", "Usage", "2025-03-03", "155.00", "c5.xlarge hours", ""),
		demoRecord("r04", "Azure", demoWeb, "Virtual Machines", "westeurope", "Usage", "2025-03-03", "175.00", "D4s v5 hours", ""),
		demoRecord("r05", "GCP", demoML, "Compute Engine", "us-central1", "Usage", "2025-03-03", "95.00", "n2-standard-8 hours", ""),
		demoRecord("r06", "AWS", demoGlobex, "Amazon EC2", "us-east-1", "Usage", "2025-03-05", "90.00", "t3.large hours", ""),
		demoRecord("r07", "GCP", demoSandbox, "Compute Engine", "us-central1", "Usage", "2025-03-09", "7.50", "e2-small hours", ""),
	}})
	add(CloseMessage(demoMonth(DemoLast)))
	return msgs
}

func demoProvider(org, id, workspace, vendor, account, name, alias string) *billingv1.ProviderRegistered {
	return &billingv1.ProviderRegistered{EventId: "ledgerctl-demo-provider-" + id, OrgId: org, ProviderId: id, WorkspaceId: workspace,
		Vendor: vendor, AccountId: account, Name: name, Alias: alias}
}

func demoRecord(id, vendor, account, service, region, category, day, cost, description, commitment string) *billingv1.UsageRecord {
	start := demoTime(day + "T00:00:00Z")
	return &billingv1.UsageRecord{
		RecordId: id, Vendor: vendor, AccountId: account, Service: service, Region: region, ChargeCategory: category,
		ChargePeriodStart: start, ChargePeriodEnd: timestamppb.New(start.AsTime().Add(24 * time.Hour)),
		Cost: usd(cost), Description: description, CommitmentId: commitment,
	}
}

func demoTime(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err) // a constant of this file
	}
	return timestamppb.New(t)
}

func demoMonth(s string) calendar.Month {
	m, err := calendar.Parse(s)
	if err != nil {
		panic(err) // a constant of this file
	}
	return m
}

func usd(amount string) *billingv1.Money { return &billingv1.Money{Amount: amount, Currency: "USD"} }

// Demo publishes DemoMessages, waits until ledgerd has ingested them and
// its projections show the last close (so that the next command reads the
// demo's invoices), and prints them with what to try next.
func (c *Client) Demo(ctx context.Context) error {
	p, err := c.publication(ctx)
	if err != nil {
		return err
	}
	msgs := DemoMessages()
	for _, msg := range msgs {
		if err := p.publish(ctx, msg); err != nil {
			return err
		}
	}
	if err := p.await(ctx, nil); err != nil {
		return err
	}
	if err := c.awaitIssued(ctx, DemoBAN, DemoLast); err != nil {
		return err
	}
	var lists []*billingv1.ListInvoicesResponse
	for _, ban := range []string{DemoBAN, DemoDataBAN, DemoOtherBAN} {
		resp, err := call(ctx, c, pages.Client(pages.Invoices, billingv1.BillingServiceClient.ListInvoices), &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: DemoFirst, ToMonth: DemoLast})
		if err != nil {
			return err
		}
		lists = append(lists, resp)
	}
	if c.cfg.JSON {
		all := &billingv1.ListInvoicesResponse{}
		for _, l := range lists {
			all.Invoices = append(all.Invoices, l.GetInvoices()...)
			all.Position = max(all.Position, l.GetPosition())
		}
		return c.printJSON(all)
	}
	w := c.cfg.Out
	fmt.Fprintf(w, "Published the demo (%d messages): organizations %s (BANs %s and %s) and %s (BAN %s),\n",
		len(msgs), DemoOrg, DemoBAN, DemoDataBAN, DemoOtherOrg, DemoOtherBAN)
	fmt.Fprintf(w, "usage from %s to %s at AWS, Azure and GCP, an RI shared within acme and with globex,\n", DemoFirst, DemoLast)
	fmt.Fprintf(w, "a late record, a vendor reconciliation, billing cycles %s to %s closed, vendor cycle %s finalized.\n\n", DemoFirst, DemoLast, DemoFinalized)
	t := newTable("BAN", "MONTH", "STATUS", "TOTAL").alignRight(3)
	for _, l := range lists {
		for _, s := range l.GetInvoices() {
			t.add(s.GetBan(), s.GetMonth(), statusName(s.GetStatus()), amount(s.GetTotal()))
		}
	}
	if err := t.write(w); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nTry next:")
	for _, cmd := range DemoNext {
		fmt.Fprintln(w, "  "+cmd)
	}
	return nil
}

// DemoNext are the commands the demo suggests trying next.
var DemoNext = []string{
	"ledgerctl invoice get --ban " + DemoBAN + " --month " + DemoLast,
	"ledgerctl invoice list --ban " + DemoBAN + " --from " + DemoFirst + " --to " + DemoLast,
	"ledgerctl dashboard --org " + DemoOrg + " --from " + DemoFirst + " --to " + DemoLast,
	"ledgerctl usage --org " + DemoOrg + " --month " + DemoFinalized + " --view vendor",
	"ledgerctl invoice get --ban " + DemoBAN + " --month " + DemoFinalized + " --view vendor",
	"ledgerctl adjustments --org " + DemoOrg + " --month " + DemoFirst,
	"ledgerctl exceptions",
}

// awaitIssued waits until ledgerd's projections show the invoice of ban
// for month as issued: read-your-writes for a publisher, who learns no
// log position from JetStream. Everything published before that month's
// close is in the log before it, and projections apply the log in order,
// so once the close shows, all of it does.
func (c *Client) awaitIssued(ctx context.Context, ban, month string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Wait)
	defer cancel()
	var last error
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		resp, err := call(ctx, c, billingv1.BillingServiceClient.GetInvoice, &billingv1.GetInvoiceRequest{Ban: ban, Month: month, PageSize: 1})
		switch {
		case errors.Is(err, wire.ReasonNotBilled):
			// A ledger whose first close came later than the demo's
			// months bills them as updates of a later month: the demo's
			// invoices cannot be issued there.
			return false, fmt.Errorf("the demo's invoices cannot be issued in this ledger, whose billing cycles closed after %s (start ledgerd with an empty --data-dir): %w", month, err)
		case errors.Is(err, ErrUnreachable):
			return false, err
		case err != nil:
			last = err // the BAN is not applied yet
			return false, nil
		}
		last = fmt.Errorf("invoice %s %s is %s", ban, month, statusName(resp.GetInvoice().GetStatus()))
		return resp.GetInvoice().GetStatus() == billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED, nil
	})
	if err != nil && ctx.Err() != nil {
		return notIngested("ledgerd has not issued invoice %s %s: waited %s (--wait); last: %v", ban, month, c.cfg.Wait, last)
	}
	return err
}
