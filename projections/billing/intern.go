package billing

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/ledger-billing/ledger/projections/hierarchy"
	"github.com/ledger-billing/ledger/projections/snapcodec"
)

// interner gives the strings that the fold refers to millions of times
// (event ids, service and region names, vendors, accounts) small indexes,
// so that cells, charge logs and keys hold a uint32 instead of a string.
//
// It owns these invariants: an index, once given, names the same string
// for good; indexes are dense and given in the order first seen, so event
// indexes follow the log and lineage sorted by index is in log order;
// symbol 0 is the empty string (a global region); every spelling of a
// vendor has one comparison key (hierarchy.VendorKey), shown to people as
// the spelling the log gave first.
type interner struct {
	eventIDs []string // in log order
	eventIdx map[string]uint32

	symbols   []string // service and region names, and currency codes
	symbolIdx map[string]uint32

	vendorKeys    map[string]string // as given -> comparison key
	vendorDisplay map[string]string // comparison key -> as first given

	accounts []accountKey
	// accountIdx is the index of each account by its vendor's comparison
	// key, then its account id. Two lookups by one string each cost less
	// than one by a pair of strings, which the fold made for every record
	// (go test -bench FoldUsage: 5-20% faster).
	accountIdx map[string]map[string]uint32
}

// accountKey is a cloud account as it compares: the vendor's comparison key
// and the account id.
type accountKey struct{ vendorKey, accountID string }

func newInterner() interner {
	return interner{
		eventIdx:      make(map[string]uint32),
		symbols:       []string{""},
		symbolIdx:     map[string]uint32{"": 0},
		vendorKeys:    make(map[string]string),
		vendorDisplay: make(map[string]string),
		accountIdx:    make(map[string]map[string]uint32),
	}
}

// event returns the index of an event id, adding it if new.
func (n *interner) event(id string) uint32 {
	if i, ok := n.eventIdx[id]; ok {
		return i
	}
	i := uint32(len(n.eventIDs))
	n.eventIDs = append(n.eventIDs, id)
	n.eventIdx[id] = i
	return i
}

// hasEvent reports whether an event id was interned: applied, or being
// applied.
func (n *interner) hasEvent(id string) bool {
	_, ok := n.eventIdx[id]
	return ok
}

// eventID returns the id of an interned event.
func (n *interner) eventID(i uint32) string { return n.eventIDs[i] }

// eventOrder returns the log order of an event id (0 for one never
// interned), to sort what names events by the order they arrived in.
func (n *interner) eventOrder(id string) uint32 { return n.eventIdx[id] }

// eventIDsOf returns the ids of a lineage, in its order.
func (n *interner) eventIDsOf(lineage []uint32) []string {
	out := make([]string, len(lineage))
	for i, e := range lineage {
		out[i] = n.eventIDs[e]
	}
	return out
}

// symbol returns the index of a name, adding it if new.
func (n *interner) symbol(s string) uint32 {
	if i, ok := n.symbolIdx[s]; ok {
		return i
	}
	i := uint32(len(n.symbols))
	n.symbols = append(n.symbols, s)
	n.symbolIdx[s] = i
	return i
}

// symbolName returns the name of an interned symbol.
func (n *interner) symbolName(i uint32) string { return n.symbols[i] }

// vendorKey returns the comparison key of a vendor as given, remembering
// the first spelling of each.
func (n *interner) vendorKey(vendor string) string {
	if k, ok := n.vendorKeys[vendor]; ok {
		return k
	}
	k := hierarchy.VendorKey(vendor)
	n.vendorKeys[vendor] = k
	if _, ok := n.vendorDisplay[k]; !ok {
		n.vendorDisplay[k] = vendor
	}
	return k
}

// vendorName returns the vendor of a comparison key as the log first
// spelled it.
func (n *interner) vendorName(key string) string { return n.vendorDisplay[key] }

// account returns the index of an account, adding it if new.
func (n *interner) account(vendor, accountID string) uint32 {
	vk := n.vendorKey(vendor)
	ids := n.accountIdx[vk]
	if i, ok := ids[accountID]; ok {
		return i
	}
	return n.addAccount(accountKey{vk, accountID})
}

// addAccount gives a new account the next index.
func (n *interner) addAccount(k accountKey) uint32 {
	ids := n.accountIdx[k.vendorKey]
	if ids == nil {
		ids = make(map[string]uint32)
		n.accountIdx[k.vendorKey] = ids
	}
	i := uint32(len(n.accounts))
	n.accounts = append(n.accounts, k)
	ids[k.accountID] = i
	return i
}

// accountKey returns the account of an index.
func (n *interner) accountKey(a uint32) accountKey { return n.accounts[a] }

// accountName returns an account as people read it: the vendor as first
// spelled, and the account id.
func (n *interner) accountName(a uint32) (vendor, accountID string) {
	k := &n.accounts[a]
	return n.vendorDisplay[k.vendorKey], k.accountID
}

// cmpAccountID orders accounts by account id, then vendor: the order of
// allocation ties.
func (n *interner) cmpAccountID(a, b uint32) int {
	x, y := &n.accounts[a], &n.accounts[b]
	return cmp.Or(strings.Compare(x.accountID, y.accountID), strings.Compare(x.vendorKey, y.vendorKey))
}

// cmpAccount orders accounts by vendor, then account id: the order of
// lines.
func (n *interner) cmpAccount(a, b uint32) int {
	x, y := &n.accounts[a], &n.accounts[b]
	return cmp.Or(strings.Compare(x.vendorKey, y.vendorKey), strings.Compare(x.accountID, y.accountID))
}

// cmpSymbol orders symbols by name.
func (n *interner) cmpSymbol(a, b uint32) int { return strings.Compare(n.symbols[a], n.symbols[b]) }

// encode writes the interner for a snapshot (snapshot.go): the lists in
// index order, the vendor spellings in key order. The index maps are
// rebuilt from the lists.
func (n *interner) encode(e *snapcodec.Encoder) {
	e.Mark("ids")
	e.Len(len(n.eventIDs))
	for _, id := range n.eventIDs {
		e.String(id)
	}
	e.Len(len(n.symbols))
	for _, s := range n.symbols {
		e.String(s)
	}
	for _, m := range []map[string]string{n.vendorKeys, n.vendorDisplay} {
		keys := slices.SortedFunc(maps.Keys(m), strings.Compare)
		e.Len(len(keys))
		for _, k := range keys {
			e.String(k)
			e.String(m[k])
		}
	}
	e.Len(len(n.accounts))
	for _, a := range n.accounts {
		e.String(a.vendorKey)
		e.String(a.accountID)
	}
}

func (n *interner) decode(d *snapcodec.Decoder) {
	d.Mark("ids")
	c := d.Len()
	n.eventIDs = make([]string, 0, d.Cap(c))
	n.eventIdx = make(map[string]uint32, d.Cap(c))
	for ; c > 0 && d.Err() == nil; c-- {
		id := d.String()
		n.eventIdx[id] = uint32(len(n.eventIDs))
		n.eventIDs = append(n.eventIDs, id)
	}
	c = d.Len()
	n.symbols = make([]string, 0, d.Cap(c))
	n.symbolIdx = make(map[string]uint32, d.Cap(c))
	for ; c > 0 && d.Err() == nil; c-- {
		s := d.String()
		n.symbolIdx[s] = uint32(len(n.symbols))
		n.symbols = append(n.symbols, s)
	}
	if d.Err() == nil && (len(n.symbols) == 0 || n.symbols[0] != "") {
		d.Fail("symbol 0 is not the empty string")
	}
	for _, m := range []map[string]string{n.vendorKeys, n.vendorDisplay} {
		for c := d.Len(); c > 0 && d.Err() == nil; c-- {
			k := d.String()
			m[k] = d.String()
		}
	}
	c = d.Len()
	n.accounts = make([]accountKey, 0, d.Cap(c))
	n.accountIdx = make(map[string]map[string]uint32)
	for ; c > 0 && d.Err() == nil; c-- {
		n.addAccount(accountKey{vendorKey: d.String(), accountID: d.String()})
	}
}
