package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledger-billing/ledger/services/daemon/daemontest"
)

// runChild runs ledgerd as a process with args and returns its exit
// status and what it wrote to stderr.
func runChild(t *testing.T, args string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+args)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatal(err)
	return 0, ""
}

// occupy listens on a loopback port for the test and returns its address.
func occupy(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis.Addr().String()
}

// TestStartFailures starts ledgerd where it cannot run: each time it must
// exit with status 1 and a last line that names the cause in one sentence,
// never a panic.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	type setup func(t *testing.T, dir string, p *ports)
	inUse := func(field func(p *ports) *string) setup {
		return func(t *testing.T, _ string, p *ports) { *field(p) = occupy(t) }
	}
	tests := []struct {
		name  string
		setup setup
		want  []string // parts of the last line
	}{
		{"gRPC address in use", inUse(func(p *ports) *string { return &p.grpc }), []string{"--grpc-listen", "already in use"}},
		{"HTTP address in use", inUse(func(p *ports) *string { return &p.http }), []string{"--http-listen", "already in use"}},
		{"event store address in use", inUse(func(p *ports) *string { return &p.store }), []string{"--eventstore-listen", "already in use"}},
		{"NATS address in use", inUse(func(p *ports) *string { return &p.nats }), []string{"--nats-listen", "already in use"}},
		{"data directory is a file", func(t *testing.T, dir string, _ *ports) {
			if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"is a file, not a directory", "--data-dir"}},
		{"data directory held by another ledgerd", func(t *testing.T, dir string, _ *ports) {
			daemontest.Start(t, daemontest.Config(dir))
		}, []string{"is in use by another ledgerd", "pid"}},
		{"damaged store", func(t *testing.T, dir string, _ *ports) {
			// A store that has been opened once, then its manifest
			// overwritten with garbage.
			d := daemontest.Start(t, daemontest.Config(dir))
			d.Close()
			manifests, err := filepath.Glob(filepath.Join(dir, "eventstore", "MANIFEST-*"))
			if err != nil || len(manifests) == 0 {
				t.Fatalf("no manifest in the store (%v)", err)
			}
			for _, m := range manifests {
				if err := os.WriteFile(m, bytes.Repeat([]byte{0xde, 0xad}, 512), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{"event store", "cannot be opened", "MANIFEST-"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			p := newPorts(t)
			tc.setup(t, dir, &p)
			code, stderr := runChild(t, p.args(dir))
			if code != 1 {
				t.Fatalf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("ledgerd panicked:\n%s", stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "ledgerd: cannot start: ") {
				t.Fatalf("last line %q, want it to begin \"ledgerd: cannot start: \"", last)
			}
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("last line %q does not say %q", last, w)
				}
			}
		})
	}
}

// TestHelp: -h prints the flags and is not a failure.
func TestHelp(t *testing.T) {
	code, stderr := runChild(t, "-h")
	if code != 0 || !strings.Contains(stderr, "-data-dir") {
		t.Fatalf("ledgerd -h: exit %d, stderr:\n%s", code, stderr)
	}
}
