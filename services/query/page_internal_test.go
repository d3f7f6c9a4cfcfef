package query

import (
	"errors"
	"testing"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/wire"
)

// The page sizes a request gets (AIP-158): what TestPaging cannot see
// without a document of more than wire.PageSizeMax lines.
func TestPageSize(t *testing.T) {
	for _, tc := range []struct {
		size int32
		want int
		err  error
	}{
		{0, wire.PageSizeDefault, nil},
		{1, 1, nil},
		{wire.PageSizeMax, wire.PageSizeMax, nil},
		{wire.PageSizeMax + 1, wire.PageSizeMax, nil},
		{1 << 30, wire.PageSizeMax, nil},
		{-1, 0, ErrInvalidPageSize},
	} {
		pg, err := newPager(&billingv1.GetInvoiceRequest{Ban: "B", Month: "2018-01", PageSize: tc.size})
		if !errors.Is(err, tc.err) || (err == nil && pg.size != tc.want) {
			t.Errorf("page_size %d: %v, %v; want size %d, %v", tc.size, pg, err, tc.want, tc.err)
		}
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	for _, tok := range []pageToken{
		{request: [requestHashLen]byte{1, 2}, offset: 1000, position: 1 << 40, frozen: true},
		{request: [requestHashLen]byte{3}, offset: 7, position: 9, content: digest{4, 5, 6}},
	} {
		got, err := decodeToken(tok.encode())
		if err != nil || *got != tok {
			t.Errorf("decode(encode(%+v)) = %+v, %v", tok, got, err)
		}
	}
}

// FuzzDecodeToken: whatever a client sends as page_token, decoding it
// refuses it or gives a token that encodes back to the same text.
func FuzzDecodeToken(f *testing.F) {
	f.Add((&pageToken{offset: 10, position: 20, frozen: true}).encode())
	f.Add((&pageToken{offset: 1, position: 2, content: digest{9}}).encode())
	f.Add("")
	f.Add("not a token")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := decodeToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("decode %q: %v, want ErrInvalidPageToken", s, err)
			}
			return
		}
		if again := tok.encode(); again != s {
			t.Fatalf("decode %q gave %+v, which encodes as %q", s, tok, again)
		}
	})
}
