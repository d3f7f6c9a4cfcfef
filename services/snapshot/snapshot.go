// Package snapshot keeps ledgerd's snapshots: files in
// <data-dir>/snapshots/ that hold the projections' state at a $all
// position, so that a restart reads the state and follows the log from
// there instead of replaying the whole history (DESIGN 13,
// docs/architecture.md "Snapshots"). services/runner writes and loads
// them; what the projection's bytes mean is projections/billing's
// business (WriteSnapshot, ReadSnapshot), not this package's.
//
// A file is, in order:
//
//	magic        8 bytes, "LEDGSNAP"
//	format       uvarint, Version: the layout of this file
//	projection   uvarint, the projection's encoding version (billing.SnapshotVersion)
//	position     uvarint, the $all position the state reflects
//	sections     uvarint count, then per section: uvarint name length, name,
//	             uvarint data length, data (the runner's own state, by name)
//	state        the projection's bytes, to the trailer
//	checksum     4 bytes, CRC-32C (Castagnoli) of everything before it, big-endian
//
// It is written to <position>.tmp, synced, renamed to <position>.snap (the
// position zero-padded to 20 digits, so that names sort as positions do),
// and the directory synced: a crash leaves the previous snapshots whole and
// at most a .tmp, which the next write removes. The newest Keep are kept.
//
// Load tries the snapshots newest first. The checksum is checked before
// anything else is read; a file that fails anything (checksum, format,
// version, the caller's decoding) is logged with its name and the cause,
// and the next one is tried.
package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Version is the version of the file layout above. Bump it on any change
// of the layout; a file of another version is skipped (a full replay).
// The projection's encoding has its own version, in the header too.
const Version = 1

// Keep is how many snapshots are kept: the newest, and one more in case
// the newest cannot be read.
const Keep = 2

// Bounds of what a header may claim, so that a crafted one cannot make
// Load allocate much (a damaged one fails the checksum first): the
// runner's sections are small (a hash chain's state, counters).
const (
	sectionsMax    = 64
	sectionNameMax = 256
	sectionDataMax = 64 << 20
)

var magic = [8]byte{'L', 'E', 'D', 'G', 'S', 'N', 'A', 'P'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of Load's attempts, each logged with the file it was met in.
var (
	ErrChecksum = errors.New("snapshot: checksum mismatch")
	ErrVersion  = errors.New("snapshot: another format version")
	ErrCorrupt  = errors.New("snapshot: corrupt file")
)

// Header is what a snapshot says besides the projection's state.
type Header struct {
	// ProjectionVersion is the version of the projection's encoding.
	ProjectionVersion uint64
	// Position is the $all position the state reflects: following the
	// log strictly after it continues where the snapshot stopped.
	Position uint64
	// Sections are the runner's own parts of the state, by name.
	Sections map[string][]byte
	// Path is the file Load read it from.
	Path string
}

// Written is what Write wrote.
type Written struct {
	Path  string
	Bytes int64
}

// Write writes a snapshot of h into dir (created if need be), the state
// streamed by state through a buffer, and then deletes all but the newest
// Keep snapshots and any temporary file left by a crash.
func Write(dir string, h Header, state func(w io.Writer) error) (Written, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return Written{}, fmt.Errorf("snapshot: %w", err)
	}
	name := fmt.Sprintf("%020d", h.Position)
	tmp := filepath.Join(dir, name+".tmp")
	final := filepath.Join(dir, name+".snap")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return Written{}, fmt.Errorf("snapshot: %w", err)
	}
	n, err := write(f, h, state)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return Written{}, fmt.Errorf("snapshot: writing %s: %w", final, err)
	}
	prune(dir)
	return Written{Path: final, Bytes: n}, nil
}

func write(f *os.File, h Header, state func(w io.Writer) error) (int64, error) {
	cw := &checksumWriter{w: f, crc: crc32.New(castagnoli)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	var buf []byte
	buf = append(buf, magic[:]...)
	buf = binary.AppendUvarint(buf, Version)
	buf = binary.AppendUvarint(buf, h.ProjectionVersion)
	buf = binary.AppendUvarint(buf, h.Position)
	names := make([]string, 0, len(h.Sections))
	for name := range h.Sections {
		names = append(names, name)
	}
	slices.Sort(names)
	buf = binary.AppendUvarint(buf, uint64(len(names)))
	for _, name := range names {
		buf = binary.AppendUvarint(buf, uint64(len(name)))
		buf = append(buf, name...)
		buf = binary.AppendUvarint(buf, uint64(len(h.Sections[name])))
		buf = append(buf, h.Sections[name]...)
	}
	if _, err := bw.Write(buf); err != nil {
		return 0, err
	}
	if err := state(bw); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	sum := binary.BigEndian.AppendUint32(nil, cw.crc.Sum32())
	if _, err := f.Write(sum); err != nil {
		return 0, err
	}
	return cw.n + int64(len(sum)), nil
}

type checksumWriter struct {
	w   io.Writer
	crc hash.Hash32
	n   int64
}

func (c *checksumWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// prune deletes all but the newest Keep snapshots, and temporary files:
// one writer owns a data directory (its lock), so any .tmp but the one
// being written is a crash's leftover, and Write renames its own first.
func prune(dir string) {
	snaps, tmps := List(dir)
	if len(snaps) > Keep {
		for _, p := range snaps[Keep:] {
			_ = os.Remove(p)
		}
	}
	for _, p := range tmps {
		_ = os.Remove(p)
	}
}

// List returns the snapshot files of dir, newest first, and the
// temporary files.
func List(dir string) (snaps, tmps []string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".snap") && isPosition(strings.TrimSuffix(name, ".snap")):
			snaps = append(snaps, filepath.Join(dir, name))
		case strings.HasSuffix(name, ".tmp"):
			tmps = append(tmps, filepath.Join(dir, name))
		}
	}
	slices.Sort(snaps)
	slices.Reverse(snaps)
	return snaps, tmps
}

func isPosition(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil && len(s) == 20
}

// Loader says how Load reads a snapshot's state and uses it.
type Loader struct {
	// ProjectionVersion is the projection's encoding version this ledgerd
	// reads; a file of another is skipped.
	ProjectionVersion uint64
	// Logger receives a warning per file skipped; nil discards.
	Logger *slog.Logger
	// Read reads the projection's state from state (bounded to its
	// length), once the checksum is checked.
	Read func(h Header, state io.Reader) error
	// Use, if set, is called once Read has succeeded: an error skips the
	// file too.
	Use func(h Header) error
}

// Load reads the newest snapshot of dir that is whole and that l accepts,
// and returns its header; found is false if none is (no directory, no
// file, or every one skipped: a full replay).
//
// For each file, newest first, it checks the checksum and the header
// (magic, Version, l.ProjectionVersion), calls l.Read and then l.Use.
// A file that fails anything is logged at warn level with its name and
// cause, and the next one is tried.
func Load(dir string, l Loader) (h Header, found bool) {
	logger := l.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	snaps, _ := List(dir)
	for _, path := range snaps {
		h, err := loadFile(path, l.ProjectionVersion, l.Read)
		if err == nil && l.Use != nil {
			err = l.Use(h)
		}
		if err != nil {
			logger.Warn("snapshot: skipped; trying an older one, else replaying the history", "file", path, "err", err)
			continue
		}
		return h, true
	}
	return Header{}, false
}

func loadFile(path string, projectionVersion uint64, read func(Header, io.Reader) error) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Header{}, err
	}
	size := st.Size() - 4 // the checksum's
	if size < int64(len(magic)) {
		return Header{}, fmt.Errorf("%w: %d bytes", ErrCorrupt, st.Size())
	}
	// The checksum first, in a pass of its own: then nothing the decoders
	// read was damaged on disk, and a damaged length cannot make them
	// allocate much. The second pass reads from the page cache.
	crc := crc32.New(castagnoli)
	if _, err := io.Copy(crc, io.NewSectionReader(f, 0, size)); err != nil {
		return Header{}, err
	}
	var sum [4]byte
	if _, err := f.ReadAt(sum[:], size); err != nil {
		return Header{}, err
	}
	if binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
		return Header{}, ErrChecksum
	}
	body := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10)
	h, hdrLen, err := readHeader(body, size)
	if err != nil {
		return Header{}, err
	}
	h.Path = path
	if h.ProjectionVersion != projectionVersion {
		return Header{}, fmt.Errorf("%w: the projection's encoding is version %d, this ledgerd's %d", ErrVersion, h.ProjectionVersion, projectionVersion)
	}
	// The state is read through the header's buffer, which may hold its
	// first bytes, bounded to its length.
	state := &io.LimitedReader{R: body, N: size - hdrLen}
	if err := read(h, state); err != nil {
		return Header{}, fmt.Errorf("state: %w", err)
	}
	return h, nil
}

// counting counts the bytes of the header as it is read.
type counting struct {
	r *bufio.Reader
	n int64
}

func (c *counting) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func readHeader(r *bufio.Reader, size int64) (Header, int64, error) {
	var m [8]byte
	if _, err := io.ReadFull(r, m[:]); err != nil || m != magic {
		return Header{}, 0, fmt.Errorf("%w: not a snapshot (magic %q)", ErrCorrupt, m[:])
	}
	c := &counting{r: r, n: int64(len(m))}
	uvarint := func() uint64 {
		v, err := binary.ReadUvarint(c)
		if err != nil {
			return 1<<64 - 1 // fails every bound below
		}
		return v
	}
	if v := uvarint(); v != Version {
		return Header{}, 0, fmt.Errorf("%w: format version %d, this ledgerd's %d", ErrVersion, v, Version)
	}
	h := Header{ProjectionVersion: uvarint(), Position: uvarint(), Sections: make(map[string][]byte)}
	n := uvarint()
	if n > sectionsMax {
		return Header{}, 0, fmt.Errorf("%w: %d sections", ErrCorrupt, n)
	}
	for range n {
		name, err := readBytes(c, uvarint(), sectionNameMax, size)
		if err != nil {
			return Header{}, 0, fmt.Errorf("%w: section name: %v", ErrCorrupt, err)
		}
		data, err := readBytes(c, uvarint(), sectionDataMax, size)
		if err != nil {
			return Header{}, 0, fmt.Errorf("%w: section %q: %v", ErrCorrupt, name, err)
		}
		h.Sections[string(name)] = data
	}
	if c.n > size {
		return Header{}, 0, fmt.Errorf("%w: header longer than the file", ErrCorrupt)
	}
	return h, c.n, nil
}

func readBytes(c *counting, n, maxLen uint64, size int64) ([]byte, error) {
	if n > maxLen || int64(n) > size-c.n {
		return nil, fmt.Errorf("length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return nil, err
	}
	c.n += int64(n)
	return b, nil
}
