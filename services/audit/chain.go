package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strings"

	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// SealType is the event type of LogSealed, the one billing event the
// chain leaves out: a seal cannot cover itself.
var SealType = string((&billingv1.LogSealed{}).ProtoReflect().Descriptor().FullName())

// SealStream is the stream of the seals.
const SealStream = "seal"

// Chained reports whether an event of this type is a link of the chain:
// every billing event but the seals.
func Chained(eventType string) bool {
	return strings.HasPrefix(eventType, billing.EventTypePrefix) && eventType != SealType
}

// Chain is the running value of the seal chain: c_0 is 32 zero bytes and
// c_i = SHA-256(c_(i-1) ‖ link_i), link_i being the event's Link. The zero
// value is the chain of no events.
type Chain struct {
	value    [32]byte
	events   uint64
	position uint64 // of the last event added
	h        hash.Hash
	scratch  []byte
}

// Add makes the event at position the chain's next link.
func (c *Chain) Add(stream string, id uuid.UUID, eventType string, data []byte, position uint64) {
	c.scratch = Link(c.scratch[:0], stream, id, eventType, data)
	c.AddLink(c.scratch, position)
}

// AddLink is Add given the event's Link.
func (c *Chain) AddLink(link []byte, position uint64) {
	if c.h == nil {
		c.h = sha256.New()
	}
	c.h.Reset()
	c.h.Write(c.value[:])
	c.h.Write(link)
	c.h.Sum(c.value[:0])
	c.events++
	c.position = position
}

// State is a chain's value after a number of events, as a seal records it.
type State struct {
	Events   uint64 // links added, from the start of the history
	Position uint64 // $all position of the last of them
	Value    string // lowercase hex
}

// State returns where the chain is.
func (c *Chain) State() State {
	return State{Events: c.events, Position: c.position, Value: hex.EncodeToString(c.value[:])}
}

// Restore sets the chain to a state saved before (a snapshot's).
func (c *Chain) Restore(s State) bool {
	v, err := hex.DecodeString(s.Value)
	if err != nil || len(v) != len(c.value) {
		return false
	}
	copy(c.value[:], v)
	c.events, c.position = s.Events, s.Position
	return true
}

// Link appends to b what an event contributes to the chain, and what its
// signature signs: u32 length ‖ stream name ‖ 16-byte event id ‖ u32
// length ‖ type ‖ SHA-256(data), lengths big-endian. Each part is there
// for a reason: the stream and id make the event's place in the history
// (an id alone is unique only per stream in KurrentDB), the type says how
// to read the data, and the data's hash what it says; the lengths keep two
// different (stream, type) pairs from reading as the same bytes.
func Link(b []byte, stream string, id uuid.UUID, eventType string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(stream)))
	b = append(b, stream...)
	b = append(b, id[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(eventType)))
	b = append(b, eventType...)
	sum := sha256.Sum256(data)
	return append(b, sum[:]...)
}
