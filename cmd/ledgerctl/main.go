// Command ledgerctl is the command-line client of a running ledgerd
// (docs/architecture.md, "The commands"): it publishes through NATS JetStream (--nats) and
// queries the gRPC BillingService (--grpc); backups come from its HTTP
// address (--http).
//
//	ledgerctl demo
//	ledgerctl import focus FILE --org ID [--register]
//	ledgerctl export focus --ban BAN --month YYYY-MM [--view billing|vendor] [--format csv|parquet] [--focus-version 1.2|1.4] [-o FILE] [--issuer NAME]
//	ledgerctl cycle close|finalize YYYY-MM
//	ledgerctl invoice get --ban BAN --month YYYY-MM [--view billing|vendor] [--lineage]
//	ledgerctl invoice list --ban BAN [--from YYYY-MM] [--to YYYY-MM]
//	ledgerctl usage --org ID [--month YYYY-MM [--lineage] | --from YYYY-MM --to YYYY-MM] [--view billing|vendor]
//	ledgerctl dashboard --org ID [--cost-center ID] [--from YYYY-MM] [--to YYYY-MM]
//	ledgerctl adjustments --org ID --month YYYY-MM [--kind inter|intra]
//	ledgerctl exceptions [--org ID]
//	ledgerctl orgs
//	ledgerctl auth init --dir DIR
//	ledgerctl auth token --key DIR/signing-key.pem --role ROLE [--org ID ...] [--ttl 24h]
//
// Against a ledgerd that authenticates its callers, every query sends the
// bearer token of --token, or of LEDGERCTL_TOKEN.
//
//	ledgerctl backup DIR
//	ledgerctl audit public-key [--data-dir DIR | --signing-key FILE]
//	ledgerctl audit verify (--eventstore-url URL | --data-dir DIR) --public-key FILE
//	ledgerctl audit replay (--eventstore-url URL | --data-dir DIR) --through-position P (--ban BAN | --org ID) --month YYYY-MM
//
// This file only parses the command line and calls services/ctl, where
// the commands are. It exits 0 on success, 1 when a command fails, and 2
// for a command line that cannot run as written.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ledger-billing/ledger/services/ctl"
	"github.com/ledger-billing/ledger/services/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// run runs one command line, writing its result to stdout and errors,
// progress and notes to stderr, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var reported *reportedError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &reported):
		return reported.code
	case errors.Is(err, ctl.ErrUsage):
		fmt.Fprintf(stderr, "ledgerctl: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "ledgerctl: %v\n", err)
	return exitFail
}

// reportedError is a failure already written to stderr (the flag
// package's own messages).
type reportedError struct{ code int }

func (e *reportedError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// common defines the flags every command takes, before or after its name,
// on cfg.
func common(fs *flag.FlagSet, cfg *ctl.Config) {
	fs.StringVar(&cfg.GRPC, "grpc", cfg.GRPC, "ledgerd's gRPC query address (env LEDGERCTL_GRPC)")
	fs.StringVar(&cfg.NATS, "nats", cfg.NATS, "NATS URL ledgerd ingests from (env LEDGERCTL_NATS)")
	fs.Var(secret{&cfg.Token}, "token", "bearer `token` sent to ledgerd with every query (env LEDGERCTL_TOKEN)")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "ledgerd's HTTP address, for backup (env LEDGERCTL_HTTP)")
	fs.BoolVar(&cfg.JSON, "json", cfg.JSON, "print JSON (protojson of the responses) instead of tables")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on each query, all the pages of a document together")
	fs.DurationVar(&cfg.Wait, "wait", cfg.Wait, "bound on waiting for ledgerd to ingest what a command publishes")
	securityFlags(fs, cfg)
}

// command is one subcommand: its words ("invoice get"), a synopsis of its
// arguments, what it does, and how it runs once its flags are parsed.
type command struct {
	name, args, about string
	// positional is the number of arguments after the flags.
	positional int
	// flags defines the command's own flags and returns its action.
	flags func(fs *flag.FlagSet) func(ctx context.Context, c *ctl.Client, args []string) error
}

var commands = []command{
	{name: "demo", about: "publish a small organization with three months of invoices, and show them",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			return func(ctx context.Context, c *ctl.Client, _ []string) error { return c.Demo(ctx) }
		}},
	{name: "import focus", args: "FILE --org ID [--register] [--ban BAN] [--name NAME]", positional: 1,
		about: "import the rows of a FOCUS 1.0 to 1.4 file (CSV, gzip-compressed CSV or Parquet) as usage",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			var opt ctl.ImportOptions
			fs.StringVar(&opt.Org, "org", "", "organization of the file's accounts (required)")
			fs.BoolVar(&opt.Register, "register", false, "register each account as a provider of the organization (and the organization if unknown)")
			fs.StringVar(&opt.BAN, "ban", "", "with --register, the default BAN of an organization registered now (default BAN-<org>)")
			fs.StringVar(&opt.Name, "name", "", "with --register, the name of an organization registered now (default its id)")
			return func(ctx context.Context, c *ctl.Client, args []string) error { return c.ImportFOCUS(ctx, args[0], opt) }
		}},
	{name: "export focus", args: "--ban BAN --month YYYY-MM [--view billing|vendor] [--format csv|parquet] [--focus-version 1.2|1.4] [-o FILE] [--issuer NAME]",
		about: "write an invoice as FOCUS rows, one per detail, with its lineage",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			var opt ctl.ExportOptions
			fs.StringVar(&opt.BAN, "ban", "", "Billing Account Number (required)")
			fs.StringVar(&opt.Month, "month", "", "month, YYYY-MM (required)")
			fs.StringVar(&opt.View, "view", "billing", "billing (the invoice) or vendor (the vendor cycle view)")
			fs.StringVar(&opt.Format, "format", "csv", "csv or parquet")
			fs.StringVar(&opt.Version, "focus-version", ctl.Focus12, "FOCUS version written: 1.2 or 1.4")
			fs.StringVar(&opt.Output, "o", "", "file to write (default: standard output)")
			fs.StringVar(&opt.Issuer, "issuer", ctl.DefaultIssuerName, "InvoiceIssuerName: who issues the invoice")
			return func(ctx context.Context, c *ctl.Client, _ []string) error { return c.ExportFOCUS(ctx, opt) }
		}},
	{name: "cycle close", args: "YYYY-MM", positional: 1, about: "close the billing cycle of a month: its invoices are issued",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			return func(ctx context.Context, c *ctl.Client, args []string) error { return c.CloseCycle(ctx, args[0]) }
		}},
	{name: "cycle finalize", args: "YYYY-MM", positional: 1, about: "finalize the vendor cycle of a month: its vendor view is available",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			return func(ctx context.Context, c *ctl.Client, args []string) error { return c.FinalizeCycle(ctx, args[0]) }
		}},
	{name: "invoice get", args: "--ban BAN --month YYYY-MM [--view billing|vendor] [--lineage]", about: "show an invoice, or its vendor cycle view",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			ban := fs.String("ban", "", "Billing Account Number (required)")
			month := fs.String("month", "", "month, YYYY-MM (required)")
			view := fs.String("view", "billing", "billing (the invoice) or vendor (the vendor cycle view)")
			lineage := fs.Bool("lineage", false, "also show the lineage: the event_id of every message behind each detail")
			return func(ctx context.Context, c *ctl.Client, _ []string) error {
				return c.Invoice(ctx, *ban, *month, *view, *lineage)
			}
		}},
	{name: "invoice list", args: "--ban BAN [--from YYYY-MM] [--to YYYY-MM]", about: "list the invoices of a BAN (default: the last 12 months)",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			ban := fs.String("ban", "", "Billing Account Number (required)")
			from := fs.String("from", "", "first month, YYYY-MM")
			to := fs.String("to", "", "last month, YYYY-MM")
			return func(ctx context.Context, c *ctl.Client, _ []string) error { return c.Invoices(ctx, *ban, *from, *to) }
		}},
	{name: "usage", args: "--org ID [--month YYYY-MM [--lineage] | --from YYYY-MM --to YYYY-MM] [--view billing|vendor]",
		about: "show an organization's lines for a month, or its totals per month",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			org := fs.String("org", "", "organization (required)")
			month := fs.String("month", "", "month, YYYY-MM: its lines")
			from := fs.String("from", "", "first month, YYYY-MM: totals per month")
			to := fs.String("to", "", "last month, YYYY-MM: totals per month")
			view := fs.String("view", "billing", "billing or vendor")
			lineage := fs.Bool("lineage", false, "with --month, also show the lineage: the event_id of every message behind each detail")
			return func(ctx context.Context, c *ctl.Client, _ []string) error {
				return c.Usage(ctx, *org, *month, *from, *to, *view, *lineage)
			}
		}},
	{name: "dashboard", args: "--org ID [--cost-center ID] [--from YYYY-MM] [--to YYYY-MM]",
		about: "show what an organization, or a cost center, was invoiced per month",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			org := fs.String("org", "", "organization (required)")
			cc := fs.String("cost-center", "", "only the lines of this cost center")
			from := fs.String("from", "", "first month, YYYY-MM")
			to := fs.String("to", "", "last month, YYYY-MM")
			return func(ctx context.Context, c *ctl.Client, _ []string) error {
				return c.Dashboard(ctx, *org, *cc, *from, *to)
			}
		}},
	{name: "adjustments", args: "--org ID --month YYYY-MM [--kind inter|intra]",
		about: "show an organization's inter-customer and intra-organization adjustments",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			org := fs.String("org", "", "organization (required)")
			month := fs.String("month", "", "month, YYYY-MM (required)")
			kind := fs.String("kind", "", "inter or intra (default: both)")
			return func(ctx context.Context, c *ctl.Client, _ []string) error {
				return c.Adjustments(ctx, *org, *month, *kind)
			}
		}},
	{name: "exceptions", args: "[--org ID]", about: "list the amounts on no invoice, and why",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			org := fs.String("org", "", "only this organization's")
			return func(ctx context.Context, c *ctl.Client, _ []string) error { return c.Exceptions(ctx, *org) }
		}},
	{name: "orgs", about: "list the organizations, their cost centers and BANs",
		flags: func(*flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			return func(ctx context.Context, c *ctl.Client, _ []string) error { return c.Organizations(ctx) }
		}},
	{name: "auth init", args: "--dir DIR", about: "write an Ed25519 signing key and its JWKS (for ledgerd --auth-jwks) into a directory",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			dir := fs.String("dir", "", "directory to write "+token.KeyFile+" and "+token.JWKSFile+" into (required)")
			return func(_ context.Context, c *ctl.Client, _ []string) error { return c.AuthInit(*dir) }
		}},
	{name: "auth token", args: "--key FILE --role ROLE [--org ID ...] [--ttl DURATION] [--issuer ISS] [--audience AUD] [--subject SUB]",
		about: "print a bearer token signed with a key that auth init wrote",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			var opt ctl.TokenOptions
			fs.StringVar(&opt.Key, "key", "", "signing key file, "+token.KeyFile+" in the auth init directory (required)")
			fs.StringVar(&opt.Role, "role", "", "operator, auditor, invoicing or org_admin (required)")
			fs.Func("org", "with --role org_admin, an organization it administers; repeat for more", func(s string) error {
				opt.Orgs = append(opt.Orgs, s)
				return nil
			})
			fs.DurationVar(&opt.TTL, "ttl", ctl.DefaultTTL, "how long the token is valid")
			fs.StringVar(&opt.Issuer, "issuer", ctl.DefaultIssuer, "issuer (iss): ledgerd's --auth-issuer")
			fs.StringVar(&opt.Audience, "audience", token.DefaultAudience, "audience (aud): ledgerd's --auth-audience")
			fs.StringVar(&opt.Subject, "subject", "", "who the token stands for (sub), as ledgerd's access log names it (default: the role)")
			return func(_ context.Context, c *ctl.Client, _ []string) error { return c.AuthToken(opt) }
		}},
	{name: "backup", args: "DIR", positional: 1,
		about: "copy ledgerd's embedded event store, while it runs, into DIR (new or empty): a store directory to restore from",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			return func(ctx context.Context, c *ctl.Client, args []string) error { return c.Backup(ctx, args[0]) }
		}},
	{name: "audit public-key", args: "[--data-dir DIR | --signing-key FILE]",
		about: "print the public half of the key ledgerd signs its events with, for auditors",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			dir := fs.String("data-dir", "./ledger-data", "ledgerd's data directory, whose signing.key is read")
			key := fs.String("signing-key", "", "the key file given to ledgerd's --signing-key, instead")
			return func(_ context.Context, c *ctl.Client, _ []string) error { return c.AuditPublicKey(*dir, *key) }
		}},
	{name: "audit verify", args: "(--eventstore-url URL | --data-dir DIR) --public-key FILE",
		about: "check that the history is the one ledgerd wrote and that every issued document follows from it; exit status 1 if not",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			var src ctl.AuditSource
			auditSource(fs, &src)
			pub := fs.String("public-key", "", "PEM file of ledgerd's public key(s), from audit public-key (required)")
			return func(ctx context.Context, c *ctl.Client, _ []string) error { return c.AuditVerify(ctx, src, *pub) }
		}},
	{name: "audit replay", args: "(--eventstore-url URL | --data-dir DIR) --through-position P (--ban BAN | --org ID) --month YYYY-MM [--view billing|vendor] [--lineage]",
		about: "print a document as the history through a $all position yields it: what was known then",
		flags: func(fs *flag.FlagSet) func(context.Context, *ctl.Client, []string) error {
			var src ctl.AuditSource
			auditSource(fs, &src)
			var opt ctl.ReplayOptions
			fs.StringVar(&opt.Through, "through-position", "", "the $all position to replay through (required)")
			fs.StringVar(&opt.BAN, "ban", "", "Billing Account Number: its invoice (or vendor view)")
			fs.StringVar(&opt.Org, "org", "", "organization: its usage month")
			fs.StringVar(&opt.Month, "month", "", "month, YYYY-MM (required)")
			fs.StringVar(&opt.View, "view", "billing", "billing or vendor")
			fs.BoolVar(&opt.Lineage, "lineage", false, "list each detail's event_ids")
			return func(ctx context.Context, c *ctl.Client, _ []string) error { return c.AuditReplay(ctx, src, opt) }
		}},
}

// auditSource defines the flags that name the history an audit reads.
func auditSource(fs *flag.FlagSet, src *ctl.AuditSource) {
	fs.StringVar(&src.StoreURL, "eventstore-url", "", "KurrentDB connection string of the store (read access is enough)")
	fs.StringVar(&src.DataDir, "data-dir", "", "a copy of a ledgerd data directory, opened read-only")
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := ctl.Config{
		GRPC:    envOr("LEDGERCTL_GRPC", ctl.DefaultGRPC),
		NATS:    envOr("LEDGERCTL_NATS", ctl.DefaultNATS),
		Token:   os.Getenv("LEDGERCTL_TOKEN"),
		HTTP:    envOr("LEDGERCTL_HTTP", ctl.DefaultHTTP),
		Timeout: ctl.DefaultTimeout,
		Wait:    ctl.DefaultWait,
	}
	securityFromEnvironment(&cfg)
	global := flag.NewFlagSet("ledgerctl", flag.ContinueOnError)
	global.SetOutput(stderr)
	common(global, &cfg)
	global.Usage = func() { usage(stderr, global) }
	if err := global.Parse(args); err != nil {
		return parseError(err)
	}
	cmd, rest := find(global.Args())
	if cmd == nil {
		if global.NArg() == 0 {
			usage(stderr, global)
			return &reportedError{exitUsage}
		}
		return ctl.Usagef("unknown command %q; run ledgerctl -h for the commands", strings.Join(global.Args()[:min(2, global.NArg())], " "))
	}
	fs := flag.NewFlagSet("ledgerctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	action := cmd.flags(fs)
	common(fs, &cfg)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ledgerctl %s %s\n\n%s.\n\nFlags:\n", cmd.name, cmd.args, capitalize(cmd.about))
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, rest)
	if err != nil {
		return parseError(err)
	}
	if len(positional) < cmd.positional {
		return ctl.Usagef("%s needs %s", cmd.name, strings.Fields(cmd.args)[0])
	}
	if len(positional) > cmd.positional {
		return ctl.Usagef("%s: unexpected argument %q", cmd.name, positional[cmd.positional])
	}
	cfg.Out, cfg.Err = stdout, stderr
	cfg.Progress = isTerminal(stderr)
	c := ctl.New(cfg)
	defer c.Close()
	return action(ctx, c, positional)
}

// find returns the command named by the first words of args, and the rest.
func find(args []string) (*command, []string) {
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == commands[i].name {
			return &commands[i], args[len(words):]
		}
	}
	return nil, nil
}

// parseInterleaved parses flags anywhere among the positional arguments
// ("import focus FILE --org acme"): the flag package stops at the first
// non-flag, so parsing resumes after each one. Everything after "--" is
// positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseError: the flag package has already printed the problem and the
// usage.
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &reportedError{exitUsage}
}

func usage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprintf(w, "ledgerctl is the command-line client of a running ledgerd.\n\n")
	fmt.Fprintf(w, "Usage: ledgerctl [flags] COMMAND [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-15s %s\n  %-15s   %s\n", c.name, c.args, "", c.about)
	}
	fmt.Fprintf(w, "\nFlags, before or after the command:\n")
	global.PrintDefaults()
	fmt.Fprintf(w, "\nStart with: go run ./cmd/ledgerd, then ledgerctl demo.\n")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// secret is a flag whose value help never prints: --token's default comes
// from LEDGERCTL_TOKEN, and -h must not show a token to whoever watches.
type secret struct{ p *string }

func (s secret) String() string { return "" }
func (s secret) Set(v string) error {
	*s.p = v
	return nil
}

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

// isTerminal reports whether w is a terminal, where a progress bar redrawn
// in place reads well; in a file or a pipe it would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
