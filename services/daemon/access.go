package daemon

import (
	"context"
	"fmt"
	"net/http"

	"google.golang.org/grpc"

	"github.com/ledger-billing/ledger/services/access"
	"github.com/ledger-billing/ledger/services/token"
)

// AuthConfigured reports whether ledgerd authenticates callers: a JWKS is
// given (--auth-jwks). Without one every caller may do everything, which
// is safe on loopback only.
func (c Config) AuthConfigured() bool { return c.AuthJWKS != "" }

// startAccess loads the key set of --auth-jwks, when one is given: a set
// that cannot be used stops the start, naming the flag.
func (d *Daemon) startAccess() error {
	if !d.cfg.AuthConfigured() {
		return nil
	}
	g, err := access.New(access.Config{
		JWKS:       d.cfg.AuthJWKS,
		Issuer:     d.cfg.AuthIssuer,
		Audience:   d.cfg.AuthAudience,
		Logger:     d.log,
		Registerer: d.registry,
	})
	if err != nil {
		return fmt.Errorf("--auth-jwks %s, --auth-issuer %q: %w", d.cfg.AuthJWKS, d.cfg.AuthIssuer, err)
	}
	d.access = g
	aud := d.cfg.AuthAudience
	if aud == "" {
		aud = token.DefaultAudience
	}
	d.log.Info("ledgerd: callers authenticate with bearer tokens", "jwks", d.cfg.AuthJWKS, "issuer", d.cfg.AuthIssuer, "audience", aud)
	return nil
}

// unaryAccess and streamAccess are the access interceptors, which let
// every call through when authentication is off.
func (d *Daemon) unaryAccess() grpc.UnaryServerInterceptor {
	if d.access == nil {
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(ctx, req)
		}
	}
	return d.access.Unary
}

func (d *Daemon) streamAccess() grpc.StreamServerInterceptor {
	if d.access == nil {
		return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return handler(srv, ss)
		}
	}
	return d.access.Stream
}

// httpAccess puts the HTTP handler behind the path table.
func (d *Daemon) httpAccess(h http.Handler) http.Handler {
	if d.access == nil {
		return h
	}
	return d.access.HTTP(h)
}
