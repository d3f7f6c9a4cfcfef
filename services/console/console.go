package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/access"
	"github.com/ledger-billing/ledger/services/token"
)

// Queries is what the console reads: the query service, called in
// process. services/query's *Service is the one implementation.
type Queries = billingv1.BillingServiceServer

// CookieName is the cookie the sign-in page keeps a token in.
const CookieName = "ledger_token"

// Limits, so that one request costs a bounded amount.
const (
	// tokenMax bounds a token pasted into the sign-in page, as
	// ledgerd's MaxHeaderBytes bounds one in a header.
	tokenMax = 16 << 10
	// callTimeout bounds each page's calls to the query service, which
	// wait for the projections to catch up.
	callTimeout = 30 * time.Second
	// cookieTTL is how long a browser keeps a token; the token's own exp
	// still applies.
	cookieTTL = 12 * time.Hour
)

// Ranges are the choices of the range dropdowns, in months.
var Ranges = []int{3, 6, 12, 24}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a Console.
type Config struct {
	// Queries answers every page.
	Queries Queries
	// Auth reports whether ledgerd authenticates callers; without it the
	// sign-in page says so, and every page is open (on loopback).
	Auth bool
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock of the cookie's expiry; nil is time.Now.
	Now func() time.Time
}

// Console serves the pages. Create it with New.
type Console struct {
	cfg  Config
	log  *slog.Logger
	tmpl map[string]*template.Template
	mux  *http.ServeMux
}

// New returns the console over cfg.Queries.
func New(cfg Config) (*Console, error) {
	if cfg.Queries == nil {
		return nil, errors.New("console: no query service")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, log: cfg.Logger, tmpl: make(map[string]*template.Template), mux: http.NewServeMux()}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		c.tmpl[name] = t
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /{$}", c.organizations)
	c.mux.HandleFunc("GET /dashboard", c.dashboard)
	c.mux.HandleFunc("GET /usage", c.usage)
	c.mux.HandleFunc("GET /invoices", c.invoices)
	c.mux.HandleFunc("GET /invoice", c.invoice)
	c.mux.HandleFunc("GET /invoice.csv", c.invoiceCSV)
	c.mux.HandleFunc("GET /adjustments", c.adjustments)
	c.mux.HandleFunc("GET /exceptions", c.exceptions)
	c.mux.HandleFunc("GET /signin", c.signinPage)
	c.mux.HandleFunc("POST /signin", c.signin)
	c.mux.HandleFunc("POST /signout", c.signout)
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
	return c, nil
}

// ServeHTTP serves the console's pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything the pages use is their own: no CDN, no inline script.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

// Front goes in front of ledgerd's access guard on the whole HTTP
// handler: a browser's request without an Authorization header gets the
// token of the sign-in cookie in one, and the guard's 401 and 403 answers
// to a browser become the console's pages (a sign-in form; what the role
// may not do) instead of a line of text. The guard still decides.
func (c *Console) Front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(token.Header) == "" {
			if ck, err := r.Cookie(CookieName); err == nil && ck.Value != "" {
				r = r.Clone(r.Context())
				r.Header.Set(token.Header, "Bearer "+ck.Value)
			}
		}
		if !wantsHTML(r) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&pageWriter{ResponseWriter: w, c: c, r: r}, r)
	})
}

// wantsHTML reports whether a request is a browser's for a page.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// pageWriter renders the console's page for a 401 or 403 written by the
// guard, and drops the guard's text.
type pageWriter struct {
	http.ResponseWriter
	c        *Console
	r        *http.Request
	replaced bool
	wrote    bool
}

func (p *pageWriter) WriteHeader(code int) {
	if p.wrote {
		return
	}
	p.wrote = true
	if (code == http.StatusUnauthorized || code == http.StatusForbidden) && p.Header().Get("Content-Type") == "text/plain; charset=utf-8" {
		p.replaced = true
		p.c.fail(p.ResponseWriter, p.r, code, "")
		return
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *pageWriter) Write(b []byte) (int, error) {
	if !p.wrote {
		p.WriteHeader(http.StatusOK)
	}
	if p.replaced {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

// Flush lets the pages behind stream, as the bare writer would.
func (p *pageWriter) Flush() {
	if f, ok := p.ResponseWriter.(http.Flusher); ok && !p.replaced {
		f.Flush()
	}
}

// Unwrap is for http.ResponseController.
func (p *pageWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// errorPage is the data of the error page.
type errorPage struct {
	Status  int
	Title   string
	Message string
	SignIn  bool
}

// fail renders the error page of a status. An empty message says what the
// status means to a person.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	p := errorPage{Status: code, Title: http.StatusText(code), Message: msg}
	switch code {
	case http.StatusUnauthorized:
		p.Title, p.SignIn = "Sign in", true
		if msg == "" {
			p.Message = "This page needs a token. Sign in with one, or send it in the Authorization header."
		}
	case http.StatusForbidden:
		p.Title = "Not allowed"
		if msg == "" {
			p.Message = "Your role may not open this page."
		}
	}
	w.Header().Del("Content-Length")
	c.render(w, r, code, "error", page{Title: p.Title, Data: p})
}

// failCall renders the error page for an error of the query service.
func (c *Console) failCall(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := status.FromError(err)
	code := http.StatusInternalServerError
	switch st.Code() {
	case codes.InvalidArgument:
		code = http.StatusBadRequest
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.Unauthenticated:
		code = http.StatusUnauthorized
	case codes.FailedPrecondition:
		code = http.StatusConflict
	case codes.Unavailable, codes.DeadlineExceeded:
		code = http.StatusServiceUnavailable
	}
	msg := st.Message()
	if code == http.StatusInternalServerError {
		c.log.Error("console: a query failed", "path", r.URL.Path, "err", err)
		msg = "The ledger could not answer; the log says why."
	}
	c.fail(w, r, code, msg)
}

// allowOrg decides, before any lookup, whether the caller may read an
// organization: an org_admin its own only, with the same answer for
// another's as for one that does not exist (AIP-211), as the gRPC
// interceptor decides for the query service.
func allowOrg(ctx context.Context, org string) error {
	orgs, limited := access.Organizations(ctx)
	if !limited || slices.Contains(orgs, org) {
		return nil
	}
	return access.Denied(ctx, access.KindOrganization)
}

// page is what the layout renders around a page's own template.
type page struct {
	Title string
	// Org is the organization the page is of, for the navigation.
	Org string
	// Nav is the current section ("dashboard", "usage", ...).
	Nav string
	// SignedIn: the caller has a cookie, and may sign out.
	SignedIn bool
	Data     any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	t, ok := c.tmpl[name]
	if !ok {
		panic("console: no template " + name) // a page without its template is a bug
	}
	if ck, err := r.Cookie(CookieName); err == nil && ck.Value != "" {
		p.SignedIn = true
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// signinPage shows the sign-in form.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: signinData{Auth: c.cfg.Auth, Next: safeNext(r.URL.Query().Get("next"))}})
}

type signinData struct {
	Auth  bool
	Next  string
	Error string
}

// signin keeps the token of the form in a cookie that scripts cannot read
// (HttpOnly), that travels over TLS only (Secure; browsers treat
// http://localhost as secure), and that no other site's page can make
// the browser send (SameSite=Strict). The guard verifies it on the next
// request, as it would the header.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, tokenMax)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, "The form is too large.")
		return
	}
	tok := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r.PostForm.Get("token")), "Bearer "))
	next := safeNext(r.PostForm.Get("next"))
	if tok == "" || strings.ContainsAny(tok, " ;,\"\\\r\n\t") {
		c.render(w, r, http.StatusBadRequest, "signin", page{Title: "Sign in", Data: signinData{Auth: c.cfg.Auth, Next: next, Error: "Paste a token: ledgerctl auth token prints one."}})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok, Path: "/",
		Expires:  c.cfg.Now().Add(cookieTTL),
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signout forgets the cookie.
func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext keeps a redirect after sign-in on this site: a path, never
// another host ("//evil" or a scheme).
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.IsAbs() || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

// callCtx bounds a page's calls.
func callCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), callTimeout)
}
