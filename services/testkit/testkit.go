// Package testkit starts Ledger's real parts for tests, as nats-server's
// test.RunServer does for NATS: an in-process JetStream server, the embedded
// event store on a temporary directory, clients of both, and the small
// habits every test shares (waiting for a condition, golden files). Every
// package's tests use it, so there is one way to start each part and one
// place to fix it.
//
// A whole ledgerd is in services/daemon/daemontest, apart from this package
// so that the tests of the packages ledgerd is made of can use this one
// without an import cycle.
//
// It is for tests only: every function takes a testing.TB, fails the test
// on error and registers its own cleanup.
package testkit

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/retry"
)

// Update is the -update flag of every package's golden files: `go test
// ./services/query -update` rewrites them from what the code gives now.
var Update = flag.Bool("update", false, "rewrite golden files from the current output")

// SoakEnv names the environment variable that runs the soak tests, which
// only wait (LEDGER_SOAK=1 go test ./...); `-run` naming one runs it too.
const SoakEnv = "LEDGER_SOAK"

// Soak skips a test that only waits out a long stretch of time, unless
// LEDGER_SOAK is set or -run names the test: such tests cost a minute each
// and say nothing new on every run.
func Soak(t testing.TB) {
	t.Helper()
	if os.Getenv(SoakEnv) != "" {
		return
	}
	if run := flag.Lookup("test.run"); run != nil && strings.Contains(run.Value.String(), t.Name()) {
		return
	}
	t.Skipf("soak test: set %s=1 or run it by name (-run '^%s$')", SoakEnv, t.Name())
}

// Context returns a context that ends when the test does, or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// EventuallyWithin bounds Eventually: long enough for a loaded 2-core CI
// machine, short enough that a hung test fails with its reason.
const EventuallyWithin = 30 * time.Second

// Eventually calls check until it returns nil, backing off between calls,
// and fails the test with check's last error after EventuallyWithin. Use it
// where the state under test is outside the process's reach to wait on
// (a JetStream consumer's floor, a file); where there is something to wait
// on (a channel, a position), wait on that instead.
func Eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	eventually(t, EventuallyWithin, what, check)
}

// eventually is Eventually bounded by within.
func eventually(t testing.TB, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	b := retry.New(5*time.Millisecond, 250*time.Millisecond)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		_ = b.Wait(context.Background())
	}
}

// Golden compares got with testdata/<name>.golden, or with -update writes
// it there.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *Update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}

// FreeAddr returns a loopback address nobody listens on now, for a part
// that must be given its address before it starts (a child process, a
// restart on the same address).
func FreeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// NATS starts an in-process NATS server with JetStream on a random port and
// a temporary store directory, and shuts it down when the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("testkit: NATS server not ready within 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// JetStream connects to a NATS server and returns the connection and its
// JetStream context, closed when the test ends.
func JetStream(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Store is the embedded event store, serving on a loopback address.
type Store struct {
	Dir  string
	Addr string
	// CAFile is the authority of the store's TLS certificate, when the
	// kit made one (a store started with a Password).
	CAFile string
	t      testing.TB
	cfg    eventstore.Config
	srv    *eventstore.Server
	served chan error // Serve's result, once it returns
}

// StartStore opens the embedded store in a temporary directory (cfg.Dir,
// if set, instead) and serves it on a random loopback port; it stops when
// the test ends. Without a Password it serves plaintext to anyone, as
// most tests want; with one, and no TLS of the test's own, it serves TLS
// with a certificate of a CA the kit makes (CAFile), and URL carries the
// credentials, as ledgerd's own does.
func StartStore(t testing.TB, cfg eventstore.Config) *Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s := &Store{Dir: cfg.Dir, t: t, cfg: cfg}
	if cfg.Password != "" && cfg.TLS == nil {
		ca := NewCA(t)
		certFile, keyFile := ca.Issue("127.0.0.1", "localhost")
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		s.cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		s.CAFile = ca.File
	}
	s.start("127.0.0.1:0")
	t.Cleanup(s.Stop)
	return s
}

func (s *Store) start(addr string) {
	s.t.Helper()
	srv, err := eventstore.Open(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		s.t.Fatal(err)
	}
	s.srv, s.Addr, s.served = srv, lis.Addr().String(), make(chan error, 1)
	served := s.served
	go func() { served <- srv.Serve(lis) }()
}

// Server is the store's server, for what only an operator does (a
// backup).
func (s *Store) Server() *eventstore.Server { return s.srv }

// URL is the store's connection string for the official client, with
// the store's credentials when it has a password.
func (s *Store) URL() string {
	if s.cfg.Password == "" {
		return s.URLAs(nil)
	}
	return s.URLAs(url.UserPassword(eventstore.User, s.cfg.Password))
}

// URLAs is the store's connection string with the credentials given (nil:
// none), over TLS trusting CAFile when the store serves TLS.
func (s *Store) URLAs(user *url.Userinfo) string {
	u := url.URL{Scheme: "esdb", User: user, Host: s.Addr}
	if s.cfg.TLS == nil {
		u.RawQuery = "tls=false"
	} else {
		u.RawQuery = url.Values{"tls": {"true"}, "tlsCAFile": {s.CAFile}}.Encode()
	}
	return u.String()
}

// Stop closes the store, as a clean shutdown does, and fails the test if
// closing or serving failed (Serve returns nil after Close); stopping
// twice is a no-op.
func (s *Store) Stop() {
	if s.srv == nil {
		return
	}
	if err := s.srv.Close(); err != nil {
		s.t.Errorf("testkit: closing the store: %v", err)
	}
	if err := <-s.served; err != nil {
		s.t.Errorf("testkit: serving the store: %v", err)
	}
	s.srv = nil
}

// Restart stops the store and opens it again from its directory on the
// same address, so that clients reconnect to it.
func (s *Store) Restart() {
	s.t.Helper()
	s.Stop()
	s.start(s.Addr)
}

// Log dials the store through eventlog, closed when the test ends.
func Log(t testing.TB, url string) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Client dials the store with the official client itself, for tests that
// do what Ledger never does through eventlog (tombstone a stream, read one
// whole), closed when the test ends.
func Client(t testing.TB, url string) *esdb.Client {
	t.Helper()
	conf, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	conf.Logger = func(esdb.LogLevel, string, ...any) {} // failed calls are the tests' business
	c, err := esdb.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ReadStream reads up to count events of a stream with the official
// client; the error is the client's (a *esdb.Error for a stream not found).
func ReadStream(ctx context.Context, c *esdb.Client, stream string, count uint64) ([]*esdb.ResolvedEvent, error) {
	return Drain(c.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, count))
}

// Drain reads a read of the official client to its end, and closes it:
// Drain(c.ReadStream(...)) or Drain(c.ReadAll(...)). The error is the
// client's, io.EOF excepted.
func Drain(rs *esdb.ReadStream, err error) ([]*esdb.ResolvedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, ev)
	}
}

// DirNames lists the names in a directory, sorted, failing the test if it
// cannot be read.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
