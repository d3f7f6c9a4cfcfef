package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/wire"
)

// backupStallMax bounds how long one write of a backup may wait for the
// client: the server's WriteTimeout would cut any backup longer than it,
// so each write gets its own deadline instead, and a client that stops
// reading frees the backup (and its checkpoint) after this long.
const backupStallMax = time.Minute

// serveBackup is POST /backup (wire.BackupPath): a consistent copy of the
// embedded store, streamed as a tar. The checkpoint is taken first, in
// milliseconds and without holding back ingestion or queries; the
// streaming that follows reads the checkpoint's own files. An external
// store is KurrentDB's to back up.
func (d *Daemon) serveBackup(w http.ResponseWriter, _ *http.Request) {
	if d.store == nil {
		http.Error(w, "ledgerd uses an external event store (--eventstore-url): back it up with KurrentDB's own backups", http.StatusNotImplemented)
		return
	}
	b, err := d.store.Backup()
	switch {
	case errors.Is(err, eventstore.ErrBackupInProgress):
		http.Error(w, "a backup is already running; try again when it has finished", http.StatusConflict)
		return
	case errors.Is(err, eventstore.ErrClosed):
		http.Error(w, "ledgerd is stopping", http.StatusServiceUnavailable)
		return
	case err != nil:
		d.log.Error("ledgerd: backup failed", "err", err)
		http.Error(w, fmt.Sprintf("the backup failed: %v", err), http.StatusInternalServerError)
		return
	}
	defer func() {
		if err := b.Close(); err != nil {
			d.log.Error("ledgerd: backup", "err", err)
		}
	}()
	h := w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ledger-eventstore-%d.tar"`, b.Position()))
	h.Set(wire.HeaderBackupPosition, strconv.FormatUint(b.Position(), 10))
	h.Set(wire.HeaderBackupFiles, strconv.Itoa(b.Files()))
	h.Set(wire.HeaderBackupBytes, strconv.FormatInt(b.Bytes(), 10))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	start := time.Now()
	n, err := b.WriteTo(&deadlineWriter{w: w, rc: rc})
	if err != nil {
		d.log.Warn("ledgerd: backup not delivered", "position", b.Position(), "written", n, "err", err)
		// Cut the connection instead of ending the response cleanly: the
		// client must see a broken backup as broken.
		panic(http.ErrAbortHandler)
	}
	d.log.Info("ledgerd: backup delivered", "position", b.Position(), "files", b.Files(), "tar_bytes", n, "took", time.Since(start))
}

// deadlineWriter gives every write of a long response its own deadline.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(backupStallMax)); err != nil {
		return 0, err
	}
	return d.w.Write(p)
}
