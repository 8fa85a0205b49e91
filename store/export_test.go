package store

import "time"

// SetClock replaces the store's clock, for tests in package store_test.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// LargestGroup returns the most writes one group commit has held so far. Call
// it after Close.
func LargestGroup(s *Store) int { return s.group.largest }
