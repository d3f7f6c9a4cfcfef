package eventstore

import (
	"archive/tar"
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// backupSuffix names the temporary checkpoint of a backup: a sibling of the
// store's directory (<data-dir>/eventstore.backup-tmp), so that it is on
// the same file system and Pebble links the tables instead of copying them.
// One name, because one backup runs at a time: a leftover (a process killed
// while streaming) is removed at the next Open or backup.
const backupSuffix = ".backup-tmp"

// Backup is a consistent copy of the store, taken while it serves: a Pebble
// checkpoint in a temporary directory beside the store's. The directory is
// a store as it stands, which Open opens as it is. WriteTo streams it as a
// tar; Close removes it. Until Close, the Server refuses another backup.
type Backup struct {
	dir      string
	files    []backupFile // sorted by name
	bytes    int64
	position uint64
	release  func()
	once     sync.Once
	closeErr error
}

type backupFile struct {
	name string // relative to dir, slash-separated
	size int64
}

// Position is the $all position of the last event in the copy; 0 for an
// empty store.
func (b *Backup) Position() uint64 { return b.position }

// Files is the number of files in the copy.
func (b *Backup) Files() int { return len(b.files) }

// Bytes is the total size of the copy's files: what WriteTo writes, tar
// headers aside.
func (b *Backup) Bytes() int64 { return b.bytes }

// Backup takes a consistent copy of the store while it serves. Pebble's
// checkpoint links the immutable tables and copies the log and manifest, so
// it costs milliseconds and does not hold back appends or reads; the copy
// holds every append acknowledged before Backup was called, and any later
// one only whole. The copy is then opened read-only, which proves it is a
// store and gives its last position.
//
// One backup at a time: while one is open (until its Close), another gets
// ErrBackupInProgress, so that at most one checkpoint's worth of tables is
// kept alive on disk.
func (s *Server) Backup() (*Backup, error) {
	if !s.backup.running.CompareAndSwap(false, true) {
		return nil, ErrBackupInProgress
	}
	b, err := s.checkpoint()
	if err != nil {
		s.backup.running.Store(false)
		return nil, err
	}
	return b, nil
}

// backupState is a Server's part in its backups.
type backupState struct {
	dir     string      // the store's directory
	running atomic.Bool // a Backup is open
	// mu is held while checkpointing; closed, which it guards, keeps a
	// checkpoint from starting on a database that Close is closing.
	mu     sync.Mutex
	closed bool
}

// close waits for a checkpoint under way and keeps new ones from starting.
// A Backup already taken stays readable: its files are its own.
func (b *backupState) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
}

func (s *Server) checkpoint() (*Backup, error) {
	start := time.Now()
	dir := backupDir(s.backup.dir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("eventstore: backup: remove the leftover checkpoint %s: %w", dir, err)
	}
	if err := s.checkpointTo(dir); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	b := &Backup{dir: dir, release: func() { s.backup.running.Store(false) }}
	err := b.inventory()
	if err == nil {
		// After the inventory: opening takes a LOCK file, which is no part
		// of the copy.
		b.position, err = checkpointPosition(dir, s.log)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.log.Info("eventstore: backup checkpoint taken", "dir", dir, "position", b.position,
		"files", len(b.files), "bytes", b.bytes, "took", time.Since(start))
	return b, nil
}

// checkpointTo checkpoints the database into dir, unless the store is
// closing: Pebble may not checkpoint a closed database.
func (s *Server) checkpointTo(dir string) error {
	s.backup.mu.Lock()
	defer s.backup.mu.Unlock()
	if s.backup.closed {
		return ErrClosed
	}
	// Every append is committed with Sync already; flushing the log first
	// costs one more fsync and keeps the copy complete should that change.
	if err := s.store.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("eventstore: backup: checkpoint into %s: %w", dir, err)
	}
	return nil
}

// backupDir is where the temporary checkpoint of the store in dir goes.
func backupDir(dir string) string {
	dir = filepath.Clean(dir)
	return filepath.Join(filepath.Dir(dir), filepath.Base(dir)+backupSuffix)
}

// removeLeftoverBackup removes the checkpoint of a backup that a killed
// process left behind; it holds tables alive that the store has long
// compacted away. Only called with the store open, so with Pebble's lock
// on the directory held: no other process is backing it up.
func removeLeftoverBackup(dir string, log *slog.Logger) {
	tmp := backupDir(dir)
	if _, err := os.Lstat(tmp); err != nil {
		return
	}
	if err := os.RemoveAll(tmp); err != nil {
		log.Warn("eventstore: cannot remove a leftover backup checkpoint", "dir", tmp, "err", err)
		return
	}
	log.Warn("eventstore: removed a leftover backup checkpoint", "dir", tmp)
}

// inventory lists the checkpoint's files. A checkpoint holds regular files
// only; anything else is refused rather than followed.
func (b *Backup) inventory() error {
	err := filepath.WalkDir(b.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(b.dir, path)
		if err != nil {
			return err
		}
		b.files = append(b.files, backupFile{name: filepath.ToSlash(rel), size: info.Size()})
		b.bytes += info.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("eventstore: backup: list the checkpoint: %w", err)
	}
	slices.SortFunc(b.files, func(x, y backupFile) int { return cmp.Compare(x.name, y.name) })
	return nil
}

// checkpointPosition opens the checkpoint read-only and returns its last
// $all position: the proof that the copy opens, and what it holds.
func checkpointPosition(dir string, log *slog.Logger) (pos uint64, err error) {
	defer func() {
		// As in Open: Pebble panics on some damaged files.
		if r := recover(); r != nil {
			err = fmt.Errorf("eventstore: backup: the checkpoint in %s does not open: %v", dir, r)
		}
	}()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: pebbleLogger{log}})
	if err != nil {
		return 0, fmt.Errorf("eventstore: backup: the checkpoint in %s does not open: %w", dir, err)
	}
	pos, err = lastPosition(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("eventstore: backup: read the checkpoint in %s: %w", dir, err)
	}
	return pos, nil
}

// WriteTo writes the copy to w as a tar: one regular file per entry, named
// relative to the store's directory (no leading directory, no links), so
// that unpacking it into an empty directory gives a store that Open opens
// as it is. It returns the bytes written.
func (b *Backup) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	for _, f := range b.files {
		if err := b.writeFile(tw, f); err != nil {
			return cw.n, fmt.Errorf("eventstore: backup: %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return cw.n, fmt.Errorf("eventstore: backup: %w", err)
	}
	return cw.n, nil
}

func (b *Backup) writeFile(tw *tar.Writer, f backupFile) error {
	file, err := os.Open(filepath.Join(b.dir, filepath.FromSlash(f.name)))
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	// The checkpoint's files never change; a size that moved means
	// something else wrote into the directory.
	if info.Size() != f.size {
		return fmt.Errorf("its size changed from %d to %d bytes while backing up", f.size, info.Size())
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     f.name,
		Size:     f.size,
		Mode:     0o600,
		// Whole seconds: plain USTAR headers, which every tar reads.
		ModTime: info.ModTime().Truncate(time.Second),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, file)
	if err == nil && n != f.size {
		err = fmt.Errorf("read %d of its %d bytes", n, f.size)
	}
	return err
}

// Close removes the checkpoint and lets the Server take another backup. It
// may be called more than once.
func (b *Backup) Close() error {
	b.once.Do(func() {
		if err := os.RemoveAll(b.dir); err != nil {
			b.closeErr = fmt.Errorf("eventstore: backup: remove the checkpoint %s: %w", b.dir, err)
		}
		b.release()
	})
	return b.closeErr
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
