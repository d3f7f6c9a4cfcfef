package pages

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// BenchmarkDecodePage decodes a page of 100 invoice lines of a dozen
// details each (about 66 KB, as ledgerbench's invoices) with protobuf-go,
// with the generated code as pages.DialOption does, and with the generated
// code into a message reused from page to page (docs/scaling.md, "Queries").
func BenchmarkDecodePage(b *testing.B) {
	data, err := proto.Marshal(samplePage(100, 12))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("protobuf-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m billingv1.GetInvoiceResponse
			if err := proto.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m billingv1.GetInvoiceResponse
			if err := m.UnmarshalVTUnsafe(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generated-reused", func(b *testing.B) {
		b.ReportAllocs()
		m := new(billingv1.GetInvoiceResponse)
		for b.Loop() {
			m.ResetVT()
			if err := m.UnmarshalVTUnsafe(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// samplePage is an invoice page shaped as ledgerbench's: lines of one
// account each, with details per service and region.
func samplePage(lines, details int) *billingv1.GetInvoiceResponse {
	inv := &billingv1.Invoice{Ban: "bench-BAN-000", Month: "2025-01", Total: &billingv1.Money{Amount: "2021034.66", Currency: "USD"}}
	for i := range lines {
		acct := fmt.Sprintf("bench-000-%06d", 400+i)
		l := &billingv1.InvoiceLine{
			Kind: billingv1.LineKind_LINE_KIND_CHARGES, Vendor: "AWS", AccountId: acct,
			ProviderName: "AWS account " + acct, Alias: fmt.Sprintf("acct-%d", 400+i), CostCenterId: "cc-00",
			ForMonth: "2025-01", Description: "Charges", Ban: "bench-BAN-000",
			Amount: &billingv1.Money{Amount: "289.81", Currency: "USD"},
		}
		for j := range details {
			l.Details = append(l.Details, &billingv1.InvoiceLineDetail{
				Service: fmt.Sprintf("Amazon Service %d", j%6), Region: fmt.Sprintf("us-east-%d", j%3),
				Amount: &billingv1.Money{Amount: fmt.Sprintf("%d.%02d", 10+j, j), Currency: "USD"},
			})
		}
		inv.Lines = append(inv.Lines, l)
	}
	return &billingv1.GetInvoiceResponse{Invoice: inv, Position: 30151, NextPageToken: "token"}
}
