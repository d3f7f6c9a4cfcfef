package runner

import (
	"context"
	"fmt"
	"io"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/ledger-billing/ledger/projections/billing"
	"github.com/ledger-billing/ledger/projections/document"
	"github.com/ledger-billing/ledger/services/snapshot"
)

// Section is a part of the state that a runner's user keeps beside the
// projection (the audit's hash chain, say) and that must be in every
// snapshot with it, so that a start from a snapshot resumes it at the
// snapshot's position. Add one to Options.SnapshotSections under a name of
// its own; the file holds it as a named, length-prefixed section
// (services/snapshot), so adding one changes neither the file format nor
// the projection's encoding.
type Section struct {
	// Save returns the section's bytes at the snapshot's position. The
	// runner calls it in its apply goroutine, between two events, just
	// before it writes the projection: the state Save reads must be the
	// state after the last event applied (keep it up to date in that
	// goroutine, e.g. from Options.OnApplied, or under a lock of its own).
	// An error means no snapshot is written this time.
	Save func() ([]byte, error)
	// Load sets the state from a snapshot's section, before Run follows
	// the log from the snapshot's position; with data nil, to the state
	// before any event (no snapshot: a full replay). It must replace the
	// whole state: after an error (the snapshot is then skipped) it is
	// called again, with an older snapshot's section or nil. A snapshot
	// without the section (written before it existed) is skipped.
	Load func(data []byte) error
}

// snapshots is the runner's snapshot schedule; only Run's goroutines use
// it.
type snapshots struct {
	dir      string
	every    int
	sections map[string]Section
	since    int    // events applied since the last snapshot
	last     uint64 // the position of the last snapshot loaded or written
}

// restore loads the newest valid snapshot, if any, into the runner, and
// returns the position to follow the log from: the snapshot's, or 0.
func (r *Runner) restore(ctx context.Context) uint64 {
	if r.snap.dir == "" {
		return 0
	}
	start := time.Now()
	// A snapshot beyond the end of the store was taken of another store
	// (a data directory whose store was replaced by an older copy): the
	// events it reflects are not there.
	end, endErr := r.storeEnd(ctx)
	names := slices.Sorted(maps.Keys(r.snap.sections))
	// Reading a snapshot allocates the projection and next to no garbage,
	// so the collector, started again and again as the heap grows from
	// nothing, would mark the same state over and over: about a fifth of
	// a restore's time. It is off for the load (a GOMEMLIMIT still holds)
	// and back as it was after.
	gcPercent := debug.SetGCPercent(-1)
	var proj *billing.Projection
	h, found := snapshot.Load(r.snap.dir, snapshot.Loader{
		ProjectionVersion: billing.SnapshotVersion,
		Logger:            r.logger,
		Read: func(h snapshot.Header, state io.Reader) error {
			if endErr == nil && h.Position > end {
				return fmt.Errorf("runner: snapshot at position %d, but the store ends at %d: not this store's", h.Position, end)
			}
			for _, name := range names {
				if _, ok := h.Sections[name]; !ok {
					return fmt.Errorf("runner: snapshot has no section %q", name)
				}
			}
			p, err := billing.ReadSnapshot(state)
			if err != nil {
				return err
			}
			p.CheckDigests(document.DigestOf)
			if p.Position() > h.Position {
				return fmt.Errorf("runner: the projection is at position %d, past the snapshot's %d", p.Position(), h.Position)
			}
			proj = p
			return nil
		},
		Use: func(h snapshot.Header) error {
			for _, name := range names {
				if err := r.snap.sections[name].Load(h.Sections[name]); err != nil {
					return fmt.Errorf("runner: section %q: %w", name, err)
				}
			}
			return nil
		},
	})
	debug.SetGCPercent(gcPercent)
	if !found {
		for _, name := range names {
			if err := r.snap.sections[name].Load(nil); err != nil {
				// Only a bug of the section can refuse its initial state.
				r.logger.Error("runner: a snapshot section refused its initial state", "section", name, "err", err)
			}
		}
		if endErr != nil {
			r.logger.Warn("runner: the store's end could not be read to check snapshots against", "err", endErr)
		}
		r.logger.Info("runner: no valid snapshot; replaying the history from the start", "dir", r.snap.dir)
		return 0
	}
	r.mu.Lock()
	r.proj = proj
	r.mu.Unlock()
	r.posMu.Lock()
	r.pos = h.Position
	r.metrics.position.Set(float64(h.Position))
	close(r.changed)
	r.changed = make(chan struct{})
	r.posMu.Unlock()
	r.snap.last = h.Position
	r.metrics.snapshotPosition.Set(float64(h.Position))
	r.logger.Info("runner: projections restored from a snapshot; following the log from its position",
		"file", h.Path, "position", h.Position, "took", time.Since(start).Round(time.Millisecond))
	// A replay hands every frozen document to OnApplied again, which is
	// how an announcement lost in a crash is made after all; a start from
	// a snapshot must do the same with the documents it holds.
	if docs := proj.Documents(); r.onApplied != nil && (len(docs.Issued) > 0 || len(docs.Finalized) > 0) {
		r.onApplied(docs)
	}
	return h.Position
}

// storeEnd returns the position of the store's last event.
func (r *Runner) storeEnd(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return r.log.Last(ctx, "")
}

// snapshotEvery counts an applied event, and writes a snapshot every
// SnapshotEvery of them.
func (r *Runner) snapshotEvery() {
	if r.snap.dir == "" || r.snap.every <= 0 {
		return
	}
	if r.snap.since++; r.snap.since >= r.snap.every {
		r.writeSnapshot()
	}
}

// snapshotOnStop writes a snapshot when Run stops, unless nothing was
// applied since the last one.
func (r *Runner) snapshotOnStop() {
	if r.snap.dir != "" {
		r.writeSnapshot()
	}
}

// writeSnapshot writes a snapshot at the position reached. It runs in the
// apply goroutine, so nothing applies meanwhile; it holds the read lock
// only, so queries go on.
func (r *Runner) writeSnapshot() {
	r.snap.since = 0
	pos, _ := r.Progress()
	if pos == 0 || pos == r.snap.last {
		return
	}
	start := time.Now()
	h := snapshot.Header{ProjectionVersion: billing.SnapshotVersion, Position: pos, Sections: make(map[string][]byte, len(r.snap.sections))}
	for name, s := range r.snap.sections {
		data, err := s.Save()
		if err != nil {
			r.metrics.snapshotFailures.Inc()
			r.logger.Error("runner: no snapshot written: a section could not be saved", "section", name, "position", pos, "err", err)
			return
		}
		h.Sections[name] = data
	}
	r.mu.RLock()
	w, err := snapshot.Write(r.snap.dir, h, r.proj.WriteSnapshot)
	r.mu.RUnlock()
	took := time.Since(start)
	if err != nil {
		r.metrics.snapshotFailures.Inc()
		r.logger.Error("runner: no snapshot written", "position", pos, "err", err)
		return
	}
	r.snap.last = pos
	r.metrics.snapshotsWritten.Inc()
	r.metrics.snapshotPosition.Set(float64(pos))
	r.metrics.snapshotBytes.Set(float64(w.Bytes))
	r.metrics.snapshotSeconds.Set(took.Seconds())
	r.logger.Info("runner: snapshot written", "file", w.Path, "position", pos, "bytes", w.Bytes, "took", took.Round(time.Millisecond))
}
