// Package hierarchy holds the customer hierarchy with effective dating
// (docs/architecture.md, "Events and their streams", "Attribution"):
// organizations, their cost centers, workspaces and the providers (cloud
// accounts) attached to them, each cost center, workspace and provider as a
// list of versions ordered by effective_at, ties by log order.
//
// The billing fold asks one question of it: to whom does a charge of account
// (vendor, account_id) at instant t go? Resolve answers with an Attribution
// (organization, BAN, cost center, workspace, provider) and the Span of
// instants over which that answer stays the same, so that the fold can
// resolve a run of usage records of one account once instead of once per
// record. The package knows nothing of events, money or invoices.
package hierarchy
