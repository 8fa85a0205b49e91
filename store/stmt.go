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
	return s.stmts.get(s.db, q)
}

// get returns db's prepared statement for q, or nil after starting its
// preparation in the background.
func (c *stmts) get(db *sql.DB, q string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[q]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.pending[q] {
		return nil
	}
	if c.pending == nil {
		c.pending = make(map[string]bool)
		c.m = make(map[string]*sql.Stmt)
	}
	c.pending[q] = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		st, err := db.Prepare(q)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, q)
		if err != nil {
			return // runs unprepared; tried again next time
		}
		if c.closed {
			st.Close()
			return
		}
		c.m[q] = st
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

// queryRow runs a single-row read outside a transaction, on the read
// handle, through the statement cache.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s.dialect == sqlite {
		if st := s.rstmts.get(s.rdb, q); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return s.rdb.QueryRowContext(ctx, q, args...)
}

// query runs a read outside a transaction, on the read handle, through the
// statement cache.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s.dialect == sqlite {
		if st := s.rstmts.get(s.rdb, q); st != nil {
			return st.QueryContext(ctx, args...)
		}
	}
	return s.rdb.QueryContext(ctx, q, args...)
}

// writerQuery runs a read outside a transaction on the writer's handle
// (on SQLite its one connection, with the warmest page cache), through the
// statement cache.
func (s *Store) writerQuery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.cachedStmt(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, q, args...)
}

// exec runs a write outside a transaction on the writer's handle, through
// the statement cache.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := s.cachedStmt(q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, q, args...)
}

// close waits for background preparations and closes the statements.
func (c *stmts) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}
