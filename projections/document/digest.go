package document

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// Digest returns the digest of an invoice as GetInvoice returns it: the
// lowercase hex SHA-256 of its protojson, with proto field names,
// canonicalized by RFC 8785, with position cleared and no lineage
// (README, "Auditing"). Not of its protobuf encoding, which protobuf does
// not promise to keep byte for byte across versions: an auditor may
// recompute a digest years later, or in another language, from the JSON.
//
// msg is not changed: a message with a position or lineage is copied.
func Digest(msg *billingv1.Invoice) (string, error) {
	if msg.GetPosition() != 0 || hasLineage(msg) {
		msg = proto.CloneOf(msg)
		msg.Position = 0
		for _, l := range msg.Lines {
			for _, d := range l.Details {
				d.EventIds = nil
			}
		}
	}
	text, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("document: digest: %w", err)
	}
	canon, err := Canonicalize(text)
	if err != nil {
		return "", fmt.Errorf("document: digest: %w", err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// DigestOf returns the digest of a document of the projection, as Digest
// would of the message GetInvoice returns for it; an issued document's is
// computed once (billing.Invoice.DigestWith).
func DigestOf(inv *billing.Invoice) (string, error) {
	return inv.DigestWith(digestOf)
}

func digestOf(inv *billing.Invoice) (string, error) {
	return Digest(Invoice(inv, false))
}

func hasLineage(msg *billingv1.Invoice) bool {
	for _, l := range msg.GetLines() {
		for _, d := range l.GetDetails() {
			if len(d.GetEventIds()) > 0 {
				return true
			}
		}
	}
	return false
}
