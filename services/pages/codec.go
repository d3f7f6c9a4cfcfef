package pages

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec vtCodec falls back to
	"google.golang.org/grpc/mem"
)

// DialOption makes a client connection encode requests and decode answers
// with the code vtprotobuf generated for billing.v1 (proto/billing/v1/
// *_vtproto.pb.go) instead of protobuf-go's table-driven reflection: the
// same bytes, decoded 1.5 to 3 times faster. A page of 100 invoice lines
// is some 66 KB and 9,000 allocations, and decoding it was most of a
// call's time with a client on the query service's machine (docs/
// scaling.md, "Queries").
//
// Strings of a decoded answer share one copy of the answer's bytes
// (UnmarshalVTUnsafe) instead of each being allocated: the copy lives as
// long as any of them, and nothing writes to it. Unlike protobuf-go, the
// generated decoder does not check that strings are UTF-8; a client here
// reads ledgerd's answers, which protobuf-go encoded from strings it had
// checked, and a string that is not UTF-8 is still a Go string (the CSV
// and tables it goes to take its bytes).
func DialOption() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.ForceCodecV2(vtCodec{fallback: encoding.GetCodecV2("proto")}))
}

// vtCodec is gRPC's "proto" codec for messages with generated methods,
// and gRPC's own for any other (a well-known type, a status detail).
type vtCodec struct {
	fallback encoding.CodecV2
}

type vtMarshaler interface {
	MarshalVT() ([]byte, error)
}

type vtUnmarshaler interface {
	UnmarshalVTUnsafe([]byte) error
}

func (vtCodec) Name() string { return "proto" }

func (c vtCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(vtMarshaler); ok {
		data, err := m.MarshalVT()
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(data)}, nil
	}
	return c.fallback.Marshal(v)
}

// Unmarshal decodes into v from one contiguous copy of data, which v's
// strings then point into: gRPC may reuse data's buffers once Unmarshal
// returns, the copy is v's alone.
func (c vtCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(vtUnmarshaler); ok {
		return m.UnmarshalVTUnsafe(data.Materialize())
	}
	return c.fallback.Unmarshal(data, v)
}
