package query_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// history appends the worked examples of docs/architecture.md ("Documents") and a few more
// events, asking the service along the way what only the middle of the
// history shows, and returns the position of the last event.
//
//   - acme (BAN-100, USD, cost center cc-eng), AWS account 111111111111:
//     December 10.00 known at its close and 1.00 more after it; January
//     3.00 at its close, reconciled to 5.00 before its finalization;
//     February 7.00, still open.
//   - tokyo (BAN-JP, JPY): January usage of 700.3 + 499.3 yen.
//   - org1 and org2: the intra-organization example, March, open.
//   - usage of an account nobody registered, and of an acme account in EUR.
func history(t *testing.T, r *rig) (last uint64) {
	t.Helper()
	c := r.client
	r.append(t, org("acme", "BAN-100", "USD"))
	r.append(t, &billingv1.CostCenterCreated{OrgId: "acme", CostCenterId: "cc-eng", Name: "Engineering"})
	r.append(t, &billingv1.WorkspaceCreated{OrgId: "acme", WorkspaceId: "ws", CostCenterId: "cc-eng", Name: "Platform"})
	r.append(t, provider("acme", "Prod", "ws", "AWS", "111111111111"))
	dec := usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2017-12-05T00:00:00Z", "10.00", "USD"))
	dec.EventId = "usage-2017-12"
	r.append(t, dec)
	r.append(t, closeCycle("2017-12", "2018-01-01T00:00:00Z"))
	late := usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2017-12-20T00:00:00Z", "1.00", "USD"))
	late.EventId = "usage-2017-12-late"
	r.append(t, late)
	r.append(t, usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2018-01-10T00:00:00Z", "3.00", "USD")))

	r.append(t, org("tokyo", "BAN-JP", "JPY"))
	r.append(t, provider("tokyo", "Tokyo", "ws-jp", "AWS", "222222222222"))
	r.append(t, usage(
		rec("AWS", "222222222222", "Amazon S3", "ap-northeast-1", "2018-01-15T00:00:00Z", "700.3", "JPY"),
		rec("AWS", "222222222222", "Amazon S3", "ap-northeast-1", "2018-01-16T00:00:00Z", "499.3", "JPY"),
	))

	closeJan := r.append(t, closeCycle("2018-01", "2018-02-01T00:00:00Z"))
	recon := r.append(t, &billingv1.VendorReconciliationCompleted{EventId: "recon-2018-01", Vendor: "AWS", Month: "2018-01", Lines: []*billingv1.ReconciliationLine{
		{AccountId: "111111111111", Service: "Amazon EC2", VendorCost: &billingv1.Money{Amount: "5.00", Currency: "USD"}},
	}})

	// Between the reconciliation and the finalization, January's vendor
	// view does not exist yet, and the error says from when it will.
	_, err := c.GetUsageMonth(callCtx(t), &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01",
		View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, MinPosition: recon})
	wantStatus(t, err, codes.FailedPrecondition, "NOT_FINALIZED",
		`month "2018-01" has no vendor cycle view yet: the vendor cycle view of 2018-01 is available once VendorCycleFinalized for 2018-01 is appended, on schedule from 2018-02-10T00:00:00Z`)
	if !errors.Is(wire.FromStatus(err), wire.ReasonNotFinalized) {
		t.Errorf("FromStatus(%v) is not wire.ReasonNotFinalized", err)
	}

	r.append(t, finalize("2018-01", "2018-02-10T00:00:00Z"))

	// Read-your-writes: the February usage just appended is on the draft
	// of the very next call that asks for its position.
	feb := r.append(t, usage(rec("AWS", "111111111111", "Amazon EC2", "us-east-1", "2018-02-03T00:00:00Z", "7.00", "USD")))
	got, err := c.GetInvoice(callCtx(t), &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-02", MinPosition: feb})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetPosition() < feb || got.GetInvoice().GetTotal().GetAmount() != "9.00" {
		t.Fatalf("invoice 2018-02 at min_position %d: position %d, total %s; want at least %d and 9.00 (7.00 + the 2.00 update)",
			feb, got.GetPosition(), amountOf(got.GetInvoice().GetTotal()), feb)
	}

	r.append(t, org("org1", "BAN-1", "USD"))
	r.append(t, org("org2", "BAN-2", "USD"))
	for _, a := range []string{"A", "B", "C"} {
		r.append(t, provider("org1", "p"+a, "ws1", "AWS", a))
	}
	r.append(t, provider("org2", "pD", "ws2", "AWS", "D"))
	r.append(t, &billingv1.ReservedInstancePurchased{RiId: "r1", Vendor: "AWS", AccountId: "A", Service: "Amazon EC2", Region: "us-east-1"})
	fee := rec("AWS", "A", "Amazon EC2", "us-east-1", "2018-03-01T00:00:00Z", "300.00", "USD")
	fee.ChargeCategory, fee.CommitmentId = "Purchase", "r1"
	r.append(t, usage(fee,
		rec("AWS", "B", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "700.00", "USD"),
		rec("AWS", "C", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "300.00", "USD"),
	))
	r.append(t, &billingv1.ReservedInstanceBenefitReported{Month: "2018-03", Benefits: []*billingv1.ReservedInstanceBenefit{
		{RiId: "r1", ConsumerAccountId: "B", Amount: &billingv1.Money{Amount: "400.00", Currency: "USD"}},
		{RiId: "r1", ConsumerAccountId: "C", Amount: &billingv1.Money{Amount: "200.00", Currency: "USD"}},
		{RiId: "r1", ConsumerAccountId: "D", Amount: &billingv1.Money{Amount: "100.00", Currency: "USD"}},
	}})

	r.append(t, usage(rec("AWS", "999999999999", "Amazon EC2", "eu-west-1", "2018-02-11T00:00:00Z", "3.50", "USD")))
	last = r.append(t, usage(rec("AWS", "111111111111", "Amazon EC2", "eu-west-1", "2018-02-12T00:00:00Z", "2.005", "EUR")))

	inv, err := c.GetInvoice(callCtx(t), &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: last})
	if err != nil {
		t.Fatal(err)
	}
	if inv.GetInvoice().GetPosition() != closeJan {
		t.Errorf("invoice 2018-01 reflects position %d, want %d, its close", inv.GetInvoice().GetPosition(), closeJan)
	}
	if inv.GetPosition() < last {
		t.Errorf("response position %d, want at least %d", inv.GetPosition(), last)
	}
	return last
}

// TestBillingService calls every RPC through the generated client and
// checks the answers against the worked examples of docs/architecture.md, exactly, and
// against golden files.
func TestBillingService(t *testing.T) {
	r := newRig(t, rigOptions{})
	last := history(t, r)
	c := r.client
	ctx := callCtx(t)

	t.Run("GetInvoice", func(t *testing.T) {
		for _, tc := range []struct {
			golden, ban, month string
			status             billingv1.InvoiceStatus
			total              string
		}{
			{"invoice_BAN-100_2018-01", "BAN-100", "2018-01", billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED, "4.00 USD"},
			{"invoice_BAN-100_2018-02", "BAN-100", "2018-02", billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT, "9.00 USD"},
			{"invoice_BAN-JP_2018-01", "BAN-JP", "2018-01", billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED, "1200 JPY"},
			{"invoice_BAN-1_2018-03", "BAN-1", "2018-03", billingv1.InvoiceStatus_INVOICE_STATUS_DRAFT, "1200.00 USD"},
		} {
			t.Run(tc.golden, func(t *testing.T) {
				resp, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: tc.ban, Month: tc.month, MinPosition: last})
				if err != nil {
					t.Fatal(err)
				}
				inv := resp.GetInvoice()
				if inv.GetStatus() != tc.status || amountOf(inv.GetTotal()) != tc.total {
					t.Errorf("%s %s: %v %s, want %v %s", tc.ban, tc.month, inv.GetStatus(), amountOf(inv.GetTotal()), tc.status, tc.total)
				}
				golden(t, tc.golden, resp)
			})
		}
		// The worked example's update line, exactly, with its lineage.
		resp, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", IncludeLineage: true})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "invoice_BAN-100_2018-01_lineage", resp)
		var update *billingv1.InvoiceLine
		for _, l := range resp.GetInvoice().GetLines() {
			if l.GetKind() == billingv1.LineKind_LINE_KIND_PREVIOUS_MONTH_UPDATE {
				update = l
			}
		}
		if update.GetDescription() != "Update to Previous Month's Amazon EC2" || update.GetForMonth() != "2017-12" ||
			update.GetService() != "Amazon EC2" || amountOf(update.GetAmount()) != "1.00 USD" || update.GetCostCenterId() != "cc-eng" ||
			update.GetBan() != "BAN-100" {
			t.Errorf("update line = %v", update)
		}
		// Lineage: the update's detail names the late December usage that
		// caused it, after the usage already billed in December.
		if d := update.GetDetails(); len(d) != 1 || !slices.Equal(d[0].GetEventIds(), []string{"usage-2017-12", "usage-2017-12-late"}) {
			t.Errorf("update line details = %v, want one with event_ids [usage-2017-12 usage-2017-12-late]", d)
		}
		if got := resp.GetInvoice().GetIssuedAt().AsTime(); !got.Equal(time.Date(2018, 2, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("issued_at = %v, want 2018-02-01T00:00:00Z", got)
		}
		// Without include_lineage, the same invoice but for the event_ids.
		plain, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01"})
		if err != nil {
			t.Fatal(err)
		}
		wantWithoutLineage(t, plain.GetInvoice(), resp.GetInvoice())
	})

	t.Run("ListInvoices", func(t *testing.T) {
		resp, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-100", FromMonth: "2017-11", ToMonth: "2018-03", MinPosition: last})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range resp.GetInvoices() {
			got = append(got, s.GetMonth()+" "+s.GetStatus().String()+" "+amountOf(s.GetTotal()))
		}
		want := []string{
			"2017-12 INVOICE_STATUS_ISSUED 10.00 USD",
			"2018-01 INVOICE_STATUS_ISSUED 4.00 USD",
			"2018-02 INVOICE_STATUS_DRAFT 9.00 USD",
			"2018-03 INVOICE_STATUS_DRAFT 0.00 USD",
		}
		if !slices.Equal(got, want) {
			t.Errorf("invoices = %q, want %q (2017-11, before the first close, has none)", got, want)
		}
		golden(t, "list_invoices_BAN-100", resp)
	})

	t.Run("GetUsageMonth", func(t *testing.T) {
		for _, tc := range []struct {
			golden string
			view   billingv1.BillingView
			month  string
			want   billingv1.BillingView
			total  string
		}{
			// View 0 is the billing cycle: the invoice's 4.00.
			{"usage_month_acme_2018-01_default", billingv1.BillingView_BILLING_VIEW_UNSPECIFIED, "2018-01", billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE, "4.00 USD"},
			// The vendor charged 5.00: 3.00 billed, 2.00 post-bill.
			{"usage_month_acme_2018-01_vendor", billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, "2018-01", billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, "5.00 USD"},
		} {
			t.Run(tc.golden, func(t *testing.T) {
				resp, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: tc.month, View: tc.view, MinPosition: last})
				if err != nil {
					t.Fatal(err)
				}
				if m := resp.GetMonth(); m.GetView() != tc.want || amountOf(m.GetTotal()) != tc.total {
					t.Errorf("view %v: %v %s, want %v %s", tc.view, m.GetView(), amountOf(m.GetTotal()), tc.want, tc.total)
				}
				golden(t, tc.golden, resp)
			})
		}
		resp, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01", View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, IncludeLineage: true})
		if err != nil {
			t.Fatal(err)
		}
		var post *billingv1.InvoiceLine
		for _, l := range resp.GetMonth().GetLines() {
			if l.GetKind() == billingv1.LineKind_LINE_KIND_POST_BILL_UPDATE {
				post = l
			}
		}
		if amountOf(post.GetAmount()) != "2.00 USD" || post.GetDescription() != "Post-Bill Update to Amazon EC2" {
			t.Errorf("post-bill update line = %v, want 2.00 USD", post)
		}
		// The 2.00 is the reconciliation's true-up, and says so.
		if d := post.GetDetails(); len(d) != 1 || d[0].GetDescription() != "Vendor reconciliation" || d[0].GetRegion() != "" ||
			!slices.Equal(d[0].GetEventIds(), []string{"recon-2018-01"}) {
			t.Errorf("post-bill update details = %v, want the vendor reconciliation recon-2018-01", d)
		}
		plain, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-01", View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE})
		if err != nil {
			t.Fatal(err)
		}
		wantWithoutLineage(t, plain.GetMonth(), resp.GetMonth())
	})

	t.Run("GetUsageHistory", func(t *testing.T) {
		for _, tc := range []struct {
			view billingv1.BillingView
			want []string
		}{
			{billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE, []string{"2017-12 10.00 USD true", "2018-01 4.00 USD true", "2018-02 9.00 USD true"}},
			{billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, []string{"2017-12 0.00 USD false", "2018-01 5.00 USD true", "2018-02 0.00 USD false"}},
		} {
			t.Run(tc.view.String(), func(t *testing.T) {
				resp, err := c.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: "acme", FromMonth: "2017-12", ToMonth: "2018-02", View: tc.view, MinPosition: last})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, m := range resp.GetMonths() {
					avail := "false"
					if m.GetAvailable() {
						avail = "true"
					}
					got = append(got, m.GetMonth()+" "+amountOf(m.GetTotal())+" "+avail)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("history = %q, want %q", got, tc.want)
				}
				golden(t, "usage_history_acme_"+tc.view.String(), resp)
			})
		}
	})

	t.Run("GetDashboard", func(t *testing.T) {
		for _, tc := range []struct {
			name, org, costCenter string
			want                  []string
		}{
			{"acme", "acme", "", []string{"2017-11 0.00 USD", "2017-12 10.00 USD", "2018-01 4.00 USD", "2018-02 9.00 USD"}},
			{"acme_cc-eng", "acme", "cc-eng", []string{"2017-11 0.00 USD", "2017-12 10.00 USD", "2018-01 4.00 USD", "2018-02 9.00 USD"}},
			{"tokyo", "tokyo", "", []string{"2017-11 0 JPY", "2017-12 0 JPY", "2018-01 1200 JPY", "2018-02 0 JPY"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := c.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: tc.org, CostCenterId: tc.costCenter, FromMonth: "2017-11", ToMonth: "2018-02", MinPosition: last})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, b := range resp.GetBars() {
					got = append(got, b.GetMonth()+" "+amountOf(b.GetAmount()))
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("bars = %q, want %q", got, tc.want)
				}
				golden(t, "dashboard_"+tc.name, resp)
			})
		}
	})

	t.Run("ListAdjustments", func(t *testing.T) {
		for _, tc := range []struct {
			kind billingv1.LineKind
			want []string
		}{
			// Both sides of every benefit org1 is on, D's included.
			{billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT, []string{
				"A B r1 -400.00 USD", "A C r1 -200.00 USD", "A D r1 -100.00 USD", "B A r1 400.00 USD", "C A r1 200.00 USD",
			}},
			// A's 400.00 credit spread 1100:500 over B and C.
			{billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT, []string{"A   400.00 USD", "B   -275.00 USD", "C   -125.00 USD"}},
		} {
			t.Run(tc.kind.String(), func(t *testing.T) {
				resp, err := c.ListAdjustments(ctx, &billingv1.ListAdjustmentsRequest{OrgId: "org1", Month: "2018-03", Kind: tc.kind, MinPosition: last})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, a := range resp.GetAdjustments() {
					if a.GetKind() != tc.kind {
						t.Errorf("entry of kind %v in the %v ledger", a.GetKind(), tc.kind)
					}
					got = append(got, a.GetAccountId()+" "+a.GetCounterpartyAccountId()+" "+a.GetRiId()+" "+amountOf(a.GetAmount()))
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("adjustments = %q, want %q", got, tc.want)
				}
				golden(t, "adjustments_org1_"+tc.kind.String(), resp)
			})
		}
	})

	t.Run("ListExceptions", func(t *testing.T) {
		for _, tc := range []struct {
			name, org string
			want      []string
		}{
			// 2.005 EUR has EUR's two digits, rounded half away from zero.
			{"all", "", []string{
				"EXCEPTION_KIND_UNASSIGNED_USAGE 999999999999 2018-02 3.50 USD",
				"EXCEPTION_KIND_CURRENCY_MISMATCH 111111111111 2018-02 2.01 EUR",
			}},
			// Unassigned usage has no organization.
			{"acme", "acme", []string{"EXCEPTION_KIND_CURRENCY_MISMATCH 111111111111 2018-02 2.01 EUR"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := c.ListExceptions(ctx, &billingv1.ListExceptionsRequest{OrgId: tc.org, MinPosition: last})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range resp.GetExceptions() {
					if e.GetEventId() == "" || e.GetReason() == "" {
						t.Errorf("exception without event_id or reason: %v", e)
					}
					got = append(got, e.GetKind().String()+" "+e.GetAccountId()+" "+e.GetMonth()+" "+amountOf(e.GetAmount()))
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("exceptions = %q, want %q", got, tc.want)
				}
				golden(t, "exceptions_"+tc.name, resp)
			})
		}
	})

	t.Run("errors", func(t *testing.T) { testErrors(t, c) })
}

// testErrors checks the error table through the wire: code, ErrorInfo
// reason, a message naming the field and its value, and the domain error
// FromStatus gives back.
func testErrors(t *testing.T, c billingv1.BillingServiceClient) {
	ctx := callCtx(t)
	vendor := billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE
	for _, tc := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
		msg    string
		is     error
	}{
		{"unknown BAN", func() error {
			_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-404", Month: "2018-01"})
			return err
		}, codes.NotFound, "UNKNOWN_BAN", `ban "BAN-404" is not the BAN of any organization or cost center`, wire.ReasonUnknownBAN},
		{"malformed month", func() error {
			_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-13"})
			return err
		}, codes.InvalidArgument, "MALFORMED_MONTH", `month "2018-13" is not a month written YYYY-MM`, wire.ReasonMalformedMonth},
		{"empty BAN", func() error {
			_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Month: "2018-01"})
			return err
		}, codes.InvalidArgument, "REQUIRED", `ban "" is required`, wire.ReasonRequired},
		{"month before the first close", func() error {
			_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2017-11"})
			return err
		}, codes.NotFound, "NOT_BILLED", `month "2017-11" precedes the first closed billing cycle, so has no invoice of its own: 2017-11 is before 2017-12; its charges are on the invoice of 2017-12`, wire.ReasonNotBilled},
		{"malformed from_month", func() error {
			_, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-100", FromMonth: "2018-1", ToMonth: "2018-02"})
			return err
		}, codes.InvalidArgument, "MALFORMED_MONTH", `from_month "2018-1" is not a month written YYYY-MM`, wire.ReasonMalformedMonth},
		{"missing to_month", func() error {
			_, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-100", FromMonth: "2018-01"})
			return err
		}, codes.InvalidArgument, "REQUIRED", `to_month "" is required`, wire.ReasonRequired},
		{"reversed range", func() error {
			_, err := c.ListInvoices(ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-100", FromMonth: "2018-03", ToMonth: "2018-01"})
			return err
		}, codes.InvalidArgument, "REVERSED_RANGE", `to_month "2018-01" precedes from_month: from_month is "2018-03"`, wire.ReasonReversedRange},
		{"range too long", func() error {
			_, err := c.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: "acme", FromMonth: "1900-01", ToMonth: "2018-01"})
			return err
		}, codes.InvalidArgument, "RANGE_TOO_LONG", `to_month "2018-01" is more than 1199 months after from_month: from_month is "1900-01"`, wire.ReasonRangeTooLong},
		{"unknown view", func() error {
			_, err := c.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: "acme", FromMonth: "2018-01", ToMonth: "2018-02", View: 7})
			return err
		}, codes.InvalidArgument, "INVALID_VIEW", `view 7 is not a billing view`, wire.ReasonInvalidView},
		{"unknown organization", func() error {
			_, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "nobody", Month: "2018-01"})
			return err
		}, codes.NotFound, "UNKNOWN_ORGANIZATION", `org_id "nobody" is not a registered organization`, wire.ReasonUnknownOrganization},
		{"unknown organization in history", func() error {
			_, err := c.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: "nobody", FromMonth: "2018-01", ToMonth: "2018-02"})
			return err
		}, codes.NotFound, "UNKNOWN_ORGANIZATION", `org_id "nobody" is not a registered organization`, wire.ReasonUnknownOrganization},
		{"unknown organization's dashboard", func() error {
			_, err := c.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: "nobody", FromMonth: "2018-01", ToMonth: "2018-02"})
			return err
		}, codes.NotFound, "UNKNOWN_ORGANIZATION", `org_id "nobody" is not a registered organization`, wire.ReasonUnknownOrganization},
		{"unknown organization's adjustments", func() error {
			_, err := c.ListAdjustments(ctx, &billingv1.ListAdjustmentsRequest{OrgId: "nobody", Month: "2018-03", Kind: billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT})
			return err
		}, codes.NotFound, "UNKNOWN_ORGANIZATION", `org_id "nobody" is not a registered organization`, wire.ReasonUnknownOrganization},
		{"vendor view of an open month", func() error {
			_, err := c.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-02", View: vendor})
			return err
		}, codes.FailedPrecondition, "NOT_FINALIZED",
			`month "2018-02" has no vendor cycle view yet: the vendor cycle view of 2018-02 is available once VendorCycleFinalized for 2018-02 is appended, on schedule from 2018-03-10T00:00:00Z, and not before the billing cycle of 2018-02 closes`,
			wire.ReasonNotFinalized},
		{"unknown cost center", func() error {
			_, err := c.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: "acme", CostCenterId: "cc-nope", FromMonth: "2018-01", ToMonth: "2018-02"})
			return err
		}, codes.NotFound, "UNKNOWN_COST_CENTER", `cost_center_id "cc-nope" is not a cost center of the organization: org_id is "acme"`, wire.ReasonUnknownCostCenter},
		{"charges are no adjustment ledger", func() error {
			_, err := c.ListAdjustments(ctx, &billingv1.ListAdjustmentsRequest{OrgId: "org1", Month: "2018-03", Kind: billingv1.LineKind_LINE_KIND_CHARGES})
			return err
		}, codes.InvalidArgument, "INVALID_KIND", `kind LINE_KIND_CHARGES is not an adjustment kind`, wire.ReasonInvalidKind},
		{"unspecified adjustment kind", func() error {
			_, err := c.ListAdjustments(ctx, &billingv1.ListAdjustmentsRequest{OrgId: "org1", Month: "2018-03"})
			return err
		}, codes.InvalidArgument, "INVALID_KIND", `kind LINE_KIND_UNSPECIFIED is not an adjustment kind`, wire.ReasonInvalidKind},
		{"unknown organization's exceptions", func() error {
			_, err := c.ListExceptions(ctx, &billingv1.ListExceptionsRequest{OrgId: "nobody"})
			return err
		}, codes.NotFound, "UNKNOWN_ORGANIZATION", `org_id "nobody" is not a registered organization`, wire.ReasonUnknownOrganization},
		{"long values are cut", func() error {
			_, err := c.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01" + string(make([]byte, 1<<20))})
			return err
		}, codes.InvalidArgument, "MALFORMED_MONTH", `\x00\x00"… is not a month written YYYY-MM`, wire.ReasonMalformedMonth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantStatus(t, err, tc.code, tc.reason, tc.msg)
			if !errors.Is(wire.FromStatus(err), tc.is) {
				t.Errorf("FromStatus(%v) is not %v", err, tc.is)
			}
		})
	}
}

// TestUsageMonthBANs checks that GetUsageMonth, which merges the lines of
// all of an organization's BANs, says on each line which BAN it is billed
// to, and that the lines of each BAN are that BAN's invoice.
func TestUsageMonthBANs(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.append(t, org("acme", "BAN-A", "USD"))
	r.append(t, &billingv1.CostCenterCreated{OrgId: "acme", CostCenterId: "cc-shared", Name: "Shared"})
	r.append(t, &billingv1.CostCenterCreated{OrgId: "acme", CostCenterId: "cc-research", Name: "Research", Ban: "BAN-R"})
	r.append(t, &billingv1.WorkspaceCreated{OrgId: "acme", WorkspaceId: "ws-shared", CostCenterId: "cc-shared", Name: "Shared"})
	r.append(t, &billingv1.WorkspaceCreated{OrgId: "acme", WorkspaceId: "ws-research", CostCenterId: "cc-research", Name: "Research"})
	r.append(t, provider("acme", "Web", "ws-shared", "AWS", "111"))
	r.append(t, provider("acme", "Lab", "ws-research", "AWS", "222"))
	last := r.append(t, usage(
		rec("AWS", "111", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "10.00", "USD"),
		rec("AWS", "222", "Amazon EC2", "us-east-1", "2018-03-02T00:00:00Z", "20.00", "USD"),
	))
	ctx := callCtx(t)
	resp, err := r.client.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2018-03", MinPosition: last})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range resp.GetMonth().GetLines() {
		got = append(got, l.GetAccountId()+" "+l.GetBan()+" "+l.GetCostCenterId()+" "+amountOf(l.GetAmount()))
	}
	want := []string{"111 BAN-A cc-shared 10.00 USD", "222 BAN-R cc-research 20.00 USD"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
	for _, ban := range []string{"BAN-A", "BAN-R"} {
		inv, err := r.client.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: ban, Month: "2018-03"})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range inv.GetInvoice().GetLines() {
			if l.GetBan() != ban {
				t.Errorf("invoice of %s has a line of %q: %v", ban, l.GetBan(), l)
			}
		}
	}
}

// TestMinPosition checks the waits that run out: a position the log has
// not reached yet, with the client's deadline and with the service's cap
// for calls that have none.
func TestMinPosition(t *testing.T) {
	r := newRig(t, rigOptions{waitMax: 100 * time.Millisecond})
	last := r.append(t, org("acme", "BAN-100", "USD"))
	future := last + 1<<40

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := r.client.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: future})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("with a 200 ms deadline: %v, want DEADLINE_EXCEEDED", err)
	}

	// Without a deadline, the service's cap ends the wait, and the server's
	// own status says where the projections are.
	_, err = r.client.GetInvoice(context.Background(), &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01", MinPosition: future})
	wantStatus(t, err, codes.DeadlineExceeded, "POSITION_NOT_REACHED", "min_position "+strconv.FormatUint(future, 10)+" was not reached in time: they are at position ")
	if !errors.Is(wire.FromStatus(err), wire.ReasonPositionNotReached) {
		t.Errorf("FromStatus(%v) is not ErrNotReached", err)
	}

	// A position reached answers at once, and says it.
	resp, err := r.client.ListExceptions(callCtx(t), &billingv1.ListExceptionsRequest{MinPosition: last})
	if err != nil || resp.GetPosition() < last {
		t.Errorf("at min_position %d: %v, %v", last, resp, err)
	}
}

// TestHealthAndReflection checks what a balancer and grpcurl see: health
// NOT_SERVING and calls UNAVAILABLE until the runner has caught up, SERVING
// after, NOT_SERVING again once the server's context ends; reflection lists
// the service.
func TestHealthAndReflection(t *testing.T) {
	r := newRig(t, rigOptions{waitMax: 100 * time.Millisecond, paused: true})
	pos := r.append(t, org("acme", "BAN-100", "USD"))
	health := healthpb.NewHealthClient(r.conn)
	for _, service := range []string{"", "billing.v1.BillingService"} {
		resp, err := health.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health of %q before catch-up: %v, %v; want NOT_SERVING", service, resp, err)
		}
	}
	// No deadline: the service's cap ends the wait.
	_, err := r.client.GetInvoice(context.Background(), &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01"})
	wantStatus(t, err, codes.Unavailable, "REPLAYING", "the projections are still replaying the history; retry, or ask another replica: they are at position 0")

	r.start()
	waitHealth(t, health, healthpb.HealthCheckResponse_SERVING)
	if resp, err := r.client.GetInvoice(callCtx(t), &billingv1.GetInvoiceRequest{Ban: "BAN-100", Month: "2018-01"}); err != nil || resp.GetPosition() < pos {
		t.Errorf("after catch-up: %v, %v; want an answer at position %d or later", resp, err, pos)
	}

	refl, err := reflectionpb.NewServerReflectionClient(r.conn).ServerReflectionInfo(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	list, err := refl.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "billing.v1.BillingService") || !slices.Contains(names, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %q, want billing.v1.BillingService and grpc.health.v1.Health", names)
	}
	_ = refl.CloseSend()

	r.cancel()
	waitHealth(t, health, healthpb.HealthCheckResponse_NOT_SERVING)
}

// waitHealth watches the server's health until it reports want.
func waitHealth(t *testing.T, health healthpb.HealthClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	watch, err := health.Watch(callCtx(t), &healthpb.HealthCheckRequest{Service: "billing.v1.BillingService"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("watching health for %v: %v", want, err)
		}
		if resp.GetStatus() == want {
			return
		}
	}
}
