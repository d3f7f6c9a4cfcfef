package main

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMemoryLimitFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"none", 0}, {"0", 0}, {"3GiB", 3 << 30}, {"2.5GiB", 5 << 29}, {"2560MiB", 2560 << 20},
		{"1073741824", 1 << 30}, {"1 TiB", 1 << 40}, {"65536KiB", 64 << 20},
	} {
		var m memoryLimit
		if err := m.Set(tc.in); err != nil || m.bytes != tc.want || !m.set {
			t.Errorf("Set(%q) = %d, %v; want %d", tc.in, m.bytes, err, tc.want)
		}
	}
	for _, in := range []string{"", "lots", "2 gigs", "-1GiB", "NaNGiB", "1e30GiB", "1MiB", "3GB"} {
		var m memoryLimit
		if err := m.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, m.bytes)
		}
	}
	if got := formatBytes(5 << 29); got != "2.5GiB" {
		t.Errorf("formatBytes(2.5 GiB) = %q", got)
	}
}

func TestContainerLimit(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    int64
		ok      bool
	}{{"4294967296\n", 4 << 30, true}, {"max\n", 0, false}, {"", 0, false}} {
		path := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, ok := containerLimit(path); got != tc.want || ok != tc.ok {
			t.Errorf("memory.max %q: %d, %v; want %d, %v", tc.content, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := containerLimit(filepath.Join(dir, "absent")); ok {
		t.Error("an absent memory.max gave a limit")
	}
}

// TestMemoryLimitApplied: ledgerd runs with the limit it was given, as its
// /metrics says (the Go collector's go_gc_gomemlimit_bytes), and a size it
// cannot read stops it naming the flag.
func TestMemoryLimitApplied(t *testing.T) {
	p := newPorts(t)
	dir := filepath.Join(t.TempDir(), "data")
	cmd, _, _ := startWith(t, p.args(dir)+" --memory-limit 1.5GiB", "http://"+p.http, http.DefaultClient)
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var line string
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "go_gc_gomemlimit_bytes ") {
			line = sc.Text()
		}
	}
	if line != "go_gc_gomemlimit_bytes 1.610612736e+09" {
		t.Errorf("/metrics: %q, want the limit of 1.5GiB", line)
	}
	stop(t, cmd)

	code, stderr := runChild(t, p.args(dir)+" --memory-limit 2gigs")
	if code != 1 || !strings.Contains(stderr, "memory-limit") || !strings.Contains(stderr, "2GiB") {
		t.Fatalf("--memory-limit 2gigs: exit %d, stderr:\n%s", code, stderr)
	}
}
