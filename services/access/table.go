package access

import (
	"context"
	"strings"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/token"
	"github.com/ledger-billing/ledger/services/wire"
)

// This file is the role table of DESIGN.md section 10 as code, the one
// place that says which role may call which RPC and read which path, and
// for which resources. A method or path not named here is the operator's
// alone: a new RPC is closed until someone writes its row.

// reach is how far a role's permission on a method goes.
type reach uint8

const (
	// every organization and every BAN.
	every reach = iota + 1
	// theirs: the organizations of the token's ledger_orgs, and their
	// BANs.
	theirs
)

// resource is what a request names, which the role's reach applies to.
type resource uint8

const (
	// none: the method names no organization or BAN.
	none resource = iota
	// ban: the request's ban field.
	ban
	// org: the request's org_id field.
	org
	// orgOptional: the request's org_id field, which may be empty for
	// "all": the query service then limits the answer to the caller's
	// organizations.
	orgOptional
)

// method is a row of the table for one gRPC method.
type method struct {
	resource resource
	roles    map[token.Role]reach
	// open methods take no token at all.
	open bool
}

// Who may do what. Every BillingService RPC reads; operator and auditor
// read everything, invoicing the invoices of every BAN, org_admin
// everything of its organizations.
var (
	readers  = map[token.Role]reach{token.Operator: every, token.Auditor: every, token.OrgAdmin: theirs}
	invoices = map[token.Role]reach{token.Operator: every, token.Auditor: every, token.Invoicing: every, token.OrgAdmin: theirs}
	// anyRole: the schema of the API, which grpcurl reads before a call
	// and which is public anyway; a caller still needs a valid token.
	anyRole = map[token.Role]reach{token.Operator: every, token.Auditor: every, token.Invoicing: every, token.OrgAdmin: every}
	// lineage is who may set include_lineage: DESIGN.md gives lineage to
	// the auditor (and the operator, who may do everything); the event_ids
	// behind an invoice are the audit trail, not what an invoicing run or
	// an organization's administrator reads.
	lineage = map[token.Role]bool{token.Operator: true, token.Auditor: true}
)

// methods is the table of gRPC methods, by full method name.
var methods = map[string]method{
	billingv1.BillingService_GetInvoice_FullMethodName:      {resource: ban, roles: invoices},
	billingv1.BillingService_ListInvoices_FullMethodName:    {resource: ban, roles: invoices},
	billingv1.BillingService_GetUsageHistory_FullMethodName: {resource: org, roles: readers},
	billingv1.BillingService_GetUsageMonth_FullMethodName:   {resource: org, roles: readers},
	billingv1.BillingService_GetDashboard_FullMethodName:    {resource: org, roles: readers},
	billingv1.BillingService_ListAdjustments_FullMethodName: {resource: org, roles: readers},
	billingv1.BillingService_ListExceptions_FullMethodName:  {resource: orgOptional, roles: readers},
	// An org_admin's list is limited to its own by the query service.
	billingv1.BillingService_ListOrganizations_FullMethodName: {resource: none, roles: readers},

	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      {roles: anyRole},
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: {roles: anyRole},

	healthpb.Health_Check_FullMethodName: {open: true},
	healthpb.Health_Watch_FullMethodName: {open: true},
	healthpb.Health_List_FullMethodName:  {open: true},
}

// operatorOnly is the row of whatever the table does not name.
var operatorOnly = map[token.Role]reach{token.Operator: every}

// MayReadLineage reports whether the call of ctx may see lineage (the
// event ids behind an amount), as include_lineage is allowed on the gRPC
// API: every call when authentication is off.
func MayReadLineage(ctx context.Context) bool {
	c, ok := FromContext(ctx)
	return !ok || lineage[c.Role]
}

// rowOf returns the row of a method.
func rowOf(fullMethod string) method {
	if m, ok := methods[fullMethod]; ok {
		return m
	}
	return method{roles: operatorOnly}
}

// path is a row of the table for HTTP paths on ledgerd's HTTP listener.
type path struct {
	// pattern is an exact path, or a prefix when it ends in "/"; it is
	// also the method label of the access metrics.
	pattern string
	open    bool
	roles   map[token.Role]reach
}

// paths is the table of HTTP paths, first match wins. /metrics is the
// operator's: the issue that asked for access control says "operators
// only", and DESIGN.md gives /metrics by name to the operator alone
// (the auditor's row only rules out pprof); what an auditor audits is
// the event history, through the query service, not the process.
var paths = []path{
	{pattern: "/healthz", open: true},
	{pattern: "/readyz", open: true},
	{pattern: "/metrics", roles: operatorOnly},
	{pattern: "/debug/pprof/", roles: operatorOnly},
	// The backup is the whole history: the operator's, named here so
	// that the console's row below does not take it.
	{pattern: wire.BackupPath, roles: operatorOnly},
	// The console (services/console): its sign-in page and its assets
	// need no token; every other page is for the readers, an org_admin's
	// limited to its organizations by the console, as the query service's
	// are by the method table.
	{pattern: "/signin", open: true},
	{pattern: "/static/", open: true},
	{pattern: "/", roles: readers},
}

// otherPath is the row of a path the table does not name.
var otherPath = path{pattern: "other", roles: operatorOnly}

// pathOf returns the row of an HTTP request path.
func pathOf(p string) path {
	for _, r := range paths {
		if p == r.pattern || strings.HasSuffix(r.pattern, "/") && strings.HasPrefix(p, r.pattern) {
			return r
		}
	}
	return otherPath
}
