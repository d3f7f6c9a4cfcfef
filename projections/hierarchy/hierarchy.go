package hierarchy

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ledger-billing/ledger/projections/money"
)

// Instants are Unix nanoseconds; Beginning stands for an absent
// effective_at ("since the beginning") and End for "until further notice".
const (
	Beginning int64 = math.MinInt64
	End       int64 = math.MaxInt64
)

// Organization is a customer organization: its default BAN and the
// currency it is billed in. The first registration of an id is the one that
// counts: a currency cannot change under issued invoices.
type Organization struct {
	ID       string
	Name     string
	BAN      string
	Currency money.Currency
}

// CostCenter is one version of a cost center, in effect from Effective on.
// An empty BAN bills to the organization's default BAN.
type CostCenter struct {
	OrgID     string
	ID        string
	Name      string
	BAN       string
	Effective int64
}

// Workspace is one version of a workspace, in effect from Effective on.
type Workspace struct {
	OrgID        string
	ID           string
	CostCenterID string
	Name         string
	Effective    int64
}

// Provider is one version of a provider: the cloud account (Vendor,
// AccountID) attached to a workspace from Effective on.
type Provider struct {
	OrgID       string
	ID          string
	WorkspaceID string
	Vendor      string
	AccountID   string
	Name        string
	Alias       string
	Effective   int64
}

// Attribution is where a charge goes. It is comparable, so the billing fold
// can intern it as a map key.
type Attribution struct {
	OrgID        string
	BAN          string
	CostCenterID string
	WorkspaceID  string
	ProviderID   string
	ProviderName string
	Alias        string
}

// Span is a half-open interval of instants [From, Until).
type Span struct {
	From, Until int64
}

// Contains reports whether t is in the span.
func (s Span) Contains(t int64) bool { return s.From <= t && t < s.Until }

type key struct{ org, id string }

type accountKey struct{ vendor, accountID string }

// version is one effective-dated version of an entity; seq is the log order
// of the change that made it, the tie-break between equal Effective.
type version[T any] struct {
	effective int64
	seq       uint64
	value     T
}

type versions[T any] []version[T]

// at returns the version in effect at t (nil if none) and the span over
// which that stays so.
func (vs versions[T]) at(t int64) (*version[T], Span) {
	// Versions are sorted by (effective, seq): the last one with
	// effective <= t is in effect.
	i, _ := slices.BinarySearchFunc(vs, t, func(v version[T], t int64) int {
		if v.effective <= t {
			return -1
		}
		return 1
	})
	span := Span{From: Beginning, Until: End}
	if i < len(vs) {
		span.Until = vs[i].effective
	}
	if i == 0 {
		return nil, span
	}
	span.From = vs[i-1].effective
	return &vs[i-1], span
}

func (vs versions[T]) insert(v version[T]) versions[T] {
	i, _ := slices.BinarySearchFunc(vs, v, func(a, b version[T]) int {
		if a.effective != b.effective {
			if a.effective < b.effective {
				return -1
			}
			return 1
		}
		if a.seq < b.seq {
			return -1
		}
		return 1
	})
	return slices.Insert(vs, i, v)
}

// Hierarchy is the effective-dated customer hierarchy. The zero value is an
// empty hierarchy, ready to use. It is not safe for concurrent use.
//
// Snapshots encode it field by field (snapshot.go): a field added here is
// added there too.
type Hierarchy struct {
	seq           uint64
	orgs          map[string]*Organization
	banOrg        map[string]string
	bans          []string
	costCenters   map[key]versions[CostCenter]
	workspaces    map[key]versions[Workspace]
	providers     map[key]versions[Provider]
	accounts      map[accountKey][]key
	costCenterIDs map[key]bool
}

func (h *Hierarchy) init() {
	if h.orgs != nil {
		return
	}
	h.orgs = make(map[string]*Organization)
	h.banOrg = make(map[string]string)
	h.costCenters = make(map[key]versions[CostCenter])
	h.workspaces = make(map[key]versions[Workspace])
	h.providers = make(map[key]versions[Provider])
	h.accounts = make(map[accountKey][]key)
	h.costCenterIDs = make(map[key]bool)
}

// Generation counts the changes applied so far. A cached resolution made at
// one generation is valid until the generation moves.
func (h *Hierarchy) Generation() uint64 { return h.seq }

// VendorKey is the form in which vendors compare: case-insensitively.
func VendorKey(vendor string) string {
	for i := 0; i < len(vendor); i++ {
		if c := vendor[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(vendor)
		}
	}
	return vendor
}

// RegisterOrganization adds an organization. It reports false, and changes
// nothing, if the id is already registered: the first registration counts.
func (h *Hierarchy) RegisterOrganization(o Organization) (bool, error) {
	h.init()
	if o.ID == "" {
		return false, fmt.Errorf("%w: org_id is empty", ErrInvalid)
	}
	if o.BAN == "" {
		return false, fmt.Errorf("%w: ban of organization %q is empty", ErrInvalid, o.ID)
	}
	if _, ok := h.orgs[o.ID]; ok {
		return false, nil
	}
	h.seq++
	h.orgs[o.ID] = &o
	h.addBAN(o.BAN, o.ID)
	return true, nil
}

func (h *Hierarchy) addBAN(ban, org string) {
	if ban == "" {
		return
	}
	if _, ok := h.banOrg[ban]; !ok {
		h.banOrg[ban] = org
		h.bans = append(h.bans, ban)
	}
}

// AddCostCenter adds a version of a cost center.
func (h *Hierarchy) AddCostCenter(c CostCenter) error {
	h.init()
	if c.OrgID == "" || c.ID == "" {
		return fmt.Errorf("%w: cost center needs org_id and cost_center_id", ErrInvalid)
	}
	h.seq++
	k := key{c.OrgID, c.ID}
	h.costCenters[k] = h.costCenters[k].insert(version[CostCenter]{c.Effective, h.seq, c})
	h.costCenterIDs[k] = true
	h.addBAN(c.BAN, c.OrgID)
	return nil
}

// AddWorkspace adds a version of a workspace.
func (h *Hierarchy) AddWorkspace(w Workspace) error {
	h.init()
	if w.OrgID == "" || w.ID == "" {
		return fmt.Errorf("%w: workspace needs org_id and workspace_id", ErrInvalid)
	}
	h.seq++
	k := key{w.OrgID, w.ID}
	h.workspaces[k] = h.workspaces[k].insert(version[Workspace]{w.Effective, h.seq, w})
	return nil
}

// AddProvider adds a version of a provider.
func (h *Hierarchy) AddProvider(p Provider) error {
	h.init()
	if p.OrgID == "" || p.ID == "" || p.Vendor == "" || p.AccountID == "" {
		return fmt.Errorf("%w: provider needs org_id, provider_id, vendor and account_id", ErrInvalid)
	}
	h.seq++
	k := key{p.OrgID, p.ID}
	h.providers[k] = h.providers[k].insert(version[Provider]{p.Effective, h.seq, p})
	ak := accountKey{VendorKey(p.Vendor), p.AccountID}
	if !slices.Contains(h.accounts[ak], k) {
		h.accounts[ak] = append(h.accounts[ak], k)
	}
	return nil
}

// Organization returns a registered organization.
func (h *Hierarchy) Organization(id string) (*Organization, error) {
	if o, ok := h.orgs[id]; ok {
		return o, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownOrganization, id)
}

// BANs returns every BAN named so far (organization defaults and cost
// centers' own), in the order they first appeared.
func (h *Hierarchy) BANs() []string { return h.bans }

// OrganizationOfBAN returns the organization a BAN bills, the first that
// named it.
func (h *Hierarchy) OrganizationOfBAN(ban string) (string, bool) {
	org, ok := h.banOrg[ban]
	return org, ok
}

// HasCostCenter reports whether the cost center was ever created in org.
func (h *Hierarchy) HasCostCenter(org, id string) bool { return h.costCenterIDs[key{org, id}] }

// Resolve returns where a charge of account (vendor, accountID) at instant t
// goes (docs/architecture.md, "Attribution"): the provider registered for the
// account at t, its workspace at t, that workspace's cost center at t, and
// that cost center's BAN, else the organization's default BAN. A workspace or
// cost center not (yet) in effect at t bills to the default BAN. The span is
// an interval around t over which the answer, or the error, stays the same.
// The error is ErrNoProvider or ErrUnknownOrganization.
func (h *Hierarchy) Resolve(vendor, accountID string, t int64) (Attribution, Span, error) {
	span := Span{From: Beginning, Until: End}
	narrow := func(s Span) {
		span.From = max(span.From, s.From)
		span.Until = min(span.Until, s.Until)
	}
	vk := VendorKey(vendor)
	var best *version[Provider]
	for _, pk := range h.accounts[accountKey{vk, accountID}] {
		v, s := h.providers[pk].at(t)
		narrow(s)
		if v == nil || v.value.AccountID != accountID || VendorKey(v.value.Vendor) != vk {
			continue // this provider id is attached to another account at t
		}
		if best == nil || v.effective > best.effective || v.effective == best.effective && v.seq > best.seq {
			best = v
		}
	}
	if best == nil {
		return Attribution{}, span, fmt.Errorf("%w: %s %s", ErrNoProvider, vendor, accountID)
	}
	p := &best.value
	org, ok := h.orgs[p.OrgID]
	if !ok {
		return Attribution{}, span, fmt.Errorf("%w: %q (provider %q)", ErrUnknownOrganization, p.OrgID, p.ID)
	}
	a := Attribution{
		OrgID:        p.OrgID,
		BAN:          org.BAN,
		WorkspaceID:  p.WorkspaceID,
		ProviderID:   p.ID,
		ProviderName: p.Name,
		Alias:        p.Alias,
	}
	ws, s := h.workspaces[key{p.OrgID, p.WorkspaceID}].at(t)
	narrow(s)
	if ws == nil {
		return a, span, nil
	}
	a.CostCenterID = ws.value.CostCenterID
	cc, s := h.costCenters[key{p.OrgID, ws.value.CostCenterID}].at(t)
	narrow(s)
	if cc != nil && cc.value.BAN != "" {
		a.BAN = cc.value.BAN
	}
	return a, span, nil
}

// Organizations returns every registered organization, sorted by id.
func (h *Hierarchy) Organizations() []*Organization {
	orgs := make([]*Organization, 0, len(h.orgs))
	for _, o := range h.orgs {
		orgs = append(orgs, o)
	}
	slices.SortFunc(orgs, func(a, b *Organization) int { return strings.Compare(a.ID, b.ID) })
	return orgs
}

// CostCenters returns the cost centers of an organization, each as its
// latest version says (the one with the latest Effective), sorted by id.
func (h *Hierarchy) CostCenters(org string) []CostCenter {
	var ccs []CostCenter
	for k, vs := range h.costCenters {
		if k.org == org && len(vs) > 0 {
			ccs = append(ccs, vs[len(vs)-1].value)
		}
	}
	slices.SortFunc(ccs, func(a, b CostCenter) int { return strings.Compare(a.ID, b.ID) })
	return ccs
}
