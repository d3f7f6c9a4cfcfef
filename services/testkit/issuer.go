package testkit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ledger-billing/ledger/services/token"
)

// Issuer is an identity provider for tests: an RS256, an ES256 and an
// EdDSA signing key made for the test, their public keys as a JWKS file
// (for ledgerd's --auth-jwks), and tokens signed with them.
type Issuer struct {
	// Name is the issuer (iss) of its tokens.
	Name string
	// JWKSPath is the JWKS file.
	JWKSPath string
	keys     map[jose.SignatureAlgorithm]jose.JSONWebKey
}

// NewIssuer makes the keys and writes the JWKS into a temporary
// directory.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	i := &Issuer{Name: "https://issuer.test", keys: map[jose.SignatureAlgorithm]jose.JSONWebKey{
		jose.RS256: {Key: rsaKey, KeyID: "rsa-1", Algorithm: string(jose.RS256), Use: "sig"},
		jose.ES256: {Key: ecKey, KeyID: "ec-1", Algorithm: string(jose.ES256), Use: "sig"},
		jose.EdDSA: {Key: edKey, KeyID: "ed-1", Algorithm: string(jose.EdDSA), Use: "sig"},
	}}
	data, err := json.Marshal(i.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	i.JWKSPath = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(i.JWKSPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return i
}

// JWKS returns the public keys.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		k := i.keys[alg]
		set.Keys = append(set.Keys, k.Public())
	}
	return set
}

// Key returns the private key of alg (RS256, ES256 or EdDSA), for a test
// that signs something odd with it.
func (i *Issuer) Key(alg jose.SignatureAlgorithm) jose.JSONWebKey { return i.keys[alg] }

// Claims returns the claims of a token that ledgerd configured with this
// issuer accepts: the role and organizations, audience "ledger", valid
// from a minute ago for an hour, subject "test-<role>".
func (i *Issuer) Claims(role token.Role, orgs ...string) token.Claims {
	now := time.Now()
	return token.Claims{
		Claims: jwt.Claims{
			Issuer:    i.Name,
			Subject:   "test-" + string(role),
			Audience:  jwt.Audience{token.DefaultAudience},
			IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			Expiry:    jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Role: role,
		Orgs: orgs,
	}
}

// Token returns a valid EdDSA token for a role.
func (i *Issuer) Token(t testing.TB, role token.Role, orgs ...string) string {
	t.Helper()
	return i.Sign(t, i.keys[jose.EdDSA], i.Claims(role, orgs...))
}

// Sign signs claims (any JSON object) with key, its kid and alg in the
// header, without checking them: tests make bad tokens with it too.
func (i *Issuer) Sign(t testing.TB, key jose.JSONWebKey, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
