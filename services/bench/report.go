package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Print writes the report as one table.
func (r *Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	rate := func(n int, d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
	}
	ratio := func(ours, raw time.Duration) string {
		if ours <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", raw.Seconds()/ours.Seconds())
	}
	// rateRatio compares the ingest rate with a raw part's, which may have
	// measured a sample of the records only.
	rateRatio := func(raw time.Duration) string {
		if r.Ingest <= 0 || raw <= 0 || r.RawRecords == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", (float64(r.Records)/r.Ingest.Seconds())/(float64(r.RawRecords)/raw.Seconds()))
	}
	// cpu gives ledgerd's CPU time over a step, and per record: what
	// compares between runs on a machine whose speed moves.
	cpu := func(d time.Duration, records int) string {
		if d <= 0 || records <= 0 {
			return ""
		}
		return fmt.Sprintf("%s (%.1f µs a record)", d.Round(10*time.Millisecond), float64(d.Microseconds())/float64(records))
	}
	fmt.Fprintf(tw, "measure\ttime\trecords/s\tmessages/s\tours/raw\tledgerd CPU\tCPU ours/raw\t\n")
	fmt.Fprintf(tw, "ingest, end to end (%d records in %d messages, %.1f MB)\t%s\t%s\t%s\t\t%s\t\t\n",
		r.Records, r.Messages, float64(r.PayloadBytes)/1e6, r.Ingest.Round(time.Millisecond), rate(r.Records, r.Ingest), rate(r.Messages, r.Ingest), cpu(r.IngestCPU, r.Records))
	if r.Generate > 0 {
		fmt.Fprintf(tw, "  (payloads made before the clock, in %s)\t\t\t\t\t\t\t\n", r.Generate.Round(time.Millisecond))
	} else {
		fmt.Fprintf(tw, "  (payloads made while publishing, on the same machine)\t\t\t\t\t\t\t\n")
	}
	for i, s := range r.Segments {
		if len(r.Segments) > 1 {
			fmt.Fprintf(tw, "  segment %d (to %d records)\t%s\t%s\t\t\t\t\t\n", i+1, s.Records, s.Took.Round(time.Millisecond), rate(s.Records-r.segmentStart(i), s.Took))
		}
	}
	same := "same payloads"
	if r.RawRecords < r.Records {
		same = fmt.Sprintf("the first %d of the payloads", r.RawRecords)
	}
	// The CPU ratio is raw over ours per record, as the rates': 1 would be
	// ingestion costing ledgerd no more than the raw part.
	cpuRatio := func(raw time.Duration) string {
		if r.IngestCPU <= 0 || raw <= 0 || r.RawRecords == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", (raw.Seconds()/float64(r.RawRecords))/(r.IngestCPU.Seconds()/float64(r.Records)))
	}
	fmt.Fprintf(tw, "raw JetStream publish, %s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
		same, r.RawPublish.Round(time.Millisecond), rate(r.RawRecords, r.RawPublish), rate(r.RawMessages, r.RawPublish), rateRatio(r.RawPublish),
		cpu(r.RawPublishCPU, r.RawRecords), cpuRatio(r.RawPublishCPU))
	fmt.Fprintf(tw, "raw store append, %s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
		same, r.RawAppend.Round(time.Millisecond), rate(r.RawRecords, r.RawAppend), rate(r.RawMessages, r.RawAppend), rateRatio(r.RawAppend),
		cpu(r.RawAppendCPU, r.RawRecords), cpuRatio(r.RawAppendCPU))
	// Ingestion does both raw parts and more (JetStream's delivery and
	// acknowledgement, decoding, checking, folding), so their CPU together
	// is the least a record can cost it on this machine.
	if r.RawPublishCPU > 0 && r.RawAppendCPU > 0 {
		both := r.RawPublishCPU + r.RawAppendCPU
		fmt.Fprintf(tw, "  raw publish and append together, the least ingestion can cost\t\t\t\t\t%s\t%s\t\n", cpu(both, r.RawRecords), cpuRatio(both))
	}
	fmt.Fprintf(tw, "replay to ready (fresh projection runner)\t%s\t%s\t\t\t\t\t\n", r.Replay.Round(time.Millisecond), rate(r.Records, r.Replay))
	fmt.Fprintf(tw, "raw $all read (%d events)\t%s\t%s\t%s events/s\t%s\t\t\t\n",
		r.StoreEvents, r.RawRead.Round(time.Millisecond), rate(r.Records, r.RawRead), rate(r.StoreEvents, r.RawRead), ratio(r.Replay, r.RawRead))
	fmt.Fprintf(tw, "snapshot write (%.1f MB)\t%s\t\t\t\t\t\t\n", float64(r.SnapshotBytes)/1e6, r.SnapshotWrite.Round(time.Millisecond))
	if r.SnapshotRestart > 0 {
		fmt.Fprintf(tw, "restart to ready from the snapshot (%.1f times faster than replay)\t%s\t\t\t\t\t\t\n", r.Replay.Seconds()/r.SnapshotRestart.Seconds(), r.SnapshotRestart.Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "query\tconcurrency\tcalls\tp50\tp99\tcalls/s\t\n")
	for _, q := range r.Queries {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.0f\t\n", q.Name, q.Concurrency, q.Calls, q.P50.Round(time.Microsecond), q.P99.Round(time.Microsecond), q.PerSecond)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Queries) > 0 {
		fmt.Fprintf(w, "the callers' garbage collector: %s\n", r.CallersGC.describe())
	}
	fmt.Fprintln(w)
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "ledgerd peak RSS: %.0f MiB\n", r.PeakRSS/(1<<20))
	}
	return nil
}

// segmentStart is the records ingested before segment i.
func (r *Report) segmentStart(i int) int {
	if i == 0 {
		return 0
	}
	return r.Segments[i-1].Records
}
