package eventstore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// storeOps are the calls of the official client an intruder would make:
// read the history, append to it, delete and tombstone a stream, follow
// it. Each returns the call's error, reading a read or a subscription
// as far as its first answer.
func storeOps(ctx context.Context, c *esdb.Client) map[string]func() error {
	return map[string]func() error{
		"read a stream": func() error {
			_, err := testkit.ReadStream(ctx, c, "billingcycle-2025-01", 10)
			return err
		},
		"read $all": func() error {
			rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{}, 10)
			if err != nil {
				return err
			}
			defer rs.Close()
			_, err = rs.Recv()
			return err
		},
		"append": func() error {
			_, err := c.AppendToStream(ctx, "usage-forged", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, event("billing.v1.UsageReported", "999999.99"))
			return err
		},
		"delete": func() error {
			_, err := c.DeleteStream(ctx, "billingcycle-2025-01", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Any{}})
			return err
		},
		"tombstone": func() error {
			_, err := c.TombstoneStream(ctx, "billingcycle-2025-01", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}})
			return err
		},
		"subscribe to $all": func() error {
			sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}})
			if err != nil {
				return err
			}
			defer sub.Close()
			if ev := sub.Recv(); ev.SubscriptionDropped != nil {
				return ev.SubscriptionDropped.Error
			}
			return nil
		},
		"subscribe to a stream": func() error {
			sub, err := c.SubscribeToStream(ctx, "billingcycle-2025-01", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
			if err != nil {
				return err
			}
			defer sub.Close()
			if ev := sub.Recv(); ev.SubscriptionDropped != nil {
				return ev.SubscriptionDropped.Error
			}
			return nil
		},
	}
}

// TestCredentialsRequired: with a password, every call of the official
// client without the right credentials is refused UNAUTHENTICATED, reads
// and subscriptions included; with them, each works.
func TestCredentialsRequired(t *testing.T) {
	t.Parallel()
	const password = "correct horse battery staple"
	s := testkit.StartStore(t, eventstore.Config{Password: password})
	ctx := ctxT(t)
	owner := testkit.Client(t, s.URL())
	appendOK(t, owner, "billingcycle-2025-01", esdb.NoStream{}, event("billing.v1.BillingCycleClosed", "2025-01"))

	for who, user := range map[string]*url.Userinfo{
		"anonymous":          nil,
		"wrong password":     url.UserPassword(eventstore.User, "changeit"),
		"wrong user":         url.UserPassword("ledgerd", password),
		"password as prefix": url.UserPassword(eventstore.User, password+"x"),
	} {
		c := testkit.Client(t, s.URLAs(user))
		for name, op := range storeOps(ctx, c) {
			t.Run(who+"/"+name, func(t *testing.T) {
				err := op()
				if errorCode(err) != esdb.ErrorCodeUnauthenticated {
					t.Fatalf("%s: %v, want UNAUTHENTICATED", name, err)
				}
				if strings.Contains(err.Error(), password) {
					t.Fatalf("the error shows the password: %v", err)
				}
			})
		}
	}
	if got, err := testkit.ReadStream(ctx, owner, "billingcycle-2025-01", 10); err != nil || len(got) != 1 {
		t.Fatalf("after the refused calls the stream reads %d events, %v; want its one event untouched", len(got), err)
	}

	t.Run("with the credentials, every call works", func(t *testing.T) {
		ops := storeOps(ctx, owner)
		for _, name := range []string{"read a stream", "read $all", "append", "subscribe to $all", "subscribe to a stream", "delete", "tombstone"} {
			if err := ops[name](); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})

	t.Run("plaintext to the TLS port fails", func(t *testing.T) {
		c := testkit.Client(t, "esdb://"+url.UserPassword(eventstore.User, password).String()+"@"+s.Addr+"?tls=false&maxDiscoverAttempts=1")
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := testkit.ReadStream(short, c, "billingcycle-2025-01", 10)
		if err == nil {
			t.Fatal("a plaintext client read the store")
		}
		t.Logf("plaintext: %v", err)
	})
}

func TestPasswordNeedsTLS(t *testing.T) {
	t.Parallel()
	_, err := eventstore.Open(eventstore.Config{Dir: t.TempDir(), Password: "x"})
	if !errors.Is(err, eventstore.ErrPasswordWithoutTLS) {
		t.Fatalf("Open with a password and no TLS: %v, want ErrPasswordWithoutTLS", err)
	}
	srv, err := eventstore.Open(eventstore.Config{Dir: t.TempDir(), Password: "x", TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
}
