package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/net/html"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/ctl"
	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/token"
	"github.com/ledger-billing/ledger/services/wire"
)

// hostileName is an organization name from the history that a page must
// show as text, never as markup.
const hostileName = `<script>alert("pwned")</script><img src=x onerror=alert(1)> & "Evil"`

// rig is a whole ledgerd that authenticates with the tokens of a test
// issuer, with the demo's history and an organization of hostile name.
// One is shared by the package's tests, as loading the demo takes
// seconds.
type rig struct {
	d      *daemon.Daemon
	iss    *testkit.Issuer
	base   string
	client billingv1.BillingServiceClient
	// operator is an operator's token.
	operator string
}

var shared struct {
	once sync.Once
	r    *rig
	err  error
	dir  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.r != nil {
		shared.r.d.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// issuerTB lets the shared issuer outlive the test that made it.
type issuerTB struct{ testing.TB }

func (issuerTB) TempDir() string {
	dir, err := os.MkdirTemp(shared.dir, "issuer-")
	if err != nil {
		panic(err)
	}
	return dir
}

func demoRig(t *testing.T) *rig {
	t.Helper()
	shared.once.Do(func() { shared.r, shared.err = newRig(t) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.r
}

func newRig(t *testing.T) (*rig, error) {
	var err error
	if shared.dir, err = os.MkdirTemp("", "console-test-"); err != nil {
		return nil, err
	}
	iss := testkit.NewIssuer(issuerTB{t})
	cfg := daemontest.Config(shared.dir + "/data")
	cfg.AuthJWKS, cfg.AuthIssuer = iss.JWKSPath, iss.Name
	d, err := daemon.Start(cfg)
	if err != nil {
		return nil, fmt.Errorf("start ledgerd: %w", err)
	}
	r := &rig{d: d, iss: iss, base: "http://" + d.HTTPAddr()}
	// Tokens for the whole run: the rig outlives the test that made it.
	r.operator = iss.Token(t, token.Operator)
	conn, err := grpc.NewClient(d.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	r.client = billingv1.NewBillingServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := ctl.New(ctl.Config{GRPC: d.GRPCAddr(), NATS: d.NATSURL(), Token: r.operator, Wait: time.Minute})
	defer c.Close()
	if err := c.Demo(ctx); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := publish(ctx, d.NATSURL(), &billingv1.OrganizationRegistered{EventId: "evil-org", OrgId: "evil", Name: hostileName, Ban: `BAN-"><b>x</b>`, Currency: "JPY"}); err != nil {
		return nil, err
	}
	// Wait until the console lists it.
	for !strings.Contains(r.fetch(t, r.operator, "/").body, "dashboard?org=evil") {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("the hostile organization never showed: %w", ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r, nil
}

// publish publishes one input message as ledgerctl does.
func publish(ctx context.Context, url string, msg proto.Message) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	subject, err := wire.Subject(msg)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, subject, data)
	return err
}

// as returns a gRPC call context with tok.
func as(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, token.Header, "Bearer "+tok)
}

// response is a page as a browser gets it.
type response struct {
	code   int
	header http.Header
	body   string
	doc    *html.Node
}

// fetch GETs a path as a browser would (Accept: text/html), with tok as
// the bearer token unless it is empty.
func (r *rig) fetch(t testing.TB, tok, path string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{code: resp.StatusCode, header: resp.Header, body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if out.doc, err = html.Parse(strings.NewReader(out.body)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// find returns the elements of doc that match.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if n == nil {
		return nil
	}
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

// byClass matches elements of a tag with a class.
func byClass(tag, class string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		return n.Data == tag && hasClass(n, class)
	}
}

func hasClass(n *html.Node, class string) bool {
	for _, f := range strings.Fields(attr(n, "class")) {
		if f == class {
			return true
		}
	}
	return false
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is the text of a node and its descendants, spaces collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
