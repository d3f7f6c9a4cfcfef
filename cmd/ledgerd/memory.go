package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimit is --memory-limit: the Go runtime's soft memory limit
// (runtime/debug.SetMemoryLimit). Ledgerd's heap is mostly the billing
// fold's long-lived state, so without a limit the collector lets the heap
// grow to GOGC percent above it before collecting, and a ledgerd holding
// 2 GB of state peaks near 4 GiB (docs/scaling.md). With a limit the
// collector works harder as the heap nears it instead, and gives memory
// back to the system: the limit is what ledgerd may use, not the state it
// holds, which must stay well below it (a state near the limit makes the
// collector run without pause, and ledgerd slows to a crawl rather than
// being killed).
type memoryLimit struct {
	set   bool
	bytes int64 // 0: none
}

// units are the suffixes --memory-limit takes, binary as the kernel's.
var units = []struct {
	suffix string
	scale  float64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (m *memoryLimit) String() string {
	if m == nil || !m.set {
		return ""
	}
	return formatBytes(m.bytes)
}

// Set takes "none", "0", a number of bytes, or a number with one of the
// suffixes KiB, MiB, GiB or TiB ("2.5GiB").
func (m *memoryLimit) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "none" || s == "0" {
		*m = memoryLimit{set: true}
		return nil
	}
	scale, number := 1.0, s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			scale, number = u.scale, strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	v, err := strconv.ParseFloat(number, 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v*scale > math.MaxInt64/2 {
		return fmt.Errorf("want a size such as 2GiB, 2560MiB or none, not %q", s)
	}
	if v*scale < 64<<20 {
		return fmt.Errorf("%s is below the 64MiB ledgerd needs to start", s)
	}
	*m = memoryLimit{set: true, bytes: int64(v * scale)}
	return nil
}

// cgroupMemoryMax is the file where cgroup v2 says how much memory the
// container may use ("max" when unlimited).
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// containerShare is the part of a container's memory limit ledgerd takes
// by default: the rest is for what the Go runtime does not count (thread
// stacks outside Go, the kernel's page tables, the store's memory mapped
// files) so that the kernel's limit is never reached first.
const containerShare = 0.9

// apply sets the runtime's limit and says where it came from: the flag;
// else GOMEMLIMIT, which the runtime has applied already; else
// containerShare of the container's limit; else none.
func (m *memoryLimit) apply() (limit int64, source string) {
	switch {
	case m.set && m.bytes == 0:
		debug.SetMemoryLimit(math.MaxInt64)
		return 0, "--memory-limit"
	case m.set:
		debug.SetMemoryLimit(m.bytes)
		return m.bytes, "--memory-limit"
	case os.Getenv("GOMEMLIMIT") != "":
		if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
			return l, "GOMEMLIMIT"
		}
		return 0, "GOMEMLIMIT"
	}
	if max, ok := containerLimit(cgroupMemoryMax); ok {
		l := int64(float64(max) * containerShare)
		debug.SetMemoryLimit(l)
		return l, cgroupMemoryMax
	}
	return 0, ""
}

// containerLimit reads a cgroup v2 memory.max: a number of bytes, or "max".
func containerLimit(path string) (int64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// formatBytes writes n in the largest unit that keeps it whole to a tenth.
func formatBytes(n int64) string {
	for _, u := range units {
		if v := float64(n) / u.scale; v >= 1 {
			return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) + u.suffix
		}
	}
	return "0B"
}
