package token_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ledger-billing/ledger/services/token"
)

// TestInitAndMint: the key Init writes signs tokens that its JWKS
// verifies, by kid, with the claims given; Init never replaces a key.
func TestInitAndMint(t *testing.T) {
	dir := t.TempDir() + "/keys"
	keyPath, jwksPath, err := token.Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{dir: 0o700, keyPath: 0o600, jwksPath: 0o644} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", path, info, err, mode)
		}
	}
	if _, _, err := token.Init(dir); !errors.Is(err, token.ErrExists) {
		t.Errorf("Init again: %v, want token.ErrExists", err)
	}

	key, err := token.ReadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	claims := token.Claims{Claims: token.Lifetime(time.Now(), time.Hour), Role: token.OrgAdmin, Orgs: []string{"acme", "globex"}}
	claims.Issuer, claims.Audience = "ledgerctl", jwt.Audience{token.DefaultAudience}
	raw, err := token.Mint(key, claims)
	if err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(jwksPath)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 || !keys[0].IsPublic() {
		t.Fatalf("kid %q names %d keys of the JWKS", tok.Headers[0].KeyID, len(keys))
	}
	var got token.Claims
	if err := tok.Claims(keys[0].Key, &got); err != nil {
		t.Fatal(err)
	}
	if got.Role != token.OrgAdmin || len(got.Orgs) != 2 || got.Issuer != "ledgerctl" || got.Expiry == nil {
		t.Errorf("claims %+v", got)
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []token.Claims{
		{Role: "admin"},
		{Role: token.OrgAdmin},
		{Role: token.Operator, Orgs: []string{"acme"}},
		{Role: token.OrgAdmin, Orgs: []string{""}},
	} {
		if err := c.Check(); !errors.Is(err, token.ErrClaims) {
			t.Errorf("%+v: %v, want token.ErrClaims", c, err)
		}
	}
	for _, r := range token.Roles {
		c := token.Claims{Role: r}
		if r == token.OrgAdmin {
			c.Orgs = []string{"acme"}
		}
		if err := c.Check(); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
}
