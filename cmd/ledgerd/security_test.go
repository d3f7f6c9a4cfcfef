package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledger-billing/ledger/services/testkit"
)

// startWith starts ledgerd as a process with args and waits until
// /healthz at url answers; it returns the process, its stderr and the
// last answer of /healthz.
func startWith(t *testing.T, args, url string, client *http.Client) (*exec.Cmd, *testkit.LogBuffer, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+args)
	stderr := &testkit.LogBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var body string
	testkit.Eventually(t, "ledgerd answering /healthz", func() error {
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	})
	return cmd, stderr, body
}

// stop ends ledgerd as systemd does, and waits for it.
func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ledgerd did not stop cleanly: %v", err)
	}
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExposedWithoutAuthentication: a listener on every interface, with
// no authentication configured, stops ledgerd at start with status 1 and
// one sentence; --insecure lets it start, warning in its log and on
// /healthz.
func TestExposedWithoutAuthentication(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	p := newPorts(t)
	p.grpc = "0.0.0.0:" + port(t, p.grpc)
	code, stderr := runChild(t, p.args(dir))
	want := "ledgerd: cannot start: --grpc-listen " + p.grpc + " is not a loopback address and no authentication is configured (--auth-jwks); configure it, listen on loopback, or give --insecure to serve without it\n"
	if code != 1 || stderr != want {
		t.Fatalf("exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}

	cmd, logs, health := startWith(t, p.args(dir)+" --insecure", "http://"+p.http, http.DefaultClient)
	if !strings.Contains(health, "warning: --insecure") || !strings.Contains(health, "--grpc-listen "+p.grpc) {
		t.Errorf("/healthz says %q, want a warning naming --grpc-listen", health)
	}
	stop(t, cmd)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "--insecure: listening beyond loopback without authentication: --grpc-listen "+p.grpc) {
		t.Errorf("no warning at start:\n%s", logs)
	}
}

// TestTLSAndPasswordsInTheLog runs ledgerd with TLS and a password file
// for its store, logging everything: it serves HTTPS only, and no log
// line carries the password.
func TestTLSAndPasswordsInTheLog(t *testing.T) {
	t.Parallel()
	const password = "store-pw-Wm27xe"
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "eventstore-password")
	if err := os.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := testkit.NewCA(t)
	cert, key := ca.Issue("127.0.0.1")
	p := newPorts(t)
	args := p.args(filepath.Join(dir, "data")) + " --log-level debug --tls-cert " + cert + " --tls-key " + key + " --eventstore-password-file " + passwordFile
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	cmd, logs, health := startWith(t, args, "https://"+p.http, client)
	if health != "ok\n" {
		t.Errorf("/healthz over TLS: %q", health)
	}
	// A plaintext request meets the TLS handshake: Go's TLS server
	// answers it 400 (an HTTP request to an HTTPS server), never /healthz.
	if resp, err := http.Get("http://" + p.http + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("/healthz answered plaintext: %s", resp.Status)
		}
	}
	stop(t, cmd)
	if strings.Contains(logs.String(), password) {
		t.Fatalf("the log shows the store's password:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "esdb://admin:xxxxx@") {
		t.Errorf("the store's URL is not logged redacted:\n%s", logs)
	}
}
