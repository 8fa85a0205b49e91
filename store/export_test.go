package store

import "time"

// SetClock replaces the store's clock, for tests in package store_test.
func SetClock(s *Store, now func() time.Time) { s.now = now }
