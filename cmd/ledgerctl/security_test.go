package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
)

// tlsLedgerd starts a ledgerd serving TLS with a certificate of ca, and
// with clientCA set, requiring client certificates.
func tlsLedgerd(t *testing.T, ca *testkit.CA, clientCA bool) *daemon.Daemon {
	t.Helper()
	cfg := daemontest.Config(t.TempDir())
	cfg.TLSCert, cfg.TLSKey = ca.Issue("127.0.0.1")
	if clientCA {
		cfg.TLSClientCA = ca.File
	}
	return daemontest.Start(t, cfg)
}

// TestTLS: ledgerctl reaches a ledgerd that serves TLS with --tls-ca (or
// LEDGERCTL_TLS_CA), and one that requires client certificates with
// --tls-cert and --tls-key; without them it says TLS is what failed.
func TestTLS(t *testing.T) {
	ca := testkit.NewCA(t)
	d := tlsLedgerd(t, ca, false)
	grpcAddr := d.GRPCAddr()
	for _, c := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"--tls-ca", []string{"--tls-ca", ca.File}, 0, ""},
		{"plaintext", nil, 1, "ledgerctl: cannot reach ledgerd at " + grpcAddr + ": it closed the connection at once: does it serve TLS? (--tls-ca trusts its certificate)"},
		{"the system's roots", []string{"--tls"}, 1, "the TLS handshake failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ctlEnv(t.Context(), append(append([]string{"--grpc", grpcAddr}, c.args...), "exceptions")...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d saying %q", r.code, r.stderr, c.code, c.want)
			}
		})
	}
	t.Run("backup over HTTPS", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		r := ctlEnv(t.Context(), "--http", d.HTTPAddr(), "--tls-ca", ca.File, "backup", dir)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
			t.Fatalf("the backup holds %d files (%v)", len(entries), err)
		}
		r = ctlEnv(t.Context(), "--http", d.HTTPAddr(), "backup", filepath.Join(t.TempDir(), "plain"))
		if r.code != 1 || !strings.Contains(r.stderr, "HTTP request to an HTTPS server") {
			t.Errorf("plaintext: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("LEDGERCTL_TLS_CA", func(t *testing.T) {
		t.Setenv("LEDGERCTL_TLS_CA", ca.File)
		if r := ctlEnv(t.Context(), "--grpc", grpcAddr, "exceptions"); r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("a bearer token over TLS", func(t *testing.T) {
		issuer := testkit.NewIssuer(t)
		cfg := daemontest.Config(t.TempDir())
		cfg.TLSCert, cfg.TLSKey = ca.Issue("127.0.0.1")
		cfg.AuthJWKS, cfg.AuthIssuer = issuer.JWKSPath, issuer.Name
		authd := daemontest.Start(t, cfg)
		r := ctlEnv(t.Context(), "--grpc", authd.GRPCAddr(), "--tls-ca", ca.File, "exceptions")
		if r.code != 1 || !strings.Contains(r.stderr, "UNAUTHENTICATED") {
			t.Errorf("without a token: exit %d, stderr %q", r.code, r.stderr)
		}
		r = ctlEnv(t.Context(), "--grpc", authd.GRPCAddr(), "--tls-ca", ca.File, "--token", issuer.Token(t, token.Operator), "exceptions")
		if r.code != 0 {
			t.Errorf("with a token: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("client certificates", func(t *testing.T) {
		mtls := tlsLedgerd(t, ca, true)
		cert, key := ca.Issue("operator")
		r := ctlEnv(t.Context(), "--grpc", mtls.GRPCAddr(), "--tls-ca", ca.File, "exceptions")
		if r.code != 1 || !strings.Contains(r.stderr, "check --tls-ca, --tls-cert and --tls-key") {
			t.Errorf("without a client certificate: exit %d, stderr %q", r.code, r.stderr)
		}
		r = ctlEnv(t.Context(), "--grpc", mtls.GRPCAddr(), "--tls-ca", ca.File, "--tls-cert", cert, "--tls-key", key, "exceptions")
		if r.code != 0 {
			t.Errorf("with a client certificate: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestNATSUsers runs ledgerctl as the users of deploy/nats/ledger-users.conf,
// against a ledgerd whose embedded NATS loads it and serves TLS: metering
// imports usage and may not close a cycle, an operator may; each password
// stays out of what ledgerctl prints.
func TestNATSUsers(t *testing.T) {
	pw := map[string]string{}
	for _, user := range []string{"ledgerd", "metering", "operator", "invoicing"} {
		pw[user] = "pw-" + user + "-Hy62pd"
		t.Setenv("NATS_"+strings.ToUpper(user)+"_PASSWORD", pw[user])
	}
	ca := testkit.NewCA(t)
	dir := t.TempDir()
	users, err := filepath.Rel(dir, filepath.Join(moduleRoot(t), "deploy", "nats", "ledger-users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key := ca.Issue("127.0.0.1")
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "tls {\n  cert_file: %q\n  key_file: %q\n}\ninclude %q\n", cert, key, users), 0o600); err != nil {
		t.Fatal(err)
	}
	passwordFile := filepath.Join(dir, "ledgerd-password")
	if err := os.WriteFile(passwordFile, []byte(pw["ledgerd"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := daemontest.Config(t.TempDir())
	cfg.NATSConfig, cfg.NATSUser, cfg.NATSPasswordFile = conf, "ledgerd", passwordFile
	d := daemontest.Start(t, cfg)
	as := func(user, password string, args ...string) result {
		t.Helper()
		url := strings.Replace(d.NATSURL(), "tls://", "tls://"+user+":"+password+"@", 1)
		r := ctlEnv(t.Context(), append([]string{"--grpc", d.GRPCAddr(), "--nats", url, "--nats-tls-ca", ca.File, "--wait", "30s", "--timeout", "10s"}, args...)...)
		for _, p := range pw {
			if strings.Contains(r.stdout+r.stderr, p) {
				t.Fatalf("ledgerctl printed a password:\n%s%s", r.stdout, r.stderr)
			}
		}
		return r
	}
	focus := writeFOCUS(t, [][]string{{"100000000001", "Prod", "AWS", "Compute", "us-east-1", "2024-08-01 10:00:00", "NULL", "Usage", "4.20", "USD", "1", "1", "Hours", "compute", "NULL"}})
	imp := []string{"import", "focus", focus, "--org", "initech", "--register"}

	if r := as("metering", pw["metering"], append([]string{"--nats-inbox-prefix", "_INBOX_metering"}, imp...)...); r.code != 0 {
		t.Fatalf("metering importing usage: exit %d, stderr %q", r.code, r.stderr)
	}
	r := as("metering", pw["metering"], "--nats-inbox-prefix", "_INBOX_metering", "cycle", "close", "2024-08")
	if r.code != 1 || !strings.Contains(r.stderr, "refused to let this user publish BillingCycleClosed") || !strings.Contains(r.stderr, "billing.in.billing_cycle_closed") {
		t.Errorf("metering closing a cycle: exit %d, stderr %q", r.code, r.stderr)
	}
	r = as("metering", pw["metering"], imp...)
	if r.code != 1 || !strings.Contains(r.stderr, "give --nats-inbox-prefix") {
		t.Errorf("metering without its inbox prefix: exit %d, stderr %q", r.code, r.stderr)
	}
	r = as("metering", "not-"+pw["metering"], imp...)
	if r.code != 1 || !strings.Contains(r.stderr, "refused ledgerctl's credentials") || !strings.Contains(r.stderr, "metering:xxxxx@") {
		t.Errorf("a wrong password: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := as("operator", pw["operator"], "cycle", "close", "2024-08"); r.code != 0 {
		t.Fatalf("operator closing a cycle: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := as("operator", pw["operator"], "invoice", "list", "--ban", "BAN-initech", "--from", "2024-08", "--to", "2024-08"); !strings.Contains(out.stdout, "4.20 USD") {
		t.Errorf("invoice list: %q %q", out.stdout, out.stderr)
	}
}
