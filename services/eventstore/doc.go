// Package eventstore is Ledger's embedded event store: an in-process gRPC
// server that speaks the part of KurrentDB's protocol that the official Go
// client (github.com/EventStore/EventStore-Client-Go/v4) uses, over a Pebble
// database in a data directory.
//
// Ledger talks to its history only through the official client. In
// production that client points at a KurrentDB cluster; by default, and in
// every test, it points at this server. One client code path, two servers:
// what works here must work against the real thing, so this package follows
// KurrentDB's observable behaviour for that subset (docs/architecture.md, "Events and their streams"):
// expected revisions and the strong idempotency check, gap-free 0-based
// stream revisions, increasing $all positions, the inclusive/exclusive rules
// of forward and backward reads, subscriptions with confirmation, catch-up,
// caught_up and live events, filters with checkpoints, soft deletes and
// tombstones, stream metadata, and KurrentDB's error codes and trailers.
//
// It was written from the protocol's public definitions (the client module's
// protos/ packages) and the client's own behaviour, never from KurrentDB's
// server source.
//
// # Storage
//
// Every event is one key in a log keyed by its $all position; a per-stream
// index maps stream revisions to positions. One goroutine, the writer, decides
// and stages every write in a Pebble batch and commits each group of
// concurrent requests with one fsync (group commit). A request is answered
// only after its group is synced, and readers never see past the last synced
// position, so a crash at any moment loses nothing acknowledged and shows no
// torn append: a Pebble batch is atomic.
//
// # Credentials
//
// With a Config.Password, every call must carry HTTP basic credentials of
// User, as KurrentDB requires (the official client sends them from the
// connection string's user:password@, and only over TLS); others are
// answered UNAUTHENTICATED before any handler runs. ledgerd always sets a
// password and TLS (docs/securing.md, "The event store's credentials");
// tests of the store alone may leave both out.
//
// # Backups
//
// Server.Backup takes a consistent copy while the store serves: a Pebble
// checkpoint beside the store's directory, which links the immutable
// tables and copies the log, and which Open opens as it is. Backup.WriteTo
// streams it as a tar; Close removes it. One backup runs at a time.
package eventstore
