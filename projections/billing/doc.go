// Package billing holds the billing rules of Ledger (docs/architecture.md,
// "Attribution", "Rounding", "The month's bill", "Documents" and "Cycles and
// the clock") as one pure fold of the event history: Projection.Apply takes
// each decoded event of the catalogue (proto/billing/v1) with its $all
// position, in log order, and keeps what the read models need; the query
// methods answer from it without I/O.
//
// Its place in the architecture: the runner in services/ subscribes to $all,
// decodes each billing.v1.* event and calls Apply; the gRPC query service
// calls the query methods under a read lock; the daemon publishes an
// InvoiceIssued for each invoice that Apply returns from a
// BillingCycleClosed; ingestion asks CanClose and CanFinalize before it
// appends a cycle event. Nothing here imports NATS, gRPC or the store.
//
// Bad input is an error of Apply (or, for one usage record of a valid
// message, an exception); a broken invariant is a bug, and panics with an
// *InvariantError: a document that does not foot, an allocation that does
// not sum to its source, intra-organization adjustments that do not sum to
// zero. The runner recovers it, stops applying and reports the event,
// rather than let a wrong invoice be issued.
//
// How it stays fast and small: usage records are folded as they arrive into
// cells, one per (month, account, attribution, service, region), holding the
// exact sum, the span of charge instants, the interned ids of the events
// behind it, and a packed log of its charges (instant, event, amount; about
// ten bytes a record). The month's bill V(M, p) of an organization is
// computed from the sums when needed: each cell rounded once, as the line
// detail (docs/architecture.md, "Rounding"), then reconciliation true-ups,
// inter-customer and intra-organization adjustments (docs/architecture.md,
// "The month's bill") from rounded figures, so every document foots. An
// organization-month is marked dirty when anything in it changes; closing a
// cycle recomputes only the dirty ones, compares each with what was last
// billed, and issues the differences as "Update to Previous Month's" lines.
// Issued invoices and vendor views are frozen documents: queries return them
// as they were. Usage that waits for the hierarchy costs what billed usage
// costs, whoever sends it (DESIGN 6.1): it is held per account in groups of
// (month, service, region, currency) with their exact sums, which the
// exceptions are listed from, beside a packed log of the same ten-byte
// entries, from which each charge is attributed at its own instant when a
// registration covers it.
//
// Attribution (docs/architecture.md, "Attribution") follows the hierarchy as
// the log knows it at each position, whatever order its events arrive in. A
// charge is attributed when folded; a charge with no provider at its instant
// waits, unassigned, until a registration covers it. A hierarchy event that
// back-dates a change (effective_at before charges already folded) re-opens
// the logs of the cells it can reach, those of the organization's accounts
// with charges at or after its effective_at, and moves each charge that now
// goes elsewhere; reconciliations and RI benefits, attributed at the end of
// their month, move the same way. The moved charges reach closed months as
// "Update to Previous Month's" lines on both BANs at the next close. A
// charge, reconciliation or RI benefit in another currency than the
// organization it now goes to waits, listed as a currency mismatch, until a
// registration moves it to one billed in its currency.
package billing
