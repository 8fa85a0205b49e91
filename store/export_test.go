package store

import "time"

// SetClock replaces the store's clock, for tests in package store_test.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// LargestGroup returns the most writes one group commit has held so far. Call
// it after Close.
func LargestGroup(s *Store) int {
	s.group.lmu.Lock()
	defer s.group.lmu.Unlock()
	return s.group.largest
}
