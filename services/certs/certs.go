// Package certs holds Ledger's TLS identities, read from PEM files: a
// server's certificate, reloaded when its files change so that a renewed
// certificate is served without a restart; the client side of ledgerctl
// and of ledgerd's own connections (a CA to trust, a client certificate);
// and the self-signed certificate the embedded event store serves to
// ledgerd itself (docs/securing.md, "Transport security"). It imports
// nothing of Ledger's, so ledgerctl links it without linking a server.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of a server's TLS identity. ClientCA, when
// set, makes the server require client certificates signed by it (mTLS).
type Files struct {
	Cert, Key, ClientCA string
}

// CheckEvery bounds how often a Reloader looks at its files: at most
// once a second, at a handshake. Connections are long-lived (gRPC), so
// handshakes are few and the check costs a stat of two or three files.
const CheckEvery = time.Second

// Reloader serves the certificate in its Files and reloads them when their
// modification time or size changes. A reload that fails (a key replaced
// before its certificate, a file half written) keeps the identity it had,
// logs why, and is tried again at the next check: a certificate being
// renewed never takes a server down.
type Reloader struct {
	files Files
	log   *slog.Logger

	mu      sync.Mutex
	checked time.Time    // last look at the files
	stamp   [3]fileStamp // of the files as last loaded or last failed
	cert    *tls.Certificate
	pool    *x509.CertPool // of ClientCA; nil without one
}

// fileStamp is what tells a changed file from the one loaded.
type fileStamp struct {
	mod  time.Time
	size int64
}

// NewReloader loads files once; its error says which file is at fault.
// A nil logger discards.
func NewReloader(files Files, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("certs: a certificate needs both its file and its key's")
	}
	r := &Reloader{files: files, log: log}
	stamp, err := r.stamps()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	r.checked = time.Now()
	return r, nil
}

func (r *Reloader) stamps() ([3]fileStamp, error) {
	var out [3]fileStamp
	for i, path := range []string{r.files.Cert, r.files.Key, r.files.ClientCA} {
		if path == "" {
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			return out, fmt.Errorf("certs: %w", err)
		}
		out[i] = fileStamp{info.ModTime(), info.Size()}
	}
	return out, nil
}

// load reads the files and, if they make a valid identity, serves it.
func (r *Reloader) load(stamp [3]fileStamp) error {
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return fmt.Errorf("certs: certificate %s with key %s: %w", r.files.Cert, r.files.Key, err)
	}
	var pool *x509.CertPool
	if r.files.ClientCA != "" {
		if pool, err = LoadPool(r.files.ClientCA); err != nil {
			return err
		}
	}
	r.cert, r.pool, r.stamp = &cert, pool, stamp
	return nil
}

// current returns the identity to serve, reloading it first if a file
// changed since the last check (at most every CheckEvery).
func (r *Reloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= CheckEvery {
		r.checked = now
		stamp, err := r.stamps()
		switch {
		case err != nil:
			r.log.Warn("certs: cannot look at the certificate files; serving the loaded certificate", "err", err)
		case stamp != r.stamp:
			if err := r.load(stamp); err != nil {
				// Remember the failed state, so that the same broken
				// files are logged once, not at every handshake.
				r.stamp = stamp
				r.log.Error("certs: reloading the certificate failed; serving the one loaded before", "cert", r.files.Cert, "err", err)
			} else {
				r.log.Info("certs: certificate reloaded", "cert", r.files.Cert, "not_after", r.cert.Leaf.NotAfter)
			}
		}
	}
	return r.cert, r.pool
}

// GetCertificate is tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, _ := r.current()
	return cert, nil
}

// ServerConfig is a server's TLS configuration: TLS 1.2 at least, the
// current certificate, and with a ClientCA, client certificates required
// and verified against it. nextProtos are the ALPN protocols of the
// server ("h2" for gRPC): each handshake gets a configuration of its own,
// so they must be given here.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: nextProtos, GetCertificate: r.GetCertificate}
	if r.files.ClientCA == "" {
		return base
	}
	// The client CA reloads too, so each handshake gets the pool current
	// then.
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := r.current()
		return &tls.Config{
			MinVersion:   tls.VersionTLS12,
			NextProtos:   nextProtos,
			Certificates: []tls.Certificate{*cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		}, nil
	}
	return base
}

// LoadPool reads the PEM certificates of a file into a pool; a file with
// none is an error.
func LoadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// ClientConfig is a client's TLS configuration: trust ca (empty: the
// system's roots) and, when cert and key are given, present that client
// certificate.
func ClientConfig(ca, cert, key string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool, err := LoadPool(ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("certs: a client certificate needs both its file and its key's")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("certs: client certificate %s with key %s: %w", cert, key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
