package eventstore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// User is the name of the embedded store's one user. It is KurrentDB's
// built-in administrator's, as the store's one user may do everything
// KurrentDB's administrator may; its password is Config.Password.
const User = "admin"

// Answers to calls without valid credentials. Neither says which of the
// user name and the password was wrong.
var (
	errNoCredentials = status.Error(codes.Unauthenticated,
		"eventstore: authentication required: give the user name and password in the connection string (esdb://USER:PASSWORD@host:port?tls=true); the official client sends them only over TLS")
	errBadCredentials = status.Error(codes.Unauthenticated, "eventstore: wrong user name or password")
)

// authLogEvery bounds the log lines about refused calls: a client with a
// wrong password retries, and each retry is a refused call.
const authLogEvery = 10 * time.Second

// drainWithin bounds how long a refused append is read before its answer
// (see stream).
const drainWithin = 10 * time.Second

// auth checks HTTP basic credentials on every call, as KurrentDB does:
// "authorization: Basic base64(user:password)" in the call's metadata.
type auth struct {
	want [sha256.Size]byte // of "User:password"
	log  func(msg string, args ...any)
	// drainMax bounds the bytes of a refused append read before its
	// answer: the largest append accepted.
	drainMax int

	mu      sync.Mutex
	logged  time.Time
	refused int // since the last line
}

func newAuth(password string, drainMax int, log func(string, ...any)) *auth {
	return &auth{want: sha256.Sum256([]byte(User + ":" + password)), log: log, drainMax: drainMax}
}

// check returns nil for a call with the right credentials. It compares
// digests of equal length in constant time, so neither the time taken
// nor its length says anything about the password.
func (a *auth) check(ctx context.Context) error {
	header := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(header) != 1 {
		a.refuse(ctx, "no credentials")
		return errNoCredentials
	}
	scheme, encoded, ok := strings.Cut(header[0], " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		a.refuse(ctx, "not basic credentials")
		return errNoCredentials
	}
	given, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		a.refuse(ctx, "malformed credentials")
		return errBadCredentials
	}
	got := sha256.Sum256(given)
	if subtle.ConstantTimeCompare(got[:], a.want[:]) != 1 {
		a.refuse(ctx, "wrong user name or password")
		return errBadCredentials
	}
	return nil
}

// refuse logs a refused call, at most once every authLogEvery, with the
// number refused since; never what was sent.
func (a *auth) refuse(ctx context.Context, why string) {
	a.mu.Lock()
	a.refused++
	now := time.Now()
	if now.Sub(a.logged) < authLogEvery {
		a.mu.Unlock()
		return
	}
	n := a.refused
	a.logged, a.refused = now, 0
	a.mu.Unlock()
	from := "unknown"
	if p, ok := peer.FromContext(ctx); ok {
		from = p.Addr.String()
	}
	a.log("eventstore: refused a call without valid credentials", "why", why, "peer", from, "refused", n)
}

func (a *auth) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.check(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *auth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.check(ss.Context()); err != nil {
		if info.IsClientStream {
			a.drain(ss)
		}
		return err
	}
	return handler(srv, ss)
}

// drain reads a refused append to its end, or to drainMax bytes or
// drainWithin, before the refusal is sent. The official client sends
// every event before it reads the answer, and reports a stream the
// server ended early as "EOF", not as the UNAUTHENTICATED it was: it
// must be able to send them. The bounds keep a client without
// credentials from sending more than an append could; one that stops
// sending altogether waits on its own deadline (the official client's is
// 10 s), as an append that stalls does.
func (a *auth) drain(ss grpc.ServerStream) {
	start := time.Now()
	for n := 0; n <= a.drainMax && time.Since(start) < drainWithin; {
		var m emptypb.Empty // any message: its fields are kept unknown, and counted
		if err := ss.RecvMsg(&m); err != nil {
			return
		}
		n += proto.Size(&m)
	}
}
