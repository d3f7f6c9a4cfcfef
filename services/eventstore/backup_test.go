package eventstore_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
)

// TestBackupUnderLoad takes a backup while writers append, and opens the
// copy as a store: it holds every append acknowledged before the backup
// began, its $all is exactly the original's up to the backup's position,
// and it takes appends of its own. The temporary checkpoint is gone once
// the backup is closed, and only one backup runs at a time.
func TestBackupUnderLoad(t *testing.T) {
	store := testkit.StartStore(t, eventstore.Config{})
	c := testkit.Client(t, store.URL())
	parent := filepath.Dir(store.Dir)
	before := testkit.DirNames(t, parent)

	// Enough before the backup for Pebble to have flushed tables (its
	// memtable is 4 MiB), so that the copy holds tables and a log.
	payload := bytes.Repeat([]byte("x"), 4<<10)
	var (
		mu    sync.Mutex
		acked = map[string]bool{} // stream names, one event each
	)
	appendOne := func(ctx context.Context, stream string) error {
		ev := event("backup-test", stream)
		ev.Data = append([]byte(stream+" "), payload...)
		_, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, ev)
		if err == nil {
			mu.Lock()
			acked[stream] = true
			mu.Unlock()
		}
		return err
	}
	for i := range 2000 {
		if err := appendOne(ctxT(t), fmt.Sprintf("pre-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		writers.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				if err := appendOne(ctx, fmt.Sprintf("load-%d-%d", w, n)); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	t.Cleanup(func() { stop(); writers.Wait() })

	mu.Lock()
	ackedBefore := make(map[string]bool, len(acked))
	for s := range acked {
		ackedBefore[s] = true
	}
	mu.Unlock()
	b, err := store.Server().Backup()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Server().Backup(); !errors.Is(err, eventstore.ErrBackupInProgress) {
		t.Fatalf("a second backup while one is open: %v, want ErrBackupInProgress", err)
	}
	var tarball bytes.Buffer
	n, err := b.WriteTo(&tarball)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(tarball.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, tarball.Len())
	}
	stop()
	writers.Wait()
	select {
	case err := <-errs:
		t.Fatalf("append under load: %v", err)
	default:
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if after := testkit.DirNames(t, parent); !slices.Equal(after, before) {
		t.Fatalf("beside the store after the backup: %v, before it: %v", after, before)
	}
	again, err := store.Server().Backup()
	if err != nil {
		t.Fatalf("a backup after the last one closed: %v", err)
	}
	again.Close()

	restored := t.TempDir()
	files, size := untar(t, &tarball, restored)
	if files != b.Files() || size != b.Bytes() {
		t.Fatalf("the tar holds %d files of %d bytes; the backup announced %d of %d", files, size, b.Files(), b.Bytes())
	}
	copyStore := testkit.StartStore(t, eventstore.Config{Dir: restored})
	cc := testkit.Client(t, copyStore.URL())
	original := readAll(t, c, esdb.ReadAllOptions{}, 1<<20)
	copied := readAll(t, cc, esdb.ReadAllOptions{}, 1<<20)
	if len(copied) == 0 || len(copied) > len(original) {
		t.Fatalf("the copy holds %d events, the original %d", len(copied), len(original))
	}
	for i, ev := range copied {
		o := original[i].Event
		if ev.Event.Position != o.Position || ev.Event.StreamID != o.StreamID || ev.Event.EventID != o.EventID || !bytes.Equal(ev.Event.Data, o.Data) {
			t.Fatalf("event %d of the copy is %s at %v; the original's is %s at %v", i, ev.Event.StreamID, ev.Event.Position, o.StreamID, o.Position)
		}
		delete(ackedBefore, ev.Event.StreamID)
	}
	if len(ackedBefore) > 0 {
		t.Fatalf("%d appends acknowledged before the backup are not in it", len(ackedBefore))
	}
	if last := copied[len(copied)-1].Event.Position.Commit; last != b.Position() {
		t.Fatalf("the copy ends at position %d; the backup said %d", last, b.Position())
	}
	if len(copied) == len(original) {
		t.Logf("no append landed between the checkpoint and the end of the load (%d events)", len(copied))
	}
	appendOK(t, cc, "after-restore", esdb.NoStream{}, event("t", "new"))
}

// TestBackupAfterClose: a closed store takes no backup.
func TestBackupAfterClose(t *testing.T) {
	srv, err := eventstore.Open(eventstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Backup(); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("backup of a closed store: %v, want ErrClosed", err)
	}
}

// TestLeftoverBackupRemovedAtOpen: a process killed while streaming leaves
// its checkpoint beside the store; the next Open removes it, and a backup
// of an empty store is an empty store.
func TestLeftoverBackupRemovedAtOpen(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "eventstore")
	srv, err := eventstore.Open(eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.Backup()
	if err != nil {
		t.Fatal(err)
	}
	if b.Position() != 0 || b.Files() == 0 {
		t.Fatalf("backup of an empty store: position %d, %d files", b.Position(), b.Files())
	}
	if err := srv.Close(); err != nil { // b is never closed: the process "died"
		t.Fatal(err)
	}
	if got := testkit.DirNames(t, parent); len(got) != 2 {
		t.Fatalf("beside the store while a backup is open: %v, want the store and the checkpoint", got)
	}
	srv, err = eventstore.Open(eventstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := testkit.DirNames(t, parent); !slices.Equal(got, []string{"eventstore"}) {
		t.Fatalf("beside the store after Open: %v, want the store alone", got)
	}
}

// untar unpacks a tar the store wrote (trusted: ledgerctl's own unpacking
// is tested on hostile ones) and returns its files and bytes.
func untar(t *testing.T, r io.Reader, dir string) (files int, size int64) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, size
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg || !filepath.IsLocal(hdr.Name) {
			t.Fatalf("tar entry %q of type %q: want regular files with local names", hdr.Name, hdr.Typeflag)
		}
		path := filepath.Join(dir, hdr.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(f, tr)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		files++
		size += n
	}
}
