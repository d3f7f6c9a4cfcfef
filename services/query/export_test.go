package query

import "time"

// SetWaitMax lets a test bound the wait of calls without a deadline, so
// that the cap's status can be seen without waiting 30 s. Call it before
// the server serves.
func (s *Service) SetWaitMax(d time.Duration) { s.waitMax = d }
