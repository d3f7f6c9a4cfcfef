package daemon_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
)

// grpcurlVersion is the grpcurl docs/securing.md and README tell people to
// install.
const grpcurlVersion = "v1.9.4"

// TestGrpcurlAsDocumented runs grpcurl, built with the Go toolchain as the
// README installs it, against a ledgerd serving TLS and checking tokens,
// with the flags docs/securing.md shows: -cacert, and a bearer token in
// -H.
func TestGrpcurlAsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grpcurl; skipped in -short mode")
	}
	bin := t.TempDir()
	install := exec.Command("go", "install", "github.com/fullstorydev/grpcurl/cmd/grpcurl@"+grpcurlVersion)
	install.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install grpcurl %s: %v\n%s", grpcurlVersion, err, out)
	}
	grpcurl := filepath.Join(bin, "grpcurl")

	issuer, ca := testkit.NewIssuer(t), testkit.NewCA(t)
	cfg := daemontest.Config(t.TempDir())
	cfg.AuthJWKS, cfg.AuthIssuer = issuer.JWKSPath, issuer.Name
	withTLS(t, &cfg, ca)
	d := daemontest.Start(t, cfg)
	daemontest.WaitReady(t, d)
	bearer := "authorization: Bearer " + issuer.Token(t, token.Operator)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(grpcurl, args...).CombinedOutput()
		return string(out), err
	}

	if out, err := run("-cacert", ca.File, "-H", bearer, d.GRPCAddr(), "list"); err != nil || !strings.Contains(out, "billing.v1.BillingService") {
		t.Errorf("grpcurl -cacert -H list: %v\n%s", err, out)
	}
	out, err := run("-cacert", ca.File, "-H", bearer, "-d", `{"ban":"BAN-1001","month":"2025-03"}`,
		d.GRPCAddr(), "billing.v1.BillingService/GetInvoice")
	if err == nil || !strings.Contains(out, "Code: NotFound") || !strings.Contains(out, `ban "BAN-1001"`) {
		t.Errorf("GetInvoice of a BAN not there, with a token: %v\n%s", err, out)
	}
	if out, err := run("-cacert", ca.File, "-d", `{"ban":"BAN-1001","month":"2025-03"}`,
		d.GRPCAddr(), "billing.v1.BillingService/GetInvoice"); err == nil || !strings.Contains(out, "Unauthenticated") {
		t.Errorf("without a token: %v\n%s", err, out)
	}
	if out, err := run("-plaintext", d.GRPCAddr(), "list"); err == nil {
		t.Errorf("plaintext to the TLS port succeeded:\n%s", out)
	}
}
