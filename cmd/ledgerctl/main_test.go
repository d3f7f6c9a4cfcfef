package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
)

// childEnv makes the test binary run as ledgerctl itself, with the
// arguments in the variable, so that tests see real exit codes.
const childEnv = "LEDGERCTL_TEST_ARGS"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childEnv); ok {
		os.Exit(run(context.Background(), strings.Fields(args), os.Stdout, os.Stderr))
	}
	code := m.Run()
	shared.close()
	os.Exit(code)
}

// ledger is an in-process ledgerd on ephemeral ports, with a client of
// its query service to check what ledgerctl did.
type ledger struct {
	d    *daemon.Daemon
	conn *grpc.ClientConn
	svc  billingv1.BillingServiceClient
}

// dialLedger makes a client of d's query service.
func dialLedger(d *daemon.Daemon) (*ledger, error) {
	conn, err := grpc.NewClient(d.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &ledger{d: d, conn: conn, svc: billingv1.NewBillingServiceClient(conn)}, nil
}

// newLedger starts a ledgerd for one test.
func newLedger(t *testing.T) *ledger {
	t.Helper()
	l, err := dialLedger(daemontest.Start(t, daemontest.Config(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.conn.Close() })
	return l
}

// sharedLedger is one ledgerd with the demo loaded, for the tests that
// only read it; TestMain closes it.
type sharedLedger struct {
	once sync.Once
	l    *ledger
	dir  string
	err  error
}

var shared sharedLedger

func (s *sharedLedger) close() {
	if s.l != nil {
		s.l.conn.Close()
		s.l.d.Close()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// demoLedger returns the shared ledgerd, running `ledgerctl demo` on it
// the first time.
func demoLedger(t *testing.T) *ledger {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "ledgerctl-test-"); shared.err != nil {
			return
		}
		d, err := daemon.Start(daemontest.Config(shared.dir))
		if err != nil {
			shared.err = fmt.Errorf("start ledgerd: %w", err)
			return
		}
		if shared.l, shared.err = dialLedger(d); shared.err != nil {
			d.Close()
			return
		}
		if r := shared.l.ctl(context.Background(), "demo"); r.code != 0 {
			shared.err = fmt.Errorf("ledgerctl demo: exit %d: %s", r.code, r.stderr)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.l
}

// result is what one ledgerctl command line did.
type result struct {
	stdout, stderr string
	code           int
}

// ctl runs a ledgerctl command line in process against l, through the
// same entry function as the binary.
func (l *ledger) ctl(ctx context.Context, args ...string) result {
	return ctlEnv(ctx, append([]string{"--grpc", l.d.GRPCAddr(), "--nats", l.d.NATSURL(), "--wait", "30s"}, args...)...)
}

// ctlEnv runs a command line as written, with whatever addresses it or
// the environment gives.
func ctlEnv(ctx context.Context, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// must runs a command that must succeed, and returns its output.
func (l *ledger) must(t *testing.T, args ...string) string {
	t.Helper()
	r := l.ctl(t.Context(), args...)
	if r.code != 0 {
		t.Fatalf("ledgerctl %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// moduleRoot is the directory of go.mod, found upwards from the test's.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// quickstart is the README's quickstart: the commands as a newcomer types
// them, after `go run ./cmd/ledgerd`.
var quickstart = []string{
	"ledgerctl demo",
	"ledgerctl invoice get --ban BAN-1001 --month 2025-03",
	"ledgerctl dashboard --org acme --from 2025-01 --to 2025-03",
	"ledgerctl usage --org acme --month 2025-02 --view vendor",
}

// TestQuickstart runs the quickstart commands exactly as written (the
// addresses come from the environment, as a newcomer's defaults would)
// against a fresh ledgerd, and compares what they print with
// testdata/quickstart.golden, which is the README's expected output.
func TestQuickstart(t *testing.T) {
	l := newLedger(t)
	t.Setenv("LEDGERCTL_GRPC", l.d.GRPCAddr())
	t.Setenv("LEDGERCTL_NATS", l.d.NATSURL())
	var transcript strings.Builder
	for _, line := range quickstart {
		args := strings.Fields(line)[1:]
		r := ctlEnv(t.Context(), args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d\nstderr: %s", line, r.code, r.stderr)
		}
		fmt.Fprintf(&transcript, "$ %s\n%s\n", line, r.stdout)
	}
	testkit.Golden(t, "quickstart", []byte(transcript.String()))
}

// TestExitCodes runs ledgerctl as a process: success is 0, a failing
// command 1, a command line that cannot run 2, each failure with one line
// on stderr saying why.
func TestExitCodes(t *testing.T) {
	l := demoLedger(t)
	dead := testkit.FreeAddr(t)
	for _, c := range []struct {
		args   string
		code   int
		stderr string
	}{
		{"--grpc " + l.d.GRPCAddr() + " invoice list --ban BAN-1001 --from 2025-01 --to 2025-01", 0, ""},
		{"--grpc " + dead + " exceptions", 1, "ledgerctl: cannot reach ledgerd at " + dead + " (is `go run ./cmd/ledgerd` running?)\n"},
		{"--grpc " + l.d.GRPCAddr() + " invoice get --ban BAN-9 --month 2025-01", 1, "ledgerctl: ban \"BAN-9\" is not the BAN of any organization or cost center (NOT_FOUND)\n"},
		{"cycle close 2025-13", 2, "ledgerctl: cycle close: \"2025-13\" is not a month written YYYY-MM\n"},
		{"invoice get --month 2025-01", 2, "ledgerctl: --ban is required\n"},
	} {
		t.Run(c.args, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0])
			cmd.Env = append(os.Environ(), childEnv+"="+c.args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code || stderr.String() != c.stderr {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr %q", code, stderr.String(), c.code, c.stderr)
			}
			if code == 0 && !strings.Contains(stdout.String(), "588.00 USD") {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}
