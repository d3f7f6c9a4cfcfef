package main

import (
	"flag"

	"github.com/ledger-billing/ledger/services/daemon"
)

// securityFlags defines the flags of transport security, credentials and
// secure defaults (docs/securing.md) on s.
func securityFlags(fs *flag.FlagSet, s *daemon.Security) {
	fs.StringVar(&s.TLSCert, "tls-cert", s.TLSCert, "PEM certificate (with its chain) that gRPC, HTTP and the embedded store serve TLS with; reloaded when it changes")
	fs.StringVar(&s.TLSKey, "tls-key", s.TLSKey, "PEM private key of --tls-cert")
	fs.StringVar(&s.TLSClientCA, "tls-client-ca", s.TLSClientCA, "PEM CA: gRPC and HTTP then require a client certificate it signed (mTLS)")
	fs.BoolVar(&s.Insecure, "insecure", s.Insecure, "listen beyond loopback without authentication (and expose the embedded store); warns at start and on /healthz")
	fs.StringVar(&s.EventstorePasswordFile, "eventstore-password-file", s.EventstorePasswordFile,
		"file holding the event store's password: the embedded store's (default: generated in <data-dir>/eventstore-password), or that of the user named in --eventstore-url")
	fs.StringVar(&s.NATSConfig, "nats-config", s.NATSConfig, "nats-server configuration file for the embedded NATS (accounts, users, permissions, TLS)")
	fs.StringVar(&s.NATSCreds, "nats-creds", s.NATSCreds, "NATS credentials file (user JWT and nkey seed) ledgerd authenticates with")
	fs.StringVar(&s.NATSUser, "nats-user", s.NATSUser, "NATS user ledgerd authenticates as, with --nats-password-file")
	fs.StringVar(&s.NATSPasswordFile, "nats-password-file", s.NATSPasswordFile, "file holding the password of --nats-user")
	fs.StringVar(&s.NATSTLSCA, "nats-tls-ca", s.NATSTLSCA, "PEM CA to trust for an external NATS's certificate (default: the system's)")
	fs.StringVar(&s.NATSTLSCert, "nats-tls-cert", s.NATSTLSCert, "PEM client certificate to present to an external NATS")
	fs.StringVar(&s.NATSTLSKey, "nats-tls-key", s.NATSTLSKey, "PEM private key of --nats-tls-cert")
}
