package secret

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, text string
		urls       []string
		want       string
	}{
		{"no password", "esdb://127.0.0.1:2113?tls=false", nil, "esdb://127.0.0.1:2113?tls=false"},
		{"user only", "esdb://ledgerd@kurrent-1:2113?tls=true", nil, "esdb://ledgerd@kurrent-1:2113?tls=true"},
		{"one URL", "esdb://admin:s3cret@127.0.0.1:2113?tls=true", nil, "esdb://admin:xxxxx@127.0.0.1:2113?tls=true"},
		{"a NATS server list", "nats://a:p1@h1:4222,nats://b:p2@h2:4222", nil, "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222"},
		{"several hosts", "esdb://admin:pw@k1:2113,k2:2113,k3:2113?tls=true", nil, "esdb://admin:xxxxx@k1:2113,k2:2113,k3:2113?tls=true"},
		{"an @ in the password", "esdb://admin:p@ss@h:2113", nil, "esdb://admin:xxxxx@h:2113"},
		{"in a sentence", `parse "nats://u:hunter22@h:x": invalid port`, nil, `parse "nats://u:xxxxx@h:x": invalid port`},
		{"an @ in the path stays", "https://h/a@b", nil, "https://h/a@b"},
		{"the password elsewhere, decoded", "login failed for p/w+", []string{"esdb://admin:p%2Fw+@h"}, "login failed for xxxxx"},
		{"the password elsewhere, as written", "bad p%2Fw", []string{"esdb://admin:p%2Fw@h"}, "bad xxxxx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.text, tc.urls...); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
}

func TestWithPassword(t *testing.T) {
	got, err := WithPassword("esdb://ledgerd@k1:2113,k2:2113?tls=true", "p@ss/w:rd")
	if err != nil {
		t.Fatal(err)
	}
	if want := "esdb://ledgerd:p%40ss%2Fw%3Ard@k1:2113,k2:2113?tls=true"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	u, err := url.Parse(strings.Replace(got, ",k2:2113", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); pw != "p@ss/w:rd" {
		t.Errorf("the URL's password reads back as %q", pw)
	}
	for _, bad := range []string{"esdb://k1:2113", "esdb://a:b@k1:2113"} {
		if _, err := WithPassword(bad, "x"); err == nil {
			t.Errorf("WithPassword(%q) did not fail", bad)
		}
	}
}

func TestEnsure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "password")
	pw, err := Ensure(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 40 {
		t.Errorf("generated password %d characters long", len(pw))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %04o, want 0600", perm)
	}
	again, err := Ensure(path)
	if err != nil || again != pw {
		t.Fatalf("second Ensure gave %q, %v; want the same password", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(path); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("a password file readable by others: %v", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(empty); err == nil {
		t.Error("an empty password file was accepted")
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := ReadFile(ok); err != nil || pw != "s3cret" {
		t.Errorf("ReadFile = %q, %v", pw, err)
	}
}

// FuzzRedact: whatever the user, password and text around it, a URL's
// password never survives Redact in the URL, nor anywhere when the URL is
// given.
func FuzzRedact(f *testing.F) {
	f.Add("admin", "s3cret", "esdb://", "@127.0.0.1:2113?tls=true", "parse ")
	f.Add("ledgerd", "p%40ss", "nats://", "@nats-1:4222,nats://a:b@nats-2:4222", "")
	f.Add("", "x", "tls://", "@h", "\"")
	f.Fuzz(func(t *testing.T, user, password, scheme, rest, before string) {
		if password == "" || strings.ContainsAny(password, "@/?# \t\n\"'") || strings.ContainsAny(user, ":@/?# \t\n\"'") ||
			strings.Contains(password, Redacted) || strings.Contains(Redacted, password) || !strings.HasSuffix(scheme, "://") || !strings.HasPrefix(rest, "@") {
			t.Skip()
		}
		authority := rest
		if i := strings.IndexAny(rest, "/?# \t\n\"'"); i >= 0 {
			authority = rest[:i]
		}
		if strings.Count(authority, "@") != 1 {
			t.Skip() // another "@" would make it part of the password
		}
		raw := scheme + user + ":" + password + rest
		text := before + raw
		for _, got := range []string{Redact(text), Redact(text, raw)} {
			if strings.Contains(got, scheme+user+":"+password+"@") {
				t.Fatalf("Redact(%q) = %q keeps the password", text, got)
			}
		}
		// A password can seem to survive when a redaction and what stands
		// beside it spell it (":x" in "user:xxxxx@"). A password holds no
		// "@": once each redaction is an "@", any copy of the password
		// left is one Redact kept.
		if got := Redact(text, raw); strings.Contains(strings.ReplaceAll(got, Redacted, "@"), password) {
			t.Fatalf("Redact(%q, the URL) = %q keeps the password", text, got)
		}
	})
}
