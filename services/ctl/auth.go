package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ledger-billing/ledger/services/token"
)

// DefaultIssuer is the issuer of the tokens ledgerctl signs unless
// --issuer says otherwise; ledgerd expects it with --auth-issuer.
const DefaultIssuer = "ledgerctl"

// Bounds of a token's lifetime: DefaultTTL when none is given, and at
// most TTLMax, since a token cannot be revoked before it expires other
// than by replacing the key, which ends every token at once.
const (
	DefaultTTL = 24 * time.Hour
	TTLMax     = 366 * 24 * time.Hour
)

// AuthInit writes a new Ed25519 signing key and its JWKS into dir (for
// installations without an identity provider), and says how to use them.
// It never replaces a key already there.
func (c *Client) AuthInit(dir string) error {
	if dir == "" {
		return usage("--dir is required: the directory to write the signing key and its JWKS into")
	}
	keyPath, jwksPath, err := token.Init(dir)
	if errors.Is(err, token.ErrExists) {
		return fmt.Errorf("%s already holds a signing key; auth init never replaces one, since every token it signed would stop working: remove it first, or choose another --dir", dir)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.cfg.Out, "wrote %s (the signing key: keep it secret) and %s (its JWKS)\n", keyPath, jwksPath)
	fmt.Fprintf(c.cfg.Out, "start ledgerd with:  ledgerd --auth-jwks %s --auth-issuer %s\n", jwksPath, DefaultIssuer)
	fmt.Fprintf(c.cfg.Out, "sign a token with:   ledgerctl auth token --key %s --role operator\n", keyPath)
	return nil
}

// TokenOptions are what `ledgerctl auth token` puts in a token.
type TokenOptions struct {
	// Key is the signing key file AuthInit wrote.
	Key string
	// Role is the ledger_role: operator, auditor, invoicing or org_admin.
	Role string
	// Orgs are the ledger_orgs of an org_admin.
	Orgs []string
	// TTL is how long the token is valid from now; zero is DefaultTTL.
	TTL time.Duration
	// Issuer, Audience and Subject are iss, aud and sub; empty:
	// DefaultIssuer, token.DefaultAudience and the role.
	Issuer, Audience, Subject string
}

// AuthToken signs a token with the key of opt.Key and prints it alone on
// a line, for LEDGERCTL_TOKEN=$(ledgerctl auth token ...).
func (c *Client) AuthToken(opt TokenOptions) error {
	if opt.Key == "" {
		return usage("--key is required: the signing key file that ledgerctl auth init wrote (%s)", token.KeyFile)
	}
	role := token.Role(opt.Role)
	switch {
	case !role.Valid():
		return usage("--role %q is not a role: want operator, auditor, invoicing or org_admin", opt.Role)
	case role == token.OrgAdmin && len(opt.Orgs) == 0:
		return usage("--role org_admin needs --org, once for each organization it administers")
	case role != token.OrgAdmin && len(opt.Orgs) > 0:
		return usage("--org is for --role org_admin only: %s sees every organization", role)
	case opt.TTL < 0 || opt.TTL > TTLMax:
		return usage("--ttl %s is not between 0 and %s", opt.TTL, TTLMax)
	}
	if opt.TTL == 0 {
		opt.TTL = DefaultTTL
	}
	key, err := token.ReadKey(opt.Key)
	if err != nil {
		return fmt.Errorf("--key %s: %w", opt.Key, err)
	}
	claims := token.Claims{Claims: token.Lifetime(c.cfg.Now(), opt.TTL), Role: role, Orgs: opt.Orgs}
	claims.Issuer = cmp.Or(opt.Issuer, DefaultIssuer)
	claims.Audience = jwt.Audience{cmp.Or(opt.Audience, token.DefaultAudience)}
	claims.Subject = cmp.Or(opt.Subject, string(role))
	signed, err := token.Mint(key, claims)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.cfg.Out, signed)
	return nil
}

// bearer sends a token with every call, as the authorization metadata.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{token.Header: token.Scheme + " " + string(b)}, nil
}

// RequireTransportSecurity is false so that a token reaches a ledgerd on
// loopback without TLS; across a network, ledgerd's TLS keeps it secret.
func (bearer) RequireTransportSecurity() bool { return false }

// tokenOf trims what a shell or a file adds around a token.
func tokenOf(s string) string { return strings.TrimSpace(s) }
