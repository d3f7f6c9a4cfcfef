package main

import (
	"flag"

	"github.com/ledger-billing/ledger/services/ctl"
)

// securityFlags defines, on cfg, the flags of TLS to ledgerd and of
// credentials and TLS to NATS (docs/securing.md); every command takes
// them, as it takes --grpc and --nats.
func securityFlags(fs *flag.FlagSet, cfg *ctl.Config) {
	fs.BoolVar(&cfg.TLS, "tls", cfg.TLS, "reach ledgerd's gRPC over TLS, trusting the system's roots (implied by --tls-ca and --tls-cert)")
	fs.StringVar(&cfg.TLSCA, "tls-ca", cfg.TLSCA, "PEM CA to trust for ledgerd's certificate (env LEDGERCTL_TLS_CA)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "PEM client certificate for a ledgerd that requires one (env LEDGERCTL_TLS_CERT)")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key of --tls-cert (env LEDGERCTL_TLS_KEY)")
	fs.StringVar(&cfg.NATSCreds, "nats-creds", cfg.NATSCreds, "NATS credentials file, user JWT and nkey seed (env LEDGERCTL_NATS_CREDS); a user and password go in --nats")
	fs.StringVar(&cfg.NATSTLSCA, "nats-tls-ca", cfg.NATSTLSCA, "PEM CA to trust for NATS's certificate (env LEDGERCTL_NATS_TLS_CA)")
	fs.StringVar(&cfg.NATSTLSCert, "nats-tls-cert", cfg.NATSTLSCert, "PEM client certificate for NATS (env LEDGERCTL_NATS_TLS_CERT)")
	fs.StringVar(&cfg.NATSTLSKey, "nats-tls-key", cfg.NATSTLSKey, "PEM private key of --nats-tls-cert (env LEDGERCTL_NATS_TLS_KEY)")
	fs.StringVar(&cfg.NATSInboxPrefix, "nats-inbox-prefix", cfg.NATSInboxPrefix,
		"subject prefix of the replies ledgerctl receives, for a NATS user allowed only its own, e.g. _INBOX_metering (env LEDGERCTL_NATS_INBOX_PREFIX)")
}

// securityFromEnvironment sets cfg's TLS and NATS credentials from the
// environment; flags, parsed afterwards, win.
func securityFromEnvironment(cfg *ctl.Config) {
	cfg.TLSCA = envOr("LEDGERCTL_TLS_CA", cfg.TLSCA)
	cfg.TLSCert = envOr("LEDGERCTL_TLS_CERT", cfg.TLSCert)
	cfg.TLSKey = envOr("LEDGERCTL_TLS_KEY", cfg.TLSKey)
	cfg.NATSCreds = envOr("LEDGERCTL_NATS_CREDS", cfg.NATSCreds)
	cfg.NATSTLSCA = envOr("LEDGERCTL_NATS_TLS_CA", cfg.NATSTLSCA)
	cfg.NATSTLSCert = envOr("LEDGERCTL_NATS_TLS_CERT", cfg.NATSTLSCert)
	cfg.NATSTLSKey = envOr("LEDGERCTL_NATS_TLS_KEY", cfg.NATSTLSKey)
	cfg.NATSInboxPrefix = envOr("LEDGERCTL_NATS_INBOX_PREFIX", cfg.NATSInboxPrefix)
}
