package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// stmts caches prepared statements by their text, for SQLite: the hot
// paths run the same few statements for every message, and parsing them
// again each time was a fifth of the gateway's CPU. SQLite has one
// connection, held by the transaction that runs the statement, so a missing
// statement is prepared in the background (waiting for the connection, and
// holding no lock meanwhile) and the statement runs unprepared this once.
// PostgreSQL's statements are not prepared: each goes unnamed, in one
// round trip (lib/pq's binary_parameters), which a pooler in transaction
// mode (PgBouncer) passes on as it is, where a named statement prepared on
// one server connection would be missing on the next. And a generic plan,
// which PostgreSQL keeps after five runs of a prepared statement, can be
// wrong for good: made while a table is small, it scans the table whole
// as it grows, until autovacuum's next analyze. (Caching the batches'
// statements there was tried: one run in two fell from 7,000 msg/s to
// 2,200–4,200. Preparing only the insert of new messages, whose plan has
// no choice to make, saved 5 % of the server's CPU at a paced 1,000 msg/s,
// not worth breaking poolers: docs/benchmarks/sessions.md, twenty-second session.)
//
// At most maxStmts are kept; a statement beyond them runs unprepared.
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

// maxStmts bounds a statement cache. The padded lists make a few dozen
// texts; the bound keeps a text built from unpadded input from growing it
// without end.
const maxStmts = 1024

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
	if c.closed || c.pending[q] || len(c.m)+len(c.pending) >= maxStmts {
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
	if err := argsFit(args); err != nil {
		return nil, err
	}
	q, args = s.positional(q, args)
	if st := s.cachedStmt(q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	q, args = s.positional(q, args)
	if st := s.cachedStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if err := argsFit(args); err != nil {
		return nil, err
	}
	q, args = s.positional(q, args)
	if st := s.cachedStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// queryRow runs a single-row read outside a transaction, on the read
// handle, through the statement cache.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q, args = s.positional(q, args)
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
	if err := argsFit(args); err != nil {
		return nil, err
	}
	q, args = s.positional(q, args)
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
	q, args = s.positional(q, args)
	if st := s.cachedStmt(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, q, args...)
}

// exec runs a write outside a transaction on the writer's handle, through
// the statement cache.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := argsFit(args); err != nil {
		return nil, err
	}
	q, args = s.positional(q, args)
	if st := s.cachedStmt(q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, q, args...)
}

// maxArgs is the most arguments a statement may have: SQLite's limit
// (SQLITE_MAX_VARIABLE_NUMBER); PostgreSQL's is 65,535.
const maxArgs = 32766

// argsFit refuses a statement with more arguments than both engines take,
// before the driver sees it: lib/pq, given more than 65,535, leaves its
// connection unusable for every statement after.
func argsFit(args []any) error {
	if len(args) > maxArgs {
		return fmt.Errorf("store: a statement with %d arguments (at most %d)", len(args), maxArgs)
	}
	return nil
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

// positional rewrites, on SQLite, a statement's numbered arguments ($1,
// $2…, as PostgreSQL writes them) into anonymous ones (?), and args into
// the order they appear in. SQLite looks a numbered argument's name up in a
// list, once per argument bound: a statement with hundreds of them (a batch
// of parts, a padded IN list) cost time quadratic in their number, 8 % of
// the gateway's CPU at full speed. Rewrites are kept per statement text.
func (s *Store) positional(q string, args []any) (string, []any) {
	if s.dialect != sqlite || len(args) == 0 {
		return q, args
	}
	r := s.rewrites.get(q)
	if r.order == nil {
		return q, args
	}
	if r.inOrder && len(args) == len(r.order) {
		return r.q, args // $1, $2… once each, in order: the same arguments
	}
	out := make([]any, len(r.order))
	for i, n := range r.order {
		if n > len(args) {
			return q, args // let the driver report the missing argument
		}
		out[i] = args[n-1]
	}
	return r.q, out
}

// rewrite is a statement with anonymous arguments, and for each, in order,
// the number of the argument it was.
type rewrite struct {
	q       string
	order   []int
	inOrder bool // order is 1, 2, … len(order)
}

type rewrites struct {
	m sync.Map // statement text → rewrite
	n atomic.Int64
}

// get returns q's rewrite, computing it the first time. A statement without
// numbered arguments has a nil order.
func (c *rewrites) get(q string) rewrite {
	if r, ok := c.m.Load(q); ok {
		return r.(rewrite)
	}
	var order []int
	q2 := renumber(q, func(n int) string {
		order = append(order, n)
		return "?"
	})
	r := rewrite{q: q2, order: order, inOrder: true}
	for i, n := range order {
		r.inOrder = r.inOrder && n == i+1
	}
	// Bounded: past 4,096 texts (the store's statements make a few
	// hundred), a statement is rewritten each time it runs.
	if c.n.Load() < 4096 {
		c.n.Add(1)
		c.m.Store(q, r)
	}
	return r
}

// renumber replaces each numbered argument $n of q, outside quotes, by
// f(n).
func renumber(q string, f func(n int) string) string {
	if strings.IndexByte(q, '$') < 0 {
		return q
	}
	var (
		b     strings.Builder
		quote byte // the quote q is inside, if any ('' inside '…' closes and opens again: the same)
	)
	b.Grow(len(q))
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'', c == '"':
			quote = c
		case c == '$' && i+1 < len(q) && '0' <= q[i+1] && q[i+1] <= '9':
			n := 0
			for i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
				i++
				n = 10*n + int(q[i]-'0')
			}
			b.WriteString(f(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
