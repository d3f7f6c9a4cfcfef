// Package synth generates realistic billing histories: organizations with
// cost centers (some with a BAN of their own), workspaces and cloud accounts
// of several vendors; usage across services and regions over months, with
// credits, late records, reserved instances and their benefits, and vendor
// reconciliations. Benchmarks and load tests feed it to a ledgerd through
// NATS, so that what they measure is shaped like a reseller's metering feed.
//
// A Generator is deterministic: the same Config gives the same messages, so
// runs compare; RunID keeps the event_ids of separate runs apart, so a
// second run against the same ledger bills again instead of being
// recognised as a retry.
package synth

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Config shapes a history. The zero value of a field takes its default.
type Config struct {
	Seed uint64
	// RunID prefixes every event_id and org id; default "synth".
	RunID string
	// Orgs and AccountsPerOrg: default 10 and 1,000 (10,000 accounts).
	Orgs, AccountsPerOrg int
	// CostCentersPerOrg: default 4; every other one has a BAN of its own,
	// except in the first organization, whose cost centers all bill to its
	// default BAN, so that one BAN has AccountsPerOrg accounts.
	CostCentersPerOrg int
	// First and Months: the months usage falls in; default 12 months from
	// 2025-01.
	First  calendar.Month
	Months int
	// RecordsPerMessage: records per UsageReported; default 1,000.
	RecordsPerMessage int
}

func (c *Config) defaults() {
	if c.RunID == "" {
		c.RunID = "synth"
	}
	if c.Orgs <= 0 {
		c.Orgs = 10
	}
	if c.AccountsPerOrg <= 0 {
		c.AccountsPerOrg = 1000
	}
	if c.CostCentersPerOrg <= 0 {
		c.CostCentersPerOrg = 4
	}
	if c.First == 0 {
		c.First = calendar.New(2025, time.January)
	}
	if c.Months <= 0 {
		c.Months = 12
	}
	if c.RecordsPerMessage <= 0 {
		c.RecordsPerMessage = 1000
	}
}

type vendor struct {
	name     string
	services []string
	regions  []string
}

var vendors = []vendor{
	{"AWS", []string{"Amazon EC2", "Amazon S3", "Amazon RDS", "AWS Lambda", "Amazon CloudFront", "Amazon DynamoDB"},
		[]string{"us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", ""}},
	{"Azure", []string{"Virtual Machines", "Storage", "Azure SQL Database", "Azure Kubernetes Service"},
		[]string{"eastus", "westeurope", "southeastasia"}},
	{"GCP", []string{"Compute Engine", "Cloud Storage", "BigQuery", "Cloud SQL"},
		[]string{"us-central1", "europe-west1", "asia-east1"}},
	{"Oracle", []string{"Compute", "Object Storage", "Autonomous Database"},
		[]string{"us-ashburn-1", "eu-frankfurt-1"}},
}

// Account is a generated cloud account.
type Account struct {
	Org, Vendor, ID string
	vendor          *vendor
}

// Generator produces one history.
type Generator struct {
	cfg      Config
	rng      *rand.Rand
	accounts []Account // org by org
	messages int       // UsageReported messages made so far
}

// New returns a Generator for cfg.
func New(cfg Config) *Generator {
	cfg.defaults()
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x1ed9e5))}
	for o := range cfg.Orgs {
		for a := range cfg.AccountsPerOrg {
			v := &vendors[(o+a)%len(vendors)]
			g.accounts = append(g.accounts, Account{Org: g.OrgID(o), Vendor: v.name, ID: fmt.Sprintf("%s-%03d-%06d", cfg.RunID, o, a), vendor: v})
		}
	}
	return g
}

// OrgID is the id of organization o; BAN its default BAN.
func (g *Generator) OrgID(o int) string { return fmt.Sprintf("%s-org-%03d", g.cfg.RunID, o) }

// BAN is the default BAN of organization o: in the first organization the
// BAN of all its accounts.
func (g *Generator) BAN(o int) string { return fmt.Sprintf("%s-BAN-%03d", g.cfg.RunID, o) }

// Accounts lists the generated accounts.
func (g *Generator) Accounts() []Account { return g.accounts }

// Months lists the months of the history.
func (g *Generator) Months() []calendar.Month {
	out := make([]calendar.Month, g.cfg.Months)
	for i := range out {
		out[i] = g.cfg.First + calendar.Month(i)
	}
	return out
}

func (g *Generator) id(kind string, parts ...any) string {
	s := g.cfg.RunID + "-" + kind
	for _, p := range parts {
		s += "-" + fmt.Sprint(p)
	}
	return s
}

// Hierarchy returns the organizations, cost centers, workspaces and
// providers, in the order they must be published.
func (g *Generator) Hierarchy() []proto.Message {
	var out []proto.Message
	for o := range g.cfg.Orgs {
		org := g.OrgID(o)
		out = append(out, &billingv1.OrganizationRegistered{EventId: g.id("org", o), OrgId: org, Name: "Organization " + strconv.Itoa(o), Ban: g.BAN(o), Currency: "USD"})
		for c := range g.cfg.CostCentersPerOrg {
			ban := ""
			if o > 0 && c%2 == 1 {
				ban = fmt.Sprintf("%s-BAN-%03d-%02d", g.cfg.RunID, o, c)
			}
			cc := fmt.Sprintf("cc-%02d", c)
			out = append(out,
				&billingv1.CostCenterCreated{EventId: g.id("cc", o, c), OrgId: org, CostCenterId: cc, Name: "Cost center " + strconv.Itoa(c), Ban: ban},
				&billingv1.WorkspaceCreated{EventId: g.id("ws", o, c), OrgId: org, WorkspaceId: "ws-" + cc, CostCenterId: cc, Name: "Workspace " + strconv.Itoa(c)})
		}
	}
	for i, a := range g.accounts {
		c := i % g.cfg.CostCentersPerOrg
		out = append(out, &billingv1.ProviderRegistered{EventId: g.id("provider", a.ID), OrgId: a.Org, ProviderId: "p-" + a.ID,
			WorkspaceId: fmt.Sprintf("ws-cc-%02d", c), Vendor: a.Vendor, AccountId: a.ID, Name: a.Vendor + " account " + a.ID, Alias: "acct-" + strconv.Itoa(i)})
	}
	return out
}

// Usage returns the next UsageReported message: RecordsPerMessage records
// of random accounts, services, regions and months. About one record in 50
// is a credit and one in 200 a tax.
func (g *Generator) Usage() *billingv1.UsageReported {
	n := g.messages
	g.messages++
	msg := &billingv1.UsageReported{EventId: g.id("usage", n), Records: make([]*billingv1.UsageRecord, g.cfg.RecordsPerMessage)}
	for i := range msg.Records {
		a := &g.accounts[g.rng.IntN(len(g.accounts))]
		m := g.cfg.First + calendar.Month(g.rng.IntN(g.cfg.Months))
		start := m.Start().Add(time.Duration(g.rng.IntN(27*24)) * time.Hour)
		category, cost := "Usage", g.amount(0, 50)
		switch r := g.rng.IntN(200); {
		case r < 4:
			category, cost = "Credit", "-"+g.amount(0, 5)
		case r == 4:
			category, cost = "Tax", g.amount(0, 3)
		}
		msg.Records[i] = &billingv1.UsageRecord{
			RecordId:          strconv.Itoa(i),
			Vendor:            a.Vendor,
			AccountId:         a.ID,
			Service:           a.vendor.services[g.rng.IntN(len(a.vendor.services))],
			Region:            a.vendor.regions[g.rng.IntN(len(a.vendor.regions))],
			ChargeCategory:    category,
			ChargePeriodStart: timestamppb.New(start),
			ChargePeriodEnd:   timestamppb.New(start.Add(time.Hour)),
			Quantity:          g.amount(0, 100),
			Unit:              "Hours",
			Cost:              &billingv1.Money{Amount: cost, Currency: "USD"},
			Description:       "synthetic usage",
		}
	}
	return msg
}

// amount is a decimal in [lo, hi) with up to ten fraction digits, as
// vendors' line items have.
func (g *Generator) amount(lo, hi int) string {
	whole := lo + g.rng.IntN(hi-lo)
	frac := g.rng.Uint64N(10_000_000_000)
	return fmt.Sprintf("%d.%010d", whole, frac)
}

// Extras returns, for month m, what a reseller sees besides usage: an RI
// purchase in each organization with benefits to accounts of its own and
// of the next organization, and the vendor's reconciliation of a few lines.
func (g *Generator) Extras(m calendar.Month) []proto.Message {
	var out []proto.Message
	per := g.cfg.AccountsPerOrg
	for o := range g.cfg.Orgs {
		buyer := g.accounts[o*per]
		ri := g.id("ri", o, m)
		out = append(out, &billingv1.ReservedInstancePurchased{EventId: ri, RiId: ri, Vendor: buyer.Vendor, AccountId: buyer.ID,
			Service: buyer.vendor.services[0], Region: buyer.vendor.regions[0], InstanceType: "m5.large",
			TermStart: timestamppb.New(m.Start()), TermEnd: timestamppb.New(m.Start().AddDate(1, 0, 0))})
		// The RI fee, charged to its purchaser.
		out = append(out, &billingv1.UsageReported{EventId: g.id("rifee", o, m), Records: []*billingv1.UsageRecord{{
			RecordId: "fee", Vendor: buyer.Vendor, AccountId: buyer.ID, Service: buyer.vendor.services[0], Region: buyer.vendor.regions[0],
			ChargeCategory: "Purchase", ChargePeriodStart: timestamppb.New(m.Start()), Cost: &billingv1.Money{Amount: "300.00", Currency: "USD"},
			CommitmentId: ri,
		}}})
		// Consumers of the RI's vendor: accounts cycle through the vendors,
		// so every len(vendors)-th account of an organization shares it.
		benefits := &billingv1.ReservedInstanceBenefitReported{EventId: g.id("ribenefit", o, m), Month: m.String()}
		consumers := []int{o*per + len(vendors), o*per + 2*len(vendors)}
		if g.cfg.Orgs > 1 { // and one in the next organization
			consumers = append(consumers, ((o+1)%g.cfg.Orgs)*per+len(vendors)-1)
		}
		for _, k := range consumers {
			if k >= len(g.accounts) || g.accounts[k].Vendor != buyer.Vendor || g.accounts[k].ID == buyer.ID {
				continue
			}
			consumer := g.accounts[k]
			benefits.Benefits = append(benefits.Benefits, &billingv1.ReservedInstanceBenefit{RiId: ri, ConsumerAccountId: consumer.ID,
				Amount: &billingv1.Money{Amount: g.amount(10, 90), Currency: "USD"}})
		}
		if len(benefits.Benefits) > 0 {
			out = append(out, benefits)
		}
	}
	for _, v := range vendors {
		recon := &billingv1.VendorReconciliationCompleted{EventId: g.id("recon", v.name, m), Vendor: v.name, Month: m.String()}
		for i := range 5 {
			a := g.accounts[g.rng.IntN(len(g.accounts))]
			if a.Vendor != v.name {
				continue
			}
			recon.Lines = append(recon.Lines, &billingv1.ReconciliationLine{AccountId: a.ID, Service: v.services[i%len(v.services)],
				VendorCost: &billingv1.Money{Amount: g.amount(0, 500), Currency: "USD"}})
		}
		if len(recon.Lines) > 0 {
			out = append(out, recon)
		}
	}
	return out
}
