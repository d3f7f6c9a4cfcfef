package daemon_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
)

// TestAuthentication starts ledgerd with --auth-jwks and checks its
// listeners as each role: the probes and gRPC health open, /metrics and
// /debug/pprof for the operator alone, queries only with a token, and the
// decisions counted in /metrics.
func TestAuthentication(t *testing.T) {
	iss := testkit.NewIssuer(t)
	cfg := daemontest.Config(t.TempDir())
	cfg.AuthJWKS, cfg.AuthIssuer = iss.JWKSPath, iss.Name
	if !cfg.AuthConfigured() {
		t.Fatal("AuthConfigured is false with a JWKS")
	}
	d := daemontest.Start(t, cfg)
	daemontest.WaitReady(t, d)

	tokens := map[string]string{"": ""}
	for _, r := range token.Roles {
		var orgs []string
		if r == token.OrgAdmin {
			orgs = []string{"acme"}
		}
		tokens[string(r)] = iss.Token(t, r, orgs...)
	}
	get := func(t *testing.T, path, role string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+d.HTTPAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tokens[role] != "" {
			req.Header.Set("Authorization", "Bearer "+tokens[role])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		path string
		// want is the status with no token, and as operator, auditor,
		// invoicing and org_admin.
		want [5]int
	}{
		{"/healthz", [5]int{200, 200, 200, 200, 200}},
		{"/readyz", [5]int{200, 200, 200, 200, 200}},
		{"/metrics", [5]int{401, 200, 403, 403, 403}},
		{"/debug/pprof/", [5]int{401, 200, 403, 403, 403}},
		{"/debug/pprof/goroutine?debug=1", [5]int{401, 200, 403, 403, 403}},
	} {
		for i, role := range []string{"", "operator", "auditor", "invoicing", "org_admin"} {
			if code, body := get(t, tc.path, role); code != tc.want[i] {
				t.Errorf("GET %s as %q: %d %q, want %d", tc.path, role, code, body, tc.want[i])
			}
		}
	}

	conn, err := grpc.NewClient(d.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx := testkit.Context(t, 30*time.Second)
	if resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a token: %v, %v", resp, err)
	}
	svc := billingv1.NewBillingServiceClient(conn)
	if _, err := svc.ListExceptions(ctx, &billingv1.ListExceptionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListExceptions without a token: %v, want UNAUTHENTICATED", err)
	}
	withToken := metadata.AppendToOutgoingContext(ctx, token.Header, "Bearer "+tokens["operator"])
	if _, err := svc.ListExceptions(withToken, &billingv1.ListExceptionsRequest{}); err != nil {
		t.Errorf("ListExceptions as operator: %v", err)
	}

	// Server reflection, a stream, takes a token of any role.
	for _, tc := range []struct {
		ctx  context.Context
		want codes.Code
	}{
		{ctx, codes.Unauthenticated},
		{metadata.AppendToOutgoingContext(ctx, token.Header, "Bearer "+tokens["invoicing"]), codes.OK},
	} {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(tc.ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		// io.EOF: the server ended the stream (refused it) before the
		// request went out; its status comes with Recv.
		if err == nil || errors.Is(err, io.EOF) {
			_, err = stream.Recv()
		}
		if status.Code(err) != tc.want {
			t.Errorf("reflection: %v, want %v", err, tc.want)
		}
		stream.CloseSend()
	}

	_, metrics := get(t, "/metrics", "operator")
	for _, want := range []string{
		`ledger_access_total{method="/billing.v1.BillingService/ListExceptions",outcome="allowed"} 1`,
		`ledger_access_total{method="/billing.v1.BillingService/ListExceptions",outcome="unauthenticated"} 1`,
		`ledger_access_total{method="/metrics",outcome="denied"} 3`,
		`ledger_access_total{method="/debug/pprof/",outcome="unauthenticated"} 2`,
		// The query service's own metrics see the access decisions too.
		`grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="ListExceptions"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestAuthenticationStartFailures: a JWKS ledgerd cannot use, or one
// without an issuer, stops the start with a sentence naming the flag.
func TestAuthenticationStartFailures(t *testing.T) {
	iss := testkit.NewIssuer(t)
	bad := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(bad, []byte(`{"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, jwks, issuer, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.json"), iss.Name, "no such file"},
		{"no usable key", bad, iss.Name, "no RS256, ES256 or EdDSA signing key"},
		{"no issuer", iss.JWKSPath, "", "an issuer is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := daemontest.Config(t.TempDir())
			cfg.AuthJWKS, cfg.AuthIssuer = tc.jwks, tc.issuer
			d, err := daemon.Start(cfg)
			if err == nil {
				d.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), "--auth-jwks") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to name --auth-jwks and say %q", err, tc.want)
			}
		})
	}
	if cfg := daemon.Defaults(); cfg.AuthConfigured() || cfg.AuthAudience != token.DefaultAudience {
		t.Errorf("defaults: AuthConfigured %v, AuthAudience %q", cfg.AuthConfigured(), cfg.AuthAudience)
	}
}
