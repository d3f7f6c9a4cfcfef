// Package query serves the billing projections over gRPC: it is
// billing.v1.BillingService (proto/billing/v1/query.proto; docs/architecture.md,
// "Queries"), the one way downstream invoicing systems, ledgerctl and
// auditors read invoices, usage, dashboards, adjustment ledgers and
// exceptions.
//
// Its place in the architecture: the runner (services/runner) folds the
// event history into a billing.Projection; this package validates each
// request, waits until the runner has passed the request's min_position
// (read-your-writes), asks the projection under the runner's read lock, and
// converts the domain documents to protobuf, amounts rendered with exactly
// their currency's minor-unit digits, and the details' lineage (event_ids)
// only for a request that sets include_lineage: audits want it, invoicing
// runs do not, and on a large invoice it is most of the answer. Its only
// state is a bounded cache of the frozen documents (issued invoices,
// finalized vendor views) already converted and encoded, in each form
// asked for, which changes how fast it answers, never what: any
// number of ledgerd query replicas answer alike at the same position.
//
// ledgerd wires it as:
//
//	svc := query.New(r, logger)
//	srv := query.NewServer(ctx, svc)
//	go srv.Serve(lis)
//	...
//	cancel() // health turns NOT_SERVING
//	srv.GracefulStop()
//
// NewServer adds server reflection and the standard health service, which
// reports NOT_SERVING until the runner has replayed the history: before that
// an answer would come from part of the history, and could show a draft for
// an invoice already issued.
//
// Who may call what is services/access's, in front of this service
// (DESIGN.md section 10). Two decisions need the projection and are made
// here from the caller access puts in the context: an org_admin may read
// only the BANs of its organizations, checked under the read lock before
// the BAN's documents are looked up, with the same PERMISSION_DENIED for
// another organization's BAN as for an unknown one; and ListExceptions
// without an organization lists only its organizations' exceptions.
//
// The documents and lists are answered a page at a time (page.go; AIP-158,
// DESIGN.md section 13). Each page is cut from the whole document, whose
// total and other fields it carries; its token is bound to the request and
// to the first page's document, so that the pages of a walk add up to one
// document or the walk fails and starts again.
//
// Errors follow one table (errors.go): domain errors become gRPC codes with
// a message naming the request field and its value, and a
// google.rpc.ErrorInfo whose reason is stable, so that a client can match
// it; wire.FromStatus turns such a status back into an error for which
// errors.Is with the wire.Reason holds, without linking this package.
package query
