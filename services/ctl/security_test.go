package ctl

import (
	"strings"
	"testing"
)

// TestTLSHint: each way a TLS connection fails names the flags to check,
// including a reset right after the handshake, which is how a server that
// requires a client certificate can refuse one without (its alert lost on
// a busy machine); without TLS a reset is not called a TLS failure.
func TestTLSHint(t *testing.T) {
	for _, tc := range []struct {
		msg    string
		noCert bool
		want   string
	}{
		{"connection error: desc = \"transport: authentication handshake failed: tls: certificate required\"", true, "check --tls-ca, --tls-cert and --tls-key"},
		{"connection error: desc = \"error reading server preface: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer\"", true, "requires a client certificate does; check --tls-ca, --tls-cert and --tls-key"},
		{"connection error: desc = \"error reading server preface: EOF\"", true, "requires a client certificate"},
		{"connection error: desc = \"error reading server preface: EOF\"", false, "does it serve TLS?"},
		{"connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:9: connect: connection refused\"", true, ""},
		{"read: connection reset by peer", false, ""},
	} {
		got := tlsHint(tc.msg, "", tc.noCert)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("tlsHint(%q, noCert %v) = %q, want it to say %q", tc.msg, tc.noCert, got, tc.want)
		}
	}
}
