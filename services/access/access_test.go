package access_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/access"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
	"github.com/ledger-billing/ledger/services/wire"
)

// server is a gRPC server behind a Guard on a loopback listener: the
// BillingService answers UNIMPLEMENTED to every call that gets through,
// and health answers SERVING.
type server struct {
	guard    *access.Guard
	registry *prometheus.Registry
	log      *testkit.LogBuffer
	conn     *grpc.ClientConn
	billing  billingv1.BillingServiceClient
	health   healthpb.HealthClient
}

func newServer(t *testing.T, cfg access.Config) *server {
	t.Helper()
	s := &server{registry: prometheus.NewRegistry(), log: &testkit.LogBuffer{}}
	cfg.Registerer = s.registry
	cfg.Logger = slog.New(slog.NewTextHandler(s.log, nil))
	g, err := access.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.guard = g
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(g.Unary), grpc.ChainStreamInterceptor(g.Stream))
	billingv1.RegisterBillingServiceServer(srv, billingv1.UnimplementedBillingServiceServer{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	s.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	s.billing, s.health = billingv1.NewBillingServiceClient(s.conn), healthpb.NewHealthClient(s.conn)
	return s
}

// call calls GetUsageHistory of org acme with the token (none if empty)
// and returns the status code and message: UNIMPLEMENTED means the guard
// let the call through.
func (s *server) call(t *testing.T, tok string) (codes.Code, string) {
	t.Helper()
	ctx := testkit.Context(t, 10*time.Second)
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, token.Header, "Bearer "+tok)
	}
	_, err := s.billing.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: "acme"})
	st := status.Convert(err)
	return st.Code(), st.Message()
}

// unsigned returns a token with the given header and claims and no
// signature, as `alg: none` has.
func unsigned(t *testing.T, header map[string]string, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(c) + "."
}

// TestTokens checks every way a token can fail, each UNAUTHENTICATED with
// a message saying which check failed, and the three algorithms that
// pass.
func TestTokens(t *testing.T) {
	iss := testkit.NewIssuer(t)
	s := newServer(t, access.Config{JWKS: iss.JWKSPath, Issuer: iss.Name})
	ed := iss.Key(jose.EdDSA)
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(change func(c *token.Claims)) token.Claims {
		c := iss.Claims(token.Operator)
		change(&c)
		return c
	}
	now := time.Now()
	for _, tc := range []struct {
		name  string
		token string
		code  codes.Code
		msg   string
	}{
		{"RS256", iss.Sign(t, iss.Key(jose.RS256), iss.Claims(token.Operator)), codes.Unimplemented, ""},
		{"ES256", iss.Sign(t, iss.Key(jose.ES256), iss.Claims(token.Operator)), codes.Unimplemented, ""},
		{"EdDSA", iss.Token(t, token.Operator), codes.Unimplemented, ""},
		{"expired within the leeway", iss.Sign(t, ed, with(func(c *token.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-10 * time.Second)) })), codes.Unimplemented, ""},

		{"no token", "", codes.Unauthenticated, "no bearer token"},
		{"not a JWT", "not-a-token", codes.Unauthenticated, "not a JWT signed with RS256, ES256 or EdDSA"},
		{"expired", iss.Sign(t, ed, with(func(c *token.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-2 * time.Minute)) })),
			codes.Unauthenticated, "the bearer token has expired"},
		{"not yet valid", iss.Sign(t, ed, with(func(c *token.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) })),
			codes.Unauthenticated, "not valid yet"},
		{"no exp", iss.Sign(t, ed, with(func(c *token.Claims) { c.Expiry = nil })), codes.Unauthenticated, "no exp claim"},
		{"wrong issuer", iss.Sign(t, ed, with(func(c *token.Claims) { c.Issuer = "https://elsewhere.test" })),
			codes.Unauthenticated, `issuer is not "https://issuer.test"`},
		{"wrong audience", iss.Sign(t, ed, with(func(c *token.Claims) { c.Audience = jwt.Audience{"billing"} })),
			codes.Unauthenticated, `audience does not include "ledger"`},
		{"bad signature", iss.Sign(t, jose.JSONWebKey{Key: stranger, KeyID: ed.KeyID, Algorithm: ed.Algorithm}, iss.Claims(token.Operator)),
			codes.Unauthenticated, "signature does not verify"},
		{"tampered claims", func() string {
			parts := strings.Split(iss.Token(t, token.Invoicing), ".")
			body, _ := json.Marshal(iss.Claims(token.Operator))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
		}(), codes.Unauthenticated, "signature does not verify"},
		{"alg none", unsigned(t, map[string]string{"alg": "none", "typ": "JWT", "kid": ed.KeyID}, iss.Claims(token.Operator)),
			codes.Unauthenticated, "not a JWT signed with RS256, ES256 or EdDSA"},
		// HMAC with the public key as its secret is the classic attack
		// on verifiers that let the token choose the algorithm.
		{"HMAC", iss.Sign(t, jose.JSONWebKey{Key: []byte(ed.Public().Key.(ed25519.PublicKey)), KeyID: ed.KeyID, Algorithm: string(jose.HS256)}, iss.Claims(token.Operator)),
			codes.Unauthenticated, "not a JWT signed with RS256, ES256 or EdDSA"},
		{"RS384", iss.Sign(t, jose.JSONWebKey{Key: iss.Key(jose.RS256).Key, KeyID: "rsa-1", Algorithm: string(jose.RS384)}, iss.Claims(token.Operator)),
			codes.Unauthenticated, "not a JWT signed with RS256, ES256 or EdDSA"},
		{"unknown kid", iss.Sign(t, jose.JSONWebKey{Key: stranger, KeyID: "someone-else", Algorithm: string(jose.EdDSA)}, iss.Claims(token.Operator)),
			codes.Unauthenticated, "kid names no key of the JWKS"},
		// The kid of the RSA key on an EdDSA signature: the key does not
		// fit the algorithm, whatever the signature.
		{"key of another algorithm", iss.Sign(t, jose.JSONWebKey{Key: ed.Key, KeyID: "rsa-1", Algorithm: string(jose.EdDSA)}, iss.Claims(token.Operator)),
			codes.Unauthenticated, "signature does not verify"},
		{"unknown role", iss.Sign(t, ed, with(func(c *token.Claims) { c.Role = "admin" })), codes.Unauthenticated, `ledger_role "admin" is not one of`},
		{"org_admin without orgs", iss.Token(t, token.OrgAdmin), codes.Unauthenticated, "org_admin needs ledger_orgs"},
		{"orgs on another role", iss.Token(t, token.Auditor, "acme"), codes.Unauthenticated, "ledger_orgs is for org_admin only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := s.call(t, tc.token)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("%v %q, want %v containing %q", code, msg, tc.code, tc.msg)
			}
			if tc.token != "" && strings.Contains(msg, tc.token) {
				t.Errorf("the message %q repeats the token", msg)
			}
		})
	}

	t.Run("health is open", func(t *testing.T) {
		resp, err := s.health.Check(testkit.Context(t, 10*time.Second), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health without a token: %v, %v", resp, err)
		}
	})

	t.Run("the error is the wire's", func(t *testing.T) {
		_, err := s.billing.GetInvoice(testkit.Context(t, 10*time.Second), &billingv1.GetInvoiceRequest{Ban: "B"})
		if !errors.Is(wire.FromStatus(err), wire.ReasonUnauthenticated) {
			t.Errorf("FromStatus(%v) is not wire.ReasonUnauthenticated", err)
		}
	})

	t.Run("log and metrics", func(t *testing.T) {
		log := s.log.String()
		if !strings.Contains(log, "msg=access rpc=/billing.v1.BillingService/GetUsageHistory resource=org:acme outcome=unauthenticated") ||
			!strings.Contains(log, "subject=test-operator role=operator rpc=/billing.v1.BillingService/GetUsageHistory resource=org:acme outcome=allowed code=Unimplemented") {
			t.Errorf("access log:\n%s", log)
		}
		if strings.Contains(log, iss.Token(t, token.Operator)[:40]) {
			t.Errorf("the access log holds a token:\n%s", log)
		}
		n := accessCount(t, s.registry, "unauthenticated", billingv1.BillingService_GetUsageHistory_FullMethodName)
		if n < 15 {
			t.Errorf("ledger_access_total{outcome=unauthenticated} = %v, want at least 15", n)
		}
	})
}

// accessCount returns a series of ledger_access_total in reg.
func accessCount(t *testing.T, reg *prometheus.Registry, outcome, method string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "ledger_access_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == outcome && labels["method"] == method {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestHTTP checks the path table: open probes, /metrics and /debug/pprof
// for the operator alone, 401 with a challenge and 403.
func TestHTTP(t *testing.T) {
	iss := testkit.NewIssuer(t)
	g, err := access.New(access.Config{JWKS: iss.JWKSPath, Issuer: iss.Name})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := access.FromContext(r.Context())
		role := "none"
		if c != nil {
			role = string(c.Role)
		}
		fmt.Fprintf(w, "%s for %s", r.URL.Path, role)
	})))
	t.Cleanup(srv.Close)
	tokens := map[string]string{"": ""}
	for _, r := range token.Roles {
		var orgs []string
		if r == token.OrgAdmin {
			orgs = []string{"acme"}
		}
		tokens[string(r)] = iss.Token(t, r, orgs...)
	}
	for _, tc := range []struct {
		path string
		// want is the status for no token, operator, auditor, invoicing
		// and org_admin.
		want [5]int
	}{
		{"/healthz", [5]int{200, 200, 200, 200, 200}},
		{"/readyz", [5]int{200, 200, 200, 200, 200}},
		{"/metrics", [5]int{401, 200, 403, 403, 403}},
		{"/debug/pprof/", [5]int{401, 200, 403, 403, 403}},
		{"/debug/pprof/heap", [5]int{401, 200, 403, 403, 403}},
		{"/backup", [5]int{401, 200, 403, 403, 403}},
		// The console's pages: the readers'; its sign-in page and assets
		// are open.
		{"/elsewhere", [5]int{401, 200, 200, 403, 200}},
		{"/signin", [5]int{200, 200, 200, 200, 200}},
		{"/static/console.css", [5]int{200, 200, 200, 200, 200}},
	} {
		for i, role := range []string{"", "operator", "auditor", "invoicing", "org_admin"} {
			t.Run(tc.path+"/"+cmpOr(role, "no token"), func(t *testing.T) {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tc.path, nil)
				if tokens[role] != "" {
					req.Header.Set("Authorization", "Bearer "+tokens[role])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want[i] {
					t.Errorf("status %d, want %d", resp.StatusCode, tc.want[i])
				}
				if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") != `Bearer realm="ledger"` {
					t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	t.Run("bad token", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tokens["operator"]+"x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// jwksServer serves a JWKS over https, counting its fetches.
type jwksServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, set jose.JSONWebKeySet) *jwksServer {
	t.Helper()
	j := &jwksServer{}
	j.set(t, set)
	j.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		body := j.body
		j.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) set(t *testing.T, set jose.JSONWebKeySet) {
	t.Helper()
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	j.setBody(body)
}

func (j *jwksServer) setBody(body []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.body = body
}

// clock is a time a test moves by hand.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock(t time.Time) *clock        { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) claims(i *testkit.Issuer) token.Claims {
	cl := i.Claims(token.Operator)
	cl.IssuedAt, cl.NotBefore, cl.Expiry = jwt.NewNumericDate(c.now()), jwt.NewNumericDate(c.now()), jwt.NewNumericDate(c.now().Add(time.Hour))
	return cl
}

// TestJWKSRefresh checks the key set fetched from an https URL: a new kid
// is fetched at once, but at most once per minimum interval however many
// unknown kids arrive; a stale set is fetched again in the background, and
// a key removed from it stops verifying; a failed fetch keeps the keys.
func TestJWKSRefresh(t *testing.T) {
	iss := testkit.NewIssuer(t)
	rotated := testkit.NewIssuer(t) // its keys stand for the provider's next ones
	next := rotated.Key(jose.EdDSA)
	next.KeyID = "ed-2"
	j := newJWKSServer(t, iss.JWKS())
	clk := newClock(time.Now())
	s := newServer(t, access.Config{JWKS: j.srv.URL + "/jwks", Issuer: iss.Name, HTTPClient: j.srv.Client(), Now: clk.now})
	if n := j.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	if code, msg := s.call(t, iss.Sign(t, iss.Key(jose.ES256), clk.claims(iss))); code != codes.Unimplemented {
		t.Fatalf("a key of the set: %v %s", code, msg)
	}

	// The provider adds a key; the first token signed with it, within
	// the minimum interval of the start, is refused, and a flood of them
	// fetches nothing.
	withNext := iss.JWKS()
	withNext.Keys = append(withNext.Keys, next.Public())
	j.set(t, withNext)
	for range 20 {
		if code, _ := s.call(t, iss.Sign(t, next, clk.claims(iss))); code != codes.Unauthenticated {
			t.Fatalf("a new kid within the minimum interval: %v, want UNAUTHENTICATED", code)
		}
	}
	if n := j.fetches.Load(); n != 1 {
		t.Errorf("%d fetches after 20 unknown kids within the minimum interval, want 1", n)
	}
	clk.advance(31 * time.Second)
	if code, msg := s.call(t, iss.Sign(t, next, clk.claims(iss))); code != codes.Unimplemented {
		t.Fatalf("a new kid after the minimum interval: %v %s", code, msg)
	}
	if n := j.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}

	// The provider drops the old EdDSA key; once the set is stale, a
	// call with it still passes and fetches the set in the background,
	// after which the key no longer verifies.
	var dropped jose.JSONWebKeySet
	for _, k := range withNext.Keys {
		if k.KeyID != "ed-1" {
			dropped.Keys = append(dropped.Keys, k)
		}
	}
	j.set(t, dropped)
	clk.advance(11 * time.Minute)
	if code, msg := s.call(t, iss.Sign(t, iss.Key(jose.EdDSA), clk.claims(iss))); code != codes.Unimplemented {
		t.Fatalf("a key of a stale set: %v %s", code, msg)
	}
	testkit.Eventually(t, "the background refresh", func() error {
		if code, _ := s.call(t, iss.Sign(t, iss.Key(jose.EdDSA), clk.claims(iss))); code != codes.Unauthenticated {
			return fmt.Errorf("a dropped key still verifies: %v", code)
		}
		return nil
	})

	// A fetch that fails keeps the keys there are.
	j.setBody([]byte("<html>maintenance</html>"))
	clk.advance(11 * time.Minute)
	for range 3 {
		if code, msg := s.call(t, iss.Sign(t, next, clk.claims(iss))); code != codes.Unimplemented {
			t.Fatalf("after a failed fetch: %v %s", code, msg)
		}
	}
	testkit.Eventually(t, "the failed fetch logged", func() error {
		if !strings.Contains(s.log.String(), "the JWKS could not be fetched again; keeping the keys fetched before") {
			return errors.New("not logged")
		}
		return nil
	})
}

// TestUnusableJWKS checks that a key set ledgerd cannot use stops New
// with a sentence saying why.
func TestUnusableJWKS(t *testing.T) {
	iss := testkit.NewIssuer(t)
	private, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{iss.Key(jose.EdDSA)}})
	if err != nil {
		t.Fatal(err)
	}
	hmac, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h", Algorithm: "HS256"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"not JSON", []byte("nope"), "not a JWK Set"},
		{"empty", []byte(`{"keys":[]}`), "no RS256, ES256 or EdDSA signing key"},
		{"a private key", private, "private or symmetric key"},
		{"an HMAC secret", hmac, "private or symmetric key"},
		{"too large", bytes.Repeat([]byte(" "), 1<<20+1), "larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJWKSServer(t, jose.JSONWebKeySet{})
			j.setBody(tc.body)
			_, err := access.New(access.Config{JWKS: j.srv.URL, Issuer: "i", HTTPClient: j.srv.Client()})
			if !errors.Is(err, access.ErrJWKS) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want access.ErrJWKS saying %q", err, tc.want)
			}
		})
	}
	t.Run("plain http", func(t *testing.T) {
		_, err := access.New(access.Config{JWKS: "http://127.0.0.1:1/jwks", Issuer: "i"})
		if !errors.Is(err, access.ErrJWKS) || !strings.Contains(err.Error(), "must be https") {
			t.Errorf("New: %v", err)
		}
	})
	t.Run("no issuer", func(t *testing.T) {
		if _, err := access.New(access.Config{JWKS: iss.JWKSPath}); err == nil || !strings.Contains(err.Error(), "issuer is required") {
			t.Errorf("New: %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := access.New(access.Config{JWKS: iss.JWKSPath + ".gone", Issuer: "i"}); !errors.Is(err, access.ErrJWKS) {
			t.Errorf("New: %v", err)
		}
	})
	t.Run("a server that does not answer", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(block) })
		client := srv.Client()
		client.Timeout = 200 * time.Millisecond
		if _, err := access.New(access.Config{JWKS: srv.URL, Issuer: "i", HTTPClient: client}); !errors.Is(err, access.ErrJWKS) {
			t.Errorf("New: %v", err)
		}
	})
}
