package document

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// TestDigestByHand recomputes a digest the way README's "Auditing" tells an
// auditor to: the canonical JSON written out by hand, then SHA-256. Position
// and lineage are left out of what is digested.
func TestDigestByHand(t *testing.T) {
	inv := &billingv1.Invoice{
		Ban: "BAN-1", OrgId: "org-1", Month: "2018-01",
		Status:   billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED,
		IssuedAt: timestamppb.New(mustTime(t, "2018-02-01T00:00:00Z")),
		Currency: "USD",
		Lines: []*billingv1.InvoiceLine{{
			Kind: billingv1.LineKind_LINE_KIND_CHARGES, Vendor: "AWS", AccountId: "111", ForMonth: "2018-01",
			Amount:  &billingv1.Money{Amount: "4.00", Currency: "USD"},
			Details: []*billingv1.InvoiceLineDetail{{Service: "EC2", Region: "us-east-1", Amount: &billingv1.Money{Amount: "4.00", Currency: "USD"}, EventIds: []string{"u-1"}}},
		}},
		Total:    &billingv1.Money{Amount: "4.00", Currency: "USD"},
		Position: 1234,
	}
	canonical := `{"ban":"BAN-1","currency":"USD","issued_at":"2018-02-01T00:00:00Z","lines":[{"account_id":"111","amount":{"amount":"4.00","currency":"USD"},"details":[{"amount":{"amount":"4.00","currency":"USD"},"region":"us-east-1","service":"EC2"}],"for_month":"2018-01","kind":"LINE_KIND_CHARGES","vendor":"AWS"}],"month":"2018-01","org_id":"org-1","status":"INVOICE_STATUS_ISSUED","total":{"amount":"4.00","currency":"USD"}}`
	sum := sha256.Sum256([]byte(canonical))
	got, err := Digest(inv)
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Digest = %s, want %s (SHA-256 of %s)", got, want, canonical)
	}
	if inv.Position != 1234 || len(inv.Lines[0].Details[0].EventIds) != 1 {
		t.Error("Digest changed the message it was given")
	}
	// The digest is of the document, not of its position or lineage.
	inv.Position = 0
	inv.Lines[0].Details[0].EventIds = nil
	if again, _ := Digest(inv); again != got {
		t.Errorf("digest with position and lineage cleared = %s, want %s", again, got)
	}
	inv.Total.Amount = "4.01"
	if other, _ := Digest(inv); other == got {
		t.Error("a changed total kept the digest")
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
