package daemon_test

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/ingest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// deployNATS is the folder of the NATS configuration deploy/ ships.
const deployNATS = "../../deploy/nats"

// natsPasswords gives deploy/nats/ledger-users.conf its users' passwords
// through the environment, as a systemd EnvironmentFile would: metering's
// as the bcrypt hash docs/securing.md asks for, the others in clear
// (nats-server takes either; hashing each would cost a second a test).
func natsPasswords(t *testing.T) map[string]string {
	pw := map[string]string{}
	for _, user := range []string{"ledgerd", "metering", "operator", "invoicing"} {
		pw[user] = "pw-" + user + "-Xq7Lr2"
		value := pw[user]
		if user == "metering" {
			hash, err := bcrypt.GenerateFromPassword([]byte(pw[user]), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			value = string(hash)
		}
		t.Setenv("NATS_"+strings.ToUpper(user)+"_PASSWORD", value)
	}
	return pw
}

// natsUser is a connection as one user, with the errors the server sent
// it asynchronously (permission violations).
type natsUser struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	errors chan error
}

func connectAs(t *testing.T, url, user, password string, opts ...nats.Option) *natsUser {
	t.Helper()
	u := &natsUser{errors: make(chan error, 16)}
	opts = append(opts, nats.UserInfo(user, password), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case u.errors <- err:
			default:
			}
		}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	u.nc = nc
	if u.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return u
}

// refused waits for the server's permission violation naming subject.
func (u *natsUser) refused(t *testing.T, what, subject string) {
	t.Helper()
	if err := u.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-u.errors:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subject) {
			t.Fatalf("%s: %v, want a permissions violation for %s", what, err, subject)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no permissions violation", what)
	}
}

func marshal(t *testing.T, m proto.Message) (string, []byte) {
	t.Helper()
	subject, err := wire.Subject(m)
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return subject, data
}

// TestDeployNATSPermissions loads deploy/nats/ledger-users.conf into a
// NATS server: metering may publish usage but neither cycle messages nor
// announcements, invoicing may only read announcements, operators may
// close cycles, and nobody gets in without a password.
func TestDeployNATSPermissions(t *testing.T) {
	pw := natsPasswords(t)
	opts, err := server.ProcessConfigFile(filepath.Join(deployNATS, "ledger-users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, t.TempDir(), true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(ns.Shutdown)
	url := ns.ClientURL()
	ctx := testkit.Context(t, 30*time.Second)

	if _, err := nats.Connect(url, nats.NoReconnect()); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("an anonymous connection: %v, want an authorization violation", err)
	}
	ledgerd := connectAs(t, url, "ledgerd", pw["ledgerd"])
	if err := ingest.Setup(ctx, ledgerd.js, ingest.Streams{Replicas: 1, DLQMaxAge: time.Hour}); err != nil {
		t.Fatalf("ledgerd creates its streams: %v", err)
	}
	metering := connectAs(t, url, "metering", pw["metering"], nats.CustomInboxPrefix("_INBOX_metering"))
	invoicing := connectAs(t, url, "invoicing", pw["invoicing"])
	operator := connectAs(t, url, "operator", pw["operator"])

	invoices, err := invoicing.nc.SubscribeSync("billing.out.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := invoicing.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-invoicing.errors:
		t.Fatalf("invoicing subscribing to billing.out.>: %v", err)
	default:
	}

	t.Run("metering publishes usage", func(t *testing.T) {
		subject, data := marshal(t, ec2("u-1", "2025-01-10T00:00:00Z", "1.00"))
		if _, err := metering.js.Publish(ctx, subject, data); err != nil {
			t.Fatalf("publish usage: %v", err)
		}
	})
	t.Run("metering may not publish cycles or announcements", func(t *testing.T) {
		for _, m := range []proto.Message{
			&billingv1.BillingCycleClosed{EventId: "c", Month: "2025-01", ClosedAt: ts("2025-02-01T00:00:00Z")},
			&billingv1.VendorCycleFinalized{EventId: "f", Month: "2025-01", FinalizedAt: ts("2025-02-10T00:00:00Z")},
		} {
			subject, data := marshal(t, m)
			if err := metering.nc.Publish(subject, data); err != nil {
				t.Fatal(err)
			}
			metering.refused(t, "metering publishing "+subject, subject)
		}
		if err := metering.nc.Publish("billing.out.x", []byte("forged")); err != nil {
			t.Fatal(err)
		}
		metering.refused(t, "metering publishing billing.out.x", "billing.out.x")
		if _, err := metering.nc.SubscribeSync("billing.out.>"); err != nil {
			t.Fatal(err)
		}
		metering.refused(t, "metering reading announcements", "billing.out.>")
	})
	t.Run("invoicing only reads announcements", func(t *testing.T) {
		subject, data := marshal(t, ec2("u-2", "2025-01-10T00:00:00Z", "1.00"))
		if err := invoicing.nc.Publish(subject, data); err != nil {
			t.Fatal(err)
		}
		invoicing.refused(t, "invoicing publishing usage", subject)
		if _, err := invoicing.nc.SubscribeSync("billing.in.>"); err != nil {
			t.Fatal(err)
		}
		invoicing.refused(t, "invoicing reading billing.in.>", "billing.in.>")

		// What ledgerd announces reaches it.
		if _, err := ledgerd.js.Publish(ctx, "billing.out.invoice_issued.BAN-1", []byte("{}")); err != nil {
			t.Fatalf("ledgerd announcing: %v", err)
		}
		msg, err := invoices.NextMsg(10 * time.Second)
		if err != nil || msg.Subject != "billing.out.invoice_issued.BAN-1" {
			t.Fatalf("invoicing received %v, %v", msg, err)
		}
	})
	t.Run("operators close cycles", func(t *testing.T) {
		subject, data := marshal(t, &billingv1.BillingCycleClosed{EventId: "close", Month: "2025-01", ClosedAt: ts("2025-02-01T00:00:00Z")})
		if _, err := operator.js.Publish(ctx, subject, data); err != nil {
			t.Fatalf("operator closing a cycle: %v", err)
		}
	})

	// BILLING_IN holds what was allowed, and nothing refused.
	stream, err := operator.js.Stream(ctx, wire.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("BILLING_IN holds %d messages, want 2 (metering's usage, the operator's close)", info.State.Msgs)
	}
}

// embeddedNATSConfig copies deploy/nats's configuration for ledgerd's
// embedded NATS into a directory, with certificates of ca in place of
// those under /etc, and returns the path of ledgerd-embedded.conf.
func embeddedNATSConfig(t *testing.T, ca *testkit.CA) string {
	t.Helper()
	dir := t.TempDir()
	cert, key := ca.Issue("127.0.0.1", "localhost")
	for _, name := range []string{"ledgerd-embedded.conf", "ledger-users.conf"} {
		data, err := os.ReadFile(filepath.Join(deployNATS, name))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.NewReplacer("/etc/ledger/tls/ledgerd.pem", cert, "/etc/ledger/tls/ledgerd-key.pem", key).Replace(string(data))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "ledgerd-embedded.conf")
}

// TestLedgerdWithDeployNATSConfig runs ledgerd with --nats-config
// deploy/nats/ledgerd-embedded.conf, as its user `ledgerd`: a metering
// service's messages are billed and its bad ones dead-lettered, an
// operator closes the month, and an invoicing system hears of the
// invoice, each over TLS as its own user. So the ledgerd user's
// permissions are what ledgerd needs.
func TestLedgerdWithDeployNATSConfig(t *testing.T) {
	pw := natsPasswords(t)
	ca := testkit.NewCA(t)
	passwordFile := filepath.Join(t.TempDir(), "nats-password")
	if err := os.WriteFile(passwordFile, []byte(pw["ledgerd"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := daemontest.Config(t.TempDir())
	cfg.NATSConfig = embeddedNATSConfig(t, ca)
	cfg.NATSUser, cfg.NATSPasswordFile = "ledgerd", passwordFile
	d := daemontest.Start(t, cfg)
	url := d.NATSURL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("the embedded NATS serves %s, want TLS", url)
	}
	ctx := testkit.Context(t, 60*time.Second)
	if _, err := nats.Connect(url, nats.RootCAs(ca.File), nats.NoReconnect()); err == nil {
		t.Fatal("an anonymous client connected to the embedded NATS")
	}

	invoicing := connectAs(t, url, "invoicing", pw["invoicing"], nats.RootCAs(ca.File))
	issued := announcements(t, invoicing.nc)
	if err := invoicing.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	operator := connectAs(t, url, "operator", pw["operator"], nats.RootCAs(ca.File))
	dead, err := operator.nc.SubscribeSync(wire.DLQPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	metering := connectAs(t, url, "metering", pw["metering"], nats.RootCAs(ca.File), nats.CustomInboxPrefix("_INBOX_metering"))
	seedOrganization(t, metering.js)
	publishProto(t, metering.js, ec2("u-1", "2025-01-10T00:00:00Z", "12.50"))
	if _, err := metering.js.Publish(ctx, "billing.in.usage_reported", []byte("not a message")); err != nil {
		t.Fatal(err)
	}
	if msg, err := dead.NextMsg(20 * time.Second); err != nil || msg.Subject != "billing.dlq.usage_reported" {
		t.Fatalf("dead letter: %v, %v", msg, err)
	}
	publishProto(t, operator.js, &billingv1.BillingCycleClosed{EventId: "close-2025-01", Month: "2025-01", ClosedAt: ts("2025-02-01T00:00:00Z")})

	msg, err := issued.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no announcement reached invoicing: %v", err)
	}
	var announced billingv1.InvoiceIssued
	if err := protojson.Unmarshal(msg.Data, &announced); err != nil {
		t.Fatal(err)
	}
	if announced.Ban != "BAN-100" || announced.Month != "2025-01" || announced.Total.GetAmount() != "12.50" {
		t.Fatalf("announced %v, want BAN-100 2025-01 12.50", &announced)
	}
	if err := d.Runner().WaitFor(ctx, announced.Position); err != nil {
		t.Fatal(err)
	}
	inv, err := invoice(d, "BAN-100", "2025-01")
	if err != nil || total(inv) != "12.50" {
		t.Fatalf("invoice: %v, %v", inv, err)
	}
	select {
	case err := <-metering.errors:
		t.Fatalf("metering: %v", err)
	case err := <-operator.errors:
		t.Fatalf("operator: %v", err)
	default:
	}
}

// TestDeployNATSConfigsParse loads each configuration deploy/nats ships,
// with test certificates in place of those under /etc: each parses, with
// Ledger's four users, TLS for clients, and for the cluster routes that
// verify each other's certificates. Without the passwords in the
// environment, none loads: a copy never runs with a default password.
func TestDeployNATSConfigsParse(t *testing.T) {
	natsPasswords(t)
	ca := testkit.NewCA(t)
	cert, key := ca.Issue("nats-1", "127.0.0.1")
	dir := t.TempDir()
	replace := strings.NewReplacer(
		"/etc/nats/tls/server.pem", cert, "/etc/nats/tls/server-key.pem", key, "/etc/nats/tls/ca.pem", ca.File,
		"/etc/ledger/tls/ledgerd.pem", cert, "/etc/ledger/tls/ledgerd-key.pem", key,
		"/var/lib/nats", filepath.Join(dir, "jetstream"))
	for _, name := range []string{"nats-cluster.conf", "ledgerd-embedded.conf", "ledger-users.conf"} {
		data, err := os.ReadFile(filepath.Join(deployNATS, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(replace.Replace(string(data))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"nats-cluster.conf", "ledgerd-embedded.conf"} {
		t.Run(name, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(opts.Users) != 4 || opts.TLSConfig == nil {
				t.Fatalf("%d users, TLS %v; want Ledger's 4 users and TLS", len(opts.Users), opts.TLSConfig != nil)
			}
			if name == "nats-cluster.conf" {
				if opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert || opts.HTTPHost != "127.0.0.1" {
					t.Fatalf("routes TLS %v verify %v, monitoring on %q; want routes verifying certificates and monitoring on loopback",
						opts.Cluster.TLSConfig != nil, opts.Cluster.TLSConfig != nil && opts.Cluster.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert, opts.HTTPHost)
				}
			}
		})
	}
	t.Run("without the passwords", func(t *testing.T) {
		os.Unsetenv("NATS_OPERATOR_PASSWORD") // natsPasswords' t.Setenv restores it
		if _, err := server.ProcessConfigFile(filepath.Join(dir, "nats-cluster.conf")); err == nil {
			t.Fatal("the configuration loaded without NATS_OPERATOR_PASSWORD")
		}
	})
}
