// Package billing holds the billing rules of Ledger (DESIGN.md section 7)
// as one pure fold of the event history: Projection.Apply takes each decoded
// event of the catalogue (proto/billing/v1) with its $all position, in log
// order, and keeps what the read models need; the query methods answer from
// it without I/O.
//
// Its place in the architecture: the runner in services/ subscribes to $all,
// decodes each billing.v1.* event and calls Apply; the gRPC query service
// calls the query methods under a read lock; the daemon publishes an
// InvoiceIssued for each invoice that Apply returns from a
// BillingCycleClosed; ingestion asks CanClose and CanFinalize before it
// appends a cycle event. Nothing here imports NATS, gRPC or the store.
//
// How it stays fast and small: usage records are folded as they arrive into
// cells, one per (month, account, attribution, service, region), holding the
// exact sum, the latest charge instant and the interned ids of the events
// behind it; no record is kept. The month's bill V(M, p) of an organization
// is computed from its cells when needed: each cell rounded once (the line
// detail, section 7.2), then reconciliation true-ups, inter-customer and
// intra-organization adjustments (section 7.3) from rounded figures, so every
// document foots. An organization-month is marked dirty when anything in it
// changes; closing a cycle recomputes only the dirty ones, compares each
// with what was last billed, and issues the differences as "Update to
// Previous Month's" lines. Issued invoices and vendor views are frozen
// documents: queries return them as they were.
//
// Attribution (section 7.1) is decided when a charge is folded, with the
// hierarchy as the log knows it at that position: a charge with no provider
// at its instant waits, unassigned, and is attributed by the first later
// registration that covers it; a charge already attributed stays where it
// went, even if a later event back-dates a hierarchy change over it. That
// keeps memory proportional to cells rather than records; it is still a
// deterministic function of the ordered history, so a replay gives the same
// documents.
package billing
