// Package console is Ledger's web console (DESIGN.md section 11): the
// Billing Dashboard and Usage History pages of the seeds, the invoices of
// a BAN, the adjustments and exceptions of an organization, and an
// operator's list of organizations, served by ledgerd at / on its HTTP
// address.
//
// It reads only through the query service's Go API
// (billingv1.BillingServiceServer, services/query): no billing rule is
// computed twice, and the answers are the very ones gRPC clients get. Its
// pages are drawn on the server with html/template (which escapes
// everything from the history), the chart as SVG; a little embedded CSS
// and JavaScript make them nicer, but every page reads and works with
// JavaScript off.
//
// Access is services/access's, as for every HTTP path: ledgerd puts the
// console behind the same guard, with Front in front of it so that a
// browser may sign in with a token kept in a cookie, and gets HTML pages
// for 401 and 403. The console limits an org_admin to its organizations
// itself, as the gRPC interceptor does for the query service.
package console
