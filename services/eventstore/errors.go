package eventstore

import (
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Sentinel errors of the storage layer. The gRPC layer turns each into the
// status and trailers KurrentDB sends for it (see rpcError), because the
// official client recognises some of them only by their trailers.
var (
	ErrStreamDeleted        = errors.New("eventstore: stream is deleted")
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")
	ErrClosed               = errors.New("eventstore: store is closed")
	// ErrPasswordWithoutTLS: the official client sends credentials only
	// over TLS, so a password without TLS would lock every client out.
	ErrPasswordWithoutTLS = errors.New("eventstore: a password needs TLS: the official client sends credentials only over TLS")
	// ErrBackupInProgress refuses a backup while another one is open.
	ErrBackupInProgress = errors.New("eventstore: a backup is already running; try again when it has finished")
)

// wrongVersionError carries what a wrong-expected-version answer reports.
type wrongVersionError struct {
	stream   string
	expected expectedRevision
	current  int64 // -1: no stream
}

func (e *wrongVersionError) Error() string {
	return fmt.Sprintf("eventstore: wrong expected version for stream %q: expected %s, current %s",
		e.stream, e.expected, revisionText(e.current))
}

func (e *wrongVersionError) Unwrap() error { return ErrWrongExpectedVersion }

func revisionText(rev int64) string {
	if rev < 0 {
		return "no stream"
	}
	return strconv.FormatInt(rev, 10)
}

// KurrentDB's exception names, sent in the "exception" trailer.
const (
	exceptionStreamDeleted        = "stream-deleted"
	exceptionWrongExpectedVersion = "wrong-expected-version"
	exceptionMaxAppendSize        = "maximum-append-size-exceeded"
	exceptionMissingMetadata      = "missing-required-metadata-property"
)

// rpcError is a gRPC status with KurrentDB's trailers.
type rpcError struct {
	st       *status.Status
	trailers metadata.MD
}

func (e *rpcError) Error() string { return e.st.Err().Error() }

// GRPCStatus lets status.FromError and grpc-go see the code.
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

func invalidArgument(format string, args ...any) error {
	return &rpcError{st: status.Newf(codes.InvalidArgument, format, args...)}
}

func streamDeletedError(stream string) error {
	return &rpcError{
		st:       status.Newf(codes.FailedPrecondition, "Event stream '%s' is deleted.", stream),
		trailers: metadata.Pairs("exception", exceptionStreamDeleted, "stream-name", stream),
	}
}

func maxAppendSizeError(limit int) error {
	return &rpcError{
		st:       status.Newf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", limit),
		trailers: metadata.Pairs("exception", exceptionMaxAppendSize, "maximum-append-size", strconv.Itoa(limit)),
	}
}

func missingMetadataError(property string) error {
	return &rpcError{
		st:       status.Newf(codes.InvalidArgument, "Required metadata property '%s' is missing", property),
		trailers: metadata.Pairs("exception", exceptionMissingMetadata, "required-properties", "type,content-type"),
	}
}

// toRPC maps a storage error to what the wire carries. Deletes and
// tombstones report a wrong expected version as an error (appends answer it
// in-band, see Server.Append).
func toRPC(stream string, err error) error {
	var rpc *rpcError
	var wrong *wrongVersionError
	switch {
	case errors.As(err, &rpc):
		return rpc
	case errors.Is(err, ErrStreamDeleted):
		return streamDeletedError(stream)
	case errors.As(err, &wrong):
		return &rpcError{
			st: status.Newf(codes.FailedPrecondition,
				"Append failed due to WrongExpectedVersion. Stream: %s, Expected version: %s, Actual version: %s",
				stream, wrong.expected, revisionText(wrong.current)),
			trailers: metadata.Pairs("exception", exceptionWrongExpectedVersion, "stream-name", stream,
				"expected-version", wrong.expected.String(), "actual-version", revisionText(wrong.current)),
		}
	case errors.Is(err, ErrClosed):
		return status.Error(codes.Unavailable, "eventstore: server is shutting down")
	default:
		return status.Errorf(codes.Internal, "eventstore: %v", err)
	}
}
