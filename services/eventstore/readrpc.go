package eventstore

import (
	"context"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
)

// Read is Streams.Read: a read of a stream or of $all with a count, or, with
// the subscription option, a subscription. Reads answer only with events and
// stream_not_found: the Go client panics on anything else in a read.
func (s *Server) Read(req *api.ReadReq, call api.Streams_ReadServer) error {
	ctx := call.Context()
	opts := req.GetOptions()
	if opts == nil {
		return fail(ctx, "", invalidArgument("read: options are missing"))
	}
	f, err := newFilter(opts.GetFilter())
	if err != nil {
		return fail(ctx, "", err)
	}
	var forward bool
	switch opts.ReadDirection {
	case api.ReadReq_Options_Forwards:
		forward = true
	case api.ReadReq_Options_Backwards:
	default:
		return fail(ctx, "", invalidArgument("read: unknown read direction %d", opts.ReadDirection))
	}
	out := sender{call: call, uuidString: opts.GetUuidOption().GetString_() != nil}
	subscribe := opts.GetSubscription() != nil
	if _, ok := opts.CountOption.(*api.ReadReq_Options_Count); !ok && !subscribe {
		return fail(ctx, "", invalidArgument("read: neither a count nor the subscription option"))
	}
	if subscribe && !forward {
		return fail(ctx, "", invalidArgument("read: subscriptions go forwards only"))
	}

	switch so := opts.StreamOption.(type) {
	case *api.ReadReq_Options_Stream:
		stream := string(so.Stream.GetStreamIdentifier().GetStreamName())
		if stream == "" {
			return fail(ctx, "", invalidArgument("read: stream name is empty"))
		}
		if subscribe {
			return s.subscribeStream(ctx, out, stream, so.Stream, f)
		}
		return s.readStream(ctx, out, stream, so.Stream, forward, opts.GetCount(), f)
	case *api.ReadReq_Options_All:
		if so.All == nil || so.All.AllOption == nil {
			return fail(ctx, "", invalidArgument("read: $all read without a start"))
		}
		if subscribe {
			return s.subscribeAll(ctx, out, so.All, f)
		}
		return s.readAll(out, so.All, forward, opts.GetCount(), f)
	}
	return fail(ctx, "", invalidArgument("read: neither a stream nor $all"))
}

// sender writes read responses in the id format the client asked for.
type sender struct {
	call       api.Streams_ReadServer
	uuidString bool
}

func (o sender) event(rec *api.ReadResp_ReadEvent_RecordedEvent) error {
	if o.uuidString {
		id, _ := parseUUID(rec.Id)
		rec.Id = &shared.UUID{Value: &shared.UUID_String_{String_: uuid.UUID(id).String()}}
	}
	return o.call.Send(&api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event:    rec,
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: rec.CommitPosition},
	}}})
}

func (o sender) streamNotFound(stream string) error {
	return o.call.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
	}}})
}

func (o sender) confirmation() error {
	return o.call.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.New().String(),
	}}})
}

func (o sender) caughtUp() error {
	return o.call.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}})
}

// waitLive marks the end of a subscription's catch-up once, with
// caught_up, then waits until the head moves (changed) or the call ends.
func (o sender) waitLive(ctx context.Context, caughtUp *bool, changed <-chan struct{}) error {
	if !*caughtUp {
		if err := o.caughtUp(); err != nil {
			return err
		}
		*caughtUp = true
	}
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o sender) checkpoint(pos uint64) error {
	return o.call.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
		CommitPosition: pos, PreparePosition: pos,
	}}})
}

// readStream reads a stream from a revision: forwards includes it, and so
// does backwards (revisions, unlike $all positions, name events).
func (s *Server) readStream(ctx context.Context, out sender, stream string, opts *api.ReadReq_Options_StreamOptions, forward bool, count uint64, f *filter) error {
	state, err := loadState(s.store.db, stream)
	if err != nil {
		return fail(ctx, stream, err)
	}
	if state.tombstoned {
		return fail(ctx, stream, ErrStreamDeleted)
	}
	if !state.visible(stream) {
		return out.streamNotFound(stream)
	}
	lo, hi := state.firstVisible(stream), uint64(state.last)
	var from uint64
	switch v := opts.RevisionOption.(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		from = lo
	case *api.ReadReq_Options_StreamOptions_End:
		if forward {
			return nil
		}
		from = hi
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = v.Revision
	default:
		return fail(ctx, stream, invalidArgument("read: stream read without a start"))
	}
	for count > 0 {
		page, err := s.store.streamPage(stream, from, lo, hi, forward, int(min(count, readPageLen)))
		if err != nil {
			return fail(ctx, stream, err)
		}
		now := s.store.now()
		for _, rec := range page {
			if !state.fresh(rec, now) || !f.match(rec) {
				continue
			}
			if err := out.event(rec); err != nil {
				return err
			}
			count--
		}
		if len(page) < readPageLen {
			return nil
		}
		last := page[len(page)-1].StreamRevision
		if forward {
			from = last + 1
		} else if last == 0 {
			return nil
		} else {
			from = last - 1
		}
	}
	return nil
}

// readAll reads $all: forwards from a position includes it, backwards from a
// position excludes it, as in KurrentDB.
func (s *Server) readAll(out sender, opts *api.ReadReq_Options_AllOptions, forward bool, count uint64, f *filter) error {
	head, _ := s.store.committed()
	var from uint64
	switch v := opts.AllOption.(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		if !forward {
			return nil
		}
		from = 0
	case *api.ReadReq_Options_AllOptions_End:
		if forward {
			return nil
		}
		from = head
	case *api.ReadReq_Options_AllOptions_Position:
		from = v.Position.GetCommitPosition()
		if !forward {
			if from == 0 {
				return nil
			}
			from--
		}
	}
	for count > 0 {
		page, err := s.store.allPage(from, forward, readPageLen)
		if err != nil {
			return fail(out.call.Context(), "$all", err)
		}
		for _, rec := range page {
			if !f.match(rec) {
				continue
			}
			if err := out.event(rec); err != nil {
				return err
			}
			if count--; count == 0 {
				return nil
			}
		}
		if len(page) == 0 {
			return nil
		}
		last := page[len(page)-1].CommitPosition
		if forward {
			from = last + 1
		} else if last <= 1 {
			return nil
		} else {
			from = last - 1
		}
	}
	return nil
}

// subscribeAll sends the confirmation, the events strictly after the start
// point, caught_up, then live events, with checkpoints every filter window
// of events scanned so a filtered subscriber can save its place.
func (s *Server) subscribeAll(ctx context.Context, out sender, opts *api.ReadReq_Options_AllOptions, f *filter) error {
	var after uint64 // the last position dealt with
	switch v := opts.AllOption.(type) {
	case *api.ReadReq_Options_AllOptions_End:
		after, _ = s.store.committed()
	case *api.ReadReq_Options_AllOptions_Position:
		after = v.Position.GetCommitPosition()
	}
	if err := out.confirmation(); err != nil {
		return err
	}
	var scanned uint64
	caughtUp := false
	for {
		head, changed := s.store.committed()
		for after < head {
			page, err := s.store.allPage(after+1, true, readPageLen)
			if err != nil {
				return fail(ctx, "$all", err)
			}
			if len(page) == 0 {
				break
			}
			for _, rec := range page {
				after = rec.CommitPosition
				if f.match(rec) {
					if err := out.event(rec); err != nil {
						return err
					}
				}
				if f == nil {
					continue
				}
				if scanned++; scanned >= f.interval {
					if err := out.checkpoint(after); err != nil {
						return err
					}
					scanned = 0
				}
			}
		}
		if err := out.waitLive(ctx, &caughtUp, changed); err != nil {
			return err
		}
	}
}

// subscribeStream is subscribeAll for one stream; the start revision, as a
// position, is excluded.
func (s *Server) subscribeStream(ctx context.Context, out sender, stream string, opts *api.ReadReq_Options_StreamOptions, f *filter) error {
	state, err := loadState(s.store.db, stream)
	if err != nil {
		return fail(ctx, stream, err)
	}
	if state.tombstoned {
		return fail(ctx, stream, ErrStreamDeleted)
	}
	next := uint64(0) // the first revision not yet dealt with
	switch v := opts.RevisionOption.(type) {
	case *api.ReadReq_Options_StreamOptions_End:
		next = uint64(state.last + 1)
	case *api.ReadReq_Options_StreamOptions_Revision:
		next = v.Revision + 1
	}
	if err := out.confirmation(); err != nil {
		return err
	}
	caughtUp := false
	for {
		_, changed := s.store.committed()
		state, err := loadState(s.store.db, stream)
		if err != nil {
			return fail(ctx, stream, err)
		}
		if state.tombstoned {
			return fail(ctx, stream, ErrStreamDeleted)
		}
		lo := state.firstVisible(stream)
		for state.last >= 0 && next <= uint64(state.last) {
			page, err := s.store.streamPage(stream, max(next, lo), lo, uint64(state.last), true, readPageLen)
			if err != nil {
				return fail(ctx, stream, err)
			}
			if len(page) == 0 {
				break // written but not yet synced: wait for the head to move
			}
			now := s.store.now()
			for _, rec := range page {
				next = rec.StreamRevision + 1
				if state.fresh(rec, now) && f.match(rec) {
					if err := out.event(rec); err != nil {
						return err
					}
				}
			}
		}
		if err := out.waitLive(ctx, &caughtUp, changed); err != nil {
			return err
		}
	}
}
