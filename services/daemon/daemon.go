// Package daemon wires ledgerd: NATS (embedded or external), the event
// store (embedded or a KurrentDB cluster), ingestion, the projection runner,
// the cycle clock, the gRPC query service and the HTTP endpoints. cmd/ledgerd
// only parses flags and calls Start; tests start the very same daemon in
// process.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/services/access"
	"github.com/ledger-billing/ledger/services/audit"
	"github.com/ledger-billing/ledger/services/clock"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/ingest"
	"github.com/ledger-billing/ledger/services/query"
	"github.com/ledger-billing/ledger/services/runner"
	"github.com/ledger-billing/ledger/services/secret"
	"github.com/ledger-billing/ledger/services/token"
	"github.com/ledger-billing/ledger/services/wire"
)

// Config is ledgerd's configuration (docs/architecture.md, "The commands").
// Defaults gives
// the documented defaults.
type Config struct {
	DataDir          string
	NATSURL          string // empty: embedded NATS
	NATSListen       string
	NATSSync         bool          // embedded NATS: fsync every write
	NATSReplicas     int           // replicas of the streams ledgerd creates
	DLQMaxAge        time.Duration // how long BILLING_DLQ keeps a dead letter
	EventstoreURL    string
	EventstoreListen string
	GRPCListen       string
	HTTPListen       string
	Clock            bool
	// Snapshots: keep snapshots of the projections in
	// <DataDir>/snapshots, load the newest at start and write one every
	// SnapshotEvery events (0: only at a clean shutdown) and at a clean
	// shutdown (docs/architecture.md, "Snapshots"). Off, every start
	// replays the whole history.
	Snapshots     bool
	SnapshotEvery int
	// MaxAppendSize of the embedded store, in bytes.
	MaxAppendSize int
	Logger        *slog.Logger
	// ClockSkew is how far ahead of ledgerd's clock a cycle message may be:
	// a month closes only once it has ended by Now plus ClockSkew.
	ClockSkew time.Duration
	// OutageMax is how long ingestion or the store may keep failing before
	// /readyz answers 503; zero is OutageMaxDefault.
	OutageMax time.Duration
	// Now is the time source of the cycle clock and of the cycle guards;
	// nil is time.Now.
	Now func() time.Time
	// AuthJWKS (a file or an https URL), AuthIssuer and AuthAudience
	// verify callers' bearer tokens (services/access); an empty AuthJWKS
	// turns authentication off (see AuthConfigured).
	AuthJWKS, AuthIssuer, AuthAudience string
	// SigningKey is the file of the Ed25519 key ledgerd signs the events it
	// appends with (services/audit); empty: the data directory's
	// signing.key, generated at first start.
	SigningKey string
	// SealInterval is how long after the last seal the log is sealed again
	// if it has new billing events (it is also sealed every 10,000); zero
	// is audit.SealInterval, a minute.
	SealInterval time.Duration
	// Security: TLS, the store's and NATS's credentials, the secure
	// defaults (security.go).
	Security
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		DataDir:          "./ledger-data",
		NATSListen:       "127.0.0.1:4222",
		NATSSync:         true,
		NATSReplicas:     1,
		DLQMaxAge:        ingest.DLQMaxAgeDefault,
		EventstoreListen: "127.0.0.1:2113",
		GRPCListen:       "127.0.0.1:9090",
		HTTPListen:       "127.0.0.1:8080",
		Clock:            true,
		Snapshots:        true,
		SnapshotEvery:    SnapshotEveryDefault,
		ClockSkew:        ingest.ClockSkewDefault,
		MaxAppendSize:    16 << 20,
		AuthAudience:     token.DefaultAudience,
	}
}

// SnapshotEveryDefault is how many events ledgerd applies between two
// snapshots: at about a million events a minute of replay, a crash costs
// at most a minute more than a clean restart, and a snapshot of a large
// history (seconds to write) is written every few minutes at most.
const SnapshotEveryDefault = 1_000_000

// Daemon is a running ledgerd.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	lock     *dataDirLock // held from start to the end of Close
	sec      security
	// diskWasFull is set by whoever finds the data directory's disk full,
	// and cleared once the watchdog has restarted the embedded JetStream.
	diskWasFull atomic.Bool

	nats      *server.Server // nil with an external NATS
	natsURL   string
	store     *eventstore.Server // nil with an external store
	storeURL  string
	evlog     *eventlog.Log
	nc        *nats.Conn
	js        jetstream.JetStream
	runner    *runner.Runner
	ingester  *ingest.Ingester
	publisher *ingest.Publisher
	recorder  *audit.Recorder
	sealer    *audit.Sealer
	http      *http.Server
	httpAddr  string
	grpc      *grpc.Server
	grpcAddr  string
	access    *access.Guard  // nil: authentication off
	query     *query.Service // what the gRPC server and the console answer from

	cancel     context.CancelFunc
	components sync.WaitGroup // ingestion, projections, clock, publisher
	servers    sync.WaitGroup // listeners' serve loops
	errs       chan error
}

// Start starts everything and returns once every listener is up; the
// projections replay in the background (see Ready). When it cannot start,
// its error is one sentence naming the cause (an address in use and its
// flag, a data directory that is a file or another ledgerd's, a store that
// cannot be opened), and whatever had started is stopped again.
func Start(cfg Config) (*Daemon, error) {
	d, err := start(cfg)
	if err != nil {
		if d != nil {
			d.Close()
		}
		return nil, fmt.Errorf("cannot start: %w", err)
	}
	return d, nil
}

func start(cfg Config) (d *Daemon, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d = &Daemon{cfg: cfg, log: cfg.Logger, registry: prometheus.NewRegistry(), cancel: cancel, errs: make(chan error, 8)}
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ledger_process_peak_rss_bytes",
			Help: "Peak resident set size of the process (VmHWM), for memory benchmarks.",
		}, peakRSS))
	if err := d.secure(); err != nil {
		return d, err
	}
	if err := d.startAccess(); err != nil {
		return d, err
	}
	if d.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return d, err
	}
	if err := d.startStore(); err != nil {
		return d, err
	}
	if err := d.startNATS(); err != nil {
		return d, err
	}
	if d.evlog, err = eventlog.Dial(d.storeURL, d.log); err != nil {
		return d, err
	}
	if err := d.sign(); err != nil {
		return d, err
	}
	if err := d.connectNATS(ctx); err != nil {
		return d, err
	}

	d.publisher = ingest.NewPublisher(d.js, d.evlog, d.log)
	ropts := runner.Options{
		Logger:     d.log,
		Registerer: d.registry,
		OnApplied: func(a billing.Applied) {
			d.publisher.Enqueue(ctx, a.Issued)
			d.recorder.Wake()
		},
	}
	if cfg.Snapshots {
		ropts.SnapshotDir = filepath.Join(cfg.DataDir, "snapshots")
		ropts.SnapshotEvery = cfg.SnapshotEvery
	}
	d.runner = runner.New(d.evlog, ropts)
	auditMetrics := audit.NewMetrics(d.registry)
	d.recorder = audit.NewRecorder(d.evlog, d.runner, auditMetrics, d.log)
	d.sealer = audit.NewSealer(d.evlog, d.runner, auditMetrics, d.log)
	if cfg.SealInterval > 0 {
		d.sealer.Interval(cfg.SealInterval)
	}
	d.ingester = ingest.New(ingest.Config{
		JetStream: d.js,
		Log:       d.evlog,
		Cycles:    d.runner,
		Applied:   d.runner.WaitFor,
		Logger:    d.log,
		Metrics:   ingest.NewMetrics(d.registry),
		Now:       cfg.Now,
		ClockSkew: cfg.ClockSkew,
	})
	d.registry.MustRegister(ingest.NewConsumerCollector(d.js, wire.Consumer))
	d.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ledger_ready", Help: "1 when /readyz answers 200: the history replayed, and ingestion and the store working.",
	}, func() float64 {
		if ready, _ := d.readiness(); ready {
			return 1
		}
		return 0
	}))
	for _, cause := range unreadyCauses {
		d.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ledger_unready", Help: "1 for the cause /readyz answers 503 for: replaying, halted, ingestion (failing for 30 s) or store (failing for 30 s).",
			ConstLabels: prometheus.Labels{"cause": cause},
		}, func() float64 {
			if _, _, c := d.unready(); c == cause {
				return 1
			}
			return 0
		}))
	}
	if d.nats != nil {
		d.run(ctx, "jetstream-watchdog", func() error { d.watchJetStream(ctx); return nil })
	}
	d.run(ctx, "runner", func() error { return d.runner.Run(ctx) })
	d.run(ctx, "publisher", func() error { d.publisher.Run(ctx); return nil })
	d.run(ctx, "recorder", func() error { d.recorder.Run(ctx); return nil })
	d.run(ctx, "sealer", func() error { d.sealer.Run(ctx); return nil })
	d.run(ctx, "ingest", func() error { return d.ingester.Run(ctx) })
	if cfg.Clock {
		c := clock.New(clock.Config{Cycles: d.runner, Publish: d.Publish, Now: cfg.Now, Logger: d.log})
		d.run(ctx, "clock", func() error { return c.Run(ctx) })
	}
	if err := d.startGRPC(ctx); err != nil {
		return d, err
	}
	if err := d.startHTTP(); err != nil {
		return d, err
	}
	d.log.Info("ledgerd: started", "grpc", d.grpcAddr, "nats", secret.Redact(d.natsURL), "eventstore", secret.Redact(d.storeURL), "http", d.httpAddr, "data_dir", cfg.DataDir)
	return d, nil
}

// run starts a component; its failure stops the daemon (see Wait).
func (d *Daemon) run(ctx context.Context, name string, fn func() error) {
	d.components.Go(func() {
		if err := fn(); err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return // stopping, perhaps before the component was up
			}
			d.log.Error("ledgerd: component failed", "component", name, "err", err)
			select {
			case d.errs <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	})
}

func (d *Daemon) startStore() error {
	var err error
	if d.cfg.EventstoreURL != "" {
		d.storeURL, err = d.externalStoreURL()
		return err
	}
	password, storeTLS, err := d.storeSecurity()
	if err != nil {
		return err
	}
	srv, err := eventstore.Open(eventstore.Config{
		Dir:           filepath.Join(d.cfg.DataDir, "eventstore"),
		MaxAppendSize: d.cfg.MaxAppendSize,
		Logger:        d.log,
		Password:      password,
		TLS:           storeTLS,
	})
	if err != nil {
		return fmt.Errorf("the embedded event store in %s cannot be opened: %w", filepath.Join(d.cfg.DataDir, "eventstore"), err)
	}
	d.store = srv
	lis, err := listen("eventstore-listen", d.cfg.EventstoreListen)
	if err != nil {
		return err
	}
	d.storeURL = d.ownStoreURL(lis.Addr(), password)
	d.servers.Go(func() {
		if err := srv.Serve(lis); err != nil {
			d.log.Error("ledgerd: event store stopped", "err", err)
		}
	})
	return nil
}

func (d *Daemon) startNATS() error {
	if d.cfg.NATSURL != "" {
		d.natsURL = d.cfg.NATSURL
		return nil
	}
	host, portText, err := net.SplitHostPort(d.cfg.NATSListen)
	if err != nil {
		return fmt.Errorf("--nats-listen %q is not a host:port address: %w", d.cfg.NATSListen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("--nats-listen %q has no numeric port: %w", d.cfg.NATSListen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The embedded server reports a failed listen only in its log and
		// then never becomes ready; trying the address first gives the
		// cause at once. (Another process may take it in between: then
		// the readiness wait below fails instead.)
		lis, err := listen("nats-listen", d.cfg.NATSListen)
		if err != nil {
			return err
		}
		lis.Close()
	}
	opts := &server.Options{
		ServerName: "ledgerd",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(d.cfg.DataDir, "nats"),
		// An acknowledged publish must survive power loss, so every write
		// is synced unless the operator relaxes it (--nats-sync=false).
		SyncAlways: d.cfg.NATSSync,
		NoSigs:     true,
		MaxPayload: wire.PayloadMax,
	}
	ns, err := server.NewServer(d.withNATSConfig(opts))
	if err != nil {
		return fmt.Errorf("the embedded NATS server cannot be configured: %w", err)
	}
	ns.SetLoggerV2(natsLogger{d.log}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("the embedded NATS server did not start on %s (--nats-listen) within 30s; its log says why", d.cfg.NATSListen)
	}
	d.nats = ns
	d.natsURL = ns.ClientURL()
	return nil
}

func (d *Daemon) connectNATS(ctx context.Context) error {
	url, security, err := d.natsClient()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, append(security,
		nats.Name("ledgerd"),
		nats.MaxReconnects(-1), // a NATS restart must not end ingestion
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("NATS at %s cannot be reached (--nats-url): %s", secret.Redact(d.natsURL), secret.Redact(err.Error(), d.natsURL))
	}
	d.nc = nc
	if d.js, err = jetstream.New(nc); err != nil {
		return err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return ingest.Setup(setupCtx, d.js, ingest.Streams{Replicas: d.cfg.NATSReplicas, DLQMaxAge: d.cfg.DLQMaxAge})
}

func (d *Daemon) startGRPC(ctx context.Context) error {
	lis, err := listen("grpc-listen", d.cfg.GRPCListen)
	if err != nil {
		return err
	}
	d.grpcAddr = lis.Addr().String()
	// Calls by method and code, with latency histograms: what operators
	// alert on (deploy/prometheus/alerts.yml).
	calls := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	d.registry.MustRegister(calls)
	d.query = query.New(d.runner, d.log)
	d.grpc = query.NewServer(ctx, d.query,
		d.grpcCreds(),
		grpc.ChainUnaryInterceptor(calls.UnaryServerInterceptor(), d.unaryAccess()),
		grpc.ChainStreamInterceptor(calls.StreamServerInterceptor(), d.streamAccess()),
		// One client's connection must not hold every handler: calls past
		// the bound wait in the client's transport, not in ledgerd.
		grpc.MaxConcurrentStreams(grpcStreamsMax),
		grpc.MaxRecvMsgSize(grpcRequestMax),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
	)
	calls.InitializeMetrics(d.grpc)
	d.servers.Go(func() {
		if err := d.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			d.log.Error("ledgerd: gRPC server stopped", "err", err)
		}
	})
	return nil
}

func (d *Daemon) startHTTP() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, d.healthz())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, why := d.readiness()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST "+wire.BackupPath, d.serveBackup)
	// Profiles, for the performance work the benchmarks call for; the
	// listener is loopback by default.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	front, err := d.mountConsole(mux)
	if err != nil {
		return err
	}
	lis, err := listen("http-listen", d.cfg.HTTPListen)
	if err != nil {
		return err
	}
	lis = d.httpListener(lis)
	d.httpAddr = lis.Addr().String()
	d.http = &http.Server{
		Handler:           front(d.httpAccess(mux)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A CPU profile takes 30 s by default; a minute leaves it room
		// and still frees a connection whose reader went away.
		WriteTimeout:   time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		// Failed TLS handshakes (scanners, plaintext clients) are noise.
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	d.servers.Go(func() {
		if err := d.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("ledgerd: HTTP server stopped", "err", err)
		}
	})
	return nil
}

// Publish publishes an input message on its subject through JetStream, as
// any metering service would.
func (d *Daemon) Publish(ctx context.Context, msg proto.Message) error {
	subject, err := wire.Subject(msg)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	_, err = d.js.Publish(ctx, subject, data)
	return err
}

// OutageMaxDefault is how long ingestion or the store may keep failing
// before /readyz says so: long enough to ride out a leader election or a
// reconnect, short enough that a full disk or a lost store is noticed.
const OutageMaxDefault = 30 * time.Second

// Causes of unreadiness, as the ledger_unready metric labels them.
var unreadyCauses = []string{"replaying", "halted", "ingestion", "store", "disk"}

// diskFreeMin is the free space under which the data directory's disk
// counts as full: the embedded NATS and store need room to write, and
// JetStream turns itself off when it has none.
const diskFreeMin = 32 << 20

// readiness says whether ledgerd answers from the whole history and keeps
// billing, and if not why, in a sentence; cause is one of unreadyCauses.
func (d *Daemon) readiness() (ready bool, why string) {
	_, why, cause := d.unready()
	return cause == "", why
}

func (d *Daemon) unready() (pos uint64, why, cause string) {
	pos, caughtUp := d.runner.Progress()
	if halt := d.runner.Halted(); halt != nil {
		// Still serving what it had, but no longer billing: a balancer
		// must send readers elsewhere, and an operator must look.
		return pos, fmt.Sprintf("halted at position %d: %v", pos, halt), "halted"
	}
	if !caughtUp {
		return pos, fmt.Sprintf("replaying the history: at position %d", pos), "replaying"
	}
	outageMax := cmp.Or(d.cfg.OutageMax, OutageMaxDefault)
	if dur, err := d.ingester.Outage(); err != nil && dur > outageMax {
		return pos, fmt.Sprintf("ingestion has been failing for %s: %v", dur.Round(time.Second), err), "ingestion"
	}
	if dur, err := d.runner.Outage(); err != nil && dur > outageMax {
		return pos, fmt.Sprintf("the event store subscription has been failing for %s: %v", dur.Round(time.Second), err), "store"
	}
	if d.nats != nil || d.store != nil {
		// A full disk stops the embedded parts before ledgerd sees a
		// failure of its own: publishers' messages are refused, and
		// nothing reaches ingestion to fail.
		if free, full := d.diskFull(); full {
			return pos, fmt.Sprintf("the disk of the data directory %s is full: %d bytes free", d.cfg.DataDir, free), "disk"
		}
		if d.nats != nil && d.diskWasFull.Load() {
			return pos, "the embedded JetStream is restarting after a full disk", "disk"
		}
	}
	return pos, fmt.Sprintf("ready at position %d", pos), ""
}

// Ready reports whether the projections have replayed the history.
func (d *Daemon) Ready() bool {
	_, ok := d.runner.Progress()
	return ok
}

// Runner is the projection runner, for in-process readers.
func (d *Daemon) Runner() *runner.Runner { return d.runner }

// GRPCAddr, NATSURL, EventstoreURL and HTTPAddr say where the daemon
// listens. EventstoreURL carries the store's password: log it only
// through secret.Redact.
func (d *Daemon) GRPCAddr() string      { return d.grpcAddr }
func (d *Daemon) NATSURL() string       { return d.natsURL }
func (d *Daemon) EventstoreURL() string { return d.storeURL }
func (d *Daemon) HTTPAddr() string      { return d.httpAddr }

// Wait returns when ctx ends or a component fails.
func (d *Daemon) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.errs:
		return err
	}
}

// Close stops everything in the reverse order of Start: listeners first,
// then ingestion and projections, then the connections and the embedded
// servers. Acknowledged work is durable before it was acknowledged, so Close
// loses nothing; it only stops taking more.
func (d *Daemon) Close() {
	if d.http != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if d.http.Shutdown(shutdown) != nil {
			_ = d.http.Close() // a backup or a profile still streaming
		}
		cancel()
	}
	d.cancel() // health turns NOT_SERVING; ingestion and projections stop
	if d.grpc != nil {
		// Calls in flight finish; a call waiting for a position that will
		// not come is cut after a grace period.
		stopped := make(chan struct{})
		go func() { d.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			d.grpc.Stop()
		}
	}
	d.components.Wait()
	if d.nc != nil {
		d.nc.Close()
	}
	if d.evlog != nil {
		d.evlog.Close()
	}
	if d.nats != nil {
		d.nats.Shutdown()
		d.nats.WaitForShutdown()
	}
	if d.store != nil {
		if err := d.store.Close(); err != nil {
			d.log.Error("ledgerd: closing the event store", "err", err)
		}
	}
	d.servers.Wait()
	d.lock.release()
	d.log.Info("ledgerd: stopped")
}

// jetStreamCheckEvery is how often the watchdog looks at the embedded
// JetStream and the disk under it.
const jetStreamCheckEvery = 2 * time.Second

// diskFull reports the free space of the data directory's disk, and
// whether it is under diskFreeMin. A disk that cannot be asked is not
// reported full.
func (d *Daemon) diskFull() (free uint64, full bool) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(d.cfg.DataDir, &fs); err != nil {
		return 0, false
	}
	free = fs.Bavail * uint64(fs.Bsize)
	if free < diskFreeMin {
		d.diskWasFull.Store(true)
		return free, true
	}
	return free, false
}

// watchJetStream brings the embedded JetStream back after a full disk.
// nats-server, out of space, either turns JetStream off or keeps a stream
// that failed a write refusing every write after, and waits for an
// operator's restart. ledgerd instead restarts JetStream (its streams
// reload from disk) once the disk has room again, and turns it on if it is
// off: freeing space is enough. Meanwhile /readyz says the disk is full,
// and nothing acknowledged is lost.
func (d *Daemon) watchJetStream(ctx context.Context) {
	t := time.NewTicker(jetStreamCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, full := d.diskFull(); full {
			continue
		}
		restart := d.diskWasFull.Load()
		if !restart && d.nats.JetStreamEnabled() {
			continue
		}
		if restart && d.nats.JetStreamEnabled() {
			d.log.Warn("ledgerd: the data directory's disk has room again; restarting the embedded JetStream so that its streams write again")
			if err := d.nats.ShutdownJetStream(); err != nil {
				d.log.Warn("ledgerd: stopping the embedded JetStream failed", "err", err)
			}
		}
		if err := d.nats.EnableJetStream(&server.JetStreamConfig{StoreDir: filepath.Join(d.cfg.DataDir, "nats")}); err != nil {
			d.log.Warn("ledgerd: turning the embedded JetStream on again failed; will retry", "err", err)
			continue
		}
		d.diskWasFull.Store(false)
		d.log.Info("ledgerd: the embedded JetStream is on again")
	}
}

// Bounds of the query service's connections: concurrent calls on one
// connection, and the size of a request (the largest is a few hundred
// bytes; gRPC's default would be 4 MB).
const (
	grpcStreamsMax = 256
	grpcRequestMax = 64 << 10
)

// listen listens on addr, the value of --flag, or says in one sentence why
// it cannot.
func listen(flag, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return lis, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("address %s (--%s) is already in use by another process; stop it or choose another address", addr, flag)
	}
	return nil, fmt.Errorf("cannot listen on %s (--%s): %w", addr, flag, err)
}

// peakRSS reads the process's peak resident set size from
// /proc/self/status (Linux); elsewhere it is 0.
func peakRSS() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// natsLogger sends the embedded NATS server's logs to slog.
type natsLogger struct{ log *slog.Logger }

// Noticef is debug: the server's notices are a start-up banner, not news.
func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Warnf(format string, v ...any) { l.log.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: fatal: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Errorf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Debugf(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Tracef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
