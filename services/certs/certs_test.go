package certs_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledger-billing/ledger/services/certs"
	"github.com/ledger-billing/ledger/services/testkit"
)

// serve answers each TLS connection on a loopback port with "ok" and
// closes it, until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if err := conn.(*tls.Conn).Handshake(); err == nil {
					fmt.Fprintln(conn, "ok")
				}
			}()
		}
	}()
	return lis.Addr().String()
}

// dial connects, reads the answer, and returns the serial number of the
// server's certificate.
func dial(addr string, cfg *tls.Config) (*big.Int, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// With TLS 1.3 the server checks a client certificate after the
	// client's handshake is done: its refusal arrives at the first read.
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return nil, err
	}
	if line != "ok\n" {
		return nil, fmt.Errorf("answer %q", line)
	}
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestReloadedWithoutRestart(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, firstKey := ca.Issue("127.0.0.1")
	testkit.Replace(t, first, firstKey, certFile, keyFile)
	var logs testkit.LogBuffer
	r, err := certs.NewReloader(certs.Files{Cert: certFile, Key: keyFile}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig())
	client := &tls.Config{RootCAs: ca.Pool()}

	if serial, err := dial(addr, client); err != nil || serial.Cmp(testkit.Serial(t, first)) != 0 {
		t.Fatalf("first certificate: serial %v, %v", serial, err)
	}
	second, secondKey := ca.Issue("127.0.0.1")
	testkit.Replace(t, second, secondKey, certFile, keyFile)
	testkit.Eventually(t, "the renewed certificate served", func() error {
		serial, err := dial(addr, client)
		if err != nil {
			return err
		}
		if serial.Cmp(testkit.Serial(t, second)) != 0 {
			return fmt.Errorf("still serial %v", serial)
		}
		return nil
	})

	// A broken renewal keeps the certificate served, and says so.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the failed reload logged", func() error {
		if _, err := dial(addr, client); err != nil {
			t.Fatalf("a failed reload broke the server: %v", err)
		}
		if !strings.Contains(logs.String(), "reloading the certificate failed") {
			return errors.New("not yet")
		}
		return nil
	})
	if serial, err := dial(addr, client); err != nil || serial.Cmp(testkit.Serial(t, second)) != 0 {
		t.Fatalf("after a failed reload: serial %v, %v; want the second certificate still", serial, err)
	}
}

func TestClientCertificateRequired(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	certFile, keyFile := ca.Issue("127.0.0.1")
	r, err := certs.NewReloader(certs.Files{Cert: certFile, Key: keyFile, ClientCA: ca.File}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig())

	anonymous, err := certs.ClientConfig(ca.File, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, anonymous); err == nil {
		t.Error("a client without a certificate was served")
	}
	other := testkit.NewCA(t)
	strangerCert, strangerKey := other.Issue("stranger")
	stranger, err := certs.ClientConfig(ca.File, strangerCert, strangerKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, stranger); err == nil {
		t.Error("a client certificate of another CA was accepted")
	}
	clientCert, clientKey := ca.Issue("invoicing")
	client, err := certs.ClientConfig(ca.File, clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, client); err != nil {
		t.Errorf("a client with a certificate of the CA: %v", err)
	}
}

func TestSelfSigned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	now := time.Now()
	cert, err := certs.SelfSigned(certFile, keyFile, hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", info, err)
	}
	again, err := certs.SelfSigned(certFile, keyFile, hosts, now)
	if err != nil || again.Leaf.SerialNumber.Cmp(cert.Leaf.SerialNumber) != 0 {
		t.Fatalf("a valid certificate was replaced (%v)", err)
	}
	moved, err := certs.SelfSigned(certFile, keyFile, append(hosts, "10.1.2.3"), now)
	if err != nil || moved.Leaf.SerialNumber.Cmp(cert.Leaf.SerialNumber) == 0 {
		t.Fatalf("a certificate not naming a new host was kept (%v)", err)
	}
	late, err := certs.SelfSigned(certFile, keyFile, hosts, moved.Leaf.NotAfter.Add(-time.Hour))
	if err != nil || late.Leaf.SerialNumber.Cmp(moved.Leaf.SerialNumber) == 0 {
		t.Fatalf("a certificate about to end was kept (%v)", err)
	}

	// Trusting the file itself reaches the server that serves it.
	current, err := certs.SelfSigned(certFile, keyFile, hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{*current}})
	pool, err := certs.LoadPool(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, &tls.Config{RootCAs: pool}); err != nil {
		t.Errorf("trusting the self-signed certificate: %v", err)
	}
	if _, err := dial(addr, &tls.Config{RootCAs: x509.NewCertPool()}); err == nil {
		t.Error("a client trusting nothing was served")
	}
}
