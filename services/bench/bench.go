// Package bench measures a running ledgerd against the parts it is built
// on: ingestion end to end beside the raw JetStream publish rate and the
// raw event-store append rate of the same payloads, replay beside the raw
// $all read rate, query latency and throughput, and memory. cmd/ledgerbench
// runs it and prints one table.
//
// It feeds a synthetic history (services/synth) through NATS like a
// metering service, and waits for the projections with min_position, so
// "ingested" means "answered by the query service", not "published".
//
// Run it against a ledgerd with a fresh data directory: it closes the first
// month of its history to query an issued invoice, and cycles close in
// order.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledger-billing/ledger/projections/billing"
	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
	"github.com/ledger-billing/ledger/services/eventlog"
	"github.com/ledger-billing/ledger/services/pages"
	"github.com/ledger-billing/ledger/services/runner"
	"github.com/ledger-billing/ledger/services/snapshot"
	"github.com/ledger-billing/ledger/services/synth"
	"github.com/ledger-billing/ledger/services/wire"
)

// pageLines is the page of an issued invoice the query figures measure
// (issue 15: p99 under 5 ms at concurrency 16): what a downstream run that
// walks a large invoice asks for at a time.
const pageLines = 100

// Config says what to measure and where.
type Config struct {
	GRPC, NATS, Eventstore, HTTP string
	// Records of usage to ingest, in messages of Batch records.
	Records, Batch int
	// Orgs × AccountsPerOrg accounts over Months months.
	Orgs, AccountsPerOrg, Months int
	// QueryDuration is how long each query measurement runs.
	QueryDuration time.Duration
	// Concurrency levels of the query measurements.
	Concurrency []int
	// Progress receives a line per step; nil discards.
	Progress io.Writer
	Seed     uint64
	// RawSample bounds the records kept for the raw parts (JetStream and
	// store alone): a run of 100,000,000 records cannot hold its payloads
	// (15 GB), so its raw figures come from the first RawSample records.
	// Zero: all of them.
	RawSample int
	// Segment is the records of one ingest segment, whose rate the report
	// gives apart (so that the rate at 100,000,000 records can be held
	// beside the rate at 10,000,000); zero: 10,000,000.
	Segment int
}

// aheadMax bounds the messages published but not yet ingested: a long run
// measures ingestion at a steady state, not JetStream filling its disk.
const aheadMax = 2000

// Report holds the figures.
type Report struct {
	Records, Messages int
	PayloadBytes      int64

	Ingest, RawPublish, RawAppend time.Duration
	// Generate is the time the payloads took to make before the ingest
	// clock started; 0 when they were made while publishing (a run larger
	// than its raw sample).
	Generate time.Duration
	// RawRecords and RawMessages are what the raw parts measured (the
	// first RawSample records).
	RawRecords, RawMessages int
	// Segments are the ingest times of each Segment records, in order.
	Segments        []Segment
	Replay, RawRead time.Duration
	StoreEvents     int
	// A snapshot of the replayed projection: the time to write it (at the
	// runner's stop), its size, and a restart to ready from it.
	SnapshotWrite, SnapshotRestart time.Duration
	SnapshotBytes                  int64

	// ledgerd's CPU time (user and system, from its /metrics) over the
	// ingest and the raw parts: on a shared machine, where other work
	// stretches the wall times, what ledgerd itself spent. The raw publish
	// is ledgerd's only when its NATS is the embedded one. 0: unknown.
	IngestCPU, RawPublishCPU, RawAppendCPU time.Duration

	Queries []QueryFigure
	// CallersGC is how the query callers' garbage collector ran.
	CallersGC GC
	PeakRSS   float64 // bytes, from ledgerd's /metrics
}

// Segment is the ingestion of one segment of the run.
type Segment struct {
	Records int           // records ingested by the segment's end
	Took    time.Duration // since the segment before
}

// QueryFigure is one query at one concurrency.
type QueryFigure struct {
	Name        string
	Concurrency int
	Calls       int
	P50, P99    time.Duration
	PerSecond   float64
}

// Run measures. It stops at the first error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	nc, err := nats.Connect(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.NATS, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return nil, err
	}
	log, err := eventlog.Dial(cfg.Eventstore, nil)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	conn, err := grpc.NewClient(cfg.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()), pages.DialOption())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	api := billingv1.NewBillingServiceClient(conn)

	runID := "bench" + strconv.FormatInt(time.Now().Unix(), 36)
	gen := synth.New(synth.Config{Seed: cfg.Seed, RunID: runID, Orgs: cfg.Orgs, AccountsPerOrg: cfg.AccountsPerOrg, Months: cfg.Months, RecordsPerMessage: cfg.Batch})
	r := &Report{}

	say("seeding %d organizations, %d accounts", cfg.Orgs, cfg.Orgs*cfg.AccountsPerOrg)
	if err := publish(ctx, js, gen.Hierarchy()); err != nil {
		return nil, err
	}
	if _, err := waitIngested(ctx, js, log); err != nil {
		return nil, err
	}

	sample := cfg.Records
	if cfg.RawSample > 0 && cfg.RawSample < sample {
		sample = cfg.RawSample
	}
	segment := cfg.Segment
	if segment <= 0 {
		segment = 10_000_000
	}
	// The payloads are made before the clock starts when the raw parts
	// keep them all anyway: a metering service makes its messages on its
	// own machine, and the raw parts publish and append ready payloads
	// too. A larger run makes them as it publishes, every segment alike,
	// so that its segments compare (the generator then shares the
	// machine with ledgerd).
	var payloads [][]byte
	ready := cfg.Records <= sample
	if ready {
		say("ingest: generating %d records in messages of %d before the clock", cfg.Records, cfg.Batch)
		t := time.Now()
		for n := 0; n < cfg.Records; n += cfg.Batch {
			data, err := proto.Marshal(gen.Usage())
			if err != nil {
				return nil, err
			}
			payloads = append(payloads, data)
		}
		r.Generate = time.Since(t)
		say("ingest: publishing them")
	} else {
		say("ingest: generating and publishing %d records in messages of %d, keeping %d for the raw parts", cfg.Records, cfg.Batch, sample)
	}
	subject := wire.SubjectPrefix + "usage_reported"
	cpu := cpuMeter(ctx, cfg.HTTP)
	seg := &segments{size: segment, batch: cfg.Batch, last: time.Now()}
	start := seg.last
	watching, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go seg.watch(watching, js, say)
	for r.Records < cfg.Records {
		var data []byte
		if ready {
			data = payloads[r.Messages]
		} else if data, err = proto.Marshal(gen.Usage()); err != nil {
			return nil, err
		}
		if r.Records < sample {
			if !ready {
				payloads = append(payloads, data)
			}
			r.RawRecords += cfg.Batch
			r.RawMessages++
		}
		if _, err := js.PublishAsync(subject, data, jetstream.WithStallWait(time.Minute)); err != nil {
			return nil, err
		}
		r.Records += cfg.Batch
		r.PayloadBytes += int64(len(data))
		r.Messages++
		seg.published.Add(1)
		if err := seg.throttle(ctx); err != nil {
			return nil, err
		}
	}
	if err := waitAcks(ctx, js); err != nil {
		return nil, err
	}
	head, err := waitIngested(ctx, js, log)
	if err != nil {
		return nil, err
	}
	if _, err := api.GetUsageHistory(ctx, &billingv1.GetUsageHistoryRequest{OrgId: gen.OrgID(0), FromMonth: gen.Months()[0].String(), ToMonth: gen.Months()[0].String(), MinPosition: head}); err != nil {
		return nil, fmt.Errorf("waiting for the projections to reach %d: %w", head, err)
	}
	stopWatching()
	seg.reach(r.Messages, true)
	r.Segments = seg.done
	r.Ingest = time.Since(start)
	r.IngestCPU = cpu()

	say("raw JetStream: publishing the same payloads with nothing consuming")
	cpu = cpuMeter(ctx, cfg.HTTP)
	if r.RawPublish, err = rawPublish(ctx, js, payloads); err != nil {
		return nil, err
	}
	r.RawPublishCPU = cpu()
	say("raw store: appending the same payloads")
	cpu = cpuMeter(ctx, cfg.HTTP)
	if r.RawAppend, err = rawAppend(ctx, log, payloads); err != nil {
		return nil, err
	}
	r.RawAppendCPU = cpu()
	payloads = nil // up to 1.5 GB, which the query callers' collector would scan

	say("replay: a fresh projection runner over the store, and a raw $all read")
	if r.Replay, err = replay(ctx, cfg.Eventstore); err != nil {
		return nil, err
	}
	say("snapshot: written by a runner at its stop, then a restart from it")
	if err := snapshotRestart(ctx, cfg.Eventstore, r); err != nil {
		return nil, err
	}
	if r.RawRead, r.StoreEvents, err = rawRead(ctx, log); err != nil {
		return nil, err
	}

	say("queries: closing %s to query issued documents", gen.Months()[0])
	closeMsg := &billingv1.BillingCycleClosed{EventId: runID + "-close", Month: gen.Months()[0].String(), ClosedAt: timestamppb.Now()}
	if err := publish(ctx, js, []proto.Message{closeMsg}); err != nil {
		return nil, err
	}
	if head, err = waitIngested(ctx, js, log); err != nil {
		return nil, err
	}
	inv, err := pages.Client(pages.Invoice, billingv1.BillingServiceClient.GetInvoice)(api, ctx, &billingv1.GetInvoiceRequest{Ban: gen.BAN(0), Month: gen.Months()[0].String(), MinPosition: head})
	if err != nil {
		return nil, err
	}
	// The page measured is the second of 100 lines, which a token names:
	// a page after the first, as a downstream run walking the invoice asks
	// for, decoding and checking its token.
	first, err := api.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: gen.BAN(0), Month: gen.Months()[0].String(), PageSize: pageLines})
	if err != nil {
		return nil, err
	}
	if first.GetNextPageToken() == "" {
		say("warning: the invoice has at most %d lines: the page figures measure the whole invoice", pageLines)
	}
	if inv.Invoice.Status != billingv1.InvoiceStatus_INVOICE_STATUS_ISSUED {
		say("warning: the invoice is %s, not issued: was the ledger fresh? Query figures measure drafts", inv.Invoice.Status)
	}
	say("         invoice %s %s: %d lines, total %s %s, %d bytes", inv.Invoice.Ban, inv.Invoice.Month, len(inv.Invoice.Lines),
		inv.Invoice.Total.GetAmount(), inv.Invoice.Total.GetCurrency(), proto.Size(inv))
	// The close just issued every BAN's documents, and the raw append left
	// the store compacting: the queries are measured once ledgerd is
	// quiet, not while it finishes that work.
	if took, quiet := settle(ctx, cfg.HTTP, settleMax); quiet {
		say("         ledgerd quiet after %s", took.Round(100*time.Millisecond))
	} else {
		say("warning: ledgerd still busy after %s: the query figures include its other work", took.Round(time.Second))
	}
	r.CallersGC = callersGC()
	say("         the callers' garbage collector: %s", r.CallersGC.describe())
	defer r.CallersGC.restore()
	pageReq := &billingv1.GetInvoiceRequest{Ban: gen.BAN(0), Month: gen.Months()[0].String(), PageSize: pageLines, PageToken: first.GetNextPageToken()}
	// Each query is a function that gives each concurrent caller its call.
	queries := []struct {
		name string
		call func() func(context.Context) error
	}{
		// The whole documents, in one call each (the largest page).
		{"GetInvoice", each(func(ctx context.Context) error {
			_, err := api.GetInvoice(ctx, &billingv1.GetInvoiceRequest{Ban: gen.BAN(0), Month: gen.Months()[0].String(), PageSize: wire.PageSizeMax})
			return err
		})},
		{"GetUsageMonth", each(func(ctx context.Context) error {
			_, err := api.GetUsageMonth(ctx, &billingv1.GetUsageMonthRequest{OrgId: gen.OrgID(0), Month: gen.Months()[0].String(), PageSize: wire.PageSizeMax})
			return err
		})},
		{fmt.Sprintf("GetInvoice page of %d", pageLines), each(func(ctx context.Context) error {
			_, err := api.GetInvoice(ctx, pageReq)
			return err
		})},
		// The same page read by a caller that decodes every page into one
		// message (vtprotobuf's ResetVT keeps its lines, details and
		// amounts for the next page): how a downstream run walking many
		// pages can read them without allocating each anew.
		{fmt.Sprintf("GetInvoice page of %d, message reused", pageLines), func() func(context.Context) error {
			resp := new(billingv1.GetInvoiceResponse)
			return func(ctx context.Context) error {
				resp.ResetVT()
				return conn.Invoke(ctx, billingv1.BillingService_GetInvoice_FullMethodName, pageReq, resp)
			}
		}},
		// The same page kept as received, not decoded: the server's and
		// the transport's part of a call (a caller that stores or forwards
		// pages), apart from the decoding that is the client's.
		{fmt.Sprintf("GetInvoice page of %d, undecoded", pageLines), func() func(context.Context) error {
			var page []byte
			return func(ctx context.Context) error {
				return conn.Invoke(ctx, billingv1.BillingService_GetInvoice_FullMethodName, pageReq, &page, grpc.ForceCodecV2(undecoded{}))
			}
		}},
	}
	for _, q := range queries {
		for _, c := range cfg.Concurrency {
			say("queries: %s at concurrency %d", q.name, c)
			fig, err := measure(ctx, q.name, c, cfg.QueryDuration, q.call)
			if err != nil {
				return nil, err
			}
			r.Queries = append(r.Queries, fig)
		}
	}
	r.PeakRSS, err = scrape(ctx, cfg.HTTP, "ledger_process_peak_rss_bytes")
	if err != nil {
		say("memory: %v", err)
	}
	return r, nil
}

// segments times each segment of the ingestion from the consumer's
// progress, which watch polls, and holds the publisher back while more
// than aheadMax messages wait for ledgerd.
type segments struct {
	size, batch int
	published   atomic.Int64 // messages published so far
	waiting     atomic.Int64 // messages ledgerd had not handled at the last poll
	mu          sync.Mutex
	last        time.Time
	done        []Segment
}

// watch polls ledgerd's consumer every 200 ms until ctx ends, recording
// the segments the ingested messages complete.
func (s *segments) watch(ctx context.Context, js jetstream.JetStream, say func(string, ...any)) {
	for {
		select {
		case <-time.After(200 * time.Millisecond): // JetStream state: polled
		case <-ctx.Done():
			return
		}
		cons, err := js.Consumer(ctx, wire.StreamIn, wire.Consumer)
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		waiting := int64(info.NumPending) + int64(info.NumAckPending)
		s.waiting.Store(waiting)
		for _, d := range s.reach(int(s.published.Load()-waiting), false) {
			say("         %d records ingested, the last %d at %.0f records/s", d.Records, s.size, float64(s.size)/d.Took.Seconds())
		}
	}
}

// throttle waits while more than aheadMax messages wait for ledgerd.
func (s *segments) throttle(ctx context.Context) error {
	for s.published.Load()-s.waiting.Load() < 0 || s.waiting.Load() > aheadMax {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reach records, and returns, the segments that ingested messages
// complete, and with end the last, partial one.
func (s *segments) reach(ingested int, end bool) []Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Segment
	records := ingested * s.batch
	for {
		start := len(s.done) * s.size
		next := start + s.size
		if records < next && !(end && records > start) {
			return out
		}
		now := time.Now()
		d := Segment{Records: min(next, records), Took: now.Sub(s.last)}
		s.done = append(s.done, d)
		out = append(out, d)
		s.last = now
	}
}

// publish publishes input messages and waits for every acknowledgement.
func publish(ctx context.Context, js jetstream.JetStream, msgs []proto.Message) error {
	for _, m := range msgs {
		subject, err := wire.Subject(m)
		if err != nil {
			return err
		}
		data, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := js.PublishAsync(subject, data, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
	}
	return waitAcks(ctx, js)
}

func publishRaw(ctx context.Context, js jetstream.JetStream, subject string, payloads [][]byte) error {
	for _, p := range payloads {
		if _, err := js.PublishAsync(subject, p, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
	}
	return waitAcks(ctx, js)
}

func waitAcks(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitIngested waits until ledgerd's consumer has taken and acknowledged
// everything published, and returns the store's head position then.
func waitIngested(ctx context.Context, js jetstream.JetStream, log *eventlog.Log) (uint64, error) {
	for {
		cons, err := js.Consumer(ctx, wire.StreamIn, wire.Consumer)
		if err != nil {
			return 0, fmt.Errorf("ledgerd's consumer: %w", err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, err
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		select {
		case <-time.After(5 * time.Millisecond): // JetStream state: polled
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	// The last billing event: the projections see only those (the raw
	// appends of an earlier step are not theirs to wait for).
	return log.Last(ctx, billing.EventTypePrefix)
}

// rawPublish publishes the payloads to a stream of their own with nothing
// consuming it: the rate JetStream alone sustains.
func rawPublish(ctx context.Context, js jetstream.JetStream, payloads [][]byte) (time.Duration, error) {
	name := "BENCH_RAW_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.raw." + name}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	defer js.DeleteStream(context.Background(), name)
	start := time.Now()
	if err := publishRaw(ctx, js, "bench.raw."+name, payloads); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// rawAppend appends the payloads to the store as ingestion does (one
// stream each, no_stream, as many in flight as ingestion allows), but
// with nothing else: no NATS, no decoding, no validation.
func rawAppend(ctx context.Context, log *eventlog.Log, payloads [][]byte) (time.Duration, error) {
	const inFlight = 32
	prefix := "benchraw-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(payloads) {
					return
				}
				_, err := log.Append(ctx, prefix+strconv.Itoa(i), eventlog.NoStream, eventlog.Event{ID: uuid.New(), Type: "bench.Raw", Data: payloads[i]})
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// replay times what ledgerd does at start: a projection runner following
// the store's $all from the beginning until it has caught up.
func replay(ctx context.Context, url string) (time.Duration, error) {
	log, err := eventlog.Dial(url, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, err
	}
	defer log.Close()
	r := runner.New(log, runner.Options{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx) }()
	if err := r.WaitFor(ctx, 0); err != nil {
		return 0, err
	}
	took := time.Since(start)
	cancel()
	<-done
	return took, nil
}

// snapshotRestart times a snapshot: a runner replays the store into a
// snapshot directory of its own and stops (writing the snapshot), then
// another starts from it, until it has caught up with the store.
func snapshotRestart(ctx context.Context, url string, r *Report) error {
	dir, err := os.MkdirTemp("", "ledgerbench-snapshots-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log, err := eventlog.Dial(url, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer log.Close()
	run := func() (ready, stopped time.Duration, err error) {
		rn := runner.New(log, runner.Options{SnapshotDir: dir})
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- rn.Run(ctx) }()
		if err := rn.WaitFor(ctx, 0); err != nil {
			return 0, 0, err
		}
		ready = time.Since(start)
		start = time.Now()
		cancel()
		err = <-done
		return ready, time.Since(start), err
	}
	if _, r.SnapshotWrite, err = run(); err != nil {
		return err
	}
	snaps, _ := snapshot.List(dir)
	if len(snaps) == 0 {
		return fmt.Errorf("no snapshot written in %s", dir)
	}
	st, err := os.Stat(snaps[0])
	if err != nil {
		return err
	}
	r.SnapshotBytes = st.Size()
	r.SnapshotRestart, _, err = run()
	return err
}

// rawRead reads all of $all through the official client.
func rawRead(ctx context.Context, log *eventlog.Log) (time.Duration, int, error) {
	start := time.Now()
	n, err := log.ReadAll(ctx, func(eventlog.Recorded) error { return nil })
	if err != nil {
		return 0, 0, err
	}
	return time.Since(start), n, nil
}

// measure calls fn from c goroutines for d and gathers latencies.
func measure(ctx context.Context, name string, c int, d time.Duration, call func() func(context.Context) error) (QueryFigure, error) {
	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, c)
	errs := make(chan error, c)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c {
		fn := call()
		wg.Go(func() {
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := fn(ctx); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return QueryFigure{}, fmt.Errorf("%s: %w", name, err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return QueryFigure{}, fmt.Errorf("%s: no call completed in %s", name, d)
	}
	return QueryFigure{
		Name: name, Concurrency: c, Calls: len(all),
		P50:       all[len(all)/2],
		P99:       all[min(len(all)-1, len(all)*99/100)],
		PerSecond: float64(len(all)) / elapsed.Seconds(),
	}, nil
}

// undecoded is a gRPC codec that encodes requests as protobuf-go does and
// keeps answers as bytes (into a *[]byte).
type undecoded struct{}

func (undecoded) Name() string { return "proto" }

func (undecoded) Marshal(v any) (mem.BufferSlice, error) {
	data, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(data)}, err
}

func (undecoded) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// each gives every caller the same call, for a query without state.
func each(fn func(context.Context) error) func() func(context.Context) error {
	return func() func(context.Context) error { return fn }
}

// callersHeadroom is how far the query callers' heap may grow above
// what it holds before their collector runs (GC): room for 64 callers
// each holding a whole decoded invoice of 1,000 lines (about 3 MB) many
// times over.
const callersHeadroom = 1 << 30

// GC is how the query callers' garbage collector runs while the queries
// are measured. The callers hold a few megabytes and allocate each answer
// they read (a page of 100 lines is 66–80 KB): with Go's default (GOGC
// 100) their collector ran every few dozen pages, hundreds of times a
// second, on the two cores ledgerd had too, and set the p99 of a page
// (5.5–5.8 ms undecoded at concurrency 16, against 3.3–4.2 ms with
// headroom; 13–15 ms decoded against 6.7 ms). A program that reads pages
// at such a rate would give its collector room; so does ledgerbench,
// unless GOGC is set, which it then keeps, to measure with that.
type GC struct {
	Headroom int64 // bytes above the live heap; 0: GOGC as set
	percent  int   // the settings before, for restore
	limit    int64
}

// callersGC gives the callers' collector callersHeadroom above the heap
// live now, and no GOGC growth target, unless GOGC is set.
func callersGC() GC {
	if _, set := os.LookupEnv("GOGC"); set {
		return GC{}
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	g := GC{Headroom: callersHeadroom}
	g.limit = debug.SetMemoryLimit(int64(m.HeapAlloc) + callersHeadroom)
	g.percent = debug.SetGCPercent(-1)
	return g
}

func (g GC) describe() string {
	if g.Headroom == 0 {
		return "as GOGC says (" + os.Getenv("GOGC") + ")"
	}
	return fmt.Sprintf("collecting at %d MiB above the live heap (GOGC unset)", g.Headroom>>20)
}

// restore puts back the collector's settings from before callersGC.
func (g GC) restore() {
	if g.Headroom > 0 {
		debug.SetGCPercent(g.percent)
		debug.SetMemoryLimit(g.limit)
	}
}

// settleMax bounds settle's wait; quietCPU is the share of one core below
// which ledgerd counts as quiet, over a second.
const (
	settleMax = 2 * time.Minute
	quietCPU  = 0.05
)

// settle waits, up to max, until ledgerd's CPU over one second (from its
// /metrics) is under quietCPU of a core, and says how long that took and
// whether it happened. A ledgerd whose /metrics does not answer counts as
// quiet: there is nothing to wait on.
func settle(ctx context.Context, addr string, max time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < max {
		used := cpuMeter(ctx, addr)
		select {
		case <-time.After(time.Second): // the window measured
		case <-ctx.Done():
			return time.Since(start), false
		}
		if cpu := used(); cpu < time.Duration(quietCPU*float64(time.Second)) {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// cpuMeter starts measuring ledgerd's CPU time; the function it returns
// says how much ledgerd has used since, or 0 if its /metrics does not say.
func cpuMeter(ctx context.Context, addr string) func() time.Duration {
	const metric = "process_cpu_seconds_total"
	start, err := scrape(ctx, addr, metric)
	return func() time.Duration {
		end, err2 := scrape(ctx, addr, metric)
		if err != nil || err2 != nil {
			return 0
		}
		return time.Duration((end - start) * float64(time.Second))
	}
}

// scrape reads one gauge from ledgerd's /metrics.
func scrape(ctx context.Context, addr, metric string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, metric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("%s not in ledgerd's /metrics", metric)
}
