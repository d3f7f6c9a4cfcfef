package access

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// TestEveryRPCHasARow checks the table against the service as generated:
// every BillingService method has a row (an RPC added to the proto
// without one would be the operator's alone, silently), and every row's
// resource is a field of the method's request.
func TestEveryRPCHasARow(t *testing.T) {
	sd := billingv1.File_billing_v1_query_proto.Services().ByName("BillingService")
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		name := "/" + string(sd.FullName()) + "/" + string(md.Name())
		row, ok := methods[name]
		if !ok {
			t.Errorf("%s has no row in the role table", name)
			continue
		}
		field := map[resource]protoreflect.Name{ban: "ban", org: "org_id", orgOptional: "org_id"}[row.resource]
		if field != "" && md.Input().Fields().ByName(field) == nil {
			t.Errorf("%s: the row names %s, which %s does not have", name, field, md.Input().FullName())
		}
		if md.IsStreamingClient() || md.IsStreamingServer() {
			t.Errorf("%s streams: the stream interceptor cannot read its request's resource", name)
		}
	}
	for name := range methods {
		if methods[name].open && len(methods[name].roles) > 0 {
			t.Errorf("%s is open and has roles", name)
		}
	}
}
