package ctl

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/status"
)

var (
	// ErrUsage reports a command line that cannot be run as written: a
	// malformed month, a missing flag, an unknown view. ledgerctl exits
	// with status 2 for it, as the flag package does.
	ErrUsage = errors.New("ctl: bad usage")
	// ErrUnreachable is matched by every *UnreachableError.
	ErrUnreachable = errors.New("ctl: cannot reach ledgerd")
	// ErrRejected is matched by every *RejectedError.
	ErrRejected = errors.New("ctl: ledgerd rejected a message")
	// ErrNotIngested reports that ledgerd did not ingest, or reflect, what
	// was published within Config.Wait.
	ErrNotIngested = errors.New("ctl: ledgerd has not ingested the messages in time")
	// ErrBadFile is matched by every *FileError.
	ErrBadFile = errors.New("ctl: bad input file")
	// ErrUnauthenticated is matched by every *AuthError.
	ErrUnauthenticated = errors.New("ctl: ledgerd did not accept the caller's identity")
	// ErrBackupRefused reports that ledgerd answered a backup request with
	// an error: another backup running, an external store.
	ErrBackupRefused = errors.New("ctl: ledgerd refused the backup")
	// ErrBadBackup reports a backup that cannot be unpacked safely or
	// whole: a name outside its directory, a link, fewer or more files
	// than announced.
	ErrBadBackup = errors.New("ctl: bad backup")
)

// Usagef returns an error matching ErrUsage whose message is the sentence
// given, for command lines that cannot run as written.
func Usagef(format string, args ...any) error {
	return &sentence{msg: fmt.Sprintf(format, args...), kind: ErrUsage}
}

func usage(format string, args ...any) error { return Usagef(format, args...) }

func notIngested(format string, args ...any) error {
	return &sentence{msg: fmt.Sprintf(format, args...), kind: ErrNotIngested}
}

// sentence is an error for people: its message is a sentence of its own,
// without the sentinel's package prefix, and errors.Is matches the kind.
type sentence struct {
	msg  string
	kind error
}

func (e *sentence) Error() string        { return e.msg }
func (e *sentence) Is(target error) bool { return target == e.kind }

// UnreachableError says that ledgerd, or the NATS it ingests from, did not
// answer at an address.
type UnreachableError struct {
	What string // "ledgerd" or "NATS"
	Addr string
	Err  error
	// Hint, when set, says why instead of asking whether ledgerd runs:
	// something answered, but the TLS handshake failed.
	Hint string
}

func (e *UnreachableError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("cannot reach %s at %s: %s", e.What, e.Addr, e.Hint)
	}
	return fmt.Sprintf("cannot reach %s at %s (is `go run ./cmd/ledgerd` running?)", e.What, e.Addr)
}

// Unwrap gives both ErrUnreachable and the cause.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// AuthError says that ledgerd wants a bearer token that was not sent, or
// refused the one that was.
type AuthError struct {
	Addr string
	// Sent says whether a token was sent.
	Sent bool
	Err  error
}

func (e *AuthError) Error() string {
	if !e.Sent {
		return fmt.Sprintf("ledgerd at %s requires a bearer token: give --token or set LEDGERCTL_TOKEN (ledgerctl auth token signs one) (UNAUTHENTICATED)", e.Addr)
	}
	msg := e.Err.Error()
	var withStatus interface{ GRPCStatus() *status.Status }
	if errors.As(e.Err, &withStatus) {
		msg = withStatus.GRPCStatus().Message()
	}
	return fmt.Sprintf("ledgerd at %s refused the bearer token: %s (UNAUTHENTICATED)", e.Addr, msg)
}

// Unwrap gives ErrUnauthenticated and the cause.
func (e *AuthError) Unwrap() []error { return []error{ErrUnauthenticated, e.Err} }

// QueryError is a call the service answered with an error status. Its
// message is the status message alone (the server's sentence naming the
// field and value at fault) followed by the code, which is what a person
// needs; errors.Is still matches the domain error (billing.ErrUnknownBAN,
// calendar.ErrMalformed, ...) and status.FromError gives the status.
type QueryError struct{ Err error }

func (e *QueryError) Error() string {
	// status.FromError would give the whole wrapped error as the message;
	// the status itself has the server's sentence.
	var withStatus interface{ GRPCStatus() *status.Status }
	if !errors.As(e.Err, &withStatus) {
		return e.Err.Error()
	}
	st := withStatus.GRPCStatus()
	return fmt.Sprintf("%s (%s)", st.Message(), codeName(st.Code()))
}

func (e *QueryError) Unwrap() error { return e.Err }

// Rejection is one published message that ledgerd dead-lettered.
type Rejection struct {
	// Message says which message: its type and event_id.
	Message string
	// Reason and Code are the dead letter's Billing-Error and
	// Billing-Error-Code headers.
	Reason, Code string
}

// RejectedError lists the messages of one command that ledgerd refused.
type RejectedError struct{ Rejections []Rejection }

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ledgerd rejected %d of the messages", len(e.Rejections))
	for i, r := range e.Rejections {
		if i == rejectionsShown {
			fmt.Fprintf(&b, "\n  ... and %d more (see the BILLING_DLQ stream)", len(e.Rejections)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s [%s]", escape(r.Message), escape(r.Reason), escape(r.Code))
	}
	return b.String()
}

func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// rejectionsShown bounds the rejections an error lists: the first few say
// what is wrong; the stream has them all.
const rejectionsShown = 10

// FileError lists the bad rows of an input file, by line and column.
type FileError struct {
	File string
	// Problems are the first problems found, at most problemsMax.
	Problems []RowProblem
	// More counts the problems found beyond Problems.
	More int
}

// RowProblem is one bad cell, or a bad row when Column is empty.
type RowProblem struct {
	Line   int // the line of the CSV file the row starts on, or with InRow the row
	Column string
	Reason string
	// InRow says Line counts the rows of a Parquet file, from 1, which
	// has no lines; 0 is the file as a whole (its schema).
	InRow bool
}

func (p RowProblem) String() string {
	where := fmt.Sprintf("line %d", p.Line)
	switch {
	case p.InRow && p.Line == 0:
		where = "schema"
	case p.InRow:
		where = fmt.Sprintf("row %d", p.Line)
	}
	if p.Column == "" {
		return fmt.Sprintf("%s: %s", where, p.Reason)
	}
	return fmt.Sprintf("%s, column %s: %s", where, p.Column, p.Reason)
}

func (e *FileError) Error() string {
	var b strings.Builder
	n := len(e.Problems) + e.More
	fmt.Fprintf(&b, "%s: %d bad %s; nothing was published", e.File, n, plural(n, "row", "rows"))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more", e.More)
	}
	return b.String()
}

func (e *FileError) Is(target error) bool { return target == ErrBadFile }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
