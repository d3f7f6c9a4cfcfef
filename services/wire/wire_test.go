package wire

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/calendar"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

func TestSubjectsRoundTrip(t *testing.T) {
	for _, in := range Inputs {
		subject, err := Subject(in.New())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := InputOf(subject)
		if !ok || got.Token != in.Token {
			t.Errorf("InputOf(%q) = %v, %v; want %s", subject, got, ok, in.Token)
		}
		if want := DLQPrefix + in.Token; DLQSubject(subject) != want {
			t.Errorf("DLQSubject(%q) = %q, want %q", subject, DLQSubject(subject), want)
		}
	}
	// Outputs and ledgerd's own audit records are never input: a publisher
	// must not be able to forge what ledgerd says it issued or sealed.
	for _, m := range []proto.Message{&billingv1.InvoiceIssued{}, &billingv1.DocumentIssued{}, &billingv1.LogSealed{}} {
		if _, err := Subject(m); err == nil {
			t.Errorf("Subject of %T: no error; it must not be an input", m)
		}
	}
	if got := DLQSubject("elsewhere.x"); got != DLQPrefix+"unknown" {
		t.Errorf("DLQSubject of a foreign subject = %q", got)
	}
	if got := InvoiceIssuedSubject("BAN.1 *>"); got != InvoiceIssuedPrefix+"BAN_1___" {
		t.Errorf("InvoiceIssuedSubject = %q: NATS wildcards and separators must not survive", got)
	}
}

func TestCycleMessagesDependOnSourceAndMonthAlone(t *testing.T) {
	m := calendar.New(2026, time.February)
	a, b := CloseMessage(SourceClock, m), CloseMessage(SourceClock, m)
	if a.EventId != b.EventId || !a.ClosedAt.AsTime().Equal(b.ClosedAt.AsTime()) {
		t.Errorf("two closes of one month differ: %v, %v", a, b)
	}
	if CloseMessage(SourceLedgerctl, m).EventId == a.EventId {
		t.Error("the clock's and ledgerctl's closes share an event_id")
	}
	if got := a.ClosedAt.AsTime(); !got.Equal(time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("closed_at = %v, want the end of February", got)
	}
	f := FinalizeMessage(SourceClock, m)
	if got := f.FinalizedAt.AsTime(); !got.Equal(time.Date(2026, time.March, FinalizeDay, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("finalized_at = %v, want 00:00 UTC on the %dth of March", got, FinalizeDay)
	}
}

func TestFromStatus(t *testing.T) {
	st, err := status.New(codes.NotFound, `ban "B" is not the BAN of any organization or cost center`).
		WithDetails(&errdetails.ErrorInfo{Reason: string(ReasonUnknownBAN), Domain: ErrorDomain})
	if err != nil {
		t.Fatal(err)
	}
	got := FromStatus(st.Err())
	if !errors.Is(got, ReasonUnknownBAN) || errors.Is(got, ReasonNotBilled) {
		t.Errorf("FromStatus(%v) matches the wrong reasons", got)
	}
	if s, ok := status.FromError(got); !ok || s.Code() != codes.NotFound {
		t.Errorf("status.FromError(FromStatus(...)) = %v, %v; want the original status", s, ok)
	}
	foreign, _ := status.New(codes.NotFound, "x").WithDetails(&errdetails.ErrorInfo{Reason: "UNKNOWN_BAN", Domain: "elsewhere"})
	if got := FromStatus(foreign.Err()); errors.Is(got, ReasonUnknownBAN) {
		t.Error("a reason of another domain matched")
	}
	plain := errors.New("not a status")
	if FromStatus(plain) != plain {
		t.Error("a plain error was not returned unchanged")
	}
}
