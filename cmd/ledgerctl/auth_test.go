package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledger-billing/ledger/services/ctl"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/token"
)

// TestAuth is the small installation of docs/securing.md end to end:
// ledgerctl auth init writes a key and its JWKS, ledgerd starts with
// --auth-jwks and --auth-issuer, ledgerctl auth token signs tokens, and
// queries pass with --token (or LEDGERCTL_TOKEN) as far as the role goes,
// and fail with a sentence saying what to do without one.
func TestAuth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r := ctlEnv(t.Context(), "auth", "init", "--dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "--auth-jwks "+filepath.Join(dir, token.JWKSFile)+" --auth-issuer ledgerctl") {
		t.Fatalf("auth init: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	keyPath := filepath.Join(dir, token.KeyFile)
	if info, err := os.Stat(keyPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("signing key: %v, %v; want mode 0600", info, err)
	}
	if r := ctlEnv(t.Context(), "auth", "init", "--dir", dir); r.code != 1 || !strings.Contains(r.stderr, "already holds a signing key") {
		t.Errorf("auth init again: exit %d, stderr %q", r.code, r.stderr)
	}

	cfg := daemontest.Config(t.TempDir())
	cfg.AuthJWKS, cfg.AuthIssuer = filepath.Join(dir, token.JWKSFile), ctl.DefaultIssuer
	l, err := dialLedger(daemontest.Start(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.conn.Close() })

	mint := func(args ...string) string {
		t.Helper()
		r := ctlEnv(t.Context(), append([]string{"auth", "token", "--key", keyPath}, args...)...)
		if r.code != 0 {
			t.Fatalf("auth token %s: exit %d, stderr %s", strings.Join(args, " "), r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	operator := mint("--role", "operator", "--ttl", "1h")
	acme := mint("--role", "org_admin", "--org", "acme", "--ttl", "24h", "--subject", "alice@acme")

	// The demo publishes through NATS, which is the other half of issue
	// 11; its closing list of invoices is a query, and needs the token.
	l.must(t, "--token", operator, "demo")

	ban := "--ban " + ctl.DemoBAN + " --month 2025-03"
	for _, c := range []struct {
		name, token, args string
		code              int
		stdout, stderr    string
	}{
		{"org_admin, own BAN", acme, "invoice get " + ban, 0, "477.50 USD", ""},
		{"org_admin, own organization", acme, "dashboard --org acme --from 2025-01 --to 2025-03", 0, "727.50 USD", ""},
		{"org_admin, exceptions", acme, "exceptions", 0, "", ""},
		{"org_admin, another organization's BAN", acme, "invoice get --ban " + ctl.DemoOtherBAN + " --month 2025-03", 1, "",
			"ledgerctl: role org_admin may read only the BANs of the organizations of its token's ledger_orgs (PERMISSION_DENIED)\n"},
		{"org_admin, a BAN of nobody", acme, "invoice get --ban BAN-9 --month 2025-03", 1, "",
			"ledgerctl: role org_admin may read only the BANs of the organizations of its token's ledger_orgs (PERMISSION_DENIED)\n"},
		{"org_admin, another organization", acme, "usage --org globex --month 2025-03", 1, "",
			"ledgerctl: role org_admin may read only the organizations of its token's ledger_orgs (PERMISSION_DENIED)\n"},
		{"operator, a BAN of nobody", operator, "invoice get --ban BAN-9 --month 2025-03", 1, "",
			"ledgerctl: ban \"BAN-9\" is not the BAN of any organization or cost center (NOT_FOUND)\n"},
		{"no token", "", "invoice get " + ban, 1, "",
			"ledgerctl: ledgerd at " + l.d.GRPCAddr() + " requires a bearer token: give --token or set LEDGERCTL_TOKEN (ledgerctl auth token signs one) (UNAUTHENTICATED)\n"},
		{"a damaged token", acme[:len(acme)-2], "invoice get " + ban, 1, "",
			"ledgerctl: ledgerd at " + l.d.GRPCAddr() + " refused the bearer token: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := strings.Fields(c.args)
			if c.token != "" {
				args = append([]string{"--token", c.token}, args...)
			}
			r := l.ctl(t.Context(), args...)
			if r.code != c.code || !strings.Contains(r.stdout, c.stdout) || !strings.HasPrefix(r.stderr, c.stderr) || c.stderr == "" && r.stderr != "" {
				t.Errorf("exit %d\nstdout: %s\nstderr: %q\nwant exit %d, stdout with %q, stderr %q", r.code, r.stdout, r.stderr, c.code, c.stdout, c.stderr)
			}
			if c.token != "" && strings.Contains(r.stderr, c.token) {
				t.Errorf("stderr repeats the token: %s", r.stderr)
			}
		})
	}

	t.Run("LEDGERCTL_TOKEN", func(t *testing.T) {
		t.Setenv("LEDGERCTL_TOKEN", acme+"\n")
		if out := l.must(t, strings.Fields("invoice get "+ban)...); !strings.Contains(out, "477.50 USD") {
			t.Errorf("stdout %q", out)
		}
		// Help shows the flag, never its value.
		if r := ctlEnv(t.Context(), "-h"); !strings.Contains(r.stderr, "-token") || strings.Contains(r.stderr, acme[:20]) {
			t.Errorf("help: %s", r.stderr)
		}
	})
}

// TestAuthTokenUsage checks the command lines auth token refuses, each
// with exit 2 and a sentence.
func TestAuthTokenUsage(t *testing.T) {
	dir := t.TempDir()
	if r := ctlEnv(t.Context(), "auth", "init", "--dir", dir); r.code != 0 {
		t.Fatalf("auth init: %s", r.stderr)
	}
	key := filepath.Join(dir, token.KeyFile)
	for _, c := range []struct{ args, stderr string }{
		{"auth token --role operator", "--key is required"},
		{"auth token --key " + key, `--role "" is not a role`},
		{"auth token --key " + key + " --role admin", `--role "admin" is not a role: want operator, auditor, invoicing or org_admin`},
		{"auth token --key " + key + " --role org_admin", "--role org_admin needs --org"},
		{"auth token --key " + key + " --role auditor --org acme", "--org is for --role org_admin only"},
		{"auth token --key " + key + " --role operator --ttl 9000h", "--ttl 9000h0m0s is not between"},
		{"auth init", "--dir is required"},
	} {
		t.Run(c.args, func(t *testing.T) {
			r := ctlEnv(t.Context(), strings.Fields(c.args)...)
			if r.code != 2 || !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("exit %d, stderr %q; want exit 2 saying %q", r.code, r.stderr, c.stderr)
			}
		})
	}
	if r := ctlEnv(t.Context(), "auth", "token", "--key", filepath.Join(dir, token.JWKSFile), "--role", "operator"); r.code != 1 || !strings.Contains(r.stderr, "not an Ed25519 private key") {
		t.Errorf("a JWKS as the key: exit %d, stderr %q", r.code, r.stderr)
	}
}
