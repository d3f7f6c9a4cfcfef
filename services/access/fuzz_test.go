package access

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
)

// FuzzAuthenticate feeds arbitrary authorization headers to the
// verifier: each is a caller or an UnauthenticatedError whose message
// does not repeat the header, and nothing panics.
func FuzzAuthenticate(f *testing.F) {
	iss := testkit.NewIssuer(f)
	g, err := New(Config{JWKS: iss.JWKSPath, Issuer: iss.Name})
	if err != nil {
		f.Fatal(err)
	}
	valid := iss.Token(f, token.OrgAdmin, "acme")
	for _, seed := range []string{"Bearer " + valid, valid, "Bearer", "Bearer ", "bearer x.y.z", "Basic dXNlcjpwYXNz",
		"Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer " + valid[:len(valid)/2], "Bearer " + strings.Repeat("a.", 10)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		c, err := g.authenticate(context.Background(), []string{header})
		var ue *UnauthenticatedError
		switch {
		case err == nil:
			if c == nil || !c.Role.Valid() {
				t.Fatalf("%q: caller %+v", header, c)
			}
		case !errors.As(err, &ue):
			t.Fatalf("%q: %T %v, want an *UnauthenticatedError", header, err, err)
		case len(header) > 16 && strings.Contains(ue.Reason, header):
			t.Fatalf("the reason %q repeats the header", ue.Reason)
		}
	})
}
