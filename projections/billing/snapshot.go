package billing

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/projections/money"
	"github.com/ledger-billing/ledger/projections/snapcodec"
)

// SnapshotVersion is the version of the encoding WriteSnapshot writes. Bump
// it on any change of the encoding (a field added to any type the
// projection holds, a field's order or form): ReadSnapshot refuses any
// other version, and ledgerd then replays the history instead.
const SnapshotVersion = 2

// WriteSnapshot writes the projection's state to w (docs/architecture.md,
// "Snapshots"): a compact binary encoding, streamed through a buffer, so
// that writing costs little memory besides the projection itself. The same
// state always writes the same bytes.
//
// It only reads the projection, so it may run under the read lock while
// queries go on; nothing may Apply meanwhile.
//
// Each type encodes its own fields next to its definition (an encode and a
// decode method): a field added to a type is added there, and
// SnapshotVersion bumped. Pointers that several structures share (the
// organization-months, the reconciliations and RI benefits, the
// organizations) are written once, in a table, and referred to by index,
// so that they come back shared. Scratch values and caches (the amount,
// the month cache, the accounts' resolutions) are not state: they are
// rebuilt as the fold goes on.
func (p *Projection) WriteSnapshot(w io.Writer) error {
	sw := &snapWriter{Encoder: snapcodec.NewEncoder(w), p: p}
	sw.Mark("billing")
	sw.Uvarint(SnapshotVersion)
	sw.Uvarint(p.pos)
	sw.Bool(p.started)
	p.h.EncodeSnapshot(sw.Encoder)
	p.ids.encode(sw.Encoder)

	sw.Mark("accounts")
	sw.Len(len(p.accounts)) // their cells are the cells', their resolutions a cache
	keys := slices.SortedFunc(maps.Keys(p.providerAccts), func(a, b providerKey) int {
		return cmp.Or(strings.Compare(a.org, b.org), strings.Compare(a.id, b.id))
	})
	sw.Len(len(keys))
	for _, k := range keys {
		sw.String(k.org)
		sw.String(k.id)
		sw.uint32s(p.providerAccts[k])
	}
	sw.Len(len(p.targets))
	for i := range p.targets {
		p.targets[i].encode(sw.Encoder)
	}

	// The organizations and the table of their organization-months, which
	// everything else refers to by index.
	sw.Mark("orgs")
	sw.orgMonthIdx = make(map[*orgMonth]uint32, len(p.orgMonths))
	sw.Len(len(p.orgs))
	for oi, o := range p.orgs {
		sw.String(o.id)
		sw.String(o.currency.Code())
		sw.Len(len(o.months))
		for _, om := range o.months {
			if om.key.org != uint32(oi) {
				sw.fail("organization-month %v listed under organization %d", om.key, oi)
			}
			sw.Int32(int32(om.key.month))
			sw.orgMonthIdx[om] = uint32(len(sw.orgMonthIdx))
		}
	}
	if len(sw.orgMonthIdx) != len(p.orgMonths) {
		sw.fail("%d organization-months listed by their organizations, %d kept", len(sw.orgMonthIdx), len(p.orgMonths))
	}
	bans := slices.SortedFunc(maps.Keys(p.banOrgs), strings.Compare)
	sw.Len(len(bans))
	for _, ban := range bans {
		sw.String(ban)
		sw.uint32s(p.banOrgs[ban])
	}
	months := slices.SortedFunc(maps.Keys(p.monthOrgs), cmp.Compare)
	sw.Len(len(months))
	for _, m := range months {
		sw.Int32(int32(m))
		sw.orgMonthRefs(p.monthOrgs[m])
	}
	sw.orgMonthRefs(p.dirty)

	p.adjustments.encode(sw)

	sw.Mark("orgmonths")
	for _, o := range p.orgs {
		for _, om := range o.months {
			om.encode(sw)
		}
	}
	p.cells.encode(sw)
	p.exceptions.encode(sw)
	p.cycles.encode(sw)
	sw.Mark("issued")
	sw.NilLen(len(p.issued), p.issued == nil)
	for i := range p.issued {
		p.issued[i].encode(sw.Encoder)
	}
	sw.Mark("end")
	if sw.err != nil {
		return sw.err
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("billing: writing a snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot reads a projection that WriteSnapshot wrote. It may read
// ahead of the snapshot's end, to the end of r. Lengths are checked
// against the bytes that remain when r tells them (an *io.LimitedReader, a
// bytes.Reader): a corrupt snapshot is an error wrapping
// snapcodec.ErrCorrupt, never a huge allocation. Another encoding version
// is ErrSnapshotVersion.
func ReadSnapshot(r io.Reader) (*Projection, error) {
	p := New()
	sr := &snapReader{Decoder: snapcodec.NewDecoder(r), p: p}
	if err := sr.read(); err != nil {
		return nil, fmt.Errorf("billing: reading a snapshot: %w", err)
	}
	return p, nil
}

func (sr *snapReader) read() error {
	p := sr.p
	sr.Mark("billing")
	if v := sr.Uvarint(); sr.Err() == nil && v != SnapshotVersion {
		return fmt.Errorf("%w: %d, this ledgerd reads %d", ErrSnapshotVersion, v, SnapshotVersion)
	}
	p.pos = sr.Uvarint()
	p.started = sr.Bool()
	p.h.DecodeSnapshot(sr.Decoder)
	p.ids.decode(sr.Decoder)

	sr.Mark("accounts")
	n := sr.Len()
	if n != len(p.ids.accounts) {
		sr.Fail("%d account states for %d accounts", n, len(p.ids.accounts))
	}
	p.accounts = make([]accountState, n)
	for i := range p.accounts {
		p.accounts[i].gen = ^uint64(0) // no resolution yet
	}
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		k := providerKey{org: sr.String(), id: sr.String()}
		p.providerAccts[k] = sr.accounts()
	}
	n = sr.Len()
	p.targets = make([]target, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		var t target
		t.decode(sr.Decoder)
		p.targetIdx[t.attr] = uint32(len(p.targets))
		p.targets = append(p.targets, t)
	}

	sr.Mark("orgs")
	n = sr.Len()
	p.orgs = make([]*orgState, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		oi := uint32(len(p.orgs))
		o := &orgState{id: sr.String()}
		o.currency = sr.currency()
		p.orgs = append(p.orgs, o)
		p.orgIdx[o.id] = oi
		for m := sr.Len(); m > 0 && sr.Err() == nil; m-- {
			om := &orgMonth{key: orgMonthKey{org: oi, month: sr.month()}, recons: make(map[reconKey]*recon)}
			o.months = append(o.months, om)
			p.orgMonths[om.key] = om
			sr.orgMonths = append(sr.orgMonths, om)
		}
	}
	for _, t := range p.targets {
		if int(t.org) >= len(p.orgs) {
			sr.Fail("target of organization %d of %d", t.org, len(p.orgs))
		}
	}
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		ban := sr.String()
		p.banOrgs[ban] = sr.orgRefs()
	}
	for n := sr.Len(); n > 0 && sr.Err() == nil; n-- {
		m := sr.month()
		p.monthOrgs[m] = sr.orgMonthRefs()
	}
	p.dirty = sr.orgMonthRefs()

	p.adjustments.decode(sr)

	sr.Mark("orgmonths")
	for _, om := range sr.orgMonths {
		if sr.Err() != nil {
			break
		}
		om.decode(sr)
	}
	p.cells.decode(sr)
	indexed := make(chan struct{})
	if sr.Err() == nil {
		go func() {
			defer close(indexed)
			p.cells.index(p)
		}()
	} else {
		close(indexed)
	}
	defer func() { <-indexed }()
	p.exceptions.decode(sr)
	p.cycles.decode(sr)
	sr.Mark("issued")
	n, isNil := sr.NilLen()
	if !isNil {
		p.issued = make([]IssuedRecord, 0, sr.Cap(n))
	}
	for ; n > 0 && sr.Err() == nil; n-- {
		var rec IssuedRecord
		rec.decode(sr.Decoder)
		p.issued = append(p.issued, rec)
		p.record(&rec)
	}
	sr.Mark("end")
	return sr.Err()
}

// snapWriter is an Encoder with the tables that turn the pointers the
// projection shares into indexes, and the first inconsistency found.
type snapWriter struct {
	*snapcodec.Encoder
	p           *Projection
	orgMonthIdx map[*orgMonth]uint32
	reconIdx    map[*recon]uint32
	benefitIdx  map[*benefit]uint32
	err         error
}

// fail records a state that breaks an invariant the encoding relies on:
// only a bug of the fold can make one, and the snapshot is not written.
func (sw *snapWriter) fail(format string, args ...any) {
	if sw.err == nil {
		sw.err = fmt.Errorf("billing: snapshot of an inconsistent state: %s", fmt.Sprintf(format, args...))
	}
}

func (sw *snapWriter) uint32s(l []uint32) {
	sw.Len(len(l))
	for _, v := range l {
		sw.Uvarint(uint64(v))
	}
}

func (sw *snapWriter) orgMonthRefs(l []*orgMonth) {
	sw.Len(len(l))
	for _, om := range l {
		sw.orgMonthRef(om)
	}
}

// orgMonthRef writes a reference to an organization-month of the table,
// or nil.
func (sw *snapWriter) orgMonthRef(om *orgMonth) {
	if om == nil {
		sw.Uvarint(0)
		return
	}
	i, ok := sw.orgMonthIdx[om]
	if !ok {
		sw.fail("organization-month %v is not kept", om.key)
	}
	sw.Uvarint(uint64(i) + 1)
}

// orgRef writes a reference to an organization, or nil.
func (sw *snapWriter) orgRef(o *orgState) {
	if o == nil {
		sw.Uvarint(0)
		return
	}
	i, ok := sw.p.orgIdx[o.id]
	if !ok || sw.p.orgs[i] != o {
		sw.fail("organization %q is not kept", o.id)
	}
	sw.Uvarint(uint64(i) + 1)
}

// snapReader is a Decoder with the tables of shared pointers read so far.
type snapReader struct {
	*snapcodec.Decoder
	p         *Projection
	orgMonths []*orgMonth
	recons    []*recon
	benefits  []*benefit
	arena     []byte // for the charge logs: one allocation per arenaSize
}

// arenaSize is the size of the arenas that charge logs are read into.
const arenaSize = 1 << 20

func (sr *snapReader) month() calendar.Month {
	m := calendar.Month(sr.Int32())
	if sr.Err() == nil && !m.Valid() {
		sr.Fail("month %d", m)
	}
	return m
}

func (sr *snapReader) currency() money.Currency {
	code := sr.String()
	if code == "" || sr.Err() != nil {
		return money.Currency{}
	}
	cur, err := money.ParseCurrency(code)
	if err != nil {
		sr.Fail("%v", err)
	}
	return cur
}

// index reads an index below n.
func (sr *snapReader) index(n int, what string) uint32 {
	i := sr.Uint32()
	if sr.Err() == nil && int(i) >= n {
		sr.Fail("%s %d of %d", what, i, n)
		return 0
	}
	return i
}

func (sr *snapReader) account() uint32 { return sr.index(len(sr.p.ids.accounts), "account") }
func (sr *snapReader) target() uint32  { return sr.index(len(sr.p.targets), "target") }
func (sr *snapReader) symbol() uint32  { return sr.index(len(sr.p.ids.symbols), "symbol") }
func (sr *snapReader) event() uint32   { return sr.index(len(sr.p.ids.eventIDs), "event") }

func (sr *snapReader) accounts() []uint32 {
	n := sr.Len()
	l := make([]uint32, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		l = append(l, sr.account())
	}
	return l
}

func (sr *snapReader) orgRefs() []uint32 {
	n := sr.Len()
	l := make([]uint32, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		l = append(l, sr.index(len(sr.p.orgs), "organization"))
	}
	return l
}

func (sr *snapReader) orgMonthRefs() []*orgMonth {
	n := sr.Len()
	if n == 0 {
		return nil
	}
	l := make([]*orgMonth, 0, sr.Cap(n))
	for ; n > 0 && sr.Err() == nil; n-- {
		l = append(l, sr.orgMonthRef())
	}
	return l
}

func (sr *snapReader) orgMonthRef() *orgMonth {
	i := sr.Uvarint()
	if i == 0 || sr.Err() != nil {
		return nil
	}
	if i > uint64(len(sr.orgMonths)) {
		sr.Fail("organization-month %d of %d", i-1, len(sr.orgMonths))
		return nil
	}
	return sr.orgMonths[i-1]
}

func (sr *snapReader) orgRef() *orgState {
	i := sr.Uvarint()
	if i == 0 || sr.Err() != nil {
		return nil
	}
	if i > uint64(len(sr.p.orgs)) {
		sr.Fail("organization %d of %d", i-1, len(sr.p.orgs))
		return nil
	}
	return sr.p.orgs[i-1]
}
