package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmts caches prepared statements by their text, for SQLite: the hot
// paths run the same few statements for every message, and parsing them
// again each time was a fifth of the gateway's CPU. SQLite has one
// connection, held by the transaction that runs the statement, so a missing
// statement is prepared in the background (waiting for the connection, and
// holding no lock meanwhile) and the statement runs unprepared this once.
// PostgreSQL spreads transactions over several connections, where a
// statement prepared on another one would be prepared again per
// transaction, so it is not cached there.
type stmts struct {
	mu      sync.RWMutex
	m       map[string]*sql.Stmt
	pending map[string]bool
	closed  bool
	wg      sync.WaitGroup
}

func (s *Store) cachedStmt(q string) *sql.Stmt {
	if s.dialect != sqlite {
		return nil
	}
	s.stmts.mu.RLock()
	st := s.stmts.m[q]
	s.stmts.mu.RUnlock()
	if st != nil {
		return st
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if s.stmts.closed || s.stmts.pending[q] {
		return nil
	}
	if s.stmts.pending == nil {
		s.stmts.pending = make(map[string]bool)
		s.stmts.m = make(map[string]*sql.Stmt)
	}
	s.stmts.pending[q] = true
	s.stmts.wg.Add(1)
	go func() {
		defer s.stmts.wg.Done()
		st, err := s.db.Prepare(q)
		s.stmts.mu.Lock()
		defer s.stmts.mu.Unlock()
		delete(s.stmts.pending, q)
		if err != nil {
			return // runs unprepared; tried again next time
		}
		if s.stmts.closed {
			st.Close()
			return
		}
		s.stmts.m[q] = st
	}()
	return nil
}

func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.cachedStmt(q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.cachedStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := s.cachedStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// queryRow runs a single-row query outside a transaction, through the
// statement cache.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.cachedStmt(q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, q, args...)
}

// closeStmts waits for background preparations and closes the statements.
func (s *Store) closeStmts() {
	s.stmts.mu.Lock()
	s.stmts.closed = true
	s.stmts.mu.Unlock()
	s.stmts.wg.Wait()
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	for _, st := range s.stmts.m {
		st.Close()
	}
	s.stmts.m = nil
}
