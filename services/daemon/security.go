package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ledger-billing/ledger/services/certs"
)

// Security is the part of Config that decides who may reach ledgerd and
// how: TLS on its listeners, the credentials of its store and of NATS,
// and its secure defaults (docs/securing.md). The zero value is the
// quickstart: every listener on loopback, plaintext gRPC and HTTP, the
// embedded store over TLS with a password generated in the data
// directory.
type Security struct {
	// TLSCert and TLSKey are PEM files: with them the query service, the
	// HTTP endpoints and the embedded store serve TLS only. They are
	// reloaded when they change, without a restart.
	TLSCert, TLSKey string
	// TLSClientCA (PEM), with TLSCert, makes gRPC and HTTP require a
	// client certificate signed by it (mTLS). Reloaded too.
	TLSClientCA string
	// Insecure lets a listener take an address other than loopback
	// without the authentication it would need (for the embedded store,
	// at all); ledgerd then warns at start and on /healthz.
	Insecure bool

	// EventstorePasswordFile holds the password of the embedded store's
	// user (eventstore.User); empty: ledgerd generates one at first start
	// in <data-dir>/eventstore-password (mode 0600). With EventstoreURL
	// it is the password of the user the URL names instead, so that a
	// KurrentDB password need not be written in the URL.
	EventstorePasswordFile string

	// NATSConfig is a nats-server configuration file for the embedded
	// NATS (accounts, users, permissions, TLS); ledgerd then connects to
	// it in process, as one of the file's users (NATSCreds or NATSUser).
	NATSConfig string
	// NATSCreds is a NATS credentials file (user JWT and nkey seed) that
	// ledgerd authenticates with.
	NATSCreds string
	// NATSUser and NATSPasswordFile are a NATS user and the file of its
	// password, the other way ledgerd authenticates (or user:password in
	// NATSURL).
	NATSUser, NATSPasswordFile string
	// NATSTLSCA (PEM) is the authority ledgerd trusts for an external
	// NATS's certificate (empty: the system's); NATSTLSCert and
	// NATSTLSKey a client certificate to present to it.
	NATSTLSCA, NATSTLSCert, NATSTLSKey string
}

// security is what the daemon derived from Config.Security at start.
type security struct {
	tls *certs.Reloader // nil without TLSCert
	// natsFile is NATSConfig, parsed; nil without one.
	natsFile *server.Options
	// insecure names the listeners only Insecure let start, for the
	// warnings.
	insecure []string
}

// secure checks the configuration before anything listens: it refuses
// an exposed listener without authentication (unless Insecure), and
// loads the TLS identity and the NATS configuration file, so that each
// error is one sentence at start rather than a failure later.
func (d *Daemon) secure() error {
	cfg := d.cfg
	switch {
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	case cfg.TLSClientCA != "" && cfg.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for in a TLS handshake")
	case cfg.NATSConfig != "" && cfg.NATSURL != "":
		return errors.New("--nats-config configures the embedded NATS, and --nats-url names an external one: give one of them")
	case cfg.NATSPasswordFile != "" && cfg.NATSUser == "":
		return errors.New("--nats-password-file needs --nats-user, the user it is the password of")
	case cfg.NATSCreds != "" && cfg.NATSUser != "":
		return errors.New("--nats-creds and --nats-user are two ways to authenticate to NATS: give one of them")
	}
	if cfg.TLSCert != "" {
		r, err := certs.NewReloader(certs.Files{Cert: cfg.TLSCert, Key: cfg.TLSKey, ClientCA: cfg.TLSClientCA}, d.log)
		if err != nil {
			return fmt.Errorf("the TLS certificate cannot be loaded (--tls-cert, --tls-key, --tls-client-ca): %w", err)
		}
		d.sec.tls = r
	}
	if cfg.NATSConfig != "" {
		opts, err := server.ProcessConfigFile(cfg.NATSConfig)
		if err != nil {
			return fmt.Errorf("the NATS configuration file %s (--nats-config) cannot be used: %w", cfg.NATSConfig, err)
		}
		d.sec.natsFile = opts
	}
	return d.checkExposure()
}

// A listener and what it needs before it may leave loopback.
type exposure struct {
	what, addr string // "--grpc-listen", "0.0.0.0:9090"
	// authenticated says whether its callers must authenticate; refusal
	// ends the sentence that refuses it otherwise.
	authenticated bool
	refusal       string
}

// checkExposure refuses, in one sentence, a listener on an address other
// than loopback whose callers need not authenticate: the query service
// and HTTP without bearer tokens (AuthJWKS), the embedded NATS without
// users in --nats-config, and the embedded store in any case (it is the
// history; only ledgerd needs it). Insecure turns each refusal into a
// warning.
func (d *Daemon) checkExposure() error {
	cfg := d.cfg
	tokens := "no authentication is configured (--auth-jwks); configure it, listen on loopback, or give --insecure to serve without it"
	listeners := []exposure{
		{"--grpc-listen", cfg.GRPCListen, cfg.AuthConfigured(), tokens},
		{"--http-listen", cfg.HTTPListen, cfg.AuthConfigured(), tokens},
	}
	if cfg.NATSURL == "" {
		listeners = append(listeners, exposure{"--nats-listen", cfg.NATSListen, natsAuthenticates(d.sec.natsFile),
			"the embedded NATS has no users (--nats-config with users or accounts); configure them, listen on loopback, or give --insecure to serve without them"})
		if addr := natsMonitoring(d.sec.natsFile, cfg.NATSListen); addr != "" {
			listeners = append(listeners, exposure{"--nats-config's monitoring (http)", addr, false,
				"NATS monitoring asks for no authentication; put it on loopback, or give --insecure to expose it anyway"})
		}
	}
	if cfg.EventstoreURL == "" {
		listeners = append(listeners, exposure{"--eventstore-listen", cfg.EventstoreListen, false,
			"the embedded store serves ledgerd alone; listen on loopback, or give --insecure to expose it anyway"})
	}
	for _, l := range listeners {
		if l.authenticated || isLoopback(l.addr) {
			continue
		}
		if !cfg.Insecure {
			return fmt.Errorf("%s %s is not a loopback address and %s", l.what, l.addr, l.refusal)
		}
		d.sec.insecure = append(d.sec.insecure, l.what+" "+l.addr)
	}
	if len(d.sec.insecure) > 0 {
		d.log.Warn("ledgerd: --insecure: listening beyond loopback without authentication: " + strings.Join(d.sec.insecure, ", "))
	}
	if d.sec.tls == nil {
		for _, l := range listeners[:2] {
			if l.authenticated && !isLoopback(l.addr) {
				d.log.Warn("ledgerd: bearer tokens would cross the network in the clear: give --tls-cert and --tls-key", "flag", l.what, "addr", l.addr)
			}
		}
	}
	return nil
}

// healthz is /healthz's answer: "ok", and a warning while Insecure lets
// a listener serve beyond loopback without authentication.
func (d *Daemon) healthz() string {
	if len(d.sec.insecure) == 0 {
		return "ok\n"
	}
	return "ok\nwarning: --insecure: listening beyond loopback without authentication: " + strings.Join(d.sec.insecure, ", ") + "\n"
}

// natsAuthenticates reports whether a nats-server configuration makes
// clients authenticate: users, nkeys, operator JWTs, a token or an
// authorization callout, and no no_auth_user to let anonymous clients in
// as one of them.
func natsAuthenticates(o *server.Options) bool {
	return o != nil && o.NoAuthUser == "" &&
		(len(o.Users) > 0 || len(o.Nkeys) > 0 || len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0 ||
			o.Username != "" || o.Authorization != "" || o.AuthCallout != nil)
}

// natsMonitoring is the address of the monitoring endpoint a NATS
// configuration opens (http or https), "" for none. Without a host of
// its own it listens on the client address's, --nats-listen's.
func natsMonitoring(o *server.Options, listen string) string {
	if o == nil {
		return ""
	}
	port := o.HTTPPort
	if port == 0 {
		port = o.HTTPSPort
	}
	if port == 0 {
		return ""
	}
	host := o.HTTPHost
	if host == "" {
		host = hostOf(listen)
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// isLoopback reports whether a listen address reaches this machine only:
// a loopback IP, "localhost", or a name every address of which is
// loopback. An empty host (":9090") or an unspecified one ("0.0.0.0",
// "[::]") is every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false
		}
	}
	return true
}
