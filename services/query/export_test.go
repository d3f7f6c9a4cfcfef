package query

import (
	"time"

	"google.golang.org/grpc/encoding"
)

// SetWaitMax lets a test bound the wait of calls without a deadline, so
// that the cap's status can be seen without waiting 30 s. Call it before
// the server serves.
func (s *Service) SetWaitMax(d time.Duration) { s.waitMax = d }

// Codec returns the codec NewServer gives the server, so that a benchmark
// can count the encoding a call costs without a network in between.
func (s *Service) Codec() encoding.CodecV2 { return newFrozenCodec(s.frozen) }

// SetCacheMax empties the frozen cache and bounds it to max bytes, so
// that a test can see eviction, or (0) the uncached path.
func (s *Service) SetCacheMax(max int64) {
	c := s.frozen
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.byKey)
	clear(c.byMsg)
	c.bytes, c.max = 0, max
}

// CacheLen returns the number of entries the frozen cache holds and their
// size in bytes.
func (s *Service) CacheLen() (n int, bytes int64) {
	s.frozen.mu.RLock()
	defer s.frozen.mu.RUnlock()
	return len(s.frozen.byKey), s.frozen.bytes
}

// Waiting returns how many calls wait for their min_position now.
func (s *Service) Waiting() int { return len(s.waiters) }
