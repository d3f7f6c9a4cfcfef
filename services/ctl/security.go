package ctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/ledger-billing/ledger/services/certs"
	"github.com/ledger-billing/ledger/services/secret"
)

// tlsConfig is the TLS of ledgerd's gRPC and HTTP, nil for plaintext.
func (c *Client) tlsConfig() (*tls.Config, error) {
	if !c.cfg.TLS && c.cfg.TLSCA == "" && c.cfg.TLSCert == "" {
		return nil, nil
	}
	cfg, err := certs.ClientConfig(c.cfg.TLSCA, c.cfg.TLSCert, c.cfg.TLSKey)
	if err != nil {
		return nil, Usagef("--tls-ca, --tls-cert, --tls-key: %v", err)
	}
	return cfg, nil
}

// grpcTLSWithoutCert says ledgerctl speaks TLS to ledgerd (gRPC and HTTP)
// without a client certificate.
func (c *Client) grpcTLSWithoutCert() bool {
	return (c.cfg.TLS || c.cfg.TLSCA != "") && c.cfg.TLSCert == ""
}

// natsAddr is the NATS URL as messages show it: without its password.
func (c *Client) natsAddr() string { return secret.Redact(c.cfg.NATS) }

// natsOptions are the credentials and TLS of the NATS connection.
func (c *Client) natsOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if c.cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.cfg.NATSCreds))
	}
	if c.cfg.NATSTLSCA != "" || c.cfg.NATSTLSCert != "" {
		tlsConfig, err := certs.ClientConfig(c.cfg.NATSTLSCA, c.cfg.NATSTLSCert, c.cfg.NATSTLSKey)
		if err != nil {
			return nil, Usagef("--nats-tls-ca, --nats-tls-cert, --nats-tls-key: %v", err)
		}
		opts = append(opts, nats.Secure(tlsConfig))
	}
	if c.cfg.NATSInboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.cfg.NATSInboxPrefix))
	}
	return opts, nil
}

// tlsHint says, from a failed connection's message, that TLS is what
// failed, and which flags to look at (prefix "" for ledgerd's, "nats-"
// for NATS's); "" when it is not. noCert says the client spoke TLS
// without a certificate of its own.
func tlsHint(msg, prefix string, noCert bool) string {
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") || strings.Contains(msg, "certificate"):
		return fmt.Sprintf("the TLS handshake failed (%s); check --%stls-ca, --%stls-cert and --%stls-key", secret.Redact(msg), prefix, prefix, prefix)
	case noCert && (strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "EOF") || strings.Contains(msg, "broken pipe")):
		// In TLS 1.3 the client's side of the handshake ends before the
		// server has checked it, so a server that wants a client
		// certificate refuses on the first read, with an alert that a
		// busy machine can lose to the connection's reset.
		return fmt.Sprintf("it closed the connection after the TLS handshake, as a server that requires a client certificate does; check --%stls-ca, --%stls-cert and --%stls-key", prefix, prefix, prefix)
	case strings.Contains(msg, "HTTP response to HTTPS client"):
		return fmt.Sprintf("it does not serve TLS: leave out --%stls-ca, --%stls-cert and --%stls-key", prefix, prefix, prefix)
	case strings.Contains(msg, "server preface") || strings.Contains(msg, "secure connection"):
		return fmt.Sprintf("it closed the connection at once: does it serve TLS? (--%stls-ca trusts its certificate)", prefix)
	}
	return ""
}

// asyncError hears what NATS says outside any call. A permissions
// violation ends the publish in flight at once, with the violation as
// its cause, rather than when its acknowledgement times out: NATS drops
// a refused publish and only tells the connection.
func (c *Client) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	c.refuseMu.Lock()
	refuse := c.refuse
	c.refuseMu.Unlock()
	if refuse != nil {
		refuse(err)
	}
}

// refusable derives a context that asyncError cancels; done ends it.
func (c *Client) refusable(ctx context.Context) (_ context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	c.refuseMu.Lock()
	c.refuse = cancel
	c.refuseMu.Unlock()
	return ctx, func() {
		c.refuseMu.Lock()
		c.refuse = nil
		c.refuseMu.Unlock()
		cancel(nil)
	}
}

// refusedOr is the refusal that ended ctx, if NATS refused this user
// something (see asyncError), else err.
func (c *Client) refusedOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, nats.ErrPermissionViolation) {
		return fmt.Errorf("NATS at %s refused this user: %w%s", c.natsAddr(), cause, inboxHint(cause))
	}
	return err
}

// inboxHint explains a refused subscription to a publish's reply inbox.
func inboxHint(violation error) string {
	if strings.Contains(violation.Error(), "Subscription to") {
		return " (replies come to an inbox this user may not subscribe to: give --nats-inbox-prefix)"
	}
	return ""
}
