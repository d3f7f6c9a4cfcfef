package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// rawStreams is the protocol's generated stub from the client module: the
// high-level client cannot send some malformed requests at all.
func rawStreams(t testing.TB, addr string) api.StreamsClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewStreamsClient(conn)
}

func appendRaw(ctx context.Context, c api.StreamsClient, reqs ...*api.AppendReq) (*api.AppendResp, metadata.MD, error) {
	var trailer metadata.MD
	call, err := c.Append(ctx, grpc.Trailer(&trailer))
	if err != nil {
		return nil, nil, err
	}
	for _, r := range reqs {
		if err := call.Send(r); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, err
		}
	}
	resp, err := call.CloseAndRecv()
	return resp, trailer, err
}

func optionsReq(stream string) *api.AppendReq {
	return &api.AppendReq{Content: &api.AppendReq_Options_{Options: &api.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
		ExpectedStreamRevision: &api.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}}
}

func proposedReq(id *shared.UUID, meta map[string]string, data []byte) *api.AppendReq {
	return &api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: &api.AppendReq_ProposedMessage{
		Id: id, Metadata: meta, Data: data,
	}}}
}

var goodMeta = map[string]string{"type": "t", "content-type": "application/octet-stream"}

func TestBadRequests(t *testing.T) {
	st := testkit.StartStore(t, eventstore.Config{MaxAppendSize: 1000})
	c, raw := testkit.Client(t, st.URL()), rawStreams(t, st.Addr)
	goodID := &shared.UUID{Value: &shared.UUID_String_{String_: "5b2c3d1e-8f4a-4b6c-9d0e-1f2a3b4c5d6e"}}

	cases := []struct {
		name          string
		reqs          []*api.AppendReq
		code          codes.Code
		exception     string
		trailerChecks map[string]string
	}{
		{"empty stream name", []*api.AppendReq{optionsReq(""), proposedReq(goodID, goodMeta, nil)}, codes.InvalidArgument, "", nil},
		{"no options first", []*api.AppendReq{proposedReq(goodID, goodMeta, nil)}, codes.InvalidArgument, "", nil},
		{"malformed UUID", []*api.AppendReq{optionsReq("bad-1"), proposedReq(&shared.UUID{Value: &shared.UUID_String_{String_: "not-a-uuid"}}, goodMeta, nil)}, codes.InvalidArgument, "", nil},
		{"missing UUID", []*api.AppendReq{optionsReq("bad-2"), proposedReq(nil, goodMeta, nil)}, codes.InvalidArgument, "", nil},
		{"missing type", []*api.AppendReq{optionsReq("bad-3"), proposedReq(goodID, map[string]string{"content-type": "x"}, nil)},
			codes.InvalidArgument, "missing-required-metadata-property", nil},
		{"oversize event", []*api.AppendReq{optionsReq("bad-4"), proposedReq(goodID, goodMeta, bytes.Repeat([]byte("x"), 1001))},
			codes.InvalidArgument, "maximum-append-size-exceeded", map[string]string{"maximum-append-size": "1000"}},
		{"oversize append of small events", []*api.AppendReq{optionsReq("bad-5"), proposedReq(goodID, goodMeta, make([]byte, 600)), proposedReq(goodID, goodMeta, make([]byte, 600))},
			codes.InvalidArgument, "maximum-append-size-exceeded", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, trailer, err := appendRaw(ctxT(t), raw, tc.reqs...)
			if status.Code(err) != tc.code {
				t.Fatalf("err = %v, want code %v", err, tc.code)
			}
			if got := first(trailer.Get("exception")); got != tc.exception {
				t.Fatalf("exception trailer = %q, want %q", got, tc.exception)
			}
			for k, v := range tc.trailerChecks {
				if got := first(trailer.Get(k)); got != v {
					t.Fatalf("trailer %s = %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("appending to a tombstoned stream", func(t *testing.T) {
		appendOK(t, c, "gone", esdb.NoStream{}, event("t", "0"))
		if _, err := c.TombstoneStream(ctxT(t), "gone", esdb.TombstoneStreamOptions{}); err != nil {
			t.Fatal(err)
		}
		_, trailer, err := appendRaw(ctxT(t), raw, optionsReq("gone"), proposedReq(goodID, goodMeta, nil))
		if status.Code(err) != codes.FailedPrecondition || first(trailer.Get("exception")) != "stream-deleted" || first(trailer.Get("stream-name")) != "gone" {
			t.Fatalf("err = %v, trailer %v: want FailedPrecondition with the stream-deleted trailers", err, trailer)
		}
	})
	t.Run("oversize through the official client", func(t *testing.T) {
		big := esdb.EventData{EventType: "t", ContentType: esdb.ContentTypeBinary, Data: make([]byte, 5000)}
		_, err := c.AppendToStream(ctxT(t), "big", esdb.AppendToStreamOptions{}, big)
		var e *esdb.Error
		if !errors.As(err, &e) || status.Code(e.Err()) != codes.InvalidArgument {
			t.Fatalf("err = %v, want InvalidArgument", err)
		}
	})
	t.Run("reads with bad options", func(t *testing.T) {
		for name, req := range map[string]*api.ReadReq{
			"no options":       {},
			"no stream option": {Options: &api.ReadReq_Options{CountOption: &api.ReadReq_Options_Count{Count: 1}}},
			"empty stream name": {Options: &api.ReadReq_Options{CountOption: &api.ReadReq_Options_Count{Count: 1},
				StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{}}}},
			"bad regex": {Options: &api.ReadReq_Options{
				CountOption:  &api.ReadReq_Options_Subscription{Subscription: &api.ReadReq_Options_SubscriptionOptions{}},
				StreamOption: &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{AllOption: &api.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}},
				FilterOption: &api.ReadReq_Options_Filter{Filter: &api.ReadReq_Options_FilterOptions{
					Filter: &api.ReadReq_Options_FilterOptions_EventType{EventType: &api.ReadReq_Options_FilterOptions_Expression{Regex: "("}}}}}},
		} {
			call, err := raw.Read(ctxT(t), req)
			if err == nil {
				_, err = call.Recv()
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s: err = %v, want InvalidArgument", name, err)
			}
		}
	})
	// The server is still healthy after all of that.
	appendOK(t, c, "after", esdb.NoStream{}, event("t", "ok"))
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// FuzzRequests sends arbitrary Append and Read requests, decoded from the
// fuzzer's bytes, to a live server: whatever arrives must be answered with a
// status (never a panic, never a hang), and the server must stay healthy.
func FuzzRequests(f *testing.F) {
	st := testkit.StartStore(f, eventstore.Config{MaxAppendSize: 4096})
	c, raw := testkit.Client(f, st.URL()), rawStreams(f, st.Addr)
	seed := func(m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	seed(optionsReq("fuzz"))
	seed(proposedReq(&shared.UUID{Value: &shared.UUID_String_{String_: "not-a-uuid"}}, goodMeta, []byte("x")))
	seed(&api.ReadReq{Options: &api.ReadReq_Options{CountOption: &api.ReadReq_Options_Count{Count: 3},
		StreamOption: &api.ReadReq_Options_Stream{Stream: &api.ReadReq_Options_StreamOptions{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("fuzz")},
			RevisionOption:   &api.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}}}}}})
	seed(&api.ReadReq{Options: &api.ReadReq_Options{
		CountOption:  &api.ReadReq_Options_Subscription{Subscription: &api.ReadReq_Options_SubscriptionOptions{}},
		StreamOption: &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{AllOption: &api.ReadReq_Options_AllOptions_End{End: &shared.Empty{}}}},
		FilterOption: &api.ReadReq_Options_Filter{Filter: &api.ReadReq_Options_FilterOptions{
			Filter: &api.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: &api.ReadReq_Options_FilterOptions_Expression{Prefix: []string{"f"}}}}}}})

	f.Fuzz(func(t *testing.T, a, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var first, second api.AppendReq
		if proto.Unmarshal(a, &first) == nil && proto.Unmarshal(b, &second) == nil {
			_, _, err := appendRaw(ctx, raw, &first, &second)
			checkStatus(t, err)
		}
		var read api.ReadReq
		if proto.Unmarshal(a, &read) == nil {
			readOnce(ctx, t, raw, &read)
		}
		if _, err := c.AppendToStream(ctx, "fuzz-health", esdb.AppendToStreamOptions{}, event("t", "ok")); err != nil {
			t.Fatalf("server unhealthy after fuzzed requests: %v", err)
		}
	})
}

// readOnce reads until the end, an error, or a subscription's caught_up.
func readOnce(ctx context.Context, t *testing.T, raw api.StreamsClient, req *api.ReadReq) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	call, err := raw.Read(ctx, req)
	if err != nil {
		checkStatus(t, err)
		return
	}
	for range 10_000 {
		resp, err := call.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			checkStatus(t, err)
			return
		}
		if resp.GetCaughtUp() != nil {
			return
		}
	}
}

func checkStatus(t *testing.T, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.OK, codes.InvalidArgument, codes.FailedPrecondition, codes.Unimplemented:
	default:
		t.Fatalf("unexpected answer %v", err)
	}
}
