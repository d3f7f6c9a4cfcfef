package daemon_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/certs"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
)

// withTLS sets cfg to serve TLS with a certificate of ca for loopback,
// at paths of its own (so a test may replace it), and returns them.
func withTLS(t *testing.T, cfg *daemon.Config, ca *testkit.CA) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "ledgerd.pem"), filepath.Join(dir, "ledgerd-key.pem")
	cert, key := ca.Issue("127.0.0.1", "localhost")
	testkit.Replace(t, cert, key, certFile, keyFile)
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	return certFile, keyFile
}

// health calls the standard health service at addr with the transport
// credentials given.
func health(addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(false))
	return err
}

// getHealthz fetches /healthz with client and returns its body.
func getHealthz(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

func httpsClient(t *testing.T, ca, cert, key string) *http.Client {
	t.Helper()
	cfg, err := certs.ClientConfig(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func tlsCreds(t *testing.T, ca, cert, key string) credentials.TransportCredentials {
	t.Helper()
	cfg, err := certs.ClientConfig(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

// storeAddr is the embedded store's address, from ledgerd's own
// connection string.
func storeAddr(t *testing.T, d *daemon.Daemon) string {
	t.Helper()
	u, err := url.Parse(d.EventstoreURL())
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestTLSOnEveryListener: with --tls-cert and --tls-key, gRPC, HTTP and
// the embedded store serve TLS only, and ledgerd reaches its own store.
func TestTLSOnEveryListener(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	cfg := daemontest.Config(t.TempDir())
	withTLS(t, &cfg, ca)
	d := daemontest.Start(t, cfg)
	daemontest.WaitReady(t, d) // its subscription to its store works

	if err := health(d.GRPCAddr(), insecure.NewCredentials()); err == nil {
		t.Error("gRPC answered a plaintext client")
	}
	if err := health(d.GRPCAddr(), tlsCreds(t, ca.File, "", "")); err != nil {
		t.Errorf("gRPC over TLS: %v", err)
	}
	if _, err := getHealthz(&http.Client{Timeout: 10 * time.Second}, "http://"+d.HTTPAddr()); err == nil {
		t.Error("HTTP answered a plaintext client")
	}
	if body, err := getHealthz(httpsClient(t, ca.File, "", ""), "https://"+d.HTTPAddr()); err != nil || body != "ok\n" {
		t.Errorf("HTTPS /healthz: %q, %v", body, err)
	}

	addr := storeAddr(t, d)
	password, err := os.ReadFile(filepath.Join(cfg.DataDir, daemon.StorePasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	user := url.UserPassword(eventstore.User, strings.TrimSpace(string(password))).String()
	storeURL, err := daemon.StoreURL(cfg.DataDir, addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testkit.Context(t, 30*time.Second)
	for name, tc := range map[string]struct {
		url string
		ok  bool
	}{
		// A client that asks for the name in the operator's certificate
		// gets it; one that connects by IP gets the store's own.
		"the operator's certificate, by name": {"esdb://" + user + "@" + strings.Replace(addr, "127.0.0.1", "localhost", 1) + "?tls=true&tlsCAFile=" + url.QueryEscape(ca.File), true},
		"the store's own certificate":         {"esdb://" + user + "@" + addr + "?tls=true&tlsCAFile=" + url.QueryEscape(filepath.Join(cfg.DataDir, daemon.StoreCertFile)), true},
		"daemon.StoreURL":                     {storeURL, true},
		"plaintext":                           {"esdb://" + user + "@" + addr + "?tls=false&maxDiscoverAttempts=1", false},
		"no credentials":                      {"esdb://" + addr + "?tls=true&tlsCAFile=" + url.QueryEscape(ca.File), false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := testkit.ReadStream(ctx, testkit.Client(t, tc.url), "no-such-stream", 1)
			var esErr *esdb.Error
			found := err == nil || (asESDB(err, &esErr) && esErr.Code() == esdb.ErrorCodeResourceNotFound)
			if found != tc.ok {
				t.Fatalf("reading the store: %v", err)
			}
		})
	}
}

func asESDB(err error, target **esdb.Error) bool {
	e, ok := err.(*esdb.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestMutualTLS: with --tls-client-ca, gRPC and HTTP serve only clients
// with a certificate the CA signed.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	cfg := daemontest.Config(t.TempDir())
	withTLS(t, &cfg, ca)
	cfg.TLSClientCA = ca.File
	d := daemontest.Start(t, cfg)
	clientCert, clientKey := ca.Issue("invoicing")
	stranger := testkit.NewCA(t)
	strangerCert, strangerKey := stranger.Issue("invoicing")

	if err := health(d.GRPCAddr(), tlsCreds(t, ca.File, "", "")); err == nil {
		t.Error("gRPC served a client without a certificate")
	}
	if err := health(d.GRPCAddr(), tlsCreds(t, ca.File, strangerCert, strangerKey)); err == nil {
		t.Error("gRPC served a client with a certificate of another CA")
	}
	if err := health(d.GRPCAddr(), tlsCreds(t, ca.File, clientCert, clientKey)); err != nil {
		t.Errorf("gRPC with a client certificate: %v", err)
	}
	if _, err := getHealthz(httpsClient(t, ca.File, "", ""), "https://"+d.HTTPAddr()); err == nil {
		t.Error("HTTP served a client without a certificate")
	}
	if _, err := getHealthz(httpsClient(t, ca.File, clientCert, clientKey), "https://"+d.HTTPAddr()); err != nil {
		t.Errorf("HTTP with a client certificate: %v", err)
	}
}

// servedSerial is the serial number of the certificate a TLS server at
// addr presents.
func servedSerial(addr string, ca *testkit.CA, nextProto string) (*big.Int, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{nextProto}})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// TestCertificateReloaded: a certificate replaced on disk is served by
// gRPC and HTTP without a restart.
func TestCertificateReloaded(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	cfg := daemontest.Config(t.TempDir())
	certFile, keyFile := withTLS(t, &cfg, ca)
	d := daemontest.Start(t, cfg)
	first := testkit.Serial(t, certFile)
	for _, addr := range []string{d.GRPCAddr(), d.HTTPAddr()} {
		if got, err := servedSerial(addr, ca, "h2"); err != nil || got.Cmp(first) != 0 {
			t.Fatalf("%s serves serial %v (%v), want %v", addr, got, err, first)
		}
	}

	renewed, renewedKey := ca.Issue("127.0.0.1", "localhost")
	testkit.Replace(t, renewed, renewedKey, certFile, keyFile)
	want := testkit.Serial(t, renewed)
	for _, addr := range []string{d.GRPCAddr(), d.HTTPAddr()} {
		testkit.Eventually(t, "the renewed certificate on "+addr, func() error {
			got, err := servedSerial(addr, ca, "h2")
			if err != nil {
				return err
			}
			if got.Cmp(want) != 0 {
				return fmt.Errorf("serial %v, want %v", got, want)
			}
			return nil
		})
	}
	if err := health(d.GRPCAddr(), tlsCreds(t, ca.File, "", "")); err != nil {
		t.Errorf("a call after the renewal: %v", err)
	}
}

// TestExposureRefused: a listener beyond loopback whose callers need not
// authenticate is refused at start, in one sentence naming its flag,
// unless --insecure, which then warns at start and on /healthz.
func TestExposureRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  func(*daemon.Config)
		want string
	}{
		{"gRPC on every interface", func(c *daemon.Config) { c.GRPCListen = "0.0.0.0:0" }, "--grpc-listen 0.0.0.0:0 is not a loopback address and no authentication is configured (--auth-jwks)"},
		{"HTTP without a host", func(c *daemon.Config) { c.HTTPListen = ":0" }, "--http-listen :0 is not a loopback address"},
		{"NATS without users, tokens or not", func(c *daemon.Config) { c.NATSListen, c.AuthJWKS = "[::]:0", "jwks.json" }, "--nats-listen [::]:0 is not a loopback address and the embedded NATS has no users"},
		{"the embedded store, tokens or not", func(c *daemon.Config) { c.EventstoreListen, c.AuthJWKS = "0.0.0.0:0", "jwks.json" }, "--eventstore-listen 0.0.0.0:0 is not a loopback address"},
		{"NATS monitoring", func(c *daemon.Config) { c.NATSConfig = natsConfigFile(t, "http: \"0.0.0.0:18222\"\n") }, "--nats-config's monitoring (http) 0.0.0.0:18222 is not a loopback address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := daemontest.Config(t.TempDir())
			tc.set(&cfg)
			d, err := daemon.Start(cfg)
			if err == nil {
				d.Close()
				t.Fatal("started")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "--insecure") || strings.Count(msg, ". ") > 0 || strings.Contains(msg, "\n") {
				t.Fatalf("refusal %q: want one sentence saying %q and naming --insecure", msg, tc.want)
			}
			if entries, _ := os.ReadDir(cfg.DataDir); len(entries) > 0 {
				t.Errorf("a refused start wrote to the data directory: %v", entries)
			}
		})
	}

	t.Run("--insecure starts, and warns", func(t *testing.T) {
		t.Parallel()
		var logs testkit.LogBuffer
		cfg := daemontest.Config(t.TempDir())
		cfg.GRPCListen, cfg.EventstoreListen, cfg.Insecure = "0.0.0.0:0", "0.0.0.0:0", true
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		d := daemontest.Start(t, cfg)
		daemontest.WaitReady(t, d) // ledgerd reaches its store on every interface too
		body, err := getHealthz(&http.Client{Timeout: 10 * time.Second}, "http://"+d.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"ok\n", "warning: --insecure", "--grpc-listen 0.0.0.0:0", "--eventstore-listen 0.0.0.0:0"} {
			if !strings.Contains(body, w) {
				t.Errorf("/healthz %q does not say %q", body, w)
			}
			if w != "ok\n" && !strings.Contains(logs.String(), strings.TrimPrefix(w, "warning: ")) {
				t.Errorf("the log does not say %q:\n%s", w, logs.String())
			}
		}
	})
}

// natsConfigFile writes a NATS configuration for a test.
func natsConfigFile(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNATSWithUsersMayListenBeyondLoopback: the embedded NATS whose
// --nats-config makes clients authenticate may take any address.
func TestNATSWithUsersMayListenBeyondLoopback(t *testing.T) {
	pw := natsPasswords(t)
	passwordFile := filepath.Join(t.TempDir(), "nats-password")
	if err := os.WriteFile(passwordFile, []byte(pw["ledgerd"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := daemontest.Config(t.TempDir())
	cfg.NATSListen = "0.0.0.0:0"
	cfg.NATSConfig = filepath.Join(deployNATS, "ledger-users.conf")
	cfg.NATSUser, cfg.NATSPasswordFile = "ledgerd", passwordFile
	d := daemontest.Start(t, cfg)
	if body, err := getHealthz(&http.Client{Timeout: 10 * time.Second}, "http://"+d.HTTPAddr()); err != nil || body != "ok\n" {
		t.Fatalf("/healthz %q, %v; want ok without a warning", body, err)
	}
}

// TestNoPasswordInLogs runs ledgerd with every password it may be given,
// logging everything (debug), and bills a month: no line carries any of
// them, and the URLs it logs show "xxxxx" instead.
func TestNoPasswordInLogs(t *testing.T) {
	pw := natsPasswords(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secrets := []string{pw["ledgerd"], pw["metering"], pw["operator"], pw["invoicing"]}
	check := func(t *testing.T, logs string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Fatalf("a log line shows the password %q:\n%s", s, logs)
			}
		}
		if !strings.Contains(logs, "xxxxx@") {
			t.Errorf("no URL logged with its password redacted:\n%s", logs)
		}
	}
	debug := func(buf *testkit.LogBuffer) *slog.Logger {
		return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	t.Run("embedded store and NATS", func(t *testing.T) {
		const storePassword = "store-pw-Kd93nQ"
		secrets = append(secrets, storePassword)
		var logs testkit.LogBuffer
		cfg := daemontest.Config(t.TempDir())
		cfg.Logger = debug(&logs)
		cfg.EventstorePasswordFile = write("store-password", storePassword)
		cfg.NATSConfig = filepath.Join(deployNATS, "ledger-users.conf")
		cfg.NATSUser, cfg.NATSPasswordFile = "ledgerd", write("nats-password", pw["ledgerd"])
		d := daemontest.Start(t, cfg)
		metering := connectAs(t, d.NATSURL(), "metering", pw["metering"], nats.CustomInboxPrefix("_INBOX_metering"))
		seedOrganization(t, metering.js)
		operator := connectAs(t, d.NATSURL(), "operator", pw["operator"])
		publishProto(t, operator.js, &billingv1.BillingCycleClosed{EventId: "close-2025-01", Month: "2025-01", ClosedAt: ts("2025-02-01T00:00:00Z")})
		testkit.Eventually(t, "the close billed", func() error {
			_, err := invoice(d, "BAN-100", "2025-01")
			return err
		})
		d.Close()
		check(t, logs.String())
	})

	t.Run("external store and NATS, passwords in their URLs", func(t *testing.T) {
		const storePassword, natsPassword = "kurrent-pw-7Hs2kq", "nats-pw-Zr81mb"
		secrets = append(secrets, storePassword, natsPassword)
		store := testkit.StartStore(t, eventstore.Config{Password: storePassword})
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
			NoLog: true, NoSigs: true, Users: []*server.User{{Username: "ledgerd", Password: natsPassword}}})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("NATS not ready")
		}
		t.Cleanup(ns.Shutdown)
		var logs testkit.LogBuffer
		cfg := daemontest.Config(t.TempDir())
		cfg.Logger = debug(&logs)
		cfg.EventstoreURL = store.URL()
		cfg.NATSURL = "nats://ledgerd:" + natsPassword + "@" + strings.TrimPrefix(ns.ClientURL(), "nats://")
		d := daemontest.Start(t, cfg)
		daemontest.WaitReady(t, d)
		d.Close()
		check(t, logs.String())
	})

	t.Run("a wrong store password in the URL", func(t *testing.T) {
		const wrong = "wrong-pw-Uq5xz"
		secrets = append(secrets, wrong)
		store := testkit.StartStore(t, eventstore.Config{Password: "right-pw-c83kd"})
		var logs testkit.LogBuffer
		cfg := daemontest.Config(t.TempDir())
		cfg.Logger = debug(&logs)
		cfg.EventstoreURL = store.URLAs(url.UserPassword(eventstore.User, wrong))
		d := daemontest.Start(t, cfg)
		testkit.Eventually(t, "the refusal logged", func() error {
			if !strings.Contains(logs.String(), "Unauthenticated") && !strings.Contains(logs.String(), "authentication") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		d.Close()
		check(t, logs.String())
	})
}

// bearerToken is a gRPC credential sending a bearer token.
type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearerToken) RequireTransportSecurity() bool { return true }

// TestExposedWithTokens: with bearer tokens configured, gRPC and HTTP may
// listen on every interface without --insecure and without a warning on
// /healthz; over TLS a call needs a token. Without TLS ledgerd starts, but
// warns that tokens would cross the network in the clear.
func TestExposedWithTokens(t *testing.T) {
	t.Parallel()
	issuer := testkit.NewIssuer(t)
	ca := testkit.NewCA(t)
	var logs testkit.LogBuffer
	cfg := daemontest.Config(t.TempDir())
	cfg.GRPCListen, cfg.HTTPListen = "0.0.0.0:0", "0.0.0.0:0"
	cfg.AuthJWKS, cfg.AuthIssuer = issuer.JWKSPath, issuer.Name
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	withTLS(t, &cfg, ca)
	d := daemontest.Start(t, cfg)
	loopback := func(addr string) string { return "127.0.0.1:" + port(t, addr) }

	if body, err := getHealthz(httpsClient(t, ca.File, "", ""), "https://"+loopback(d.HTTPAddr())); err != nil || body != "ok\n" {
		t.Errorf("/healthz: %q, %v; want ok and no warning", body, err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings at start:\n%s", logs.String())
	}
	conn, err := grpc.NewClient(loopback(d.GRPCAddr()), grpc.WithTransportCredentials(tlsCreds(t, ca.File, "", "")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testkit.Context(t, 30*time.Second)
	svc := billingv1.NewBillingServiceClient(conn)
	if _, err := svc.ListExceptions(ctx, &billingv1.ListExceptionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a call without a token: %v, want UNAUTHENTICATED", err)
	}
	if _, err := svc.ListExceptions(ctx, &billingv1.ListExceptionsRequest{}, grpc.PerRPCCredentials(bearerToken(issuer.Token(t, token.Operator)))); err != nil {
		t.Errorf("a call with an operator's token over TLS: %v", err)
	}

	t.Run("without TLS", func(t *testing.T) {
		t.Parallel()
		var logs testkit.LogBuffer
		cfg := daemontest.Config(t.TempDir())
		cfg.GRPCListen = "0.0.0.0:0"
		cfg.AuthJWKS, cfg.AuthIssuer = issuer.JWKSPath, issuer.Name
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		daemontest.Start(t, cfg)
		if !strings.Contains(logs.String(), "bearer tokens would cross the network in the clear") {
			t.Errorf("no warning about tokens in the clear:\n%s", logs.String())
		}
	})
}

// port is the port of a listen address.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
