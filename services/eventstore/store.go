package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
)

// Limits of the writer. A group is what one fsync covers; the queue bounds
// how many requests wait for the writer before callers block.
const (
	groupRequestsMax = 1024
	groupBytesMax    = 64 << 20
	writeQueueLen    = 1024
)

type expectedKind uint8

const (
	expectAny expectedKind = iota
	expectNoStream
	expectStreamExists
	expectRevision
)

// expectedRevision is the optimistic-concurrency condition of a write.
type expectedRevision struct {
	kind expectedKind
	rev  uint64 // for expectRevision
}

func (e expectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	case expectRevision:
		return strconv.FormatUint(e.rev, 10)
	default:
		return "any"
	}
}

// proposedEvent is an event as a client proposes it, validated.
type proposedEvent struct {
	id             [16]byte
	eventType      string
	contentType    string
	customMetadata []byte
	data           []byte
}

// size is what the event adds to a write group: every byte it stores.
func (e *proposedEvent) size() int {
	return len(e.id) + len(e.eventType) + len(e.contentType) + len(e.customMetadata) + len(e.data)
}

// writeResult is where a write left its stream.
type writeResult struct {
	current int64  // the stream's revision after the write; -1: no stream
	pos     uint64 // $all position of the last event written or matched; 0: none
}

type writeKind uint8

const (
	writeAppend writeKind = iota
	writeDelete
	writeTombstone
)

type writeRequest struct {
	kind     writeKind
	stream   string
	expected expectedRevision
	events   []proposedEvent
	reply    chan writeReply // buffered: the writer never blocks on it
}

type writeReply struct {
	result writeResult
	err    error
}

// store is the storage engine: the Pebble database, the writer goroutine and
// the committed head that readers may see up to.
type store struct {
	db  *pebble.DB
	log *slog.Logger
	now func() time.Time

	requests chan *writeRequest
	closing  chan struct{}
	done     chan struct{}

	// mu guards head and changed. head is the position of the last synced
	// event; changed is closed and replaced whenever head moves, so waiting
	// readers wake without polling.
	mu      sync.Mutex
	head    uint64
	changed chan struct{}
}

func openStore(dir string, log *slog.Logger, readOnly bool) (*store, error) {
	opts := &pebble.Options{Logger: pebbleLogger{log}, ReadOnly: readOnly}
	separateValues(opts)
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("eventstore: open %s: %w", dir, err)
	}
	s := &store{
		db:       db,
		log:      log,
		now:      time.Now,
		requests: make(chan *writeRequest, writeQueueLen),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
	if s.head, err = lastPosition(db); err != nil {
		db.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

// Value separation: events of at least valueSeparatedMin bytes are kept in
// Pebble's blob files, written once when the memtable is flushed, and
// compactions move only the references to them. Ledger's large events
// (usage messages of about 150 KB) were otherwise compressed and copied
// again by every compaction that met them: with 1,000,000 records in 1,000
// messages, compactions were a fifth of ledgerd's CPU while ingesting and
// Snappy most of that. Measured with ledgerbench, 3 runs of each on this
// 2-core VM under load from other builds: ledgerd's CPU over the raw
// append of the same payloads 1.26-1.48 s instead of 1.87-2.66 s (954,000,
// 818,000 and 890,000 instead of 722,000, 508,000 and 384,000 records/s),
// over the whole ingest 8.4-9.2 s instead of 8.3-11.4 s, the same disk
// (156 MB). Small values (stream state, revisions, hierarchy and cycle
// events) stay in the tables, where reads of them stay cheap.
//
// It needs Pebble's FormatValueSeparation: an existing store is upgraded
// when it is opened, one way (a ledgerd built with an older Pebble cannot
// open it afterwards; one built with this Pebble, with or without value
// separation, can). The log is append-only, so little of the blob files
// ever becomes garbage; the rewrite settings are Pebble's usual ones.
const valueSeparatedMin = 4 << 10

func separateValues(o *pebble.Options) {
	if o.ReadOnly {
		return // a read-only open may not upgrade the format; reads need no policy
	}
	o.FormatMajorVersion = pebble.FormatValueSeparation
	o.Experimental.EnableColumnarBlocks = func() bool { return true }
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           valueSeparatedMin,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
}

func lastPosition(db *pebble.DB) (uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindLog}, UpperBound: []byte{kindLog + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	return decodeLogKey(it.Key())
}

func decodeLogKey(k []byte) (uint64, error) {
	if len(k) != 9 || k[0] != kindLog {
		return 0, fmt.Errorf("eventstore: corrupt log key %x", k)
	}
	return uint64(k[1])<<56 | uint64(k[2])<<48 | uint64(k[3])<<40 | uint64(k[4])<<32 |
		uint64(k[5])<<24 | uint64(k[6])<<16 | uint64(k[7])<<8 | uint64(k[8]), nil
}

// close stops the writer (requests still queued get ErrClosed) and closes
// the database.
func (s *store) close() error {
	close(s.closing)
	<-s.done
	return s.db.Close()
}

// committed returns the last synced position and a channel closed when it
// moves past it.
func (s *store) committed() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head, s.changed
}

func (s *store) publish(head uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if head < s.head {
		panic(fmt.Sprintf("eventstore: head going backwards from %d to %d", s.head, head))
	}
	s.head = head
	close(s.changed)
	s.changed = make(chan struct{})
}

// write hands a request to the writer and waits for its synced outcome.
func (s *store) write(ctx context.Context, r *writeRequest) (writeResult, error) {
	r.reply = make(chan writeReply, 1)
	select {
	case s.requests <- r:
	case <-s.closing:
		return writeResult{}, ErrClosed
	case <-ctx.Done():
		return writeResult{}, ctx.Err()
	}
	// Once queued the request will be decided; wait for the answer even if
	// the caller gives up, so nothing is left half-known to the writer.
	rep := <-r.reply
	return rep.result, rep.err
}

// run is the writer: it takes every queued request, decides and stages them
// in order in one batch, syncs the batch once and answers them all.
func (s *store) run() {
	defer close(s.done)
	for {
		var first *writeRequest
		select {
		case first = <-s.requests:
		case <-s.closing:
			for {
				select {
				case r := <-s.requests:
					r.reply <- writeReply{err: ErrClosed}
				default:
					return
				}
			}
		}
		group := []*writeRequest{first}
		bytes := requestBytes(first)
	drain:
		for len(group) < groupRequestsMax && bytes < groupBytesMax {
			select {
			case r := <-s.requests:
				group = append(group, r)
				bytes += requestBytes(r)
			default:
				break drain
			}
		}
		s.commitGroup(group)
	}
}

func requestBytes(r *writeRequest) int {
	n := 0
	for i := range r.events {
		n += r.events[i].size()
	}
	return n
}

func (s *store) commitGroup(group []*writeRequest) {
	head, _ := s.committed()
	st := staging{
		b:       s.db.NewIndexedBatch(),
		next:    head,
		created: strconv.FormatInt(s.now().UnixNano()/100, 10),
	}
	defer st.b.Close()
	replies := make([]writeReply, len(group))
	for i, r := range group {
		replies[i].result, replies[i].err = st.apply(r)
	}
	if !st.b.Empty() {
		if err := st.b.Commit(pebble.Sync); err != nil {
			s.log.Error("eventstore: commit failed", "err", err, "requests", len(group))
			for i := range replies {
				if replies[i].err == nil {
					replies[i] = writeReply{err: fmt.Errorf("eventstore: commit: %w", err)}
				}
			}
			st.next = head
		}
	}
	if st.next != head {
		s.publish(st.next)
	}
	for i, r := range group {
		r.reply <- replies[i]
	}
}

// staging decides writes against the database as the batch has changed it
// so far: the batch is indexed, so reads through it see earlier requests of
// the same group.
type staging struct {
	b       *pebble.Batch
	next    uint64 // position of the last event staged
	created string // .NET ticks since the Unix epoch, as the client expects
}

func (st *staging) apply(r *writeRequest) (writeResult, error) {
	state, err := loadState(st.b, r.stream)
	if err != nil {
		return writeResult{}, err
	}
	if state.tombstoned {
		return writeResult{}, ErrStreamDeleted
	}
	switch r.kind {
	case writeDelete:
		if !expectationHolds(r.expected, state, r.stream) {
			return writeResult{}, &wrongVersionError{r.stream, r.expected, state.last}
		}
		return st.softDelete(r.stream, state)
	case writeTombstone:
		if !expectationHolds(r.expected, state, r.stream) {
			return writeResult{}, &wrongVersionError{r.stream, r.expected, state.last}
		}
		return st.tombstone(r.stream, state)
	}
	return st.appendEvents(r.stream, r.expected, state, r.events)
}

// expectationHolds is the plain optimistic-concurrency check, without the
// idempotency rules of appends.
func expectationHolds(e expectedRevision, s streamState, stream string) bool {
	switch e.kind {
	case expectNoStream:
		return !s.visible(stream)
	case expectStreamExists:
		return s.visible(stream)
	case expectRevision:
		return s.last == int64(e.rev)
	default:
		return true
	}
}

func (st *staging) appendEvents(stream string, e expectedRevision, state streamState, events []proposedEvent) (writeResult, error) {
	wrong := &wrongVersionError{stream, e, state.last}
	switch e.kind {
	case expectRevision:
		switch {
		case int64(e.rev) > state.last:
			return writeResult{}, wrong
		case int64(e.rev) < state.last:
			return st.idempotent(stream, state, e.rev+1, events, wrong)
		}
	case expectNoStream:
		if state.visible(stream) {
			return st.idempotent(stream, state, 0, events, wrong)
		}
	case expectStreamExists:
		if !state.visible(stream) {
			return writeResult{}, wrong
		}
	case expectAny:
		// A retry of the stream's latest append is recognised; anything
		// else with "any" is appended, as KurrentDB does outside its cache.
		if n := int64(len(events)); n > 0 && state.last+1 >= n {
			res, err := st.idempotent(stream, state, uint64(state.last+1-n), events, wrong)
			if err == nil {
				return res, nil
			}
		}
	}
	if len(events) == 0 {
		return writeResult{current: state.last}, nil
	}

	for i := range events {
		ev := &events[i]
		state.last++
		st.next++
		rec := &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               structuredUUID(ev.id),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
			StreamRevision:   uint64(state.last),
			PreparePosition:  st.next,
			CommitPosition:   st.next,
			Metadata: map[string]string{
				"type":         ev.eventType,
				"content-type": ev.contentType,
				"created":      st.created,
			},
			CustomMetadata: ev.customMetadata,
			Data:           ev.data,
		}
		if err := st.setRecord(rec); err != nil {
			return writeResult{}, err
		}
		entry := revisionEntry{pos: st.next, id: ev.id}
		if err := st.b.Set(revisionKey(stream, uint64(state.last)), entry.encode(), nil); err != nil {
			return writeResult{}, err
		}
	}
	if err := st.b.Set(stateKey(stream), state.encode(), nil); err != nil {
		return writeResult{}, err
	}
	if isMetadataStream(stream) {
		if err := st.applyMetadata(stream[2:], events[len(events)-1].data); err != nil {
			return writeResult{}, err
		}
	}
	return writeResult{current: state.last, pos: st.next}, nil
}

// idempotent is KurrentDB's strong idempotency check: the proposed events
// are a retry when the stream already holds exactly them, in order, from
// revision from on. Then the answer is the original outcome; otherwise the
// expected revision was wrong.
func (st *staging) idempotent(stream string, state streamState, from uint64, events []proposedEvent, wrong error) (writeResult, error) {
	n := uint64(len(events))
	if n == 0 || state.last < 0 || from+n-1 > uint64(state.last) {
		return writeResult{}, wrong
	}
	var entry revisionEntry
	for i := range events {
		var err error
		entry, err = loadRevision(st.b, stream, from+uint64(i))
		if err != nil {
			return writeResult{}, err
		}
		if entry.id != events[i].id {
			return writeResult{}, wrong
		}
	}
	return writeResult{current: int64(from + n - 1), pos: entry.pos}, nil
}

func (st *staging) setRecord(rec *api.ReadResp_ReadEvent_RecordedEvent) error {
	value, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return err
	}
	return st.b.Set(logKey(rec.CommitPosition), value, nil)
}

// softDelete is KurrentDB's delete: it sets the stream's truncate-before
// ($tb) past its last event in the stream's metadata, keeping the other
// metadata. The stream reads as not found, and can be written again,
// continuing its revisions.
func (st *staging) softDelete(stream string, state streamState) (writeResult, error) {
	meta, err := st.latestMetadata(stream)
	if err != nil {
		return writeResult{}, err
	}
	meta["$tb"] = json.RawMessage(strconv.FormatInt(state.last+1, 10))
	data, err := json.Marshal(meta)
	if err != nil {
		return writeResult{}, err
	}
	metaStream := "$$" + stream
	metaState, err := loadState(st.b, metaStream)
	if err != nil {
		return writeResult{}, err
	}
	ev := proposedEvent{id: newEventID(), eventType: "$metadata", contentType: "application/json", data: data}
	res, err := st.appendEvents(metaStream, expectedRevision{kind: expectAny}, metaState, []proposedEvent{ev})
	if err != nil {
		return writeResult{}, err
	}
	return writeResult{current: state.last, pos: res.pos}, nil
}

// tombstone writes the $streamDeleted event, KurrentDB's permanent delete:
// afterwards every read, write or delete of the stream is refused.
func (st *staging) tombstone(stream string, state streamState) (writeResult, error) {
	st.next++
	rec := &api.ReadResp_ReadEvent_RecordedEvent{
		Id:               structuredUUID(newEventID()),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
		StreamRevision:   tombstoneRevision,
		PreparePosition:  st.next,
		CommitPosition:   st.next,
		Metadata: map[string]string{
			"type":         "$streamDeleted",
			"content-type": "application/octet-stream",
			"created":      st.created,
		},
		Data: []byte{},
	}
	if err := st.setRecord(rec); err != nil {
		return writeResult{}, err
	}
	state.tombstoned = true
	if err := st.b.Set(stateKey(stream), state.encode(), nil); err != nil {
		return writeResult{}, err
	}
	return writeResult{current: state.last, pos: st.next}, nil
}

// latestMetadata reads the stream's current metadata document; an absent
// or unreadable one is empty, as KurrentDB treats it.
func (st *staging) latestMetadata(stream string) (map[string]json.RawMessage, error) {
	meta := map[string]json.RawMessage{}
	metaStream := "$$" + stream
	state, err := loadState(st.b, metaStream)
	if err != nil || state.last < 0 {
		return meta, err
	}
	entry, err := loadRevision(st.b, metaStream, uint64(state.last))
	if err != nil {
		return nil, err
	}
	rec, err := loadRecord(st.b, entry.pos)
	if err != nil {
		return nil, err
	}
	if json.Unmarshal(rec.Data, &meta) != nil {
		return map[string]json.RawMessage{}, nil
	}
	return meta, nil
}

// applyMetadata makes the stream's latest metadata ($tb, $maxCount,
// $maxAge) govern what reads of the stream show.
func (st *staging) applyMetadata(stream string, data []byte) error {
	var meta struct {
		TruncateBefore *uint64 `json:"$tb"`
		MaxCount       *uint64 `json:"$maxCount"`
		MaxAge         *uint64 `json:"$maxAge"`
	}
	if json.Unmarshal(data, &meta) != nil {
		meta.TruncateBefore, meta.MaxCount, meta.MaxAge = nil, nil, nil
	}
	state, err := loadState(st.b, stream)
	if err != nil {
		return err
	}
	state.truncateBefore, state.maxCount, state.maxAge = 0, 0, 0
	if meta.TruncateBefore != nil {
		state.truncateBefore = *meta.TruncateBefore
	}
	if meta.MaxCount != nil {
		state.maxCount = *meta.MaxCount
	}
	if meta.MaxAge != nil {
		state.maxAge = *meta.MaxAge
	}
	return st.b.Set(stateKey(stream), state.encode(), nil)
}

func loadState(r pebble.Reader, stream string) (streamState, error) {
	v, closer, err := r.Get(stateKey(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return emptyState, nil
	}
	if err != nil {
		return streamState{}, err
	}
	defer closer.Close()
	return decodeState(v)
}

func loadRevision(r pebble.Reader, stream string, rev uint64) (revisionEntry, error) {
	v, closer, err := r.Get(revisionKey(stream, rev))
	if err != nil {
		return revisionEntry{}, fmt.Errorf("eventstore: revision %d of %q: %w", rev, stream, err)
	}
	defer closer.Close()
	return decodeRevisionEntry(v)
}

func loadRecord(r pebble.Reader, pos uint64) (*api.ReadResp_ReadEvent_RecordedEvent, error) {
	v, closer, err := r.Get(logKey(pos))
	if err != nil {
		return nil, fmt.Errorf("eventstore: event at position %d: %w", pos, err)
	}
	defer closer.Close()
	rec := &api.ReadResp_ReadEvent_RecordedEvent{}
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("eventstore: event at position %d: %w", pos, err)
	}
	return rec, nil
}

// pebbleLogger sends Pebble's own messages to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error("pebble: fatal: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
