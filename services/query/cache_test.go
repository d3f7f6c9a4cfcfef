package query_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/query"
)

// encode returns the bytes the server writes for resp.
func encode(t *testing.T, svc *query.Service, resp proto.Message) []byte {
	t.Helper()
	data, err := svc.Codec().Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Free()
	return data.Materialize()
}

// TestFrozenCache checks that the issued documents answered from the
// frozen cache are, to the byte, what converting and marshalling them
// gives, in both forms (with and without lineage), and that neither form is
// ever answered for the other; that drafts are never held, and change with
// every event; and that the cache keeps to its bound.
func TestFrozenCache(t *testing.T) {
	r := newRig(t, rigOptions{})
	last := history(t, r)
	ctx := callCtx(t)
	svc := r.svc
	vendor := billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE

	calls := []struct {
		name   string
		frozen bool
		inv    *billingv1.GetInvoiceRequest // or
		um     *billingv1.GetUsageMonthRequest
	}{
		{name: "invoice BAN-100 2018-01", frozen: true, inv: &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: last}},
		{name: "invoice BAN-100 2018-01 lineage", frozen: true, inv: &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: last, IncludeLineage: true}},
		{name: "invoice BAN-JP 2018-01", frozen: true, inv: &billingv1.GetInvoiceRequest{Ban: "BAN-JP", Month: "2018-01", MinPosition: last}},
		{name: "usage month acme 2018-01", frozen: true, um: &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01", MinPosition: last}},
		{name: "usage month acme 2018-01 vendor", frozen: true, um: &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01", View: vendor, MinPosition: last}},
		{name: "usage month acme 2018-01 vendor lineage", frozen: true, um: &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01", View: vendor, MinPosition: last, IncludeLineage: true}},
		// Pages of frozen documents are held too, and carry a next_page_token
		// after the cached bytes.
		{name: "invoice BAN-100 2018-01 page", frozen: true, inv: &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: last, PageSize: 1}},
		{name: "usage month acme 2018-01 vendor lineage page", frozen: true, um: &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01", View: vendor, MinPosition: last, IncludeLineage: true, PageSize: 1}},
		{name: "draft BAN-100 2018-02", inv: &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-02", MinPosition: last}},
		{name: "draft BAN-100 2018-02 lineage", inv: &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-02", MinPosition: last, IncludeLineage: true}},
		{name: "draft usage month acme 2018-02", um: &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-02", MinPosition: last}},
	}
	const frozenCalls = 8
	// call makes a call of the table, to the service, or (client set)
	// over the wire through the server's codec, and returns the response
	// and its document.
	call := func(i int, client billingv1.BillingServiceClient) (proto.Message, proto.Message, error) {
		c := calls[i]
		if c.inv != nil {
			var resp *billingv1.GetInvoiceResponse
			var err error
			if client != nil {
				resp, err = client.GetInvoice(ctx, c.inv)
			} else {
				resp, err = svc.GetInvoice(ctx, c.inv)
			}
			return resp, resp.GetInvoice(), err
		}
		var resp *billingv1.GetUsageMonthResponse
		var err error
		if client != nil {
			resp, err = client.GetUsageMonth(ctx, c.um)
		} else {
			resp, err = svc.GetUsageMonth(ctx, c.um)
		}
		return resp, resp.GetMonth(), err
	}
	lineage := func(i int) bool {
		return calls[i].inv.GetIncludeLineage() || calls[i].um.GetIncludeLineage()
	}

	// Uncached: nothing is held, and the codec is gRPC's proto codec.
	svc.SetCacheMax(0)
	want := make([][]byte, len(calls))
	wantDocs := make([]proto.Message, len(calls))
	for i, c := range calls {
		resp, doc, err := call(i, nil)
		wantDocs[i] = doc
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want[i] = encode(t, svc, resp)
		if std, err := proto.Marshal(resp); err != nil || !bytes.Equal(want[i], std) {
			t.Fatalf("%s: uncached encoding differs from proto.Marshal (%v)", c.name, err)
		}
	}
	if n, _ := svc.CacheLen(); n != 0 {
		t.Fatalf("cache of 0 bytes holds %d entries", n)
	}

	svc.SetCacheMax(1 << 20)
	var entryMax int64 // the size of the largest entry
	for i, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			// The first call puts, the second reads the cache.
			_, before := svc.CacheLen()
			first, firstDoc, err := call(i, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, after := svc.CacheLen()
			entryMax = max(entryMax, after-before)
			resp, doc, err := call(i, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The form asked for, whichever form was put before.
			if ids := lineageOf(doc); (len(ids) > 0) != lineage(i) {
				t.Errorf("include_lineage %v answered with event_ids %q", lineage(i), ids)
			}
			if shared := doc == firstDoc; shared != c.frozen {
				t.Errorf("two calls share their document: %v, want %v", shared, c.frozen)
			}
			if !proto.Equal(first, resp) {
				t.Errorf("second call differs from the first")
			}
			if got := encode(t, svc, resp); !bytes.Equal(got, want[i]) {
				t.Errorf("encoded %d bytes differ from the %d uncached ones", len(got), len(want[i]))
			}
			// The cache's bytes followed by the position are proto.Marshal's.
			if std, err := proto.Marshal(resp); err != nil || !bytes.Equal(encode(t, svc, resp), std) {
				t.Errorf("encoding differs from proto.Marshal (%v)", err)
			}
		})
	}
	if n, size := svc.CacheLen(); n != frozenCalls || size > 1<<20 {
		t.Errorf("cache holds %d entries, %d bytes; want the %d frozen documents, within 1 MiB", n, size, frozenCalls)
	}
	// Each form is the other but for the lineage.
	wantWithoutLineage(t, wantDocs[0], wantDocs[1])
	wantWithoutLineage(t, wantDocs[4], wantDocs[5])
	wantWithoutLineage(t, wantDocs[8], wantDocs[9])

	// Over the wire, through the server's codec, the same answers with
	// the client's own position.
	for i, c := range calls {
		want, _, err := call(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := call(i, r.client)
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("%s over the wire: %v, %v; want %v", c.name, got, err, want)
		}
	}

	// A draft answers with the event just appended, and its usage month
	// too: nothing of the month was held.
	feb := r.append(t, usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2018-02-20T00:00:00Z", "1.00", "USD")))
	draft, err := r.client.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-02", MinPosition: feb})
	if err != nil || draft.GetInvoice().GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT || amountOf(draft.GetInvoice().GetTotal()) != "10.00 USD" {
		t.Errorf("draft after 1.00 more usage: %v, %v; want a draft of 10.00 USD", draft.GetInvoice().GetTotal(), err)
	}
	month, err := r.client.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-02", MinPosition: feb})
	if err != nil || amountOf(month.GetMonth().GetTotal()) != "10.00 USD" {
		t.Errorf("usage month after 1.00 more usage: %v, %v; want 10.00 USD", month.GetMonth().GetTotal(), err)
	}
	if n, _ := svc.CacheLen(); n != frozenCalls {
		t.Errorf("cache holds %d entries after the draft calls, want %d", n, frozenCalls)
	}

	// Once February closes, its invoice is issued and held, and equal to
	// the last draft but for status, issue time and position.
	closed := r.append(t, closeCycle("2018-02", "2018-03-01T00:00:00Z"))
	issued, err := r.client.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-02", MinPosition: closed})
	if err != nil || issued.GetInvoice().GetStatus() != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED || amountOf(issued.GetInvoice().GetTotal()) != "10.00 USD" {
		t.Errorf("invoice after the close: %v, %v; want issued, 10.00 USD", issued.GetInvoice(), err)
	}
	if n, _ := svc.CacheLen(); n != frozenCalls+1 {
		t.Errorf("cache holds %d entries after the close, want %d", n, frozenCalls+1)
	}

	// A bound of one and a half of the largest entry keeps one or two:
	// puts evict.
	bound := entryMax * 3 / 2
	svc.SetCacheMax(bound)
	for range 2 {
		for i, c := range calls[:frozenCalls] {
			resp, doc, err := call(i, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The position has moved on since want: compare the document,
			// and the encoding with proto.Marshal's.
			if std, err := proto.Marshal(resp); err != nil || !bytes.Equal(encode(t, svc, resp), std) || !proto.Equal(doc, wantDocs[i]) {
				t.Errorf("%s: answer differs from the uncached one under eviction (%v)", c.name, err)
			}
			if n, held := svc.CacheLen(); held > bound || n == 0 {
				t.Fatalf("cache of %d bytes holds %d entries of %d bytes", bound, n, held)
			}
		}
	}
}
