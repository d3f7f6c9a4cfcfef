package bench

import (
	"bytes"
	"regexp"
	"testing"
	"time"
)

// TestReportCPUPerRecord: the CPU columns say what a record cost ledgerd,
// the figure that compares between runs of a machine whose speed moves.
func TestReportCPUPerRecord(t *testing.T) {
	r := &Report{
		Records: 10_000_000, Messages: 10_000, Ingest: 50 * time.Second, IngestCPU: 82240 * time.Millisecond,
		RawRecords: 5_000_000, RawMessages: 5_000, RawAppend: 6 * time.Second, RawAppendCPU: 8500 * time.Millisecond,
		RawPublish: 3 * time.Second, RawPublishCPU: 3500 * time.Millisecond,
	}
	var out bytes.Buffer
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	// Rates: ours 200,000 records/s, the raw append's 833,333 (0.24). Per
	// record: ingest 8.224 µs, raw append 1.7 µs (0.21 of ours), raw
	// publish 0.7 µs (0.09), the two together 2.4 µs (0.29).
	for _, want := range []string{`833333 +833 +0\.24`, `1m22\.24s \(8\.2 µs a record\)`, `8\.5s \(1\.7 µs a record\) +0\.21`, `3\.5s \(0\.7 µs a record\) +0\.09`,
		`publish and append together, the least ingestion can cost +12s \(2\.4 µs a record\) +0\.29`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
