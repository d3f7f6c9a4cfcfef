// Package pages follows the page tokens of the query service's paged calls
// (billing.v1.BillingService; DESIGN.md section 13): each function asks for
// every page of a document or list, of the request's page_size or else the
// server's default, and returns one response that holds it whole, as an
// answer from a server without paging would. ledgerctl and the console read through it, so that no
// document is cut to its first page.
//
// Each function takes the call to make for one page, get: a method value
// of the query service in process (console: svc.GetInvoice), or a
// client's method with its call options bound (Client adapts a method
// expression, as ledgerctl calls them).
//
// A draft that changes between two pages (FAILED_PRECONDITION,
// wire.ReasonDraftChanged) is asked for again from its first page, up to
// restartsMax times in all: a draft of a busy organization may change
// under a long walk, and the caller wants the document, not the error. It
// imports only the protos and services/wire, so a client links nothing of
// the server.
package pages

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// restartsMax bounds how many times a walk starts again from the first
// page after its draft changed: past it, the error goes to the caller.
const restartsMax = 3

// ErrNoProgress reports a server that answered a page with nothing in it
// and yet a next_page_token: following it could go on forever.
var ErrNoProgress = errors.New("pages: a page without entries names a next page")

// Invoice returns the whole invoice req names: its first page's response,
// with the lines of every page. A request without page_size gets the
// server's default page.
func Invoice(ctx context.Context, get Get[*billingv1.GetInvoiceRequest, *billingv1.GetInvoiceResponse], req *billingv1.GetInvoiceRequest) (*billingv1.GetInvoiceResponse, error) {
	return walk(ctx, req, req.GetPageSize(), func(r *billingv1.GetInvoiceRequest, token string, size int32) (*billingv1.GetInvoiceResponse, error) {
		r.PageToken, r.PageSize = token, size
		return get(ctx, r)
	}, func(all, page *billingv1.GetInvoiceResponse) int {
		if all != page {
			all.Invoice.Lines = append(all.Invoice.Lines, page.GetInvoice().GetLines()...)
			all.Position = page.GetPosition()
		}
		return len(page.GetInvoice().GetLines())
	})
}

// UsageMonth returns the whole month of lines req names, as Invoice.
func UsageMonth(ctx context.Context, get Get[*billingv1.GetUsageMonthRequest, *billingv1.GetUsageMonthResponse], req *billingv1.GetUsageMonthRequest) (*billingv1.GetUsageMonthResponse, error) {
	return walk(ctx, req, req.GetPageSize(), func(r *billingv1.GetUsageMonthRequest, token string, size int32) (*billingv1.GetUsageMonthResponse, error) {
		r.PageToken, r.PageSize = token, size
		return get(ctx, r)
	}, func(all, page *billingv1.GetUsageMonthResponse) int {
		if all != page {
			all.Month.Lines = append(all.Month.Lines, page.GetMonth().GetLines()...)
			all.Position = page.GetPosition()
		}
		return len(page.GetMonth().GetLines())
	})
}

// Invoices returns every invoice summary of the range req names.
func Invoices(ctx context.Context, get Get[*billingv1.ListInvoicesRequest, *billingv1.ListInvoicesResponse], req *billingv1.ListInvoicesRequest) (*billingv1.ListInvoicesResponse, error) {
	return walk(ctx, req, req.GetPageSize(), func(r *billingv1.ListInvoicesRequest, token string, size int32) (*billingv1.ListInvoicesResponse, error) {
		r.PageToken, r.PageSize = token, size
		return get(ctx, r)
	}, func(all, page *billingv1.ListInvoicesResponse) int {
		if all != page {
			all.Invoices = append(all.Invoices, page.GetInvoices()...)
			all.Position = page.GetPosition()
		}
		return len(page.GetInvoices())
	})
}

// Adjustments returns every entry of the adjustment ledger req names.
func Adjustments(ctx context.Context, get Get[*billingv1.ListAdjustmentsRequest, *billingv1.ListAdjustmentsResponse], req *billingv1.ListAdjustmentsRequest) (*billingv1.ListAdjustmentsResponse, error) {
	return walk(ctx, req, req.GetPageSize(), func(r *billingv1.ListAdjustmentsRequest, token string, size int32) (*billingv1.ListAdjustmentsResponse, error) {
		r.PageToken, r.PageSize = token, size
		return get(ctx, r)
	}, func(all, page *billingv1.ListAdjustmentsResponse) int {
		if all != page {
			all.Adjustments = append(all.Adjustments, page.GetAdjustments()...)
			all.Position = page.GetPosition()
		}
		return len(page.GetAdjustments())
	})
}

// Exceptions returns every exception req asks for.
func Exceptions(ctx context.Context, get Get[*billingv1.ListExceptionsRequest, *billingv1.ListExceptionsResponse], req *billingv1.ListExceptionsRequest) (*billingv1.ListExceptionsResponse, error) {
	return walk(ctx, req, req.GetPageSize(), func(r *billingv1.ListExceptionsRequest, token string, size int32) (*billingv1.ListExceptionsResponse, error) {
		r.PageToken, r.PageSize = token, size
		return get(ctx, r)
	}, func(all, page *billingv1.ListExceptionsResponse) int {
		if all != page {
			all.Exceptions = append(all.Exceptions, page.GetExceptions()...)
			all.Position = page.GetPosition()
		}
		return len(page.GetExceptions())
	})
}

// Get is one call of a paged RPC.
type Get[Req, Resp any] func(context.Context, Req) (Resp, error)

// Client adapts a walk over pages (Invoice, ...) and a client's method
// expression (billingv1.BillingServiceClient.GetInvoice) to the shape of
// that method: what ledgerctl's calls take.
func Client[Req, Resp any](walk func(context.Context, Get[Req, Resp], Req) (Resp, error), rpc func(billingv1.BillingServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error)) func(billingv1.BillingServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error) {
	return func(c billingv1.BillingServiceClient, ctx context.Context, req Req, opts ...grpc.CallOption) (Resp, error) {
		return walk(ctx, func(ctx context.Context, r Req) (Resp, error) { return rpc(c, ctx, r, opts...) }, req)
	}
}

type paged interface {
	proto.Message
	GetNextPageToken() string
}

// walk asks for the pages of req in turn (get, on a copy of req, which it
// leaves as it was) and adds each to the first (add, which returns how many
// entries the page had). The response's next_page_token ends empty.
//
// A page too large for the client to receive (gRPC's receive limit, 4 MiB
// by default: a page of lines with a long lineage can pass it) is asked
// for again at half the size, down to a line: the walk is slower, but
// gets the document.
func walk[Req proto.Message, Resp paged](ctx context.Context, req Req, size int32, get func(Req, string, int32) (Resp, error), add func(all, page Resp) int) (Resp, error) {
	var zero Resp
	r := proto.Clone(req).(Req)
	for restarts := 0; ; restarts++ {
		var all Resp
		token := ""
		for {
			page, err := get(r, token, size)
			switch {
			case err == nil:
			case tooLarge(err) && size != 1:
				if size == 0 {
					size = wire.PageSizeDefault
				}
				size /= 2
				continue
			case token != "" && restarts < restartsMax && errors.Is(wire.FromStatus(err), wire.ReasonDraftChanged):
				// Start again from the first page.
			default:
				return zero, err
			}
			if err != nil {
				break
			}
			if token == "" {
				all = page
			}
			n := add(all, page)
			token = page.GetNextPageToken()
			if token == "" {
				// all is the first page's response, and says so.
				m := all.ProtoReflect()
				m.Clear(m.Descriptor().Fields().ByName("next_page_token"))
				return all, nil
			}
			if n == 0 {
				return zero, fmt.Errorf("%w (%s)", ErrNoProgress, page.ProtoReflect().Descriptor().FullName())
			}
			if err := ctx.Err(); err != nil {
				return zero, err
			}
		}
	}
}

// tooLarge reports a response the client refused for its size: gRPC's own
// RESOURCE_EXHAUSTED, which carries no ErrorInfo of the service (the
// service's, too many waiting calls, does).
func tooLarge(err error) bool {
	return status.Code(err) == codes.ResourceExhausted && wire.FromStatus(err) == err
}
