package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/ctl"
	"github.com/ledger-billing/ledger/services/ingest"
	"github.com/ledger-billing/ledger/services/testkit"
)

// TestQueryCommands runs every query command on the demo, as a table
// (compared with a golden file) and with --json (compared with the
// response of the same call made directly through the gRPC client).
func TestQueryCommands(t *testing.T) {
	l := demoLedger(t)
	ctx := t.Context()
	for _, c := range []struct {
		name string
		args []string
		// direct makes the call the command makes, for --json.
		direct func() (proto.Message, error)
	}{
		{"invoice_get_draft", []string{"invoice", "get", "--ban", "BAN-2001", "--month", "2025-04"},
			func() (proto.Message, error) {
				return getInvoice(l.svc, ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-2001", Month: "2025-04"})
			}},
		{"invoice_get_intra", []string{"invoice", "get", "--ban", "BAN-1002", "--month", "2025-01"},
			func() (proto.Message, error) {
				return getInvoice(l.svc, ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-1002", Month: "2025-01"})
			}},
		{"invoice_get_lineage", []string{"invoice", "get", "--ban", "BAN-1002", "--month", "2025-01", "--lineage"},
			func() (proto.Message, error) {
				return getInvoice(l.svc, ctx, &billingv1.GetInvoiceRequest{Ban: "BAN-1002", Month: "2025-01", IncludeLineage: true})
			}},
		{"invoice_list", []string{"invoice", "list", "--ban", "BAN-1001", "--from", "2024-12", "--to", "2025-04"},
			func() (proto.Message, error) {
				return listInvoices(l.svc, ctx, &billingv1.ListInvoicesRequest{Ban: "BAN-1001", FromMonth: "2024-12", ToMonth: "2025-04"})
			}},
		{"usage_month", []string{"usage", "--org", "acme", "--month", "2025-01"},
			func() (proto.Message, error) {
				return getUsageMonth(l.svc, ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2025-01", View: billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE})
			}},
		{"usage_month_lineage", []string{"usage", "--org", "acme", "--month", "2025-01", "--lineage"},
			func() (proto.Message, error) {
				return getUsageMonth(l.svc, ctx, &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2025-01", View: billingv1.BillingView_BILLING_VIEW_BILLING_CYCLE, IncludeLineage: true})
			}},
		{"usage_history_vendor", []string{"usage", "--org", "acme", "--from", "2025-01", "--to", "2025-03", "--view", "vendor"},
			func() (proto.Message, error) {
				return l.svc.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: "acme", FromMonth: "2025-01", ToMonth: "2025-03", View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE})
			}},
		{"dashboard_cost_center", []string{"dashboard", "--org", "acme", "--cost-center", "cc-data", "--from", "2024-12", "--to", "2025-03"},
			func() (proto.Message, error) {
				return l.svc.GetDashboard(ctx, &billingv1.GetDashboardRequest{OrgId: "acme", CostCenterId: "cc-data", FromMonth: "2024-12", ToMonth: "2025-03"})
			}},
		{"adjustments_inter", []string{"adjustments", "--org", "acme", "--month", "2025-01", "--kind", "inter"},
			func() (proto.Message, error) {
				return listAdjustments(l.svc, ctx, &billingv1.ListAdjustmentsRequest{OrgId: "acme", Month: "2025-01", Kind: billingv1.LineKind_LINE_KIND_INTER_CUSTOMER_ADJUSTMENT})
			}},
		{"adjustments_intra", []string{"adjustments", "--org", "acme", "--month", "2025-01", "--kind", "intra"},
			func() (proto.Message, error) {
				return listAdjustments(l.svc, ctx, &billingv1.ListAdjustmentsRequest{OrgId: "acme", Month: "2025-01", Kind: billingv1.LineKind_LINE_KIND_INTRA_ORG_ADJUSTMENT})
			}},
		{"exceptions", []string{"exceptions"},
			func() (proto.Message, error) {
				return listExceptions(l.svc, ctx, &billingv1.ListExceptionsRequest{})
			}},
		{"exceptions_org", []string{"exceptions", "--org", "globex"},
			func() (proto.Message, error) {
				return listExceptions(l.svc, ctx, &billingv1.ListExceptionsRequest{OrgId: "globex"})
			}},
		{"orgs", []string{"orgs"},
			func() (proto.Message, error) {
				return l.svc.ListOrganizations(ctx, &billingv1.ListOrganizationsRequest{})
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testkit.Golden(t, c.name, []byte(sortedLineage(l.must(t, c.args...))))

			want, err := c.direct()
			if err != nil {
				t.Fatal(err)
			}
			got := want.ProtoReflect().New().Interface()
			out := l.must(t, append(c.args, "--json")...)
			if err := protojson.Unmarshal([]byte(out), got); err != nil {
				t.Fatalf("--json printed %q: %v", out, err)
			}
			// The position a response reflects moves with every append,
			// the store's own records of announcements included, between
			// the two calls: it is not part of what is compared.
			clearPosition(got)
			clearPosition(want)
			if !proto.Equal(got, want) {
				t.Errorf("--json printed\n%s\nthe call answers\n%v", out, want)
			}
			// The lineage is there if and only if asked for.
			if lineage := slices.Contains(c.args, "--lineage"); lineage != strings.Contains(out, `"event_ids"`) {
				t.Errorf("--json with --lineage %v printed event_ids: %v", lineage, !lineage)
			}
		})
	}
}

// clearPosition clears the top-level position of a response.
func clearPosition(m proto.Message) {
	r := m.ProtoReflect()
	if fd := r.Descriptor().Fields().ByName("position"); fd != nil {
		r.Clear(fd)
	}
}

// sortedLineage sorts each run of lineage rows ("event ID" under a detail)
// of a table. The lineage is in log order, and the demo's messages of
// different subjects (an RI purchase, its benefits) may be ingested in
// either order, so the golden files hold the ids in a fixed order; the
// order itself is checked by --json against the direct call.
func sortedLineage(out string) string {
	lines := strings.SplitAfter(out, "\n")
	isEvent := func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "event ") }
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && isEvent(lines[j]) {
			j++
		}
		slices.Sort(lines[i:j])
		i = max(j, i+1)
	}
	return strings.Join(lines, "")
}

// TestVendorInvoice checks invoice get --view vendor: the organization's
// vendor cycle view, restricted to the BAN's lines.
func TestVendorInvoice(t *testing.T) {
	l := demoLedger(t)
	args := []string{"invoice", "get", "--ban", "BAN-1001", "--month", "2025-02", "--view", "vendor"}
	testkit.Golden(t, "invoice_get_vendor", []byte(l.must(t, args...)))

	var resp billingv1.GetInvoiceResponse
	if err := protojson.Unmarshal([]byte(l.must(t, append(args, "--json")...)), &resp); err != nil {
		t.Fatal(err)
	}
	org, err := getUsageMonth(l.svc, t.Context(), &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2025-02", View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE})
	if err != nil {
		t.Fatal(err)
	}
	var want []*billingv1.InvoiceLine
	for _, line := range org.GetMonth().GetLines() {
		if line.GetBan() == "BAN-1001" {
			want = append(want, line)
		}
	}
	inv := resp.GetInvoice()
	if inv.GetTotal().GetAmount() != "457.50" || inv.GetBan() != "BAN-1001" || inv.GetOrgId() != "acme" || len(inv.GetLines()) != len(want) {
		t.Fatalf("vendor view %v", inv)
	}
	for i := range want {
		if !proto.Equal(inv.GetLines()[i], want[i]) {
			t.Errorf("line %d: %v, want %v", i, inv.GetLines()[i], want[i])
		}
	}

	// With --lineage, the organization's lines with their lineage.
	lineage := append(args, "--lineage")
	testkit.Golden(t, "invoice_get_vendor_lineage", []byte(sortedLineage(l.must(t, lineage...))))
	resp.Reset()
	if err := protojson.Unmarshal([]byte(l.must(t, append(lineage, "--json")...)), &resp); err != nil {
		t.Fatal(err)
	}
	org, err = getUsageMonth(l.svc, t.Context(), &billingv1.GetUsageMonthRequest{OrgId: "acme", Month: "2025-02", View: billingv1.BillingView_BILLING_VIEW_VENDOR_CYCLE, IncludeLineage: true})
	if err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, line := range org.GetMonth().GetLines() {
		if line.GetBan() == "BAN-1001" {
			want = append(want, line)
		}
	}
	if len(resp.GetInvoice().GetLines()) != len(want) {
		t.Fatalf("vendor view with lineage has %d lines, want %d", len(resp.GetInvoice().GetLines()), len(want))
	}
	for i := range want {
		if got := resp.GetInvoice().GetLines()[i]; !proto.Equal(got, want[i]) || len(got.GetDetails()[0].GetEventIds()) == 0 {
			t.Errorf("line %d with lineage: %v, want %v", i, got, want[i])
		}
	}
}

// TestAdjustmentsBoth checks that without --kind both ledgers print, and
// that --json then prints one object holding both responses.
func TestAdjustmentsBoth(t *testing.T) {
	l := demoLedger(t)
	testkit.Golden(t, "adjustments", []byte(l.must(t, "adjustments", "--org", "acme", "--month", "2025-01")))
	var both map[string]json.RawMessage
	if err := json.Unmarshal([]byte(l.must(t, "adjustments", "--org", "acme", "--month", "2025-01", "--json")), &both); err != nil {
		t.Fatal(err)
	}
	for key, n := range map[string]int{"inter_customer": 5, "intra_org": 5} {
		var resp billingv1.ListAdjustmentsResponse
		if err := protojson.Unmarshal(both[key], &resp); err != nil || len(resp.GetAdjustments()) != n {
			t.Errorf("%s: %d adjustments (%v), want %d", key, len(resp.GetAdjustments()), err, n)
		}
	}
}

// TestDemoJSON checks demo --json: the demo's nine invoices.
func TestDemoJSON(t *testing.T) {
	l := demoLedger(t)
	var resp billingv1.ListInvoicesResponse
	if err := protojson.Unmarshal([]byte(l.must(t, "demo", "--json")), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.GetInvoices()) != 9 || resp.GetInvoices()[0].GetTotal().GetAmount() != "588.00" {
		t.Errorf("demo --json: %v", resp.GetInvoices())
	}
}

// TestDomainErrors checks that the service's errors print as its
// sentence and code, with exit status 1.
func TestDomainErrors(t *testing.T) {
	l := demoLedger(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"invoice", "get", "--ban", "NOPE", "--month", "2025-01"},
			`ban "NOPE" is not the BAN of any organization or cost center (NOT_FOUND)`},
		{[]string{"invoice", "get", "--ban", "BAN-1001", "--month", "2024-12"},
			`month "2024-12" precedes the first closed billing cycle, so has no invoice of its own`},
		{[]string{"usage", "--org", "acme", "--month", "2025-03", "--view", "vendor"},
			`month "2025-03" has no vendor cycle view yet: the vendor cycle view of 2025-03 is available once VendorCycleFinalized for 2025-03 is appended, on schedule from 2025-04-10T00:00:00Z (FAILED_PRECONDITION)`},
		{[]string{"invoice", "get", "--ban", "BAN-1001", "--month", "2025-01", "--view", "vendor"},
			`month "2025-01" has no vendor cycle view yet`},
		{[]string{"dashboard", "--org", "acme", "--cost-center", "nope", "--from", "2025-01", "--to", "2025-01"},
			`cost_center_id "nope" is not a cost center of the organization: org_id is "acme" (NOT_FOUND)`},
		{[]string{"exceptions", "--org", "nope"}, `org_id "nope" is not a registered organization (NOT_FOUND)`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := l.ctl(t.Context(), c.args...)
			if r.code != 1 || !strings.HasPrefix(r.stderr, "ledgerctl: ") || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line saying %q", r.code, r.stderr, c.want)
			}
		})
	}
}

// TestCycleCommands closes and finalizes cycles on a fresh ledger: the
// output, idempotency, and ledgerd's refusals reported as errors.
func TestCycleCommands(t *testing.T) {
	l := newLedger(t)
	if got, want := l.must(t, "cycle", "close", "2025-01"),
		"Closed the billing cycle of 2025-01: its invoices are issued as of 2025-02-01T00:00:00Z.\n"+
			"ledgerd has stored and applied BillingCycleClosed ledgerctl-billing-cycle-closed-2025-01.\n"; got != want {
		t.Errorf("cycle close printed %q, want %q", got, want)
	}
	// Again: the same message, taken once, and not an error.
	l.must(t, "cycle", "close", "2025-01")

	r := l.ctl(t.Context(), "cycle", "close", "2025-03")
	want := "ledgerctl: ledgerd rejected 1 of the messages\n" +
		"  BillingCycleClosed ledgerctl-billing-cycle-closed-2025-03: billing cycle 2025-03 cannot close now: cycles close in month order"
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.HasSuffix(r.stderr, "[cycle_out_of_order]\n") {
		t.Errorf("out of order close: exit %d, stderr %q", r.code, r.stderr)
	}
	r = l.ctl(t.Context(), "cycle", "finalize", "2025-02")
	if r.code != 1 || !strings.Contains(r.stderr, "vendor cycle 2025-02 cannot be finalized before billing cycle 2025-02 is closed [cycle_not_closed]") {
		t.Errorf("finalize before close: exit %d, stderr %q", r.code, r.stderr)
	}

	var got billingv1.VendorCycleFinalized
	if err := protojson.Unmarshal([]byte(l.must(t, "cycle", "finalize", "2025-01", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	m, _ := calendar.Parse("2025-01")
	if want := ctl.FinalizeMessage(m); !proto.Equal(&got, want) {
		t.Errorf("cycle finalize --json printed %v, want %v", &got, want)
	}
	if got.GetEventId() != "ledgerctl-vendor-cycle-finalized-2025-01" || got.GetFinalizedAt().AsTime() != time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC) {
		t.Errorf("finalization %v", &got)
	}
}

// TestBadArguments checks command lines that cannot run: each exits 2 with
// one line saying what is wrong, before anything is sent (the addresses
// are dead, so a command that tried would say it cannot reach them).
func TestBadArguments(t *testing.T) {
	dead := []string{"--grpc", testkit.FreeAddr(t), "--nats", "nats://" + testkit.FreeAddr(t)}
	for _, c := range []struct {
		args string
		want string
	}{
		{"invoice get --ban B --month 2025-1", `--month "2025-1" is not a month written YYYY-MM`},
		{"invoice get --month 2025-01", "--ban is required"},
		{"invoice get --ban B", "--month is required (a month written YYYY-MM)"},
		{"invoice get --ban B --month 2025-01 --view weird", `--view "weird" is not a view: want billing or vendor`},
		{"invoice list", "--ban is required"},
		{"invoice list --ban B --from 2025-03 --to 2025-01", "--to 2025-01 precedes --from 2025-03"},
		{"usage", "--org is required"},
		{"usage --org a --month 2025-01 --from 2025-01", "give either --month or --from/--to, not both"},
		{"usage --org a --lineage", "--lineage needs --month: totals per month have no details"},
		{"dashboard --org a --from 2025-13", `--from "2025-13" is not a month written YYYY-MM`},
		{"adjustments --org a", "--month is required (a month written YYYY-MM)"},
		{"adjustments --org a --month 2025-01 --kind x", `--kind "x" is not an adjustment kind: want inter or intra`},
		{"cycle close 2025-13", `cycle close: "2025-13" is not a month written YYYY-MM`},
		{"cycle finalize 25-01", `cycle finalize: "25-01" is not a month written YYYY-MM`},
		{"cycle close", "cycle close needs YYYY-MM"},
		{"cycle close 2025-01 2025-02", `cycle close: unexpected argument "2025-02"`},
		{"cycle close 2999-01", "cycle close: 2999-01 has not ended: it runs until 2999-02-01T00:00:00Z"},
		{"import focus", "import focus needs FILE"},
		{"import focus x.csv", "--org is required"},
		{"frobnicate", `unknown command "frobnicate"; run ledgerctl -h for the commands`},
		{"cycle open 2025-01", `unknown command "cycle open"; run ledgerctl -h for the commands`},
	} {
		t.Run(c.args, func(t *testing.T) {
			r := ctlEnv(t.Context(), append(dead, strings.Fields(c.args)...)...)
			if want := "ledgerctl: " + c.want + "\n"; r.code != 2 || r.stderr != want || r.stdout != "" {
				t.Errorf("exit %d, stderr %q; want exit 2, stderr %q", r.code, r.stderr, want)
			}
		})
	}
	t.Run("unknown flag", func(t *testing.T) {
		r := ctlEnv(t.Context(), "invoice", "get", "--bogus")
		if r.code != 2 || !strings.HasPrefix(r.stderr, "flag provided but not defined: -bogus\nUsage: ledgerctl invoice get --ban BAN --month YYYY-MM") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("no command", func(t *testing.T) {
		r := ctlEnv(t.Context())
		if r.code != 2 || !strings.Contains(r.stderr, "Commands:") || !strings.Contains(r.stderr, "import focus") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("help", func(t *testing.T) {
		if r := ctlEnv(t.Context(), "-h"); r.code != 0 || !strings.Contains(r.stderr, "Commands:") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
		if r := ctlEnv(t.Context(), "dashboard", "-h"); r.code != 0 || !strings.Contains(r.stderr, "-cost-center") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestUnreachable checks the one-line message of every command when
// ledgerd, or its NATS, does not answer, and when a NATS answers without
// ledgerd's streams.
func TestUnreachable(t *testing.T) {
	grpcAddr, natsAddr := testkit.FreeAddr(t), "nats://"+testkit.FreeAddr(t)
	noLedgerd := "ledgerctl: cannot reach ledgerd at " + grpcAddr + " (is `go run ./cmd/ledgerd` running?)\n"
	noNATS := "ledgerctl: cannot reach NATS at " + natsAddr + " (is `go run ./cmd/ledgerd` running?)\n"
	csv := writeFOCUS(t, [][]string{{"1", "n", "AWS", "EC2", "", "2024-09-01", "", "Usage", "1", "USD", "1", "", "", "", ""}})
	for _, c := range []struct {
		args string
		want string
	}{
		{"invoice get --ban B --month 2025-01", noLedgerd},
		{"invoice list --ban B", noLedgerd},
		{"usage --org a --month 2025-01", noLedgerd},
		{"usage --org a", noLedgerd},
		{"dashboard --org a", noLedgerd},
		{"adjustments --org a --month 2025-01", noLedgerd},
		{"exceptions", noLedgerd},
		{"demo", noNATS},
		{"cycle close 2025-01", noNATS},
		{"cycle finalize 2025-01", noNATS},
		{"import focus " + csv + " --org a", noNATS},
	} {
		t.Run(c.args, func(t *testing.T) {
			r := ctlEnv(t.Context(), append([]string{"--grpc", grpcAddr, "--nats", natsAddr}, strings.Fields(c.args)...)...)
			if r.code != 1 || r.stderr != c.want {
				t.Errorf("exit %d, stderr %q; want exit 1, stderr %q", r.code, r.stderr, c.want)
			}
		})
	}

	t.Run("NATS without ledgerd", func(t *testing.T) {
		ns := testkit.NATS(t)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		r := ctlEnv(ctx, "--nats", ns.ClientURL(), "cycle", "close", "2025-01")
		if r.code != 1 || !strings.HasPrefix(r.stderr, "ledgerctl: NATS at "+ns.ClientURL()+" has no JetStream stream BILLING_DLQ: is ledgerd running against this NATS?") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}

		// With ledgerd's streams but no ledgerd consuming them, the
		// publish is acknowledged and the wait for ledgerd runs out.
		_, js := testkit.JetStream(t, ns.ClientURL())
		if err := ingest.Setup(ctx, js, ingest.Streams{}); err != nil {
			t.Fatal(err)
		}
		r = ctlEnv(ctx, "--nats", ns.ClientURL(), "--wait", "200ms", "cycle", "close", "2025-01")
		want := "ledgerctl: ledgerd has not ingested the messages: waited 200ms (--wait) and consumer ledger-ingest of BILLING_IN: "
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.HasSuffix(r.stderr, "is ledgerd running against "+ns.ClientURL()+"?\n") {
			t.Errorf("exit %d, stderr %q; want it to start %q", r.code, r.stderr, want)
		}
	})
}
