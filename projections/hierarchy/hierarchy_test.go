package hierarchy

import (
	"errors"
	"testing"
	"time"

	"github.com/ledger-billing/ledger/projections/money"
)

func at(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

func currency(t *testing.T, code string) money.Currency {
	t.Helper()
	c, err := money.ParseCurrency(code)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sample is an organization with two cost centers, one billing to the
// default BAN and one with its own, and a provider that moves from the
// first to the second on 15 March.
func sample(t *testing.T) *Hierarchy {
	t.Helper()
	var h Hierarchy
	if ok, err := h.RegisterOrganization(Organization{ID: "org1", BAN: "BAN-1", Currency: currency(t, "USD")}); !ok || err != nil {
		t.Fatalf("register: %v %v", ok, err)
	}
	must(t, h.AddCostCenter(CostCenter{OrgID: "org1", ID: "cc-default", Effective: Beginning}))
	must(t, h.AddCostCenter(CostCenter{OrgID: "org1", ID: "cc-own", BAN: "BAN-2", Effective: Beginning}))
	must(t, h.AddWorkspace(Workspace{OrgID: "org1", ID: "ws1", CostCenterID: "cc-default", Effective: Beginning}))
	must(t, h.AddWorkspace(Workspace{OrgID: "org1", ID: "ws2", CostCenterID: "cc-own", Effective: Beginning}))
	must(t, h.AddProvider(Provider{OrgID: "org1", ID: "p1", WorkspaceID: "ws1", Vendor: "AWS", AccountID: "111", Name: "prod", Effective: at("2018-01-01T00:00:00Z")}))
	must(t, h.AddProvider(Provider{OrgID: "org1", ID: "p1", WorkspaceID: "ws2", Vendor: "AWS", AccountID: "111", Name: "prod", Effective: at("2018-03-15T00:00:00Z")}))
	return &h
}

func TestResolve(t *testing.T) {
	h := sample(t)
	tests := []struct {
		name    string
		vendor  string
		account string
		at      string
		ban     string
		cc      string
		err     error
	}{
		{"before any registration", "AWS", "111", "2017-12-31T23:59:59Z", "", "", ErrNoProvider},
		{"default BAN through its cost center", "AWS", "111", "2018-03-14T23:59:59Z", "BAN-1", "cc-default", nil},
		{"own BAN after the move", "AWS", "111", "2018-03-15T00:00:00Z", "BAN-2", "cc-own", nil},
		{"vendor compared case-insensitively", "aws", "111", "2018-02-01T00:00:00Z", "BAN-1", "cc-default", nil},
		{"unknown account", "AWS", "222", "2018-02-01T00:00:00Z", "", "", ErrNoProvider},
		{"other vendor, same account id", "GCP", "111", "2018-02-01T00:00:00Z", "", "", ErrNoProvider},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, span, err := h.Resolve(tt.vendor, tt.account, at(tt.at))
			if !errors.Is(err, tt.err) {
				t.Fatalf("error = %v, want %v", err, tt.err)
			}
			if !span.Contains(at(tt.at)) {
				t.Fatalf("span %v does not contain the instant", span)
			}
			if err == nil && (a.BAN != tt.ban || a.CostCenterID != tt.cc || a.OrgID != "org1") {
				t.Fatalf("attribution = %+v, want BAN %s, cost center %s", a, tt.ban, tt.cc)
			}
		})
	}
	_, span, _ := h.Resolve("AWS", "111", at("2018-02-01T00:00:00Z"))
	if span.From != at("2018-01-01T00:00:00Z") || span.Until != at("2018-03-15T00:00:00Z") {
		t.Fatalf("span = %v, want January 1 to March 15", span)
	}
}

func TestResolveTiesByLogOrder(t *testing.T) {
	h := sample(t)
	// Same effective_at as the move: the later event wins.
	must(t, h.AddProvider(Provider{OrgID: "org1", ID: "p1", WorkspaceID: "ws1", Vendor: "AWS", AccountID: "111", Effective: at("2018-03-15T00:00:00Z")}))
	a, _, err := h.Resolve("AWS", "111", at("2018-03-20T00:00:00Z"))
	if err != nil || a.BAN != "BAN-1" {
		t.Fatalf("attribution = %+v, %v; want BAN-1 from the later event", a, err)
	}
}

func TestResolveProviderMovedToAnotherAccount(t *testing.T) {
	h := sample(t)
	must(t, h.AddProvider(Provider{OrgID: "org1", ID: "p1", WorkspaceID: "ws1", Vendor: "AWS", AccountID: "999", Effective: at("2018-04-01T00:00:00Z")}))
	if _, _, err := h.Resolve("AWS", "111", at("2018-04-02T00:00:00Z")); !errors.Is(err, ErrNoProvider) {
		t.Fatalf("old account after the provider moved: error = %v, want ErrNoProvider", err)
	}
	if a, _, err := h.Resolve("AWS", "999", at("2018-04-02T00:00:00Z")); err != nil || a.ProviderID != "p1" {
		t.Fatalf("new account = %+v, %v", a, err)
	}
}

func TestResolveWithoutWorkspaceOrOrganization(t *testing.T) {
	var h Hierarchy
	must(t, h.AddProvider(Provider{OrgID: "org9", ID: "p", WorkspaceID: "nowhere", Vendor: "Azure", AccountID: "sub", Effective: Beginning}))
	if _, _, err := h.Resolve("Azure", "sub", 0); !errors.Is(err, ErrUnknownOrganization) {
		t.Fatalf("error = %v, want ErrUnknownOrganization", err)
	}
	if _, err := h.RegisterOrganization(Organization{ID: "org9", BAN: "BAN-9", Currency: currency(t, "JPY")}); err != nil {
		t.Fatal(err)
	}
	a, _, err := h.Resolve("AZURE", "sub", 0)
	if err != nil || a.BAN != "BAN-9" || a.CostCenterID != "" {
		t.Fatalf("attribution = %+v, %v; want the default BAN and no cost center", a, err)
	}
	if ok, _ := h.RegisterOrganization(Organization{ID: "org9", BAN: "BAN-X"}); ok {
		t.Fatal("a second registration of org9 counted")
	}
	if org, _ := h.OrganizationOfBAN("BAN-9"); org != "org9" {
		t.Fatalf("OrganizationOfBAN = %q", org)
	}
}

func TestCostCenterGetsItsOwnBAN(t *testing.T) {
	h := sample(t)
	must(t, h.AddCostCenter(CostCenter{OrgID: "org1", ID: "cc-default", BAN: "BAN-3", Effective: at("2018-02-01T00:00:00Z")}))
	for when, want := range map[string]string{"2018-01-31T23:00:00Z": "BAN-1", "2018-02-01T00:00:00Z": "BAN-3"} {
		a, _, err := h.Resolve("AWS", "111", at(when))
		if err != nil || a.BAN != want {
			t.Errorf("at %s: %+v, %v; want %s", when, a, err, want)
		}
	}
	if got := h.BANs(); len(got) != 3 || got[2] != "BAN-3" {
		t.Fatalf("BANs = %v", got)
	}
}
