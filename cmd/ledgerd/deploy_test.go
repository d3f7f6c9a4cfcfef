package main

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSystemdUnitNamesRealFlags: every LEDGER_ variable the systemd unit
// in deploy/ sets is a flag of this ledgerd (fromEnvironment maps
// LEDGER_DATA_DIR to --data-dir), so the unit does not silently set
// nothing after a flag is renamed.
func TestSystemdUnitNamesRealFlags(t *testing.T) {
	f, err := os.Open("../../deploy/systemd/ledgerd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	code, usage := runChild(t, "-h")
	if code != 0 {
		t.Fatalf("ledgerd -h: exit %d\n%s", code, usage)
	}
	env := regexp.MustCompile(`^Environment=LEDGER_([A-Z0-9_]+)=`)
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		m := env.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n++
		flag := "-" + strings.ToLower(strings.ReplaceAll(m[1], "_", "-"))
		if !strings.Contains(usage, "  "+flag+" ") && !strings.Contains(usage, "  "+flag+"\n") {
			t.Errorf("the unit sets LEDGER_%s, but ledgerd has no %s flag", m[1], flag)
		}
	}
	if n == 0 {
		t.Fatal("the unit sets no LEDGER_ variable: has its format changed?")
	}
}
