package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImportMillionRows imports a generated 1,000,000-row FOCUS file into a
// ledgerd, with ledgerctl in a process of its own so that its peak
// resident memory can be read, and checks the invoice's total. It takes
// about ten seconds on two cores and is skipped unless LEDGER_BIG=1
// (LEDGER_BIG_ROWS=100000 imports fewer, to compare memory); the
// figures are logged (go test -v), never asserted: timing belongs to
// benchmarks.
func TestImportMillionRows(t *testing.T) {
	if os.Getenv("LEDGER_BIG") == "" {
		t.Skip("imports 1,000,000 rows through a ledgerd; run with LEDGER_BIG=1")
	}
	rows := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("LEDGER_BIG_ROWS")); err == nil && n > 0 && n%100 == 0 {
		rows = n // to compare: memory must not grow with the file
	}
	path := filepath.Join(t.TempDir(), "million.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"SubAccountId", "ProviderName", "ServiceName", "RegionId", "ChargePeriodStart", "ChargeCategory", "BilledCost", "BillingCurrency", "Id"})
	for i := range rows {
		// Account a is charged 0.a1 (a = i mod 100) by each of its
		// rows/100 rows: rows/100 × (a/100 + 0.001), rows × 0.496 over
		// the 100 accounts (496,000.00 for a million).
		w.Write([]string{fmt.Sprintf("acct-%02d", i%100), "AWS", "Amazon EC2", "us-east-1", fmt.Sprintf("2024-09-%02d 10:00:00", 1+i%28),
			"Usage", fmt.Sprintf("0.%02d1", i%100), "USD", fmt.Sprint(i)})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	l := newLedger(t)
	args := []string{"--grpc", l.d.GRPCAddr(), "--nats", l.d.NATSURL(), "--wait", "10m", "--json", "import", "focus", path, "--org", "big", "--register"}
	cmd := exec.CommandContext(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, " "))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("ledgerctl: %v\n%s", err, stderr.String())
	}
	elapsed := time.Since(start)
	var s importSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil || s.Rows != rows || s.Batches != (rows+999)/1000 {
		t.Fatalf("summary %+v, %v", s, err)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	t.Logf("imported %d rows (%.1f MiB of CSV) in %s: %.0f rows/s; ledgerctl's peak RSS %.1f MiB",
		rows, float64(info.Size())/(1<<20), elapsed.Round(time.Millisecond), float64(rows)/elapsed.Seconds(), float64(rss)/1024)

	l.must(t, "cycle", "close", "2024-09")
	cents := rows * 496 / 10
	if got, want := issuedInvoice(t, l, "BAN-big", "2024-09").GetTotal().GetAmount(), fmt.Sprintf("%d.%02d", cents/100, cents%100); got != want {
		t.Errorf("invoice total %s, want %s", got, want)
	}
}
