// Package secret holds what Ledger does with the secrets it is given:
// password files, read or generated with mode 0600, and URLs that carry a
// password, redacted before they reach a log line or an error
// (docs/securing.md). ledgerd and ledgerctl both use it; it imports
// nothing of Ledger's, so the client links no server for it.
package secret

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Redacted replaces a password wherever Redact finds one, as net/url's
// URL.Redacted does.
const Redacted = "xxxxx"

// Redact returns text with the password of every URL in it replaced by
// Redacted ("nats://ledgerd:xxxxx@nats-1:4222"), and with every password
// of the given URLs replaced wherever else it appears (an error of
// net/url quotes the URL it could not parse, and a client may decode it).
// It works on the text, without parsing: a URL that does not parse is
// exactly the one whose error would show it.
func Redact(text string, urls ...string) string {
	for _, u := range urls {
		for _, pw := range passwords(u) {
			text = strings.ReplaceAll(text, pw, Redacted)
			if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
				text = strings.ReplaceAll(text, dec, Redacted)
			}
		}
	}
	var b strings.Builder
	for {
		_, pw, rest, ok := nextUserinfo(text)
		if !ok {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:pw])
		if pw < rest-1 { // a password, not "user@"
			b.WriteString(Redacted)
		}
		b.WriteString("@")
		text = text[rest:]
	}
}

// passwords lists the passwords of the URLs in s (several, as in a NATS
// server list "nats://a:p@h1,nats://a:p@h2"), as written.
func passwords(s string) []string {
	var out []string
	for {
		_, pw, rest, ok := nextUserinfo(s)
		if !ok {
			return out
		}
		if p := s[pw : rest-1]; p != "" && p != Redacted {
			out = append(out, p)
		}
		s = s[rest:]
	}
}

// nextUserinfo finds the next "scheme://user:password@" in s. It returns
// the offsets of the user name, of the password (just after the colon,
// or of the "@" when there is no password) and just after the "@".
func nextUserinfo(s string) (user, pw, rest int, ok bool) {
	from := 0
	for {
		i := strings.Index(s[from:], "://")
		if i < 0 {
			return 0, 0, 0, false
		}
		user = from + i + len("://")
		// The authority ends at the first of "/?#" or a blank; its
		// userinfo at the last "@" before that.
		end := len(s)
		if j := strings.IndexAny(s[user:], "/?# \t\n\"'"); j >= 0 {
			end = user + j
		}
		at := strings.LastIndex(s[user:end], "@")
		if at < 0 {
			from = user
			continue
		}
		at += user
		pw = at
		if c := strings.Index(s[user:at], ":"); c >= 0 {
			pw = user + c + 1
		}
		return user, pw, at + 1, true
	}
}

// WithPassword returns rawURL with password set for the user it names
// ("esdb://ledgerd@kurrent-1:2113,kurrent-2:2113?tls=true"), escaped as a
// URL's userinfo must be. It works on the text, as the KurrentDB client's
// connection strings with several hosts are not URLs net/url accepts.
func WithPassword(rawURL, password string) (string, error) {
	user, pw, rest, ok := nextUserinfo(rawURL)
	if !ok {
		return "", errors.New("secret: the URL names no user (scheme://USER@host) to give the password to")
	}
	if pw != rest-1 {
		return "", errors.New("secret: the URL has a password already; give it in one place")
	}
	name, err := url.PathUnescape(rawURL[user : rest-1])
	if err != nil || name == "" {
		return "", errors.New("secret: the URL's user name is empty or badly escaped")
	}
	return rawURL[:user] + url.UserPassword(name, password).String() + rawURL[rest-1:], nil
}

// passwordBytes is the entropy of a generated password: 256 bits.
const passwordBytes = 32

// ReadFile reads a password from a file, without its trailing line break.
// An empty one is an error: it would be no password at all.
func ReadFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("secret: password file %s is empty", path)
	}
	return pw, nil
}

// Ensure returns the password in path, generating one first if the file
// does not exist: 32 random bytes, URL-safe base64, written with mode 0600
// and synced. An existing file that others than its owner may read is an
// error, since it was written 0600 and someone widened it.
func Ensure(path string) (string, error) {
	info, err := os.Stat(path)
	switch {
	case err == nil:
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			return "", fmt.Errorf("secret: password file %s may be read by others (mode %04o); make it 0600", path, perm)
		}
		return ReadFile(path)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("secret: %w", err)
	}
	buf := make([]byte, passwordBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(buf)
	if err := writeNew(path, pw+"\n"); err != nil {
		return "", err
	}
	return pw, nil
}

// writeNew writes a file that must not exist yet, mode 0600, and syncs it
// and its directory, so that a crash cannot leave a password that the
// store was given but the file lost.
func writeNew(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("secret: write %s: %w", path, err)
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}
