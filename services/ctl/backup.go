package ctl

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ledger-billing/ledger/services/token"
	"github.com/ledger-billing/ledger/services/wire"
)

// BackupSummary is what Backup wrote; it is the --json output.
type BackupSummary struct {
	Dir   string `json:"dir"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
	// Position is the $all position of the last event in the backup; 0
	// for an empty store.
	Position uint64 `json:"position"`
}

// Backup asks ledgerd for a backup of its embedded event store (POST
// wire.BackupPath on Config.HTTP) and unpacks it into dir, which must be
// new or empty: unpacked, dir is a store directory that ledgerd opens as
// <data-dir>/eventstore. Every file is synced, then every directory, before
// Backup reports; a backup that fails or is cut off is removed, so that a
// directory Backup leaves behind is whole.
//
// The tar comes from the network and is unpacked as untrusted: only
// regular files and directories, with relative names that stay inside dir
// (no absolute path, no ".."), each created anew, and no more files or
// bytes than ledgerd announced.
func (c *Client) Backup(ctx context.Context, dir string) error {
	if dir == "" {
		return usage("backup needs a DIR")
	}
	created, err := backupTarget(dir)
	if err != nil {
		return err
	}
	summary, err := c.backup(ctx, dir)
	if err != nil {
		if cerr := clearTarget(dir, created); cerr != nil {
			return fmt.Errorf("%w\n(and what was unpacked into %s could not be removed: %v)", err, dir, cerr)
		}
		return err
	}
	return c.reportBackup(summary)
}

// backupTarget checks that dir is new or empty, creating it when new.
func backupTarget(dir string) (created bool, err error) {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("backup: cannot create %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("backup: %w", err)
	case !info.IsDir():
		return false, usage("backup: %s is a file; a backup goes into a new or empty directory", dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return false, usage("backup: %s is not empty; a backup goes into a new or empty directory, so that it holds the store and nothing else", dir)
	}
	return false, nil
}

// clearTarget undoes a failed backup: it removes dir if Backup created it,
// or empties it again.
func clearTarget(dir string, created bool) error {
	if created {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// backupAnnounced is what ledgerd says, in the headers, a backup holds.
type backupAnnounced struct {
	files    int
	bytes    int64
	position uint64
}

func (c *Client) backup(ctx context.Context, dir string) (*BackupSummary, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, backupURL(c.cfg.HTTP, tlsConfig != nil), nil)
	if err != nil {
		return nil, usage("--http %q is not an address: %v", c.cfg.HTTP, err)
	}
	if c.cfg.Token != "" {
		// Backups are an operator's: a ledgerd that authenticates its
		// callers takes the same bearer token as the queries.
		req.Header.Set(token.Header, token.Scheme+" "+c.cfg.Token)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Taking the checkpoint is quick; a ledgerd that does not answer
	// within the query bound is not going to.
	transport.ResponseHeaderTimeout = c.cfg.Timeout
	transport.TLSClientConfig = tlsConfig
	client := &http.Client{Transport: transport}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		switch {
		case ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case errors.As(err, &ne) && ne.Timeout():
			return nil, fmt.Errorf("ledgerd at %s did not answer within %s (--timeout): %w", c.cfg.HTTP, c.cfg.Timeout, err)
		}
		return nil, &UnreachableError{What: "ledgerd", Addr: c.cfg.HTTP, Err: err, Hint: tlsHint(err.Error(), "", c.grpcTLSWithoutCert())}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, refusalMax))
		return nil, &sentence{
			msg:  fmt.Sprintf("ledgerd refused the backup: %s (HTTP %d)", escape(strings.TrimSpace(string(text))), resp.StatusCode),
			kind: ErrBackupRefused,
		}
	}
	want, err := announced(resp.Header)
	if err != nil {
		return nil, badBackup("ledgerd at %s answered without saying what the backup holds (%v); is it a ledgerd?", c.cfg.HTTP, err)
	}

	// A ledgerd that stops sending mid-way would otherwise be waited for
	// forever.
	stalled := time.AfterFunc(c.cfg.Timeout, func() {
		cancel(fmt.Errorf("ledgerd at %s sent nothing for %s (--timeout)", c.cfg.HTTP, c.cfg.Timeout))
	})
	defer stalled.Stop()
	body := &stallReader{r: resp.Body, timer: stalled, after: c.cfg.Timeout}

	prog := c.newProgress(0)
	got, err := unpack(body, dir, want, true, func(files int, bytes int64) { prog.backup(files, want.files, bytes, want.bytes) })
	prog.done()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		var bad *sentence
		if errors.As(err, &bad) {
			return nil, err
		}
		return nil, fmt.Errorf("the backup stopped after %s of %s %s: %w",
			thousands(got.files), thousands(want.files), plural(want.files, "file", "files"), err)
	}
	if got != (unpacked{files: want.files, bytes: want.bytes}) {
		return nil, badBackup("the backup ended early: %s of %s %s, %s of %s bytes",
			thousands(got.files), thousands(want.files), plural(want.files, "file", "files"), thousands64(got.bytes), thousands64(want.bytes))
	}
	return &BackupSummary{Dir: dir, Files: got.files, Bytes: got.bytes, Position: want.position}, nil
}

// refusalMax bounds the part of a refusal's body an error quotes.
const refusalMax = 1 << 10

// backupURL is the backup endpoint at addr, a host:port as --grpc takes,
// or a URL with its scheme.
func backupURL(addr string, tls bool) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/") + wire.BackupPath
	}
	if tls {
		return "https://" + addr + wire.BackupPath
	}
	return "http://" + addr + wire.BackupPath
}

func announced(h http.Header) (backupAnnounced, error) {
	var a backupAnnounced
	var err error
	if a.files, err = strconv.Atoi(h.Get(wire.HeaderBackupFiles)); err != nil || a.files < 0 {
		return a, fmt.Errorf("%s %q", wire.HeaderBackupFiles, h.Get(wire.HeaderBackupFiles))
	}
	if a.bytes, err = strconv.ParseInt(h.Get(wire.HeaderBackupBytes), 10, 64); err != nil || a.bytes < 0 {
		return a, fmt.Errorf("%s %q", wire.HeaderBackupBytes, h.Get(wire.HeaderBackupBytes))
	}
	if a.position, err = strconv.ParseUint(h.Get(wire.HeaderBackupPosition), 10, 64); err != nil {
		return a, fmt.Errorf("%s %q", wire.HeaderBackupPosition, h.Get(wire.HeaderBackupPosition))
	}
	return a, nil
}

// stallReader pushes a watchdog back whenever bytes arrive.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	after time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.after)
	}
	return n, err
}

// unpacked counts what unpack wrote.
type unpacked struct {
	files int
	bytes int64
}

// unpack writes the tar on r into dir, which is new or empty, and with
// durable syncs every file and directory. Every name is checked before
// anything is written for it, and every write goes through an os.Root on
// dir, which no name, link or later rename can take outside it. progress is
// told the files and bytes written so far.
//
// Only the fuzz test turns durable off: fsync would take most of its time
// and has no part in what it checks.
func unpack(r io.Reader, dir string, want backupAnnounced, durable bool, progress func(files int, bytes int64)) (unpacked, error) {
	var got unpacked
	root, err := os.OpenRoot(dir)
	if err != nil {
		return got, err
	}
	defer root.Close()
	dirs := map[string]bool{".": true} // to sync once the files are
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return got, err
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return got, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name != "." {
				if err := root.MkdirAll(name, 0o700); err != nil {
					return got, err
				}
				dirs[name] = true
			}
			continue
		case tar.TypeReg:
		default:
			return got, badBackup("backup entry %q is %s; a backup holds only files and directories", escape(hdr.Name), entryKind(hdr.Typeflag))
		}
		if name == "." {
			return got, badBackup("backup entry %q is a file without a name", escape(hdr.Name))
		}
		if got.files+1 > want.files || got.bytes+hdr.Size > want.bytes {
			return got, badBackup("the backup holds more than the %s %s and %s bytes ledgerd announced (at entry %q)",
				thousands(want.files), plural(want.files, "file", "files"), thousands64(want.bytes), escape(hdr.Name))
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o700); err != nil {
				return got, err
			}
			for p := parent; p != "."; p = path.Dir(p) {
				dirs[p] = true
			}
		}
		if err := writeEntry(root, name, tr, hdr.Size, durable, func(n int64) { progress(got.files, got.bytes+n) }); err != nil {
			return got, err
		}
		got.files++
		got.bytes += hdr.Size
		progress(got.files, got.bytes)
	}
	if !durable {
		return got, nil
	}
	// A file's directory entry is durable only once its directory is
	// synced.
	for d := range dirs {
		if err := syncDir(root, d); err != nil {
			return got, err
		}
	}
	return got, nil
}

// entryName checks a tar entry's name and returns it cleaned: relative,
// slash-separated, inside the directory it is unpacked into.
func entryName(name string) (string, error) {
	if name == "" {
		return "", badBackup("a backup entry has no name")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return "", badBackup("backup entry %q has an absolute path; every name must be inside the backup's directory", escape(name))
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", badBackup("backup entry %q climbs out of the backup's directory with \"..\"", escape(name))
		}
	}
	clean := path.Clean(name)
	if clean != "." && !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", badBackup("backup entry %q is not a name inside the backup's directory", escape(name))
	}
	return clean, nil
}

func entryKind(flag byte) string {
	switch flag {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "a device"
	case tar.TypeFifo:
		return "a named pipe"
	}
	return fmt.Sprintf("of tar type %q", flag)
}

// writeEntry creates name (it must not exist: a second entry of the same
// name is refused, not written over), copies size bytes into it and, if
// durable, syncs it.
func writeEntry(root *os.Root, name string, r io.Reader, size int64, durable bool, progress func(int64)) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return badBackup("backup entry %q comes twice", escape(name))
	}
	if err != nil {
		return err
	}
	_, err = io.CopyN(&progressWriter{w: f, progress: progress}, r, size)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func syncDir(root *os.Root, name string) error {
	d, err := root.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// progressWriter reports the bytes written through it so far.
type progressWriter struct {
	w        io.Writer
	n        int64
	progress func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.progress(p.n)
	return n, err
}

func badBackup(format string, args ...any) error {
	return &sentence{msg: fmt.Sprintf(format, args...), kind: ErrBadBackup}
}

func (c *Client) reportBackup(s *BackupSummary) error {
	if c.cfg.JSON {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.cfg.Out, "%s\n", b)
		return err
	}
	upTo := "an empty store"
	if s.Position > 0 {
		upTo = "up to $all position " + thousands64(int64(s.Position))
	}
	_, err := fmt.Fprintf(c.cfg.Out, "Backed up the event store into %s: %s %s, %s, %s.\n"+
		"To restore it, stop ledgerd, make it the eventstore directory of a fresh data directory (<data-dir>/eventstore), and start ledgerd.\n",
		s.Dir, thousands(s.Files), plural(s.Files, "file", "files"), byteSize(s.Bytes), upTo)
	return err
}

// backup shows a backup's progress: files and bytes unpacked, of those
// announced.
func (p *progress) backup(files, totalFiles int, done, total int64) {
	if p == nil || !p.due(files == totalFiles) {
		return
	}
	p.draw(renderBackupProgress(files, totalFiles, done, total, p.now().Sub(p.start)))
}

// renderBackupProgress writes
// "[###-------]  10%  1.0 GiB of 10.0 GiB  3/12 files  80.0 MiB/s".
func renderBackupProgress(files, totalFiles int, done, total int64, elapsed time.Duration) string {
	fill, percent := int64(barWidth), int64(100)
	if total > 0 {
		fill, percent = done*barWidth/total, done*100/total
	}
	var b strings.Builder
	b.WriteString("[" + strings.Repeat("#", int(fill)) + strings.Repeat("-", barWidth-int(fill)) + "]")
	fmt.Fprintf(&b, " %3d%%  %s of %s  %s/%s %s", percent, byteSize(done), byteSize(total), thousands(files), thousands(totalFiles), plural(totalFiles, "file", "files"))
	if elapsed > 0 {
		fmt.Fprintf(&b, "  %s/s", byteSize(int64(float64(done)/elapsed.Seconds())))
	}
	return b.String()
}

// byteSize writes n in binary units with one decimal ("2.6 GiB"), bytes
// as they are. A size shown to a person is a measurement, not money: a
// float is the right tool.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
