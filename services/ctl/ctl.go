// Package ctl is what ledgerctl does: the command-line client of a running
// ledgerd (docs/architecture.md, "The commands"). cmd/ledgerctl parses the command line and
// calls one method of Client per subcommand; everything else is here.
//
// A Client writes like any metering service, and reads like any invoicing
// system. It publishes input messages through NATS JetStream on the
// billing.in.* subjects, waiting for every publish acknowledgement (an
// acknowledged publish is durable), and then for ledgerd itself: until its
// ingestion consumer has acknowledged them too, which it does only once
// each is appended to the event store or dead-lettered. Dead letters of the
// messages it published are looked up and reported as errors, so that
// nothing ledgerctl sends is refused silently. It reads through the gRPC
// BillingService, and renders the answers as aligned tables or, with JSON
// set, as protojson.
//
// Every event_id it publishes is derived from the content it stands for
// (a month, a FOCUS file's rows, the demo's fixed data), so running a
// command twice bills once.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/pages"
	"github.com/ledger-billing/ledger/services/wire"
)

// Default addresses: those ledgerd listens on by default.
const (
	DefaultGRPC = "127.0.0.1:9090"
	DefaultNATS = "nats://127.0.0.1:4222"
	DefaultHTTP = "127.0.0.1:8080"
)

// Defaults for the waits of Config.
const (
	DefaultTimeout = 30 * time.Second
	DefaultWait    = 2 * time.Minute
)

// Config configures a Client. The zero value talks to a ledgerd on the
// default addresses and writes nowhere.
type Config struct {
	// GRPC is ledgerd's query service address; empty: DefaultGRPC.
	GRPC string
	// NATS is the URL of the NATS ledgerd ingests from; empty: DefaultNATS.
	NATS string
	// Token is the bearer token sent with every query, for a ledgerd that
	// authenticates its callers (--auth-jwks); empty: none is sent.
	Token string
	// HTTP is ledgerd's HTTP address, where backups are taken; empty:
	// DefaultHTTP.
	HTTP string
	// Out receives the command's result; nil discards.
	Out io.Writer
	// Err receives progress and notes; nil discards.
	Err io.Writer
	// JSON prints protojson of the responses instead of tables.
	JSON bool
	// Progress draws a progress bar on Err during long work; for a
	// terminal, not for a log.
	Progress bool
	// Timeout bounds each query, all the pages of a document together;
	// zero: DefaultTimeout.
	Timeout time.Duration
	// Wait bounds how long a publishing command waits for ledgerd to
	// ingest and reflect what it published; zero: DefaultWait.
	Wait time.Duration
	// Now is the time source (which months have ended); nil: time.Now.
	Now func() time.Time

	// TLS reaches the query service over TLS, trusting TLSCA (empty: the
	// system's roots) and presenting TLSCert with TLSKey when given (a
	// ledgerd with --tls-client-ca asks for one). TLSCA or TLSCert
	// imply TLS.
	TLS                    bool
	TLSCA, TLSCert, TLSKey string
	// NATSCreds is a NATS credentials file (user JWT and nkey seed);
	// NATSTLSCA, NATSTLSCert and NATSTLSKey are TLS to NATS, as above
	// (a tls:// URL alone uses the system's roots); a user and password
	// go in the NATS URL. NATSInboxPrefix is the subject prefix of the
	// replies ledgerctl receives, for a NATS user allowed to subscribe
	// only to its own (deploy/nats/ledger-users.conf).
	NATSCreds, NATSTLSCA, NATSTLSCert, NATSTLSKey, NATSInboxPrefix string
}

// Client runs ledgerctl's commands against one ledgerd. Its connections
// are opened on first use, so a query command never needs NATS, nor a
// publishing one gRPC until it reads.
type Client struct {
	cfg Config

	mu   sync.Mutex
	conn *grpc.ClientConn
	svc  billingv1.BillingServiceClient
	nc   *nats.Conn
	js   jetstream.JetStream

	// refuse ends the publish in flight when NATS refuses it (see
	// asyncError). Its own lock: NATS calls asyncError from its own
	// goroutine, which mu's holders may wait on.
	refuseMu sync.Mutex
	refuse   context.CancelCauseFunc
}

// New returns a Client; Close releases its connections.
func New(cfg Config) *Client {
	if cfg.GRPC == "" {
		cfg.GRPC = DefaultGRPC
	}
	if cfg.NATS == "" {
		cfg.NATS = DefaultNATS
	}
	if cfg.HTTP == "" {
		cfg.HTTP = DefaultHTTP
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Err == nil {
		cfg.Err = io.Discard
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}
}

// Close closes the connections opened so far.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.svc = nil, nil
	}
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.js = nil, nil
	}
}

// service returns the BillingService client. grpc.NewClient does not
// connect: an unreachable ledgerd shows up as the first call's UNAVAILABLE,
// which call turns into ErrUnreachable.
func (c *Client) service() (billingv1.BillingServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.svc != nil {
		return c.svc, nil
	}
	transport := insecure.NewCredentials()
	if tlsConfig, err := c.tlsConfig(); err != nil {
		return nil, err
	} else if tlsConfig != nil {
		transport = credentials.NewTLS(tlsConfig)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(transport), pages.DialOption()}
	if t := tokenOf(c.cfg.Token); t != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(t)))
	}
	conn, err := grpc.NewClient(c.cfg.GRPC, opts...)
	if err != nil {
		return nil, fmt.Errorf("ctl: --grpc %q: %w", c.cfg.GRPC, err)
	}
	c.conn, c.svc = conn, billingv1.NewBillingServiceClient(conn)
	return c.svc, nil
}

// jetStream connects to NATS on first use.
func (c *Client) jetStream() (jetstream.JetStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.js != nil {
		return c.js, nil
	}
	// No reconnect loop: a command either gets its acknowledgements or
	// says why not; retrying is the person's call.
	opts, err := c.natsOptions()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.cfg.NATS, append(opts, nats.Name("ledgerctl"), nats.Timeout(5*time.Second), nats.NoReconnect(), nats.ErrorHandler(c.asyncError))...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
			return nil, fmt.Errorf("NATS at %s refused ledgerctl's credentials (user:password@ in --nats, or --nats-creds)", c.natsAddr())
		}
		return nil, &UnreachableError{What: "NATS", Addr: c.natsAddr(), Err: err, Hint: tlsHint(err.Error(), "nats-", c.cfg.NATSTLSCA != "" && c.cfg.NATSTLSCert == "")}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ctl: JetStream at %s: %w", c.natsAddr(), err)
	}
	c.nc, c.js = nc, js
	return js, nil
}

// call runs one query with the Client's timeout, and turns its error into
// what a person should read: ErrUnreachable when nothing answers, else the
// domain error the server mapped (wire.FromStatus), whose message is the
// server's sentence naming the field at fault.
func call[Req, Resp any](ctx context.Context, c *Client, rpc func(billingv1.BillingServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	var zero Resp
	svc, err := c.service()
	if err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := rpc(svc, ctx, req)
	if err != nil {
		return zero, c.queryError(err)
	}
	return resp, nil
}

// queryError classifies a failed call. The service's own UNAVAILABLE
// (projections replaying) carries an ErrorInfo that FromStatus recognizes;
// a bare UNAVAILABLE is gRPC failing to connect.
func (c *Client) queryError(err error) error {
	if status.Code(err) == codes.Unauthenticated {
		return &AuthError{Addr: c.cfg.GRPC, Sent: tokenOf(c.cfg.Token) != "", Err: wire.FromStatus(err)}
	}
	domain := wire.FromStatus(err)
	if domain != err {
		return &QueryError{Err: domain}
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable:
			return &UnreachableError{What: "ledgerd", Addr: c.cfg.GRPC, Err: err, Hint: tlsHint(st.Message(), "", c.grpcTLSWithoutCert())}
		case codes.DeadlineExceeded:
			return fmt.Errorf("ledgerd at %s did not answer within %s (--timeout): %w", c.cfg.GRPC, c.cfg.Timeout, err)
		}
	}
	return &QueryError{Err: err}
}

// codeName writes a gRPC code as the protocol spells it (NOT_FOUND), which
// is how the proto comments name them.
func codeName(c codes.Code) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return c.String()
}

var codeNames = map[codes.Code]string{
	codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}
