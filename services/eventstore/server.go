package eventstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Config configures the embedded store. The zero value, with a Dir, is a
// working configuration.
type Config struct {
	// Dir is the data directory; it is created when absent.
	Dir string
	// MaxAppendSize bounds the bytes (every byte of every proposed event:
	// id, metadata, custom metadata and data) of one
	// append. Zero means KurrentDB's default of 1 MiB. Ledger raises it for
	// large usage batches; a KurrentDB cluster needs the same setting.
	MaxAppendSize int
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Password, when set, is required with User on every call, reads
	// and subscriptions included, as KurrentDB requires credentials: a
	// call without them, or with others, is answered UNAUTHENTICATED.
	// Empty means no authentication, for tests that start the store on
	// its own; ledgerd always sets one. The official client sends
	// credentials only over TLS, so a Password needs TLS.
	Password string
	// TLS, when set, is the server's TLS configuration: the store then
	// serves only TLS.
	TLS *tls.Config
	// ReadOnly opens the directory without writing to it, for auditors
	// reading a copy (ledgerctl audit --data-dir): appends fail.
	ReadOnly bool
}

// DefaultMaxAppendSize is KurrentDB's default maximum append size.
const DefaultMaxAppendSize = 1 << 20

// maxReceiveBytes is the largest gRPC message accepted: the client allows
// itself 17 MiB, and Ledger's appends need at least 16 MiB.
const maxReceiveBytes = 17 << 20

// Server is the embedded store's gRPC server.
type Server struct {
	api.UnimplementedStreamsServer

	store         *store
	grpc          *grpc.Server
	log           *slog.Logger
	maxAppendSize int
	backup        backupState
	closeOnce     sync.Once
	closeErr      error
}

// Open opens (or creates) the store in cfg.Dir. Serve it with Serve; Close
// releases it.
func Open(cfg Config) (_ *Server, err error) {
	defer func() {
		// Pebble panics on some damaged files rather than returning an
		// error; whoever opens the store must hear why, not crash.
		if r := recover(); r != nil {
			err = fmt.Errorf("eventstore: open %s: the store's files are damaged: %v", cfg.Dir, r)
		}
	}()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Password != "" && cfg.TLS == nil {
		return nil, ErrPasswordWithoutTLS
	}
	st, err := openStore(cfg.Dir, log, cfg.ReadOnly)
	if err != nil {
		return nil, err
	}
	s := &Server{store: st, log: log, maxAppendSize: cfg.MaxAppendSize, backup: backupState{dir: cfg.Dir}}
	removeLeftoverBackup(cfg.Dir, log)
	if s.maxAppendSize <= 0 {
		s.maxAppendSize = DefaultMaxAppendSize
	}
	var security []grpc.ServerOption
	if cfg.TLS != nil {
		security = append(security, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	if cfg.Password != "" {
		a := newAuth(cfg.Password, s.maxAppendSize, log.Warn)
		security = append(security, grpc.ChainUnaryInterceptor(a.unary), grpc.ChainStreamInterceptor(a.stream))
	}
	s.grpc = grpc.NewServer(append(security,
		// The client pings every 10 s by default, with or without calls in
		// flight; a stricter policy would make the server drop it.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.MaxRecvMsgSize(maxReceiveBytes),
		// Close closes the database after Stop: no handler may still read it.
		grpc.WaitForHandlers(true),
	)...)
	api.RegisterStreamsServer(s.grpc, s)
	return s, nil
}

// Serve answers gRPC requests on lis until Close.
func (s *Server) Serve(lis net.Listener) error {
	s.log.Info("eventstore: serving", "addr", lis.Addr().String())
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Close stops serving, ending open subscriptions, and closes the database.
// Writes already acknowledged are on disk; writes in flight are answered
// with Unavailable or completed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.grpc.Stop()
		s.backup.close()
		s.closeErr = s.store.close()
	})
	return s.closeErr
}

// fail ends a call with a KurrentDB error, trailers included.
func fail(ctx context.Context, stream string, err error) error {
	if _, ok := status.FromError(err); ok && !isStoreError(err) {
		return err
	}
	err = toRPC(stream, err)
	var rpc *rpcError
	if errors.As(err, &rpc) {
		if rpc.trailers != nil {
			_ = grpc.SetTrailer(ctx, rpc.trailers)
		}
		return rpc.st.Err()
	}
	return err
}

func isStoreError(err error) bool {
	var rpc *rpcError
	var wrong *wrongVersionError
	return errors.As(err, &rpc) || errors.As(err, &wrong) || errors.Is(err, ErrStreamDeleted) || errors.Is(err, ErrClosed)
}

// Append is Streams.Append: the options, then the proposed events, then one
// answer. A wrong expected revision is answered in-band, as KurrentDB does.
func (s *Server) Append(call api.Streams_AppendServer) error {
	ctx := call.Context()
	first, err := call.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return fail(ctx, "", invalidArgument("append: the first message must carry the options"))
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return fail(ctx, "", invalidArgument("append: stream name is empty"))
	}
	expected, err := expectedFromAppend(opts)
	if err != nil {
		return fail(ctx, stream, err)
	}
	var events []proposedEvent
	size := 0
	for {
		req, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		msg := req.GetProposedMessage()
		if msg == nil {
			return fail(ctx, stream, invalidArgument("append: expected a proposed message after the options"))
		}
		ev, err := proposedFromProto(msg)
		if err != nil {
			return fail(ctx, stream, err)
		}
		// Every byte counts, the id, type and metadata too: a limit on
		// data alone would let an append carry any amount in its names.
		if size += proto.Size(msg); size > s.maxAppendSize {
			return fail(ctx, stream, maxAppendSizeError(s.maxAppendSize))
		}
		events = append(events, ev)
	}
	res, err := s.store.write(ctx, &writeRequest{kind: writeAppend, stream: stream, expected: expected, events: events})
	var wrong *wrongVersionError
	if errors.As(err, &wrong) {
		return call.SendAndClose(wrongVersionResponse(wrong))
	}
	if err != nil {
		return fail(ctx, stream, err)
	}
	return call.SendAndClose(successResponse(res))
}

func successResponse(res writeResult) *api.AppendResp {
	ok := &api.AppendResp_Success{}
	if res.current < 0 {
		ok.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		ok.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(res.current)}
	}
	if res.pos == 0 {
		ok.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		ok.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: res.pos, PreparePosition: res.pos}}
	}
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: ok}}
}

// wrongVersionResponse fills both the current fields (6 to 11) and the
// 20.6.0 ones, so that older clients read it too.
func wrongVersionResponse(w *wrongVersionError) *api.AppendResp {
	r := &api.AppendResp_WrongExpectedVersion{}
	if w.current < 0 {
		r.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		r.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		r.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(w.current)}
		r.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(w.current)}
	}
	switch w.expected.kind {
	case expectNoStream:
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case expectStreamExists:
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		r.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	case expectRevision:
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: w.expected.rev}
		r.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: w.expected.rev}
	default:
		r.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		r.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: r}}
}

func expectedFromAppend(opts *api.AppendReq_Options) (expectedRevision, error) {
	switch v := opts.ExpectedStreamRevision.(type) {
	case *api.AppendReq_Options_Revision:
		return exactRevision(v.Revision)
	case *api.AppendReq_Options_NoStream:
		return expectedRevision{kind: expectNoStream}, nil
	case *api.AppendReq_Options_StreamExists:
		return expectedRevision{kind: expectStreamExists}, nil
	case *api.AppendReq_Options_Any:
		return expectedRevision{kind: expectAny}, nil
	}
	return expectedRevision{}, invalidArgument("expected stream revision is missing")
}

// expectedFromDelete reads the same oneof of delete and tombstone requests.
func expectedFromDelete(revision uint64, noStream, any, exists *shared.Empty) (expectedRevision, error) {
	switch {
	case noStream != nil:
		return expectedRevision{kind: expectNoStream}, nil
	case any != nil:
		return expectedRevision{kind: expectAny}, nil
	case exists != nil:
		return expectedRevision{kind: expectStreamExists}, nil
	}
	return exactRevision(revision)
}

func exactRevision(rev uint64) (expectedRevision, error) {
	if rev > math.MaxInt64-1 {
		return expectedRevision{}, invalidArgument("expected revision %d is out of range", rev)
	}
	return expectedRevision{kind: expectRevision, rev: rev}, nil
}

func proposedFromProto(m *api.AppendReq_ProposedMessage) (proposedEvent, error) {
	id, err := parseUUID(m.GetId())
	if err != nil {
		return proposedEvent{}, err
	}
	ev := proposedEvent{id: id, customMetadata: m.CustomMetadata, data: m.Data}
	var ok bool
	if ev.eventType, ok = m.Metadata["type"]; !ok {
		return proposedEvent{}, missingMetadataError("type")
	}
	if ev.contentType, ok = m.Metadata["content-type"]; !ok {
		return proposedEvent{}, missingMetadataError("content-type")
	}
	if ev.data == nil {
		ev.data = []byte{}
	}
	return ev, nil
}

func parseUUID(u *shared.UUID) ([16]byte, error) {
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		var id [16]byte
		most, least := uint64(v.Structured.GetMostSignificantBits()), uint64(v.Structured.GetLeastSignificantBits())
		for i := range 8 {
			id[i] = byte(most >> (56 - 8*i))
			id[8+i] = byte(least >> (56 - 8*i))
		}
		return id, nil
	case *shared.UUID_String_:
		id, err := uuid.Parse(v.String_)
		if err != nil {
			return [16]byte{}, invalidArgument("event id %q is not a UUID: %v", v.String_, err)
		}
		return id, nil
	}
	return [16]byte{}, invalidArgument("event id is missing")
}

func structuredUUID(id [16]byte) *shared.UUID {
	var most, least uint64
	for i := range 8 {
		most = most<<8 | uint64(id[i])
		least = least<<8 | uint64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: int64(most), LeastSignificantBits: int64(least),
	}}}
}

func newEventID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

func decodeRecord(v []byte) (*api.ReadResp_ReadEvent_RecordedEvent, error) {
	rec := &api.ReadResp_ReadEvent_RecordedEvent{}
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("eventstore: corrupt event: %w", err)
	}
	return rec, nil
}

// Delete is Streams.Delete, KurrentDB's soft delete.
func (s *Server) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	opts := req.GetOptions()
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return nil, fail(ctx, "", invalidArgument("delete: stream name is empty"))
	}
	expected, err := expectedFromDelete(opts.GetRevision(), opts.GetNoStream(), opts.GetAny(), opts.GetStreamExists())
	if err != nil {
		return nil, fail(ctx, stream, err)
	}
	res, err := s.store.write(ctx, &writeRequest{kind: writeDelete, stream: stream, expected: expected})
	if err != nil {
		return nil, fail(ctx, stream, err)
	}
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: res.pos, PreparePosition: res.pos,
	}}}, nil
}

// Tombstone is Streams.Tombstone, KurrentDB's permanent delete.
func (s *Server) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	opts := req.GetOptions()
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	if stream == "" {
		return nil, fail(ctx, "", invalidArgument("tombstone: stream name is empty"))
	}
	expected, err := expectedFromDelete(opts.GetRevision(), opts.GetNoStream(), opts.GetAny(), opts.GetStreamExists())
	if err != nil {
		return nil, fail(ctx, stream, err)
	}
	res, err := s.store.write(ctx, &writeRequest{kind: writeTombstone, stream: stream, expected: expected})
	if err != nil {
		return nil, fail(ctx, stream, err)
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: res.pos, PreparePosition: res.pos,
	}}}, nil
}

// BatchAppend is not used by the Go client; KurrentDB's other clients fall
// back to Append when a server lacks it.
func (s *Server) BatchAppend(api.Streams_BatchAppendServer) error {
	return status.Error(codes.Unimplemented, "eventstore: BatchAppend is not supported; use Append")
}
