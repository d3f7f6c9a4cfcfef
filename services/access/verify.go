package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ledger-billing/ledger/services/token"
)

// Bounds of verification and of the key set. Each says why in its own
// words; together they make a token, or a JWKS server, unable to cost
// ledgerd more than a bounded amount of work.
const (
	// leeway is the clock skew allowed on exp, nbf and iat: DESIGN.md
	// allows at most 60 s; NTP keeps clocks within far less, and every
	// second of leeway is a second more for a token that has expired.
	leeway = 30 * time.Second
	// tokenBytesMax bounds a token before it is parsed: real ones are a
	// few hundred bytes to a few KiB.
	tokenBytesMax = 16 << 10
	// fetchTimeout bounds one fetch of the JWKS, URL or file.
	fetchTimeout = 10 * time.Second
	// jwksBytesMax bounds a JWKS document: an identity provider's holds a
	// handful of keys in a few KiB.
	jwksBytesMax = 1 << 20
	// jwksKeysMax bounds the keys of a set, and so the work of loading it.
	jwksKeysMax = 100
	// refreshEvery is the age past which the key set is fetched again
	// (in the background, on the next call), so that a key the provider
	// removed stops verifying.
	refreshEvery = 10 * time.Minute
	// refreshMin is the least time between two fetches: a token naming an
	// unknown kid makes ledgerd fetch the set at once (the provider may
	// have rotated its keys), but a stream of such tokens fetches it at
	// most this often.
	refreshMin = 30 * time.Second
	// rsaBitsMin is the smallest RSA key accepted.
	rsaBitsMin = 2048
)

// algorithms are the only signature algorithms accepted, as DESIGN.md
// says: parsing refuses any other before a key is looked at, which is
// what keeps `alg: none` and HMAC (whose key would be the public key)
// out.
var algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// keySet is the usable keys of one fetch of the JWKS, by kid.
type keySet struct {
	keys    map[string][]jose.JSONWebKey
	fetched time.Time
}

// verifier checks tokens against a JWKS.
type verifier struct {
	source   string // the --auth-jwks value, for messages
	issuer   string
	audience string
	now      func() time.Time
	log      *slog.Logger
	fetch    func(ctx context.Context) ([]byte, error)

	set atomic.Pointer[keySet]
	// fetching holds the one fetch allowed at a time; lastTry, guarded by
	// it, is when the last one started.
	fetching   chan struct{}
	lastTry    time.Time
	refreshing atomic.Bool // a background refresh is under way
}

// newVerifier loads the key set once: a set that cannot be used at start
// is an error, while later failures keep the last good set and are
// logged.
func newVerifier(cfg *Config, log *slog.Logger) (*verifier, error) {
	v := &verifier{
		source:   cfg.JWKS,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		now:      cfg.Now,
		log:      log,
		fetching: make(chan struct{}, 1),
	}
	if v.audience == "" {
		v.audience = token.DefaultAudience
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case cfg.JWKS == "":
		return nil, fmt.Errorf("%w: no JWKS given", ErrJWKS)
	case cfg.Issuer == "":
		return nil, errors.New("access: an issuer is required with a JWKS: tokens of any issuer whose keys are in the set would otherwise pass")
	case strings.HasPrefix(cfg.JWKS, "https://"):
		u, err := url.Parse(cfg.JWKS)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%w: %q is not a URL", ErrJWKS, cfg.JWKS)
		}
		v.fetch = httpFetcher(u.String(), cfg.HTTPClient)
	case strings.Contains(cfg.JWKS, "://"):
		return nil, fmt.Errorf("%w: %q: a JWKS URL must be https, so that nobody between can swap the keys", ErrJWKS, cfg.JWKS)
	default:
		v.fetch = fileFetcher(cfg.JWKS)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	v.fetching <- struct{}{}
	v.lastTry = v.now()
	err := v.load(ctx)
	<-v.fetching
	if err != nil {
		return nil, err
	}
	return v, nil
}

// verify checks a raw token and returns its caller, or an
// *UnauthenticatedError saying which check failed.
func (v *verifier) verify(ctx context.Context, raw string) (*Caller, error) {
	if len(raw) > tokenBytesMax {
		return nil, unauthenticated(fmt.Sprintf("the bearer token is longer than %d bytes", tokenBytesMax), nil)
	}
	tok, err := jwt.ParseSigned(raw, algorithms)
	if err != nil {
		return nil, unauthenticated("the bearer token is not a JWT signed with RS256, ES256 or EdDSA", err)
	}
	h := tok.Headers[0] // a compact JWS has exactly one
	keys, err := v.keys(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var claims token.Claims
	verified := false
	for i := range keys {
		if !fits(&keys[i], jose.SignatureAlgorithm(h.Algorithm)) {
			continue
		}
		if err = tok.Claims(keys[i].Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, unauthenticated("the bearer token's signature does not verify with the key its kid names", err)
	}
	expected := jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: v.now()}
	if err := claims.ValidateWithLeeway(expected, leeway); err != nil {
		return nil, unauthenticated(claimsReason(err, v), err)
	}
	if claims.Expiry == nil {
		// A token without exp would be valid for ever.
		return nil, unauthenticated("the bearer token has no exp claim", nil)
	}
	if err := claims.Check(); err != nil {
		return nil, unauthenticated("the bearer token's claims are not a Ledger role: "+strings.TrimPrefix(err.Error(), token.ErrClaims.Error()+": "), err)
	}
	return &Caller{Subject: claims.Subject, Role: claims.Role, Orgs: claims.Orgs}, nil
}

// claimsReason words a failed claim check.
func claimsReason(err error, v *verifier) string {
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return "the bearer token has expired"
	case errors.Is(err, jwt.ErrNotValidYet):
		return "the bearer token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "the bearer token was issued in the future (iat)"
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return fmt.Sprintf("the bearer token's issuer is not %q", v.issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Sprintf("the bearer token's audience does not include %q", v.audience)
	}
	return "the bearer token's claims do not verify"
}

// fits reports whether a key of the set may verify a signature of alg:
// RSA for RS256, P-256 for ES256, Ed25519 for EdDSA, and the key's own
// alg, if it names one, the same.
func fits(k *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return alg == jose.RS256
	case *ecdsa.PublicKey:
		return alg == jose.ES256
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// keys returns the keys of kid. The set is fetched again at once for a
// kid it does not hold, unless a fetch started within refreshMin, and in
// the background once it is older than refreshEvery.
func (v *verifier) keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	set := v.set.Load()
	if keys, ok := set.keys[kid]; ok {
		if v.now().Sub(set.fetched) > refreshEvery && v.refreshing.CompareAndSwap(false, true) {
			go func() {
				defer v.refreshing.Store(false)
				v.refresh(context.Background())
			}()
		}
		return keys, nil
	}
	v.refresh(ctx)
	if keys, ok := v.set.Load().keys[kid]; ok {
		return keys, nil
	}
	return nil, unauthenticated("the bearer token's kid names no key of the JWKS", fmt.Errorf("kid %.64q", kid))
}

// refresh fetches the set again unless a fetch started within refreshMin,
// waiting (within ctx) for one under way. A failure keeps the set there
// is: the keys ledgerd verified with a moment ago are better than none.
func (v *verifier) refresh(ctx context.Context) {
	select {
	case v.fetching <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-v.fetching }()
	if v.now().Sub(v.lastTry) < refreshMin {
		return
	}
	v.lastTry = v.now()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	if err := v.load(ctx); err != nil {
		v.log.Warn("access: the JWKS could not be fetched again; keeping the keys fetched before", "jwks", v.source, "err", err)
	}
}

// load fetches and parses the set, and puts it in place.
func (v *verifier) load(ctx context.Context) error {
	data, err := v.fetch(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrJWKS, v.source, err)
	}
	set, skipped, err := parseSet(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrJWKS, v.source, err)
	}
	for _, why := range skipped {
		v.log.Warn("access: a key of the JWKS is not used", "jwks", v.source, "why", why)
	}
	set.fetched = v.now()
	v.set.Store(set)
	return nil
}

// parseSet reads a JWK Set, keeping the keys ledgerd verifies with and
// saying why it skipped the others. A private or symmetric key makes the
// whole set an error: a secret where only public keys belong has leaked,
// and should be rotated rather than used.
func parseSet(data []byte) (*keySet, []string, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if len(raw.Keys) > jwksKeysMax {
		return nil, nil, fmt.Errorf("%d keys, more than %d", len(raw.Keys), jwksKeysMax)
	}
	set := &keySet{keys: make(map[string][]jose.JSONWebKey)}
	var skipped []string
	n := 0
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if !k.IsPublic() {
			return nil, nil, fmt.Errorf("key %d (kid %q) is a private or symmetric key: a JWKS must hold public keys only", i, k.KeyID)
		}
		if why := unusable(&k); why != "" {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %s", i, k.KeyID, why))
			continue
		}
		set.keys[k.KeyID] = append(set.keys[k.KeyID], k)
		n++
	}
	if n == 0 {
		return nil, skipped, fmt.Errorf("no RS256, ES256 or EdDSA signing key in the set (%d keys)", len(raw.Keys))
	}
	return set, skipped, nil
}

// unusable says why a public key cannot verify Ledger tokens, or "".
func unusable(k *jose.JSONWebKey) string {
	if k.Use != "" && k.Use != "sig" {
		return fmt.Sprintf("use %q, not sig", k.Use)
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < rsaBitsMin {
			return fmt.Sprintf("an RSA key of %d bits, fewer than %d", key.N.BitLen(), rsaBitsMin)
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.RS256) {
			return fmt.Sprintf("alg %s, not RS256", k.Algorithm)
		}
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return fmt.Sprintf("an EC key on %s, not P-256 (ES256)", key.Curve.Params().Name)
		}
		if k.Algorithm != "" && k.Algorithm != string(jose.ES256) {
			return fmt.Sprintf("alg %s, not ES256", k.Algorithm)
		}
	case ed25519.PublicKey:
		if k.Algorithm != "" && k.Algorithm != string(jose.EdDSA) {
			return fmt.Sprintf("alg %s, not EdDSA", k.Algorithm)
		}
	default:
		return fmt.Sprintf("a %T, not an RSA, P-256 or Ed25519 key", k.Key)
	}
	return ""
}

// fileFetcher reads the set from a file, at most jwksBytesMax of it.
func fileFetcher(path string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f)
	}
}

// httpFetcher fetches the set from an https URL, within fetchTimeout (the
// caller's context), following redirects to https only.
func httpFetcher(u string, client *http.Client) func(context.Context) ([]byte, error) {
	c := http.Client{Timeout: fetchTimeout}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirected to %s, which is not https", req.URL.Redacted())
		}
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		return nil
	}
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/jwk-set+json, application/json")
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP status %s", resp.Status)
		}
		return readLimited(resp.Body)
	}
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, jwksBytesMax+1))
	if err != nil {
		return nil, err
	}
	if len(data) > jwksBytesMax {
		return nil, fmt.Errorf("larger than %d bytes", jwksBytesMax)
	}
	return data, nil
}
