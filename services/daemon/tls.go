package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ledger-billing/ledger/services/certs"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/secret"
)

// Files of the embedded store's credentials in the data directory: the
// password ledgerd generates (unless --eventstore-password-file), and the
// self-signed certificate the store serves to ledgerd. An auditor whom
// the operator lets in needs both (docs/securing.md).
const (
	StorePasswordFile = "eventstore-password"
	StoreCertFile     = "eventstore-cert.pem"
	storeKeyFile      = "eventstore-key.pem"
)

// grpcCreds are the query service's transport credentials: TLS with the
// reloaded certificate when configured, else plaintext.
func (d *Daemon) grpcCreds() grpc.ServerOption {
	if d.sec.tls == nil {
		return grpc.Creds(insecure.NewCredentials())
	}
	return grpc.Creds(credentials.NewTLS(d.sec.tls.ServerConfig("h2")))
}

// httpListener serves TLS on lis when configured.
func (d *Daemon) httpListener(lis net.Listener) net.Listener {
	if d.sec.tls == nil {
		return lis
	}
	return tls.NewListener(lis, d.sec.tls.ServerConfig("h2", "http/1.1"))
}

// storeSecurity is the embedded store's password and TLS. The store
// always serves TLS, because the official client sends credentials only
// over TLS (esdb's basicAuthPerRPCCredentials requires transport
// security, and it attaches none with tls=false): without TLS a password
// would lock ledgerd itself out.
//
// It serves two certificates. To ledgerd, which connects by IP address
// and so sends no server name, a self-signed one in the data directory
// that names loopback and the listen address; ledgerd trusts exactly
// that file, so it sends its password to its own store and nobody else.
// An operator's certificate (--tls-cert), issued for the host's public
// name and a CA ledgerd is not told of, could not be checked that way.
// To a client that asks for a name the operator's certificate covers
// (SNI), that certificate, reloaded as the other listeners' are.
func (d *Daemon) storeSecurity() (password string, _ *tls.Config, err error) {
	if d.cfg.EventstorePasswordFile != "" {
		if password, err = secret.ReadFile(d.cfg.EventstorePasswordFile); err != nil {
			return "", nil, fmt.Errorf("the event store's password cannot be read (--eventstore-password-file): %w", err)
		}
	} else if password, err = secret.Ensure(filepath.Join(d.cfg.DataDir, StorePasswordFile)); err != nil {
		return "", nil, fmt.Errorf("the event store's password in the data directory cannot be used: %w", err)
	}
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	if h := storeHost(d.cfg.EventstoreListen); h != "" {
		hosts = append(hosts, h)
	}
	own, err := certs.SelfSigned(filepath.Join(d.cfg.DataDir, StoreCertFile), filepath.Join(d.cfg.DataDir, storeKeyFile), hosts, time.Now())
	if err != nil {
		return "", nil, fmt.Errorf("the event store's certificate in the data directory cannot be made: %w", err)
	}
	operator := d.sec.tls
	return password, &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if operator != nil && hello.ServerName != "" {
				if cert, _ := operator.GetCertificate(hello); hello.SupportsCertificate(cert) == nil {
					return cert, nil
				}
			}
			return own, nil
		},
	}, nil
}

// storeHost is the host of --eventstore-listen when it names one address
// (an IP or a name), which the store's own certificate must name too; ""
// for every interface.
func storeHost(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return host
}

// ownStoreURL is ledgerd's connection string for its embedded store,
// listening at addr: its user and password, TLS trusting the store's own
// certificate. It carries the password: log it only through
// secret.Redact.
func (d *Daemon) ownStoreURL(addr net.Addr, password string) string {
	host := storeHost(d.cfg.EventstoreListen)
	if host == "" {
		host = "127.0.0.1"
		if ip := net.ParseIP(hostOf(d.cfg.EventstoreListen)); ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return storeURL(d.cfg.DataDir, net.JoinHostPort(host, port), password)
}

// StoreURL is the connection string of the embedded store of a ledgerd
// whose data directory is dataDir and whose store listens at addr (its
// --eventstore-listen), with the password ledgerd generated there and
// its certificate: for tools on the same machine, such as ledgerbench.
func StoreURL(dataDir, addr string) (string, error) {
	password, err := secret.ReadFile(filepath.Join(dataDir, StorePasswordFile))
	if err != nil {
		return "", fmt.Errorf("the event store's password in %s: %w", dataDir, err)
	}
	return storeURL(dataDir, addr, password), nil
}

func storeURL(dataDir, addr, password string) string {
	caFile, err := filepath.Abs(filepath.Join(dataDir, StoreCertFile))
	if err != nil {
		caFile = filepath.Join(dataDir, StoreCertFile)
	}
	u := url.URL{
		Scheme:   "esdb",
		User:     url.UserPassword(eventstore.User, password),
		Host:     addr,
		RawQuery: url.Values{"tls": {"true"}, "tlsCAFile": {caFile}}.Encode(),
	}
	return u.String()
}

func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

// externalStoreURL is --eventstore-url, with the password of
// --eventstore-password-file given to the user it names.
func (d *Daemon) externalStoreURL() (string, error) {
	if d.cfg.EventstorePasswordFile == "" {
		return d.cfg.EventstoreURL, nil
	}
	password, err := secret.ReadFile(d.cfg.EventstorePasswordFile)
	if err != nil {
		return "", fmt.Errorf("the event store's password cannot be read (--eventstore-password-file): %w", err)
	}
	u, err := secret.WithPassword(d.cfg.EventstoreURL, password)
	if err != nil {
		return "", fmt.Errorf("--eventstore-password-file needs an --eventstore-url that names its user (esdb://USER@host:2113?tls=true): %w", err)
	}
	return u, nil
}
