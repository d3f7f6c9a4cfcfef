package eventstore

import (
	"regexp"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/cockroachdb/pebble/v2"
)

// readPageLen bounds how many events one iterator reads before it is closed
// and a new one opened: long reads then pin no old memtables or files.
// readPageBytes bounds a page of $all by the size of its events, so that a
// reader catching up over large events (a usage message is 150 KB) holds a
// few megabytes, not 256 of them.
const (
	readPageLen   = 256
	readPageBytes = 4 << 20
)

// allPage returns up to limit events of $all in position order, starting at
// position from (inclusive) and going forwards or backwards, never past the
// synced head. It stops early once it holds readPageBytes of event data: a
// page shorter than limit is not the end; an empty one is.
func (s *store) allPage(from uint64, forward bool, limit int) ([]*api.ReadResp_ReadEvent_RecordedEvent, error) {
	head, _ := s.committed()
	if forward && from > head {
		return nil, nil
	}
	from = min(from, head)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(1), UpperBound: logKey(head + 1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var valid bool
	if forward {
		valid = it.SeekGE(logKey(from))
	} else {
		valid = it.SeekLT(logKey(from + 1))
	}
	var out []*api.ReadResp_ReadEvent_RecordedEvent
	size := 0
	for ; valid && len(out) < limit && size < readPageBytes; valid = step(it, forward) {
		rec, err := decodeRecord(it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
		size += len(it.Value())
	}
	return out, it.Error()
}

func step(it *pebble.Iterator, forward bool) bool {
	if forward {
		return it.Next()
	}
	return it.Prev()
}

// streamPage returns up to limit events of a stream from revision from
// (inclusive), forwards or backwards, within the revisions [lo, hi] and
// never past the synced head.
func (s *store) streamPage(stream string, from, lo, hi uint64, forward bool, limit int) ([]*api.ReadResp_ReadEvent_RecordedEvent, error) {
	if lo > hi || (forward && from > hi) || (!forward && from < lo) {
		return nil, nil
	}
	from = max(min(from, hi), lo)
	head, _ := s.committed()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: revisionKey(stream, lo), UpperBound: revisionKey(stream, hi+1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var valid bool
	if forward {
		valid = it.SeekGE(revisionKey(stream, from))
	} else {
		valid = it.SeekLT(revisionKey(stream, from+1))
	}
	var out []*api.ReadResp_ReadEvent_RecordedEvent
	for ; valid && len(out) < limit; valid = step(it, forward) {
		entry, err := decodeRevisionEntry(it.Value())
		if err != nil {
			return nil, err
		}
		if entry.pos > head {
			break
		}
		rec, err := loadRecord(s.db, entry.pos)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, it.Error()
}

// filter is a subscription or read filter on event type or stream name.
type filter struct {
	onEventType bool
	prefixes    []string
	re          *regexp.Regexp
	interval    uint64 // events scanned between checkpoints
}

// Defaults for a filter's checkpoint window and multiplier, used when a
// client sends zero (the Go client does unless told otherwise).
const (
	checkpointWindowDefault     = 32
	checkpointMultiplierDefault = 1
)

func newFilter(opts *api.ReadReq_Options_FilterOptions) (*filter, error) {
	if opts == nil {
		return nil, nil
	}
	f := &filter{}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	switch v := opts.Filter.(type) {
	case *api.ReadReq_Options_FilterOptions_EventType:
		f.onEventType, expr = true, v.EventType
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = v.StreamIdentifier
	default:
		return nil, invalidArgument("filter: neither an event type nor a stream identifier expression")
	}
	if expr == nil || (expr.Regex == "" && len(expr.Prefix) == 0) {
		return nil, invalidArgument("filter: the expression has neither a regex nor prefixes")
	}
	if len(expr.Regex) > filterRegexMax {
		// Compiling a regex costs memory in proportion to its size: a
		// client could otherwise spend the server's memory for free.
		return nil, invalidArgument("filter: the regex is %d bytes long; at most %d", len(expr.Regex), filterRegexMax)
	}
	if n, total := len(expr.Prefix), prefixesSize(expr.Prefix); n > filterPrefixesMax || total > filterPrefixBytesMax {
		return nil, invalidArgument("filter: %d prefixes of %d bytes in all; at most %d prefixes of %d bytes", n, total, filterPrefixesMax, filterPrefixBytesMax)
	}
	if expr.Regex != "" {
		re, err := regexp.Compile(expr.Regex)
		if err != nil {
			return nil, invalidArgument("filter: invalid regex: %v", err)
		}
		f.re = re
	}
	f.prefixes = expr.Prefix
	window := uint64(checkpointWindowDefault)
	if m := opts.GetMax(); m > 0 {
		window = uint64(m)
	}
	multiplier := uint64(checkpointMultiplierDefault)
	if opts.CheckpointIntervalMultiplier > 0 {
		multiplier = uint64(opts.CheckpointIntervalMultiplier)
	}
	f.interval = window * multiplier
	return f, nil
}

func (f *filter) match(rec *api.ReadResp_ReadEvent_RecordedEvent) bool {
	if f == nil {
		return true
	}
	subject := string(rec.GetStreamIdentifier().GetStreamName())
	if f.onEventType {
		subject = rec.Metadata["type"]
	}
	if f.re != nil {
		return f.re.MatchString(subject)
	}
	for _, p := range f.prefixes {
		if len(subject) >= len(p) && subject[:len(p)] == p {
			return true
		}
	}
	return false
}

// Bounds of a subscription's filter.
const (
	filterRegexMax       = 1 << 10
	filterPrefixesMax    = 1000
	filterPrefixBytesMax = 64 << 10
)

func prefixesSize(prefixes []string) int {
	n := 0
	for _, p := range prefixes {
		n += len(p)
	}
	return n
}
