package query

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec frozenCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// frozenCodec is the server's codec: gRPC's proto codec, except that a
// GetInvoiceResponse or GetUsageMonthResponse carrying a message of the
// frozen cache is written from the cache's bytes. Protobuf lets a message
// be the concatenation of its fields' encodings, so such a response is
// the cached field 1 followed by its own position, field 2: the very bytes
// proto.Marshal would write (field order, and zero position left out), at
// the cost of a copy instead of a marshalling.
//
// It is forced on the whole server (grpc.ForceServerCodecV2) because a
// codec is chosen per content-subtype, and gRPC's own "proto" must stay as
// it is for the rest of the process (the clients, other servers). Ledgerd
// registers no other codec, so no client loses one.
type frozenCodec struct {
	cache *frozenCache
	proto encoding.CodecV2
}

func newFrozenCodec(c *frozenCache) frozenCodec {
	return frozenCodec{cache: c, proto: encoding.GetCodecV2("proto")}
}

// Name is "proto": the responses are protobuf, whoever encodes them.
func (frozenCodec) Name() string { return "proto" }

func (c frozenCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch r := v.(type) {
	case *billingv1.GetInvoiceResponse:
		// A response with fields it was not given (an interceptor's) is
		// encoded whole, by the book.
		if r.Invoice != nil && len(r.ProtoReflect().GetUnknown()) == 0 {
			if field := c.cache.field(r.Invoice); field != nil {
				return withPosition(field, r.Position), nil
			}
		}
	case *billingv1.GetUsageMonthResponse:
		if r.Month != nil && len(r.ProtoReflect().GetUnknown()) == 0 {
			if field := c.cache.field(r.Month); field != nil {
				return withPosition(field, r.Position), nil
			}
		}
	}
	return c.proto.Marshal(v)
}

func (c frozenCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// withPosition appends field 2, position, to a cached field 1. The cached
// bytes are never written to, so gRPC may hold them for as long as its
// transport needs; SliceBuffer's Free leaves them alone.
func withPosition(field []byte, pos uint64) mem.BufferSlice {
	if pos == 0 {
		return mem.BufferSlice{mem.SliceBuffer(field)}
	}
	tail := protowire.AppendTag(make([]byte, 0, 11), 2, protowire.VarintType)
	tail = protowire.AppendVarint(tail, pos)
	return mem.BufferSlice{mem.SliceBuffer(field), mem.SliceBuffer(tail)}
}
