package store

import (
	"context"
	"database/sql"
	"time"
)

// SetClock replaces the store's clock, for tests in package store_test.
func SetClock(s *Store, now func() time.Time) { s.now = now }

// LargestGroup returns the most writes one group commit has held so far. Call
// it after Close.
func LargestGroup(s *Store) int {
	s.group.lmu.Lock()
	defer s.group.lmu.Unlock()
	return s.group.largest
}

// GroupCommits returns how many group commits have run so far.
func GroupCommits(s *Store) int {
	s.group.lmu.Lock()
	defer s.group.lmu.Unlock()
	return s.group.commits
}

// SetLazyWait replaces lazyWait, from the next wait on.
func SetLazyWait(s *Store, d time.Duration) { s.group.lazyWait.Store(int64(d)) }

// IsPostgres tells which engine s runs on.
func IsPostgres(s *Store) bool { return s.dialect == postgres }

// HoldWriter runs a group-commit write that waits until release is called,
// and returns once that write's transaction is open.
func HoldWriter(s *Store) (release func()) {
	started, done := make(chan struct{}), make(chan struct{})
	go s.grouped(context.Background(), &groupOp{fn: func(*sql.Tx) error {
		select {
		case <-started:
		default:
			close(started)
		}
		<-done
		return nil
	}})
	<-started
	return func() { close(done) }
}

// QueryRow runs q as the store runs its single-row reads.
func QueryRow(s *Store, q string, args ...any) *sql.Row {
	return s.queryRow(context.Background(), q, args...)
}
