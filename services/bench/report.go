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
	cpu := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return d.Round(10 * time.Millisecond).String()
	}
	fmt.Fprintf(tw, "measure\ttime\trecords/s\tmessages/s\tours/raw\tledgerd CPU\tCPU ours/raw\t\n")
	fmt.Fprintf(tw, "ingest, end to end (%d records in %d messages, %.1f MB)\t%s\t%s\t%s\t\t%s\t\t\n",
		r.Records, r.Messages, float64(r.PayloadBytes)/1e6, r.Ingest.Round(time.Millisecond), rate(r.Records, r.Ingest), rate(r.Messages, r.Ingest), cpu(r.IngestCPU))
	fmt.Fprintf(tw, "raw JetStream publish, same payloads\t%s\t%s\t%s\t%s\t\t\t\n",
		r.RawPublish.Round(time.Millisecond), rate(r.Records, r.RawPublish), rate(r.Messages, r.RawPublish), ratio(r.Ingest, r.RawPublish))
	// The CPU ratio is raw over ours, as the time's: 1 would be ingestion
	// costing ledgerd no more than the bare append of the same payloads.
	cpuRatio := ""
	if r.IngestCPU > 0 && r.RawAppendCPU > 0 {
		cpuRatio = ratio(r.IngestCPU, r.RawAppendCPU)
	}
	fmt.Fprintf(tw, "raw store append, same payloads\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
		r.RawAppend.Round(time.Millisecond), rate(r.Records, r.RawAppend), rate(r.Messages, r.RawAppend), ratio(r.Ingest, r.RawAppend), cpu(r.RawAppendCPU), cpuRatio)
	fmt.Fprintf(tw, "replay to ready (fresh projection runner)\t%s\t%s\t\t\t\t\t\n", r.Replay.Round(time.Millisecond), rate(r.Records, r.Replay))
	fmt.Fprintf(tw, "raw $all read (%d events)\t%s\t%s\t%s events/s\t%s\t\t\t\n",
		r.StoreEvents, r.RawRead.Round(time.Millisecond), rate(r.Records, r.RawRead), rate(r.StoreEvents, r.RawRead), ratio(r.Replay, r.RawRead))
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
	fmt.Fprintln(w)
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "ledgerd peak RSS: %.0f MiB\n", r.PeakRSS/(1<<20))
	}
	return nil
}
