package hierarchy

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/ledger-billing/ledger/projections/money"
	"github.com/ledger-billing/ledger/projections/snapcodec"
)

// EncodeSnapshot writes the hierarchy for a snapshot of the billing
// projection (projections/billing, WriteSnapshot). Maps are written in key
// order, so the same hierarchy always writes the same bytes. A field added
// to Hierarchy must be added here and in DecodeSnapshot, and
// billing.SnapshotVersion bumped.
func (h *Hierarchy) EncodeSnapshot(e *snapcodec.Encoder) {
	e.Mark("hierarchy")
	e.Uvarint(h.seq)

	ids := slices.SortedFunc(maps.Keys(h.orgs), strings.Compare)
	e.Len(len(ids))
	for _, id := range ids {
		o := h.orgs[id]
		e.String(o.ID)
		e.String(o.Name)
		e.String(o.BAN)
		e.String(o.Currency.Code())
	}
	e.Len(len(h.bans))
	for _, ban := range h.bans {
		e.String(ban)
		e.String(h.banOrg[ban])
	}

	encodeVersions(e, h.costCenters, func(c *CostCenter) {
		e.String(c.OrgID)
		e.String(c.ID)
		e.String(c.Name)
		e.String(c.BAN)
		e.Varint(c.Effective)
	})
	encodeVersions(e, h.workspaces, func(w *Workspace) {
		e.String(w.OrgID)
		e.String(w.ID)
		e.String(w.CostCenterID)
		e.String(w.Name)
		e.Varint(w.Effective)
	})
	encodeVersions(e, h.providers, func(p *Provider) {
		e.String(p.OrgID)
		e.String(p.ID)
		e.String(p.WorkspaceID)
		e.String(p.Vendor)
		e.String(p.AccountID)
		e.String(p.Name)
		e.String(p.Alias)
		e.Varint(p.Effective)
	})

	accts := slices.SortedFunc(maps.Keys(h.accounts), func(a, b accountKey) int {
		return cmp.Or(strings.Compare(a.vendor, b.vendor), strings.Compare(a.accountID, b.accountID))
	})
	e.Len(len(accts))
	for _, a := range accts {
		e.String(a.vendor)
		e.String(a.accountID)
		ks := h.accounts[a]
		e.Len(len(ks))
		for _, k := range ks {
			encodeKey(e, k)
		}
	}
	ccs := slices.SortedFunc(maps.Keys(h.costCenterIDs), cmpKey)
	e.Len(len(ccs))
	for _, k := range ccs {
		encodeKey(e, k)
		e.Bool(h.costCenterIDs[k])
	}
}

// DecodeSnapshot reads what EncodeSnapshot wrote into h, which must be the
// zero Hierarchy. Errors are the decoder's (d.Err).
func (h *Hierarchy) DecodeSnapshot(d *snapcodec.Decoder) {
	d.Mark("hierarchy")
	h.init()
	h.seq = d.Uvarint()

	for n := d.Len(); n > 0 && d.Err() == nil; n-- {
		o := &Organization{ID: d.String(), Name: d.String(), BAN: d.String()}
		code := d.String()
		if code != "" {
			cur, err := money.ParseCurrency(code)
			if err != nil {
				d.Fail("organization %q: %v", o.ID, err)
				return
			}
			o.Currency = cur
		}
		h.orgs[o.ID] = o
	}
	n := d.Len()
	h.bans = make([]string, 0, d.Cap(n))
	for ; n > 0 && d.Err() == nil; n-- {
		ban, org := d.String(), d.String()
		h.bans = append(h.bans, ban)
		h.banOrg[ban] = org
	}

	decodeVersions(d, h.costCenters, func(c *CostCenter) {
		*c = CostCenter{OrgID: d.String(), ID: d.String(), Name: d.String(), BAN: d.String(), Effective: d.Varint()}
	})
	decodeVersions(d, h.workspaces, func(w *Workspace) {
		*w = Workspace{OrgID: d.String(), ID: d.String(), CostCenterID: d.String(), Name: d.String(), Effective: d.Varint()}
	})
	decodeVersions(d, h.providers, func(p *Provider) {
		*p = Provider{OrgID: d.String(), ID: d.String(), WorkspaceID: d.String(), Vendor: d.String(),
			AccountID: d.String(), Name: d.String(), Alias: d.String(), Effective: d.Varint()}
	})

	for n := d.Len(); n > 0 && d.Err() == nil; n-- {
		a := accountKey{vendor: d.String(), accountID: d.String()}
		m := d.Len()
		ks := make([]key, 0, d.Cap(m))
		for ; m > 0 && d.Err() == nil; m-- {
			ks = append(ks, decodeKey(d))
		}
		h.accounts[a] = ks
	}
	for n := d.Len(); n > 0 && d.Err() == nil; n-- {
		k := decodeKey(d)
		h.costCenterIDs[k] = d.Bool()
	}
}

func encodeKey(e *snapcodec.Encoder, k key) {
	e.String(k.org)
	e.String(k.id)
}

func decodeKey(d *snapcodec.Decoder) key { return key{org: d.String(), id: d.String()} }

func cmpKey(a, b key) int { return cmp.Or(strings.Compare(a.org, b.org), strings.Compare(a.id, b.id)) }

// encodeVersions writes a map of versioned entities in key order, each
// list in its (effective, seq) order.
func encodeVersions[T any](e *snapcodec.Encoder, m map[key]versions[T], value func(*T)) {
	keys := slices.SortedFunc(maps.Keys(m), cmpKey)
	e.Len(len(keys))
	for _, k := range keys {
		encodeKey(e, k)
		vs := m[k]
		e.Len(len(vs))
		for i := range vs {
			e.Varint(vs[i].effective)
			e.Uvarint(vs[i].seq)
			value(&vs[i].value)
		}
	}
}

func decodeVersions[T any](d *snapcodec.Decoder, m map[key]versions[T], value func(*T)) {
	for n := d.Len(); n > 0 && d.Err() == nil; n-- {
		k := decodeKey(d)
		c := d.Len()
		vs := make(versions[T], 0, d.Cap(c))
		for ; c > 0 && d.Err() == nil; c-- {
			vs = append(vs, version[T]{effective: d.Varint(), seq: d.Uvarint()})
			value(&vs[len(vs)-1].value)
		}
		m[k] = vs
	}
}
