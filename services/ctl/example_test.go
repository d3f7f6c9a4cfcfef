package ctl_test

import (
	"fmt"

	"github.com/ledger-billing/ledger/projections/calendar"
	"github.com/ledger-billing/ledger/services/ctl"
)

// FOCUS names the company that bills; Ledger names the cloud.
func ExampleVendor() {
	for _, provider := range []string{"AWS", "Microsoft", "Google Cloud", "Oracle", "Alibaba Cloud"} {
		fmt.Printf("%s -> %s\n", provider, ctl.Vendor(provider))
	}
	// Output:
	// AWS -> AWS
	// Microsoft -> Azure
	// Google Cloud -> GCP
	// Oracle -> Oracle
	// Alibaba Cloud -> Alibaba Cloud
}

// A close depends on its month alone, so closing a month twice is one
// close.
func ExampleCloseMessage() {
	m, _ := calendar.Parse("2025-01")
	msg := ctl.CloseMessage(m)
	fmt.Println(msg.GetEventId(), msg.GetClosedAt().AsTime().Format("2006-01-02T15:04:05Z07:00"))
	// Output: ledgerctl-billing-cycle-closed-2025-01 2025-02-01T00:00:00Z
}
