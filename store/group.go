package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// Group commit: the per-message writes that callers wait on (an SMSC id
// recorded, a receipt applied, a message from a phone accepted) arrive
// concurrently from many goroutines. Each still commits before its caller
// goes on, but the ones that arrive together share one transaction, so one
// fsync (SQLite) or one commit round trip (PostgreSQL) serves many.

// groupMax bounds one shared transaction.
const groupMax = 128

type groupOp struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

type grouper struct {
	once   sync.Once
	ch     chan *groupOp
	wg     sync.WaitGroup
	mu     sync.RWMutex // held for reading while sending on ch
	closed bool
}

// errClosed is returned by writes after Close.
var errClosed = errors.New("store: closed")

// grouped runs fn in a transaction shared with other grouped calls, and
// returns once that transaction committed (or fn's error). fn may run more
// than once: when any fn of a shared transaction fails, the transaction is
// rolled back and each fn is run again in its own. So fn must set its
// results afresh each time it runs.
func (s *Store) grouped(ctx context.Context, fn func(*sql.Tx) error) error {
	s.group.once.Do(func() {
		s.group.ch = make(chan *groupOp, groupMax)
		s.group.wg.Add(1)
		go s.groupLoop()
	})
	op := &groupOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.group.mu.RLock()
	if s.group.closed {
		s.group.mu.RUnlock()
		return errClosed
	}
	select {
	case s.group.ch <- op:
	case <-ctx.Done():
		s.group.mu.RUnlock()
		return ctx.Err()
	}
	s.group.mu.RUnlock()
	return <-op.done
}

func (s *Store) groupLoop() {
	defer s.group.wg.Done()
	batch := make([]*groupOp, 0, groupMax)
	for op := range s.group.ch {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < groupMax {
			select {
			case op, ok := <-s.group.ch:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		if len(batch) == 1 {
			op.done <- s.tx(context.WithoutCancel(op.ctx), op.fn)
			continue
		}
		err := s.tx(context.Background(), func(tx *sql.Tx) error {
			for _, op := range batch {
				if err := op.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for _, op := range batch {
				op.done <- nil
			}
			continue
		}
		// One failed (or the commit did): each on its own, so only the
		// failing one reports an error.
		for _, op := range batch {
			op.done <- s.tx(context.WithoutCancel(op.ctx), op.fn)
		}
	}
}

// stopGroup ends the group loop after the writes already handed to it.
func (s *Store) stopGroup() {
	s.group.once.Do(func() {}) // never started: nothing to stop
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	if s.group.ch != nil && !s.group.closed {
		s.group.closed = true
		close(s.group.ch)
		s.group.wg.Wait()
	}
}
