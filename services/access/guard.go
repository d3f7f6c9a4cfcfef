package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ledger-billing/ledger/services/token"
)

// Config configures a Guard.
type Config struct {
	// JWKS is the key set that signs the tokens: a file, or an https://
	// URL (--auth-jwks).
	JWKS string
	// Issuer is the iss every token must carry (--auth-issuer); required.
	Issuer string
	// Audience must be among a token's aud (--auth-audience); empty is
	// token.DefaultAudience.
	Audience string
	// Logger receives the access log; nil discards.
	Logger *slog.Logger
	// Registerer receives the access metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// HTTPClient fetches an https JWKS; nil is a plain client. Tests give
	// one that trusts their server's certificate.
	HTTPClient *http.Client
	// Now is the time tokens are checked at, and the clock of the key
	// set's refreshes; nil is time.Now.
	Now func() time.Time
}

// Guard enforces the role table on ledgerd's gRPC and HTTP servers.
type Guard struct {
	verifier *verifier
	log      *slog.Logger
	calls    *prometheus.CounterVec
}

// New returns a Guard over the key set of cfg.JWKS, which it fetches once
// now: a set that cannot be read or holds no usable key is an error.
func New(cfg Config) (*Guard, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := newVerifier(&cfg, log)
	if err != nil {
		return nil, err
	}
	g := &Guard{
		verifier: v,
		log:      log,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_access_total",
			Help: "Calls to ledgerd's gRPC methods and HTTP paths by the access decision: allowed, unauthenticated (no or invalid token) or denied (the role may not).",
		}, []string{"outcome", "method"}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(g.calls); err != nil {
			return nil, fmt.Errorf("access: register metrics: %w", err)
		}
	}
	return g, nil
}

// Outcomes of an access decision, as the log and the metric name them.
const (
	outcomeAllowed         = "allowed"
	outcomeUnauthenticated = "unauthenticated"
	outcomeDenied          = "denied"
)

// authenticate verifies the credentials of a header value: "Bearer" and
// the token.
func (g *Guard) authenticate(ctx context.Context, values []string) (*Caller, error) {
	switch len(values) {
	case 0:
		return nil, unauthenticated("no bearer token: send the header authorization: Bearer <token>", nil)
	case 1:
	default:
		return nil, unauthenticated("more than one authorization header", nil)
	}
	scheme, raw, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, token.Scheme) || raw == "" {
		return nil, unauthenticated("the authorization header is not Bearer <token>", nil)
	}
	return g.verifier.verify(ctx, strings.TrimSpace(raw))
}

// record writes the access log line of a decision and counts it.
func (g *Guard) record(caller *Caller, kind, name, resource, outcome string, err error) {
	g.calls.WithLabelValues(outcome, name).Inc()
	attrs := make([]any, 0, 14)
	if caller != nil {
		attrs = append(attrs, "subject", cut(caller.Subject), "role", string(caller.Role))
	}
	attrs = append(attrs, kind, name)
	if resource != "" {
		attrs = append(attrs, "resource", resource)
	}
	attrs = append(attrs, "outcome", outcome)
	var ue *UnauthenticatedError
	switch {
	case outcome == outcomeAllowed:
		// What the handler answered; its error is the handler's to log.
		attrs = append(attrs, "code", status.Code(err).String())
	case errors.As(err, &ue) && ue.Err != nil:
		attrs = append(attrs, "reason", ue.Reason, "cause", ue.Err.Error())
	case err != nil:
		attrs = append(attrs, "reason", status.Convert(err).Message())
	}
	g.log.Info("access", attrs...)
}

// Unary is the gRPC unary interceptor: authentication, the role table,
// then the handler with the Caller in its context.
func (g *Guard) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	row := rowOf(info.FullMethod)
	if row.open {
		return handler(ctx, req)
	}
	res, resName := requestResource(row.resource, req)
	md, _ := metadata.FromIncomingContext(ctx)
	caller, err := g.authenticate(ctx, md.Get(token.Header))
	if err != nil {
		g.record(nil, "rpc", info.FullMethod, resName, outcomeUnauthenticated, err)
		return nil, err
	}
	if err := allow(caller, info.FullMethod, row, res, lineageAsked(req)); err != nil {
		g.record(caller, "rpc", info.FullMethod, resName, outcomeDenied, err)
		return nil, err
	}
	resp, err := handler(NewContext(ctx, caller), req)
	outcome := outcomeAllowed
	if status.Code(err) == codes.PermissionDenied {
		// The query service's answer for an org_admin's BAN of another
		// organization, or of none.
		outcome = outcomeDenied
	}
	g.record(caller, "rpc", info.FullMethod, resName, outcome, err)
	return resp, err
}

// Stream is the gRPC stream interceptor. A stream's request is read by
// its handler, after this decides, so a method with a resource in its row
// is refused here: none of ledgerd's streams (reflection, health's Watch)
// names one.
func (g *Guard) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	row := rowOf(info.FullMethod)
	if row.open {
		return handler(srv, ss)
	}
	ctx := ss.Context()
	md, _ := metadata.FromIncomingContext(ctx)
	caller, err := g.authenticate(ctx, md.Get(token.Header))
	if err != nil {
		g.record(nil, "rpc", info.FullMethod, "", outcomeUnauthenticated, err)
		return err
	}
	if err := allow(caller, info.FullMethod, row, "", false); err != nil || row.resource != none {
		if err == nil {
			err = &DeniedError{Role: caller.Role, Kind: KindMethod, Name: info.FullMethod}
		}
		g.record(caller, "rpc", info.FullMethod, "", outcomeDenied, err)
		return err
	}
	err = handler(srv, &callerStream{ServerStream: ss, ctx: NewContext(ctx, caller)})
	g.record(caller, "rpc", info.FullMethod, "", outcomeAllowed, err)
	return err
}

// callerStream is a stream whose context carries the Caller.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }

// HTTP returns next behind the path table: /healthz and /readyz open,
// everything else for the roles its row names, 401 without a valid token
// and 403 for another role.
func (g *Guard) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		row := pathOf(r.URL.Path)
		if row.open {
			next.ServeHTTP(w, r)
			return
		}
		caller, err := g.authenticate(r.Context(), r.Header.Values(token.Header))
		if err == nil {
			if _, ok := row.roles[caller.Role]; !ok {
				err = &DeniedError{Role: caller.Role, Kind: KindPath, Name: row.pattern}
			}
		}
		if err != nil {
			outcome := outcomeDenied
			if caller == nil {
				outcome = outcomeUnauthenticated
				// RFC 6750: a request without credentials gets the
				// challenge alone; one with a bad token, its error.
				challenge := `Bearer realm="ledger"`
				if len(r.Header.Values(token.Header)) > 0 {
					challenge += `, error="invalid_token", error_description=` + strconv.Quote(err.Error())
				}
				w.Header().Set("WWW-Authenticate", challenge)
			}
			g.record(caller, "path", row.pattern, "", outcome, err)
			http.Error(w, err.Error(), httpStatus(err))
			return
		}
		g.record(caller, "path", row.pattern, "", outcomeAllowed, nil)
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), caller)))
	})
}

// allow applies a method's row to a verified caller: the role, lineage,
// and the organization the request names. A BAN an org_admin names is
// left to the query service (see the package documentation).
func allow(c *Caller, fullMethod string, row method, orgID string, lineageAsked bool) error {
	r, ok := row.roles[c.Role]
	if !ok {
		return &DeniedError{Role: c.Role, Kind: KindMethod, Name: fullMethod}
	}
	if lineageAsked && !lineage[c.Role] {
		return &DeniedError{Role: c.Role, Kind: KindLineage}
	}
	if r == theirs && (row.resource == org || row.resource == orgOptional && orgID != "") && !slices.Contains(c.Orgs, orgID) {
		return &DeniedError{Role: c.Role, Kind: KindOrganization}
	}
	return nil
}

// requestResource returns the organization a request names (for the org
// rows) and the resource as the access log writes it (both rows).
func requestResource(r resource, req any) (orgID, logged string) {
	switch r {
	case ban:
		if m, ok := req.(interface{ GetBan() string }); ok {
			return "", "ban:" + cut(m.GetBan())
		}
	case org, orgOptional:
		if m, ok := req.(interface{ GetOrgId() string }); ok {
			if m.GetOrgId() == "" {
				return "", ""
			}
			return m.GetOrgId(), "org:" + cut(m.GetOrgId())
		}
	}
	return "", ""
}

// lineageAsked reports whether a request sets include_lineage.
func lineageAsked(req any) bool {
	m, ok := req.(interface{ GetIncludeLineage() bool })
	return ok && m.GetIncludeLineage()
}

// cutMax bounds what the log repeats of a value the caller chose: a
// request may carry a 64 KiB BAN, and a log line is read by people.
const cutMax = 64

func cut(s string) string {
	if len(s) <= cutMax {
		return s
	}
	n := cutMax
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
