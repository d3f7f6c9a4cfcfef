package query

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/document"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// TestEnumTables pins the enum tables to both sides: every wire value but
// the _UNSPECIFIED zero has a domain value of the same name, and back, so a
// kind added to the projection or to query.proto fails here rather than
// going out as UNSPECIFIED.
func TestEnumTables(t *testing.T) {
	check := func(t *testing.T, prefix string, enum protoreflect.EnumDescriptor, names map[string]protoreflect.EnumNumber) {
		t.Helper()
		values := enum.Values()
		for i := range values.Len() {
			v := values.Get(i)
			if v.Number() == 0 {
				continue
			}
			if _, ok := names[string(v.Name())]; !ok {
				t.Errorf("%s has no domain value", v.Name())
			}
		}
		for name, n := range names {
			if v := values.ByNumber(n); v == nil || string(v.Name()) != name {
				t.Errorf("domain value %s maps to wire value %d, named %v", name, n, v.Name())
			}
		}
		if len(names) != values.Len()-1 {
			t.Errorf("%s: %d mapped values, want %d", prefix, len(names), values.Len()-1)
		}
	}

	kinds := map[string]protoreflect.EnumNumber{}
	for k := billing.Charges; k <= billing.PostBillUpdate; k++ {
		kinds["LINE_KIND_"+k.String()] = document.LineKinds[k].Number()
	}
	check(t, "LINE_KIND_", billingv1.LineKind(0).Descriptor(), kinds)

	exceptions := map[string]protoreflect.EnumNumber{}
	for k := billing.UnassignedUsage; k <= billing.DigestMismatch; k++ {
		exceptions["EXCEPTION_KIND_"+k.String()] = exceptionKinds[k].Number()
	}
	check(t, "EXCEPTION_KIND_", billingv1.ExceptionKind(0).Descriptor(), exceptions)

	statusNames := map[string]protoreflect.EnumNumber{}
	for s := billing.Draft; s <= billing.Issued; s++ {
		statusNames["INVOICE_STATUS_"+s.String()] = document.Statuses[s].Number()
	}
	check(t, "INVOICE_STATUS_", billingv1.InvoiceStatus(0).Descriptor(), statusNames)

	for wire, domain := range views {
		if wire != billingv1.BillingView_BILLING_VIEW_UNSPECIFIED && document.ViewNames[domain] != wire {
			t.Errorf("view %v reads as %v, which answers as %v", wire, domain, document.ViewNames[domain])
		}
	}
	if views[billingv1.BillingView_BILLING_VIEW_UNSPECIFIED] != billing.BillingCycle {
		t.Error("view 0 is not the billing cycle")
	}
}
