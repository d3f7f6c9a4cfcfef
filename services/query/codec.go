package query

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec frozenCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// frozenCodec is the server's codec: gRPC's proto codec, except that a
// GetInvoiceResponse or GetUsageMonthResponse carrying a message of the
// frozen cache is written from the cache's bytes. Protobuf lets a message
// be the concatenation of its fields' encodings, so such a response is
// the cached field 1 followed by the encoding of its other fields (its
// position, a next_page_token): the very bytes proto.Marshal would write
// (fields in number order, zero fields left out), at the cost of a copy
// instead of a marshalling. A page of a document is a message of its own,
// not the cache's, and is encoded by the book.
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
				return withRest(field, r, "invoice")
			}
		}
	case *billingv1.GetUsageMonthResponse:
		if r.Month != nil && len(r.ProtoReflect().GetUnknown()) == 0 {
			if field := c.cache.field(r.Month); field != nil {
				return withRest(field, r, "month")
			}
		}
	}
	// Anything else (a draft, a page, a list) is encoded by the code
	// vtprotobuf generated for billing.v1: the same bytes as protobuf-go's
	// reflection, in a third of its time (services/pages' DialOption does
	// the same for clients).
	if m, ok := v.(interface{ MarshalVT() ([]byte, error) }); ok {
		data, err := m.MarshalVT()
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(data)}, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal is protobuf-go's, which checks that strings are UTF-8: requests
// come from anyone, and vtprotobuf's decoder does not check.
func (c frozenCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// withRest appends the encoding of the response's fields but the cached
// one (named cached, field 1) to its cached encoding. Every other field
// has a higher number, so the concatenation is in field order, as
// proto.Marshal writes it. The cached bytes are never written to, so gRPC
// may hold them for as long as its transport needs; SliceBuffer's Free
// leaves them alone.
func withRest[M proto.Message](field []byte, resp M, cached protoreflect.Name) (mem.BufferSlice, error) {
	tail, err := proto.Marshal(withoutField(resp, cached))
	if err != nil {
		return nil, err
	}
	if len(tail) == 0 {
		return mem.BufferSlice{mem.SliceBuffer(field)}, nil
	}
	return mem.BufferSlice{mem.SliceBuffer(field), mem.SliceBuffer(tail)}, nil
}
