package query

import (
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/document"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// cacheBytesMax bounds what the frozen cache holds. A 1,000-account
// invoice without its lineage (as invoicing runs ask for it) is about
// 0.3 MB on the wire and, with its message, about 2 MB held (entrySize),
// so 128 MiB keeps the invoices and usage months of some sixty of the
// largest BANs' closed months: the hot set of a month's downstream
// invoicing runs, far below what the projection itself holds. The forms
// with lineage, which audits ask for, are larger on the wire, and held
// apart.
const cacheBytesMax = 128 << 20

// frozenCache holds, per frozen document of the projection (an issued
// invoice, a finalized vendor view, or an organization's usage month made
// only of those), its converted message and that message's encoding as
// field 1 of the response. Answering one of them again then costs a map
// lookup and a write of bytes already made, instead of a conversion and a
// marshalling of every line, detail and lineage event_id: the bulk of a
// large invoice's time (the GetInvoice and
// GetUsageMonth). Drafts change with every event and are never held.
//
// An entry is valid while the projection still hands out the very
// documents it was built from (frozen), compared by pointer: a document
// issued anew, or a projection replaced, misses rather than serve what it
// no longer says. The messages are shared by every response that carries
// them and must not be modified, as the projection's documents must not.
//
// Memory is bounded by max (cacheBytesMax): inserting past it evicts
// entries, those not read since the last eviction sweep first (a
// second-chance clock without the ring: Go's map order stands in for the
// hand). An entry larger than max is not held.
type frozenCache struct {
	mu    sync.RWMutex
	byKey map[cacheKey]*frozen
	// byMsg indexes the entries by their message, for the codec, which
	// sees only the response.
	byMsg map[proto.Message]*frozen
	bytes int64 // sum of the entries' size
	max   int64
}

// cacheKey names a document: an invoice or vendor view of a BAN (id) or a
// usage month of an organization (id), in one of its two forms: with the
// lineage of its details (include_lineage) or without. The two are
// separate entries, each the bytes of its own uncached answer, so a
// request never gets the other form; the form without lineage, which most
// calls ask for, is the smaller by far, and one does not evict the other
// any sooner than any two documents.
//
// A page of lines of such a document (from, to: its lines [from, to)) is
// an entry of its own, its message sharing the lines of the whole's: a walk
// over a large issued invoice asks for the same pages again and again (one
// downstream run after another), and a page held costs a copy of its bytes
// where a page made costs the marshalling of each of its lines. The whole
// document is from = to = 0.
type cacheKey struct {
	usage    bool
	id       string
	month    calendar.Month
	view     billing.View
	lineage  bool
	from, to int
}

type frozen struct {
	key cacheKey
	// docs are the projection's documents the entry was built from.
	docs []*billing.Invoice
	msg  proto.Message // *billingv1.Invoice or *billingv1.UsageMonth
	// digest is an invoice's (document.Digest), computed with the entry:
	// a frozen document's digest never changes. Empty for usage months.
	digest string
	// field is msg encoded as field 1 of its response: tag, length and
	// body, exactly as proto.Marshal of the response writes it.
	field []byte
	size  int64
	// used is set by each read and cleared by an eviction sweep.
	used atomic.Bool
}

func newFrozenCache(max int64) *frozenCache {
	return &frozenCache{byKey: make(map[cacheKey]*frozen), byMsg: make(map[proto.Message]*frozen), max: max}
}

// get returns the entry of k, or nil.
func (c *frozenCache) get(k cacheKey) *frozen {
	c.mu.RLock()
	f := c.byKey[k]
	c.mu.RUnlock()
	if f != nil && !f.used.Load() {
		f.used.Store(true)
	}
	return f
}

// field returns the encoded field of a message the cache holds, or nil if
// it holds none (never held, or evicted since the handler took it).
func (c *frozenCache) field(msg proto.Message) []byte {
	c.mu.RLock()
	f := c.byMsg[msg]
	c.mu.RUnlock()
	if f == nil {
		return nil
	}
	return f.field
}

// put holds msg, built from docs, under k, and returns the entry to
// answer with: msg's, or the one of the same documents another call put
// first, so that concurrent misses end up sharing one message.
// It encodes msg, and must be called outside the runner's lock: docs are
// frozen, and a large encoding must not hold up the projection.
func (c *frozenCache) put(k cacheKey, docs []*billing.Invoice, msg proto.Message) *frozen {
	body, err := proto.Marshal(msg)
	if err != nil {
		// The message is the converters' own, which always encodes; a
		// failure is for the codec to report, not the cache.
		return &frozen{key: k, docs: docs, msg: msg}
	}
	field := protowire.AppendTag(make([]byte, 0, len(body)+16), 1, protowire.BytesType)
	field = protowire.AppendBytes(field, body)
	f := &frozen{key: k, docs: docs, msg: msg, field: field, size: entrySize(len(field), k.lineage)}
	if inv, ok := msg.(*billingv1.Invoice); ok && k.to == 0 {
		f.digest = invoiceDigest(inv) // of the whole invoice, not of a page
	}
	if f.size > c.max {
		return f
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.byKey[k]; old != nil {
		if sameDocs(old.docs, docs) {
			return old
		}
		c.remove(old)
	}
	c.evict(f.size)
	c.byKey[k] = f
	c.byMsg[msg] = f
	c.bytes += f.size
	return f
}

// invoiceDigest is document.Digest of a message the converters made, which always
// encodes: a failure would be a bug of the converters, and an issued
// invoice is still worth answering without its digest.
func invoiceDigest(inv *billingv1.Invoice) string {
	d, _ := document.Digest(inv)
	return d
}

// entrySize is what an entry holds: its encoding, and its message, which
// for BenchmarkIssuedInvoice's 1,000-account invoice measured about five
// times the encoding's size without lineage and three and a half times
// with it (a struct, a Money and an amount string per line and detail, a
// slice per lineage; the event_id strings themselves are the
// projection's, so lineage adds more to the encoding than to the message).
func entrySize(fieldLen int, lineage bool) int64 {
	if lineage {
		return 9 * int64(fieldLen) / 2
	}
	return 6 * int64(fieldLen)
}

// evict makes room for need bytes: a first sweep spares the entries read
// since the last one, a second takes whatever is left to take.
func (c *frozenCache) evict(need int64) {
	for pass := 0; pass < 2 && c.bytes+need > c.max; pass++ {
		for _, f := range c.byKey {
			if c.bytes+need <= c.max {
				return
			}
			if pass == 0 && f.used.Swap(false) {
				continue
			}
			c.remove(f)
		}
	}
}

func (c *frozenCache) remove(f *frozen) {
	delete(c.byKey, f.key)
	delete(c.byMsg, f.msg)
	c.bytes -= f.size
}

func sameDocs(a, b []*billing.Invoice) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// current reports whether the projection still answers with the documents
// f was built from.
func (f *frozen) current(p *billing.Projection) bool {
	for _, d := range f.docs {
		now, err := frozenDocument(p, d.BAN, d.Month, d.View)
		if err != nil || now != d {
			return false
		}
	}
	return true
}

// frozenDocument returns the issued document of a BAN for a month in a
// view, or nil if it is a draft.
func frozenDocument(p *billing.Projection, ban string, m calendar.Month, view billing.View) (*billing.Invoice, error) {
	var inv *billing.Invoice
	var err error
	if view == billing.VendorCycle {
		inv, err = p.VendorView(ban, m)
	} else {
		inv, err = p.Invoice(ban, m)
	}
	if err != nil || inv.Status != billing.Issued {
		return nil, err
	}
	return inv, nil
}

// usageDocs returns the documents a usage month was made of, if they are
// all frozen, or nil. The month's lines are those of the documents of the
// organization's BANs in u.View, so the BANs its lines name give them; a
// BAN without lines adds nothing, and adds nothing later either: once one
// document of a month is issued (the cycle closed, or the vendor cycle
// finalized), every BAN's is, those known then frozen with their lines and
// those named after empty, and a BAN bills one organization for good (the
// hierarchy keeps its first). A usage month without lines is small and not
// worth holding.
func usageDocs(p *billing.Projection, u *billing.UsageMonth) []*billing.Invoice {
	if len(u.Lines) == 0 {
		return nil
	}
	var docs []*billing.Invoice
	for i := range u.Lines {
		ban := u.Lines[i].BAN
		if i > 0 && ban == u.Lines[i-1].BAN {
			continue
		}
		seen := false
		for _, d := range docs {
			seen = seen || d.BAN == ban
		}
		if seen {
			continue
		}
		d, err := frozenDocument(p, ban, u.Month, u.View)
		if err != nil || d == nil {
			return nil
		}
		docs = append(docs, d)
	}
	return docs
}
