package daemon

import (
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ledger-billing/ledger/services/certs"
	"github.com/ledger-billing/ledger/services/secret"
	"github.com/ledger-billing/ledger/services/wire"
)

// withNATSConfig returns the embedded NATS's options: ledgerd's own, or,
// with --nats-config, the file's with ledgerd's laid over them.
//
// The file is the configuration: accounts, users and their permissions,
// TLS, limits. ledgerd overrides what it owns, saying so when the file
// had it otherwise: the client address (--nats-listen, which the secure
// defaults checked), JetStream on with its store in <data-dir>/nats
// (where the disk watchdog looks), and signals (ledgerd's to handle). It
// fills in what the file leaves out: server_name, max_payload (8 MiB, so
// that the largest message Ledger accepts fits) and the sync policy
// (--nats-sync); a file's max_payload or sync_interval wins.
func (d *Daemon) withNATSConfig(own *server.Options) *server.Options {
	f := d.sec.natsFile
	if f == nil {
		return own
	}
	file := d.cfg.NATSConfig
	if (f.Host != "" || f.Port != 0) && (f.Host != own.Host || f.Port != own.Port) {
		d.log.Warn("ledgerd: the NATS configuration's client address is replaced by --nats-listen", "file", file, "listen", d.cfg.NATSListen)
	}
	if f.StoreDir != "" && f.StoreDir != own.StoreDir {
		d.log.Warn("ledgerd: the NATS configuration's JetStream store_dir is replaced by the data directory's", "file", file, "store_dir", own.StoreDir)
	}
	f.Host, f.Port = own.Host, own.Port
	f.JetStream, f.StoreDir = true, own.StoreDir
	f.NoSigs = true
	if f.ServerName == "" {
		f.ServerName = own.ServerName
	}
	switch {
	case f.MaxPayload == 0:
		f.MaxPayload = own.MaxPayload
	case f.MaxPayload < own.MaxPayload:
		d.log.Warn("ledgerd: the NATS configuration's max_payload refuses the largest messages Ledger accepts", "file", file, "max_payload", f.MaxPayload, "largest", wire.PayloadMax)
	}
	if !f.SyncAlways && f.SyncInterval == 0 {
		f.SyncAlways = own.SyncAlways
	}
	return f
}

// natsClient is the URL ledgerd's own connection dials and the options
// of how it authenticates (--nats-creds, or --nats-user with
// --nats-password-file; a user and password may instead be in
// --nats-url) and secures itself. With --nats-config it connects to the
// embedded server in process, in plaintext: the file's TLS is for the
// other clients (its certificate names the host, not a pipe), and the
// client port may require what ledgerd cannot give.
func (d *Daemon) natsClient() (string, []nats.Option, error) {
	opts, err := d.natsClientOptions()
	if err != nil {
		return "", nil, err
	}
	if d.nats != nil && d.sec.natsFile != nil {
		// A tls:// URL would make the client start TLS on the pipe.
		return "nats://in-process", append(opts, nats.InProcessServer(d.nats)), nil
	}
	return d.natsURL, opts, nil
}

func (d *Daemon) natsClientOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if d.cfg.NATSCreds != "" {
		if _, err := os.Stat(d.cfg.NATSCreds); err != nil {
			return nil, fmt.Errorf("the NATS credentials cannot be read (--nats-creds): %w", err)
		}
		opts = append(opts, nats.UserCredentials(d.cfg.NATSCreds))
	}
	if d.cfg.NATSUser != "" {
		password := ""
		if d.cfg.NATSPasswordFile != "" {
			var err error
			if password, err = secret.ReadFile(d.cfg.NATSPasswordFile); err != nil {
				return nil, fmt.Errorf("the NATS password cannot be read (--nats-password-file): %w", err)
			}
		}
		opts = append(opts, nats.UserInfo(d.cfg.NATSUser, password))
	}
	if d.nats != nil && d.sec.natsFile != nil {
		return opts, nil
	}
	if d.cfg.NATSTLSCA != "" || d.cfg.NATSTLSCert != "" {
		tlsConfig, err := certs.ClientConfig(d.cfg.NATSTLSCA, d.cfg.NATSTLSCert, d.cfg.NATSTLSKey)
		if err != nil {
			return nil, fmt.Errorf("NATS TLS (--nats-tls-ca, --nats-tls-cert, --nats-tls-key): %w", err)
		}
		opts = append(opts, nats.Secure(tlsConfig))
	}
	return opts, nil
}
