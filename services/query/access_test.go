package query_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/access"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
)

// accessRig is the query service behind services/access, with tokens of
// a test issuer, over a history of two organizations:
//
//   - acme: BAN-A, and BAN-A2 of its cost center cc-x; AWS account
//     111111111111 with 10.00 USD of January 2018 usage, and 1.00 EUR
//     (a currency mismatch, an exception of acme);
//   - globex: BAN-G; account 222222222222 with 20.00 USD, and 2.00 EUR;
//   - 3.00 USD of an account nobody registered (an exception of no
//     organization).
type accessRig struct {
	*rig
	iss  *testkit.Issuer
	last uint64
}

func newAccessRig(t *testing.T) *accessRig {
	t.Helper()
	iss := testkit.NewIssuer(t)
	g, err := access.New(access.Config{JWKS: iss.JWKSPath, Issuer: iss.Name})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{server: []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.Unary), grpc.ChainStreamInterceptor(g.Stream)}})
	r.append(t, org("acme", "BAN-A", "USD"))
	r.append(t, &billingv1.CostCenterCreated{OrgId: "acme", CostCenterId: "cc-x", Name: "X", Ban: "BAN-A2"})
	r.append(t, provider("acme", "pa", "ws-a", "AWS", "111111111111"))
	r.append(t, org("globex", "BAN-G", "USD"))
	r.append(t, provider("globex", "pg", "ws-g", "AWS", "222222222222"))
	r.append(t, usage(
		rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2018-01-05T00:00:00Z", "10.00", "USD"),
		rec("AWS", "222222222222", "Amazon EC2", "us-east-1", "2018-01-05T00:00:00Z", "20.00", "USD"),
		rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2018-01-06T00:00:00Z", "1.00", "EUR"),
		rec("AWS", "222222222222", "Amazon EC2", "us-east-1", "2018-01-06T00:00:00Z", "2.00", "EUR"),
	))
	last := r.append(t, usage(rec("AWS", "999999999999", "Amazon EC2", "us-east-1", "2018-01-07T00:00:00Z", "3.00", "USD")))
	return &accessRig{rig: r, iss: iss, last: last}
}

// as returns a call context carrying tok, or none if tok is empty.
func as(t *testing.T, tok string) context.Context {
	ctx := callCtx(t)
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, token.Header, "Bearer "+tok)
}

// rpc is one BillingService method, called on a resource: a BAN or an
// organization.
type rpc struct {
	name string
	ban  bool // the resource is a BAN, else an organization
	call func(ctx context.Context, c billingv1.BillingServiceClient, resource string, last uint64) error
}

func rpcs() []rpc {
	const m = "2018-01"
	return []rpc{
		{"GetInvoice", true, func(ctx context.Context, c billingv1.BillingServiceClient, ban string, last uint64) error {
			_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: ban, Month: m, MinPosition: last})
			return err
		}},
		{"ListInvoices", true, func(ctx context.Context, c billingv1.BillingServiceClient, ban string, last uint64) error {
			_, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: ban, FromMonth: m, ToMonth: m, MinPosition: last})
			return err
		}},
		{"GetUsageHistory", false, func(ctx context.Context, c billingv1.BillingServiceClient, org string, last uint64) error {
			_, err := c.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: org, FromMonth: m, ToMonth: m, MinPosition: last})
			return err
		}},
		{"GetUsageMonth", false, func(ctx context.Context, c billingv1.BillingServiceClient, org string, last uint64) error {
			_, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: org, Month: m, MinPosition: last})
			return err
		}},
		{"GetDashboard", false, func(ctx context.Context, c billingv1.BillingServiceClient, org string, last uint64) error {
			_, err := c.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: org, FromMonth: m, ToMonth: m, MinPosition: last})
			return err
		}},
		{"ListAdjustments", false, func(ctx context.Context, c billingv1.BillingServiceClient, org string, last uint64) error {
			_, err := c.ListAdjustments(ctx, &billingv1.ListAdjustmentsRequest{OrgId: org, Month: m,
				Kind: billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT, MinPosition: last})
			return err
		}},
		{"ListExceptions", false, func(ctx context.Context, c billingv1.BillingServiceClient, org string, last uint64) error {
			_, err := c.ListExceptions(ctx, &billingv1.ListExceptionsRequest{OrgId: org, MinPosition: last})
			return err
		}},
	}
}

// TestAccessMatrix calls every RPC as every role, on a resource of the
// caller's own organization, of another, and on one that does not exist,
// and checks each exact code. An org_admin learns nothing of what exists
// outside its organizations: another organization's BAN and a BAN of
// none get the very same answer.
func TestAccessMatrix(t *testing.T) {
	r := newAccessRig(t)
	tokens := map[string]string{
		"none":      "",
		"operator":  r.iss.Token(t, token.Operator),
		"auditor":   r.iss.Token(t, token.Auditor),
		"invoicing": r.iss.Token(t, token.Invoicing),
		"org_admin": r.iss.Token(t, token.OrgAdmin, "acme"),
	}
	// Targets, by their relation to an org_admin of acme.
	targets := []struct{ name, ban, org string }{
		{"own", "BAN-A", "acme"},
		{"own cost center's", "BAN-A2", "acme"},
		{"other organization's", "BAN-G", "globex"},
		{"unknown", "BAN-NOPE", "nobody"},
	}
	OK, NF, PD, UA := codes.OK, codes.NotFound, codes.PermissionDenied, codes.Unauthenticated
	// want[role][invoice or other RPC][target]
	want := map[string]map[bool][4]codes.Code{
		"none":      {true: {UA, UA, UA, UA}, false: {UA, UA, UA, UA}},
		"operator":  {true: {OK, OK, OK, NF}, false: {OK, OK, OK, NF}},
		"auditor":   {true: {OK, OK, OK, NF}, false: {OK, OK, OK, NF}},
		"invoicing": {true: {OK, OK, OK, NF}, false: {PD, PD, PD, PD}},
		"org_admin": {true: {OK, OK, PD, PD}, false: {OK, OK, PD, PD}},
	}
	for _, m := range rpcs() {
		for _, role := range []string{"none", "operator", "auditor", "invoicing", "org_admin"} {
			var denials []string
			for i, target := range targets {
				t.Run(m.name+"/"+role+"/"+target.name, func(t *testing.T) {
					resource := target.org
					if m.ban {
						resource = target.ban
					}
					err := m.call(as(t, tokens[role]), r.client, resource, r.last)
					wantCode := want[role][m.ban][i]
					st := status.Convert(err)
					if st.Code() != wantCode {
						t.Fatalf("%v %q, want %v", st.Code(), st.Message(), wantCode)
					}
					switch wantCode {
					case PD:
						kind := "organizations"
						switch {
						case role == "invoicing":
							kind = "may not call billing.v1.BillingService/" + m.name
						case m.ban:
							kind = "BANs"
						}
						wantStatus(t, err, PD, "PERMISSION_DENIED", "role "+role+" may")
						if !strings.Contains(st.Message(), kind) {
							t.Errorf("message %q does not name %q", st.Message(), kind)
						}
						if strings.Contains(st.Message(), resource) {
							t.Errorf("message %q names the resource %q", st.Message(), resource)
						}
						denials = append(denials, st.Message())
					case UA:
						wantStatus(t, err, UA, "UNAUTHENTICATED", "no bearer token")
					}
				})
			}
			if len(slices.Compact(slices.Clone(denials))) > 1 {
				t.Errorf("%s as %s: denials differ: %q", m.name, role, denials)
			}
		}
	}

	t.Run("org_admin of two organizations", func(t *testing.T) {
		tok := r.iss.Token(t, token.OrgAdmin, "acme", "globex")
		for _, m := range rpcs() {
			for _, res := range [][2]string{{"BAN-A", "acme"}, {"BAN-G", "globex"}} {
				resource := res[1]
				if m.ban {
					resource = res[0]
				}
				if err := m.call(as(t, tok), r.client, resource, r.last); err != nil {
					t.Errorf("%s on %s: %v", m.name, resource, err)
				}
			}
		}
	})

	t.Run("lineage", func(t *testing.T) {
		invoice := func(ctx context.Context) error {
			_, err := r.client.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-A", Month: "2018-01", IncludeLineage: true, MinPosition: r.last})
			return err
		}
		usageMonth := func(ctx context.Context) error {
			_, err := r.client.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01", IncludeLineage: true, MinPosition: r.last})
			return err
		}
		for _, tc := range []struct {
			role, rpc string
			call      func(context.Context) error
			want      codes.Code
		}{
			{"operator", "GetInvoice", invoice, OK},
			{"operator", "GetUsageMonth", usageMonth, OK},
			{"auditor", "GetInvoice", invoice, OK},
			{"auditor", "GetUsageMonth", usageMonth, OK},
			{"invoicing", "GetInvoice", invoice, PD},
			{"org_admin", "GetInvoice", invoice, PD},
			{"org_admin", "GetUsageMonth", usageMonth, PD},
		} {
			err := tc.call(as(t, tokens[tc.role]))
			if status.Code(err) != tc.want {
				t.Errorf("%s %s with include_lineage: %v, want %v", tc.role, tc.rpc, err, tc.want)
			}
			if tc.want == PD {
				wantStatus(t, err, PD, "PERMISSION_DENIED", "role "+tc.role+" may not ask for lineage")
			}
		}
	})

	t.Run("health needs no token", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(r.conn).Check(callCtx(t), &healthpb.HealthCheckRequest{Service: "billing.v1.BillingService"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health: %v, %v", resp, err)
		}
	})
}

// TestExceptionsOfOrgAdmin checks that ListExceptions without an
// organization gives an org_admin the exceptions of its organizations
// alone: neither another's nor the unassigned usage, which may be
// anyone's.
func TestExceptionsOfOrgAdmin(t *testing.T) {
	r := newAccessRig(t)
	for _, tc := range []struct {
		name string
		tok  string
		want []string
	}{
		{"operator", r.iss.Token(t, token.Operator), []string{"111111111111 1.00 EUR", "222222222222 2.00 EUR", "999999999999 3.00 USD"}},
		{"auditor", r.iss.Token(t, token.Auditor), []string{"111111111111 1.00 EUR", "222222222222 2.00 EUR", "999999999999 3.00 USD"}},
		{"org_admin of acme", r.iss.Token(t, token.OrgAdmin, "acme"), []string{"111111111111 1.00 EUR"}},
		{"org_admin of globex", r.iss.Token(t, token.OrgAdmin, "globex"), []string{"222222222222 2.00 EUR"}},
		{"org_admin of both", r.iss.Token(t, token.OrgAdmin, "acme", "globex"), []string{"111111111111 1.00 EUR", "222222222222 2.00 EUR"}},
		// An organization not registered yet has no exceptions; it is
		// not NOT_FOUND, which would say what exists.
		{"org_admin of one to come", r.iss.Token(t, token.OrgAdmin, "initech"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.client.ListExceptions(as(t, tc.tok), &billingv1.ListExceptionsRequest{MinPosition: r.last})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range resp.GetExceptions() {
				got = append(got, e.GetAccountId()+" "+amountOf(e.GetAmount()))
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("exceptions %q, want %q", got, tc.want)
			}
		})
	}
}

// TestListOrganizations checks the list of organizations as every role
// gets it: operator and auditor all, an org_admin its own alone (and not
// NOT_FOUND for one to come), invoicing none; cost centers carry the BAN
// they bill to.
func TestListOrganizations(t *testing.T) {
	r := newAccessRig(t)
	all := []string{"acme USD BAN-A [cc-x X BAN-A2]", "globex USD BAN-G []"}
	for _, tc := range []struct {
		name string
		tok  string
		want []string
		code codes.Code
	}{
		{"no token", "", nil, codes.Unauthenticated},
		{"operator", r.iss.Token(t, token.Operator), all, codes.OK},
		{"auditor", r.iss.Token(t, token.Auditor), all, codes.OK},
		{"invoicing", r.iss.Token(t, token.Invoicing), nil, codes.PermissionDenied},
		{"org_admin of acme", r.iss.Token(t, token.OrgAdmin, "acme"), all[:1], codes.OK},
		{"org_admin of globex", r.iss.Token(t, token.OrgAdmin, "globex"), all[1:], codes.OK},
		{"org_admin of one to come", r.iss.Token(t, token.OrgAdmin, "initech"), nil, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := r.client.ListOrganizations(as(t, tc.tok), &billingv1.ListOrganizationsRequest{MinPosition: r.last})
			if status.Code(err) != tc.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tc.code)
			}
			var got []string
			for _, o := range resp.GetOrganizations() {
				var ccs []string
				for _, cc := range o.GetCostCenters() {
					ccs = append(ccs, cc.GetCostCenterId()+" "+cc.GetName()+" "+cc.GetBan())
				}
				got = append(got, o.GetOrgId()+" "+o.GetCurrency()+" "+o.GetBan()+" ["+strings.Join(ccs, ", ")+"]")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("organizations %q, want %q", got, tc.want)
			}
		})
	}
}
