package eventstore

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
)

// The Pebble key space. Every key starts with a one-byte kind; stream names
// are length-prefixed so that no name can be a prefix of another's keys,
// whatever bytes it holds.
//
//	'l' position                     -> the stored event (a RecordedEvent protobuf)
//	's' len name revision            -> position and event id of that revision
//	'm' len name                     -> the stream's state (streamState)
const (
	kindLog    = 'l'
	kindStream = 's'
	kindState  = 'm'
)

func logKey(pos uint64) []byte {
	k := make([]byte, 9)
	k[0] = kindLog
	binary.BigEndian.PutUint64(k[1:], pos)
	return k
}

func streamPrefix(kind byte, stream string) []byte {
	k := make([]byte, 0, 1+4+len(stream)+8)
	k = append(k, kind)
	k = binary.BigEndian.AppendUint32(k, uint32(len(stream)))
	return append(k, stream...)
}

func revisionKey(stream string, rev uint64) []byte {
	return binary.BigEndian.AppendUint64(streamPrefix(kindStream, stream), rev)
}

func stateKey(stream string) []byte { return streamPrefix(kindState, stream) }

// revisionEntry is the value of a revision key: where the event is in the log
// and its id, so that the idempotency check needs no event decoding.
type revisionEntry struct {
	pos uint64
	id  [16]byte
}

func (e revisionEntry) encode() []byte {
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v, e.pos)
	copy(v[8:], e.id[:])
	return v
}

func decodeRevisionEntry(v []byte) (revisionEntry, error) {
	if len(v) != 24 {
		return revisionEntry{}, fmt.Errorf("eventstore: corrupt revision entry of %d bytes", len(v))
	}
	var e revisionEntry
	e.pos = binary.BigEndian.Uint64(v)
	copy(e.id[:], v[8:])
	return e, nil
}

// tombstoneRevision is the revision KurrentDB gives the $streamDeleted event
// of a tombstoned stream.
const tombstoneRevision = math.MaxInt64

// streamState is what the writer needs to decide an append and what readers
// need to know which events are visible.
type streamState struct {
	last           int64  // revision of the last event; -1 when there is none
	truncateBefore uint64 // $tb of the stream's metadata: earlier revisions are hidden
	maxCount       uint64 // $maxCount of the stream's metadata; 0 means unlimited
	maxAge         uint64 // $maxAge of the stream's metadata, in seconds; 0 means unlimited
	tombstoned     bool
}

var emptyState = streamState{last: -1}

// A stream state is stored in 33 bytes: last, $tb, $maxCount, the
// tombstone flag, then $maxAge. Data directories written before $maxAge
// was kept hold 25 bytes, without it.
const (
	stateLen       = 33
	stateLenNoAge  = 25
	stateAgeOffset = 25
)

func (s streamState) encode() []byte {
	v := make([]byte, stateLen)
	binary.BigEndian.PutUint64(v, uint64(s.last))
	binary.BigEndian.PutUint64(v[8:], s.truncateBefore)
	binary.BigEndian.PutUint64(v[16:], s.maxCount)
	if s.tombstoned {
		v[24] = 1
	}
	binary.BigEndian.PutUint64(v[stateAgeOffset:], s.maxAge)
	return v
}

func decodeState(v []byte) (streamState, error) {
	if len(v) != stateLen && len(v) != stateLenNoAge {
		return streamState{}, fmt.Errorf("eventstore: corrupt stream state of %d bytes", len(v))
	}
	s := streamState{
		last:           int64(binary.BigEndian.Uint64(v)),
		truncateBefore: binary.BigEndian.Uint64(v[8:]),
		maxCount:       binary.BigEndian.Uint64(v[16:]),
		tombstoned:     v[24] == 1,
	}
	if len(v) == stateLen {
		s.maxAge = binary.BigEndian.Uint64(v[stateAgeOffset:])
	}
	return s, nil
}

// fresh reports whether an event of the stream is young enough to be read
// under the stream's $maxAge: older events disappear from the stream, as
// in KurrentDB (they stay in $all until a scavenge, which this store does
// not run).
func (s streamState) fresh(rec *api.ReadResp_ReadEvent_RecordedEvent, now time.Time) bool {
	if s.maxAge == 0 {
		return true
	}
	created, err := strconv.ParseInt(rec.Metadata["created"], 10, 64) // .NET ticks since the Unix epoch
	if err != nil {
		return true
	}
	cutoff := now.Add(-time.Duration(min(s.maxAge, math.MaxInt64/uint64(time.Second))) * time.Second)
	return created >= cutoff.UnixNano()/100
}

// firstVisible is the lowest revision a read may return: soft deletes and
// $tb hide what is before it, $maxCount keeps only the newest events, and a
// metadata stream ($$name) shows only its latest event, as in KurrentDB.
func (s streamState) firstVisible(stream string) uint64 {
	first := s.truncateBefore
	maxCount := s.maxCount
	if isMetadataStream(stream) {
		maxCount = 1
	}
	if maxCount > 0 && s.last >= 0 && uint64(s.last)+1 > maxCount {
		first = max(first, uint64(s.last)+1-maxCount)
	}
	return first
}

// visible reports whether a read of the stream finds any event.
func (s streamState) visible(stream string) bool {
	return s.last >= 0 && s.firstVisible(stream) <= uint64(s.last)
}

func isMetadataStream(stream string) bool {
	return len(stream) > 2 && stream[0] == '$' && stream[1] == '$'
}
