package query

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec frozenCodec wraps
	"google.golang.org/grpc/mem"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// frozenCodec is the server's codec: gRPC's proto codec, except that a
// GetInvoiceResponse or GetUsageMonthResponse carrying a message of the
// frozen cache is written from the cache's bytes. Protobuf lets a message
// be the concatenation of its fields' encodings, so such a response is
// the cached field 1 followed by the encoding of its other fields (position,
// digest): the very bytes proto.Marshal would write (fields in number order,
// zero values left out), at
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
				inv := r.Invoice
				r.Invoice = nil
				tail, err := c.proto.Marshal(r)
				r.Invoice = inv
				return withTail(field, tail), err
			}
		}
	case *billingv1.GetUsageMonthResponse:
		if r.Month != nil && len(r.ProtoReflect().GetUnknown()) == 0 {
			if field := c.cache.field(r.Month); field != nil {
				month := r.Month
				r.Month = nil
				tail, err := c.proto.Marshal(r)
				r.Month = month
				return withTail(field, tail), err
			}
		}
	}
	return c.proto.Marshal(v)
}

func (c frozenCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// withTail appends the response's other fields, encoded without field 1
// (its position, digest and whatever a later version adds), to a cached
// field 1: proto.Marshal writes fields in number order, so the result is
// the very bytes it would write for the whole response. The cached bytes
// are never written to, so gRPC may hold them for as long as its transport
// needs; SliceBuffer's Free leaves them alone.
func withTail(field []byte, tail mem.BufferSlice) mem.BufferSlice {
	return append(mem.BufferSlice{mem.SliceBuffer(field)}, tail...)
}
