package wire

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// FinalizeDay is the day of the month on which the vendor cycle of the
// previous month is finalized.
const FinalizeDay = 10

// Sources of cycle messages: each names its messages' event ids, so a log
// says who closed a month.
const (
	SourceClock     = "clock"
	SourceLedgerctl = "ledgerctl"
)

// CloseMessage is source's BillingCycleClosed for month m. Its event_id and
// closed_at depend on the source and m alone, so closing a month twice (two
// clocks, a restart, a person and the clock) changes nothing: the cycle
// stream takes the first and the rest are no-ops. closed_at is the end of
// the month, when its billing cycle is due to close.
func CloseMessage(source string, m calendar.Month) *billingv1.BillingCycleClosed {
	return &billingv1.BillingCycleClosed{
		EventId:  source + "-billing-cycle-closed-" + m.String(),
		Month:    m.String(),
		ClosedAt: timestamppb.New(m.End()),
	}
}

// FinalizeMessage is source's VendorCycleFinalized for month m, finalized
// when it is due (FinalizeDue).
func FinalizeMessage(source string, m calendar.Month) *billingv1.VendorCycleFinalized {
	return &billingv1.VendorCycleFinalized{
		EventId:     source + "-vendor-cycle-finalized-" + m.String(),
		Month:       m.String(),
		FinalizedAt: timestamppb.New(FinalizeDue(m)),
	}
}

// FinalizeDue is when the vendor cycle of m is finalized: 00:00 UTC on the
// FinalizeDay of the next month, once the vendors' own bills are in.
func FinalizeDue(m calendar.Month) time.Time { return m.End().AddDate(0, 0, FinalizeDay-1) }
