package query_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/document"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// pagedLines is the size of the paging tests' issued invoice: more lines
// than the default page, so that a request without page_size gets a page.
const pagedLines = wire.PageSizeDefault + 205

// pagedHistory appends an organization "big" (BAN-BIG) with pagedLines
// accounts charged in January 2018, closed, and three of them charged in
// February, a draft of three lines; and an organization "small" (BAN-SMALL)
// with one account charged in both months. It returns the last position.
func pagedHistory(t testing.TB, r *rig) uint64 {
	t.Helper()
	r.append(t, org("big", "BAN-BIG", "USD"))
	r.append(t, org("small", "BAN-SMALL", "USD"))
	r.append(t, provider("small", "p-small", "ws", "AWS", "999999999999"))
	jan := usage(rec("AWS", "999999999999", "Amazon EC2", "us-east-1", "2018-01-05T00:00:00Z", "1.00", "USD"))
	for a := range pagedLines {
		account := fmt.Sprintf("%012d", a)
		r.append(t, provider("big", fmt.Sprintf("p-%04d", a), "ws", "AWS", account))
		jan.Records = append(jan.Records, rec("AWS", account, "Amazon EC2", "us-east-1", "2018-01-02T00:00:00Z", fmt.Sprintf("%d.%02d", 1+a%13, a%100), "USD"))
	}
	r.append(t, usage(jan.Records...))
	r.append(t, closeCycle("2018-01", "2018-02-01T00:00:00Z"))
	return r.append(t, usage(
		rec("AWS", "000000000001", "Amazon EC2", "us-east-1", "2018-02-02T00:00:00Z", "1.00", "USD"),
		rec("AWS", "000000000002", "Amazon EC2", "us-east-1", "2018-02-02T00:00:00Z", "2.00", "USD"),
		rec("AWS", "000000000003", "Amazon EC2", "us-east-1", "2018-02-02T00:00:00Z", "3.00", "USD"),
		rec("AWS", "999999999999", "Amazon EC2", "us-east-1", "2018-02-02T00:00:00Z", "4.00", "USD"),
	))
}

// fieldOf returns the ErrorInfo field of a failed call.
func fieldOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()["field"]
		}
	}
	return ""
}

func TestPaging(t *testing.T) {
	r := newRig(t, rigOptions{})
	last := pagedHistory(t, r)
	// One bound for every call of every subtest: a few hundred pages.
	ctx := testkit.Context(t, time.Minute)
	c := r.client
	// whole is the invoice in one call, at the largest page.
	wholeResp, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageSize: wire.PageSizeMax, MinPosition: last})
	if err != nil {
		t.Fatal(err)
	}
	whole := wholeResp.GetInvoice()
	if len(whole.GetLines()) != pagedLines || wholeResp.GetNextPageToken() != "" {
		t.Fatalf("page_size %d: %d lines, next_page_token %q; want all %d, and none", wire.PageSizeMax, len(whole.GetLines()), wholeResp.GetNextPageToken(), pagedLines)
	}

	wholeDigest, err := document.Digest(whole)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("issued invoice pages concatenate to the whole", func(t *testing.T) {
		for _, size := range []int32{0, 7, 500, 20_000} {
			t.Run(fmt.Sprint("page_size ", size), func(t *testing.T) {
				var lines []*billingv1.InvoiceLine
				token, calls := "", 0
				for {
					resp, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageSize: size, PageToken: token})
					if err != nil {
						t.Fatal(err)
					}
					calls++
					page := resp.GetInvoice()
					want := min(pageSizeOf(size), pagedLines-len(lines))
					if len(page.GetLines()) != want {
						t.Fatalf("page %d of size %d: %d lines, want %d", calls, size, len(page.GetLines()), want)
					}
					// Every page is the whole document but for its lines.
					header, wantHeader := proto.Clone(page).(*billingv1.Invoice), proto.Clone(whole).(*billingv1.Invoice)
					header.Lines, wantHeader.Lines = nil, nil
					if !proto.Equal(header, wantHeader) {
						t.Fatalf("page %d: %v\nwant, but for the lines, the whole: %v", calls, header, wantHeader)
					}
					// The digest is the whole invoice's, on every page.
					if resp.GetDigest() != wholeDigest || wholeDigest == "" {
						t.Fatalf("page %d: digest %q, want the whole invoice's %q", calls, resp.GetDigest(), wholeDigest)
					}
					lines = append(lines, page.GetLines()...)
					if token = resp.GetNextPageToken(); token == "" {
						break
					}
				}
				if !slices.EqualFunc(lines, whole.GetLines(), func(a, b *billingv1.InvoiceLine) bool { return proto.Equal(a, b) }) {
					t.Errorf("the %d pages' %d lines are not the whole invoice's %d", calls, len(lines), len(whole.GetLines()))
				}
			})
		}
	})

	t.Run("ledgerctl's walk gets the whole", func(t *testing.T) {
		got, err := pages.Client(pages.Invoice, billingv1.BillingServiceClient.GetInvoice)(c, ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetInvoice(), whole) || got.GetNextPageToken() != "" {
			t.Errorf("pages.Invoice gave %d lines (next_page_token %q), want the whole invoice's %d", len(got.GetInvoice().GetLines()), got.GetNextPageToken(), len(whole.GetLines()))
		}
		um, err := pages.UsageMonth(ctx, r.svc.GetUsageMonth, &billingv1.GetUsageMonthRequest{OrgId: "big", Month: "2018-01", PageSize: 300})
		if err != nil {
			t.Fatal(err)
		}
		if len(um.GetMonth().GetLines()) != pagedLines || um.GetMonth().GetTotal().GetAmount() != whole.GetTotal().GetAmount() {
			t.Errorf("pages.UsageMonth: %d lines, total %s; want %d, %s", len(um.GetMonth().GetLines()), amountOf(um.GetMonth().GetTotal()), pagedLines, amountOf(whole.GetTotal()))
		}
	})

	t.Run("a walk halves pages too large for its client", func(t *testing.T) {
		// A client that takes at most 16 KiB a message: a page of 1,000
		// lines is more, one of 125 is not.
		got, err := pages.Client(pages.Invoice, billingv1.BillingServiceClient.GetInvoice)(c, ctx,
			&billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01"}, grpc.MaxCallRecvMsgSize(16<<10))
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetInvoice(), whole) {
			t.Errorf("pages.Invoice with a 16 KiB limit gave %d lines, want the whole invoice's %d", len(got.GetInvoice().GetLines()), len(whole.GetLines()))
		}
	})

	t.Run("usage month pages", func(t *testing.T) {
		first, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "big", Month: "2018-01"})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(first.GetMonth().GetLines()); n != wire.PageSizeDefault || first.GetNextPageToken() == "" || first.GetMonth().GetTotal().GetAmount() != whole.GetTotal().GetAmount() {
			t.Fatalf("first page: %d lines, total %s, next_page_token %q; want %d, the whole total %s, a token",
				n, amountOf(first.GetMonth().GetTotal()), first.GetNextPageToken(), wire.PageSizeDefault, amountOf(whole.GetTotal()))
		}
		second, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "big", Month: "2018-01", PageToken: first.GetNextPageToken()})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(second.GetMonth().GetLines()); n != pagedLines-wire.PageSizeDefault || second.GetNextPageToken() != "" {
			t.Errorf("second page: %d lines, next_page_token %q; want %d and none", n, second.GetNextPageToken(), pagedLines-wire.PageSizeDefault)
		}
	})

	t.Run("lists", func(t *testing.T) {
		// BAN-SMALL: January issued, February a draft.
		first, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-SMALL", FromMonth: "2018-01", ToMonth: "2018-02", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		second, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-SMALL", FromMonth: "2018-01", ToMonth: "2018-02", PageSize: 1, PageToken: first.GetNextPageToken()})
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, s := range append(first.GetInvoices(), second.GetInvoices()...) {
			got = append(got, s.GetMonth())
		}
		if !slices.Equal(got, []string{"2018-01", "2018-02"}) || second.GetNextPageToken() != "" {
			t.Errorf("ListInvoices pages of 1: months %v, last token %q; want 2018-01, 2018-02 and none", got, second.GetNextPageToken())
		}
	})

	t.Run("refused", func(t *testing.T) {
		first, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		token := first.GetNextPageToken()
		tampered := []byte(token)
		tampered[len(tampered)/2] ^= 1
		for _, tc := range []struct {
			name   string
			call   func() error
			reason wire.Reason
			field  string
			msg    string
		}{
			{"negative page_size", func() error {
				_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageSize: -1})
				return err
			}, wire.ReasonInvalidPageSize, "page_size", "page_size -1 is negative"},
			{"negative page_size of a list", func() error {
				_, err := c.ListExceptions(ctx, &billingv1.ListExceptionsRequest{PageSize: -5})
				return err
			}, wire.ReasonInvalidPageSize, "page_size", "page_size -5 is negative"},
			{"malformed token", func() error {
				_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageToken: "not a token"})
				return err
			}, wire.ReasonInvalidPageToken, "page_token", `page_token "not a token" is not a page token of this request`},
			{"damaged token", func() error {
				_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageToken: string(tampered)})
				return err
			}, wire.ReasonInvalidPageToken, "page_token", "not a token the service gave"},
			{"token of another BAN", func() error {
				_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-SMALL", Month: "2018-01", PageToken: token})
				return err
			}, wire.ReasonInvalidPageToken, "page_token", "it was given for another request (another ban, month or include_lineage)"},
			{"token of another form", func() error {
				_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", IncludeLineage: true, PageToken: token})
				return err
			}, wire.ReasonInvalidPageToken, "page_token", "given for another request"},
			{"token of another call", func() error {
				_, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "big", Month: "2018-01", PageToken: token})
				return err
			}, wire.ReasonInvalidPageToken, "page_token", "given for another request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				wantStatus(t, err, codes.InvalidArgument, string(tc.reason), tc.msg)
				if f := fieldOf(err); f != tc.field {
					t.Errorf("ErrorInfo field %q, want %q", f, tc.field)
				}
			})
		}
		// The token still works with the request it was given for, and
		// another page_size.
		if _, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-01", PageSize: 3, PageToken: token}); err != nil {
			t.Errorf("the token with its own request: %v", err)
		}
	})

	// Last: these append to the history.
	t.Run("draft", func(t *testing.T) {
		draft := func(token string) (*billingv1.GetInvoiceResponse, error) {
			return c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-02", PageSize: 1, PageToken: token})
		}
		first, err := draft("")
		if err != nil {
			t.Fatal(err)
		}
		if first.GetInvoice().GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT || first.GetNextPageToken() == "" {
			t.Fatalf("2018-02: %v, next_page_token %q; want a draft with more pages", first.GetInvoice().GetStatus(), first.GetNextPageToken())
		}
		// Another organization's event moves the position, not the draft:
		// the next page answers from the first page's position.
		other := r.append(t, usage(rec("AWS", "999999999999", "Amazon EC2", "us-east-1", "2018-02-03T00:00:00Z", "1.00", "USD")))
		second, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-02", PageSize: 1, PageToken: first.GetNextPageToken(), MinPosition: other})
		if err != nil {
			t.Fatalf("second page after another organization's event: %v", err)
		}
		if got, want := second.GetInvoice().GetPosition(), first.GetInvoice().GetPosition(); got != want || second.GetPosition() < other {
			t.Errorf("second page: invoice position %d, response position %d; want the first page's %d, and at least %d", got, second.GetPosition(), want, other)
		}
		if second.GetInvoice().GetTotal().GetAmount() != "6.00" {
			t.Errorf("second page's total %s, want the whole draft's 6.00 USD", amountOf(second.GetInvoice().GetTotal()))
		}
		// An event of the draft itself changes it: the walk must start
		// again.
		changed := r.append(t, usage(rec("AWS", "000000000002", "Amazon EC2", "us-east-1", "2018-02-04T00:00:00Z", "5.00", "USD")))
		_, err = c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-02", PageSize: 1, PageToken: second.GetNextPageToken(), MinPosition: changed})
		wantStatus(t, err, codes.FailedPrecondition, string(wire.ReasonDraftChanged), "changed since its first page; start again from the first page")
		if f := fieldOf(err); f != "page_token" {
			t.Errorf("ErrorInfo field %q, want page_token", f)
		}
		// A list that names the draft changes with it too.
		list, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-BIG", FromMonth: "2018-01", ToMonth: "2018-02", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		// So does a draft issued between its pages.
		again, err := draft("")
		if err != nil {
			t.Fatal(err)
		}
		closed := r.append(t, closeCycle("2018-02", "2018-03-01T00:00:00Z"))
		_, err = c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-02", PageSize: 1, PageToken: again.GetNextPageToken(), MinPosition: closed})
		wantStatus(t, err, codes.FailedPrecondition, string(wire.ReasonDraftChanged), "start again")
		_, err = c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-BIG", FromMonth: "2018-01", ToMonth: "2018-02", PageSize: 1, PageToken: list.GetNextPageToken()})
		wantStatus(t, err, codes.FailedPrecondition, string(wire.ReasonDraftChanged), "start again")
		// The walk of pages starts again by itself, and gets the invoice
		// as issued.
		got, err := pages.Invoice(ctx, r.svc.GetInvoice, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-02", PageSize: 1})
		if err != nil || len(got.GetInvoice().GetLines()) != 3 || got.GetInvoice().GetTotal().GetAmount() != "11.00" {
			t.Errorf("pages.Invoice of the issued 2018-02: %d lines, total %s, %v; want 3, 11.00 USD", len(got.GetInvoice().GetLines()), amountOf(got.GetInvoice().GetTotal()), err)
		}
	})

	t.Run("a walk starts again when its draft changes", func(t *testing.T) {
		mar := r.append(t, usage(
			rec("AWS", "000000000001", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "1.00", "USD"),
			rec("AWS", "000000000002", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "2.00", "USD"),
		))
		var calls int
		var changed uint64
		// The service itself, but the draft changes after the first page.
		get := func(ctx context.Context, req *billingv1.GetInvoiceRequest) (*billingv1.GetInvoiceResponse, error) {
			calls++
			req.MinPosition = max(mar, changed)
			resp, err := r.svc.GetInvoice(ctx, req)
			if calls == 1 {
				changed = r.append(t, usage(rec("AWS", "000000000003", "Amazon EC2", "us-east-1", "2018-03-03T00:00:00Z", "3.00", "USD")))
			}
			return resp, err
		}
		got, err := pages.Invoice(ctx, get, &billingv1.GetInvoiceRequest{Ban: "BAN-BIG", Month: "2018-03", PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		// The first page, the refused second, then the three pages of the
		// changed draft.
		if n := len(got.GetInvoice().GetLines()); n != 3 || got.GetInvoice().GetTotal().GetAmount() != "6.00" || calls != 5 {
			t.Errorf("walk: %d lines, total %s, in %d calls; want 3 lines, 6.00 USD, in 5 calls", n, amountOf(got.GetInvoice().GetTotal()), calls)
		}
	})
}

// pageSizeOf is the page size the service gives a request's page_size.
func pageSizeOf(size int32) int {
	switch {
	case size == 0:
		return wire.PageSizeDefault
	case size > wire.PageSizeMax:
		return wire.PageSizeMax
	}
	return int(size)
}
