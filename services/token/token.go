// Package token holds Ledger's bearer tokens as both ends of a call see
// them (DESIGN.md section 10; docs/securing.md): the claims a token
// carries (ledger_role, ledger_orgs), the four roles, the header that
// carries a token, and, for installations without an identity provider,
// the Ed25519 signing key and JWKS that `ledgerctl auth init` writes and
// the tokens `ledgerctl auth token` signs with it.
//
// Its place in the architecture: it sits beside services/wire, for the
// same reason: names two sides must agree on are written once. ledgerd
// verifies tokens in services/access; ledgerctl mints and sends them
// through services/ctl. It imports neither, nor anything of the server,
// so that ledgerctl can link it; its cryptography is go-jose's.
package token

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Header is the gRPC metadata key and HTTP header of a token, whose value
// is Scheme, a space and the token (RFC 6750).
const (
	Header = "authorization"
	Scheme = "Bearer"
)

// DefaultAudience is the audience ledgerd expects unless --auth-audience
// says otherwise, and the one ledgerctl auth token writes.
const DefaultAudience = "ledger"

// Role is the ledger_role claim: what a caller may do.
type Role string

// The roles of DESIGN.md section 10; services/access holds what each may
// call.
const (
	// Operator may do everything, on every organization, and read
	// /metrics and /debug/pprof.
	Operator Role = "operator"
	// Auditor may call every read RPC for every organization, with
	// lineage.
	Auditor Role = "auditor"
	// Invoicing may read the invoices of every BAN.
	Invoicing Role = "invoicing"
	// OrgAdmin may call every read RPC for the organizations of its
	// ledger_orgs claim.
	OrgAdmin Role = "org_admin"
)

// Roles lists every role, in the order of DESIGN.md's table.
var Roles = []Role{Operator, Auditor, Invoicing, OrgAdmin}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Claims is what a Ledger token says: the registered claims (iss, sub,
// aud, exp, nbf, iat) and Ledger's own.
type Claims struct {
	jwt.Claims
	// Role is the caller's role.
	Role Role `json:"ledger_role"`
	// Orgs are the organizations an org_admin administers; other roles
	// carry none.
	Orgs []string `json:"ledger_orgs,omitempty"`
}

// Errors of the claims and of the key files.
var (
	// ErrClaims reports claims that make no Ledger token: an unknown role,
	// an org_admin without organizations, organizations for another role.
	ErrClaims = errors.New("token: invalid claims")
	// ErrKeyFile reports a key file that holds no Ed25519 private key.
	ErrKeyFile = errors.New("token: not an Ed25519 private key in PEM")
	// ErrExists reports a key directory that already has a key.
	ErrExists = errors.New("token: key file exists")
)

// Check reports whether the claims make a Ledger token: a known role, and
// ledger_orgs exactly for org_admin (without one an org_admin could see
// nothing, and organizations on another role would read as a limit that
// is not enforced).
func (c *Claims) Check() error {
	switch {
	case !c.Role.Valid():
		return fmt.Errorf("%w: ledger_role %q is not one of operator, auditor, invoicing, org_admin", ErrClaims, c.Role)
	case c.Role == OrgAdmin && len(c.Orgs) == 0:
		return fmt.Errorf("%w: ledger_role org_admin needs ledger_orgs", ErrClaims)
	case c.Role != OrgAdmin && len(c.Orgs) > 0:
		return fmt.Errorf("%w: ledger_orgs is for org_admin only, not %s", ErrClaims, c.Role)
	case slices.Contains(c.Orgs, ""):
		return fmt.Errorf("%w: ledger_orgs holds an empty organization id", ErrClaims)
	}
	return nil
}

// Names of the files `ledgerctl auth init` writes in its directory.
const (
	// KeyFile is the Ed25519 signing key, PKCS #8 in PEM, mode 0600.
	KeyFile = "signing-key.pem"
	// JWKSFile is its public key as a JWK Set, for --auth-jwks.
	JWKSFile = "jwks.json"
)

// Init makes a new Ed25519 signing key and writes it to dir/KeyFile (mode
// 0600) and its public key to dir/JWKSFile, creating dir (mode 0700) if
// need be. It never replaces a key: tokens signed with it would stop
// verifying, so an existing KeyFile is ErrExists.
func Init(dir string) (keyPath, jwksPath string, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", err
	}
	jwk, err := signingKey(priv)
	if err != nil {
		return "", "", err
	}
	set, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	keyPath, jwksPath = filepath.Join(dir, KeyFile), filepath.Join(dir, JWKSFile)
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return "", "", fmt.Errorf("%w: %s", ErrExists, keyPath)
	}
	if err != nil {
		return "", "", err
	}
	if err := errors.Join(pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}), f.Sync(), f.Close()); err != nil {
		os.Remove(keyPath)
		return "", "", fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := os.WriteFile(jwksPath, append(set, '\n'), 0o644); err != nil {
		os.Remove(keyPath)
		return "", "", fmt.Errorf("write %s: %w", jwksPath, err)
	}
	return keyPath, jwksPath, nil
}

// ReadKey reads a signing key that Init wrote.
func ReadKey(path string) (jose.JSONWebKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return jose.JSONWebKey{}, fmt.Errorf("%w: %s", ErrKeyFile, path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("%w: %s: %v", ErrKeyFile, path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return jose.JSONWebKey{}, fmt.Errorf("%w: %s holds a %T", ErrKeyFile, path, key)
	}
	return signingKey(priv)
}

// signingKey is priv as a JWK whose key id is its RFC 7638 thumbprint, so
// that the JWKS and every token name the key alike without a counter.
func signingKey(priv ed25519.PrivateKey) (jose.JSONWebKey, error) {
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(jose.EdDSA), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	return jwk, nil
}

// Mint signs claims with key (a private JWK, its kid in the header) after
// checking them, and returns the compact token.
func Mint(key jose.JSONWebKey, claims Claims) (string, error) {
	if err := claims.Check(); err != nil {
		return "", err
	}
	alg := jose.SignatureAlgorithm(key.Algorithm)
	if alg == "" {
		alg = jose.EdDSA
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// Lifetime returns registered claims for a token valid from now for ttl.
func Lifetime(now time.Time, ttl time.Duration) jwt.Claims {
	return jwt.Claims{
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
	}
}
