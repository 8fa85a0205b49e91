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
// fsync (SQLite) or one commit round trip (PostgreSQL) serves many; and the
// SMSC ids and receipts among them are applied set-based (batch.go), a few
// statements for the whole batch.

// groupMax bounds one shared transaction.
const groupMax = 128

// Lanes: SQLite has one writer, so every write goes through one loop. On
// PostgreSQL one loop waits for round trips and the commit's WAL flush one
// transaction at a time, so three loops commit side by side: new messages
// (from users and phones), notices done, and outcomes (SMSC ids and
// receipts). At a paced 1,000 msg/s that took the median XMPP → submit_sm
// from 20 to 7 ms. The outcomes stay in one loop: a receipt and the SMSC id
// it is for, committed side by side, could each miss the other (the
// receipt kept as early, the id recorded after the receipt looked). The
// other lanes write rows no other lane writes at the same time: new rows,
// and notices whose outcome has committed.
const (
	laneOutcomes = iota
	laneNew
	laneNoticesDone
	pgLanes
)

// groupOp is one write: fn, or an SMSC id recorded, or a receipt applied.
type groupOp struct {
	ctx context.Context
	fn  func(*sql.Tx) error
	// notice, when set, is the notice fn raised (if it says so), handed to
	// the notice sink with the batch's once it committed.
	notice func() (Notice, bool)
	part   *partOp
	rcpt   *receiptOp
	lane   int // for fn; parts and receipts are laneOutcomes
	done   chan error
}

type grouper struct {
	once   sync.Once
	lanes  []chan *groupOp
	wg     sync.WaitGroup
	mu     sync.RWMutex // held for reading while sending on a lane
	closed bool

	lmu     sync.Mutex
	largest int // the largest batch so far; read by tests
}

// errClosed is returned by writes after Close.
var errClosed = errors.New("store: closed")

// grouped runs op in a transaction shared with other grouped calls, and
// returns once that transaction committed (or op's error). op may run more
// than once: when any op of a shared transaction fails, the transaction is
// rolled back and each op is run again in its own. So an op's fn must set
// its results afresh each time it runs.
func (s *Store) grouped(ctx context.Context, op *groupOp) error {
	s.group.once.Do(func() {
		n := 1
		if s.dialect == postgres {
			n = pgLanes
		}
		s.group.lanes = make([]chan *groupOp, n)
		for i := range s.group.lanes {
			s.group.lanes[i] = make(chan *groupOp, groupMax)
			s.group.wg.Add(1)
			go s.groupLoop(s.group.lanes[i])
		}
	})
	lane := op.lane
	if op.part != nil || op.rcpt != nil {
		lane = laneOutcomes
	}
	if lane >= len(s.group.lanes) {
		lane = 0
	}
	op.ctx, op.done = ctx, make(chan error, 1)
	s.group.mu.RLock()
	if s.group.closed {
		s.group.mu.RUnlock()
		return errClosed
	}
	select {
	case s.group.lanes[lane] <- op:
	case <-ctx.Done():
		s.group.mu.RUnlock()
		return ctx.Err()
	}
	s.group.mu.RUnlock()
	return <-op.done
}

func (s *Store) groupLoop(ch chan *groupOp) {
	defer s.group.wg.Done()
	batch := make([]*groupOp, 0, groupMax)
	for op := range ch {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < groupMax {
			select {
			case op, ok := <-ch:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.group.lmu.Lock()
		s.group.largest = max(s.group.largest, len(batch)) // for tests
		s.group.lmu.Unlock()
		if len(batch) == 1 {
			op.done <- s.runGroupTx(context.WithoutCancel(op.ctx), batch)
			continue
		}
		err := s.runGroupTx(context.Background(), batch)
		if err == nil {
			for _, op := range batch {
				op.done <- nil
			}
			continue
		}
		// One failed (or the commit did): each on its own, so only the
		// failing one reports an error.
		for _, op := range batch {
			op.done <- s.runGroupTx(context.WithoutCancel(op.ctx), []*groupOp{op})
		}
	}
}

// runGroupTx runs batch in a transaction of its own and, once it
// committed, hands the notices it raised to the notice sink.
func (s *Store) runGroupTx(ctx context.Context, batch []*groupOp) error {
	var ns []Notice
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ns = ns[:0]
		return s.runGroup(tx, batch, &ns)
	})
	if err == nil && len(ns) > 0 {
		s.handoff.sink(ns)
	}
	return err
}

// runGroup runs the ops of a batch in tx: the functions in arrival order,
// then the SMSC ids, then the receipts, each set-based. A receipt and the
// SMSC id it is for give the same outcome in either order (a receipt before
// its id is kept as early, and applied when the id is recorded).
func (s *Store) runGroup(tx *sql.Tx, batch []*groupOp, ns *[]Notice) error {
	var (
		parts []*partOp
		rcpts []*receiptOp
	)
	for _, op := range batch {
		switch {
		case op.part != nil:
			parts = append(parts, op.part)
		case op.rcpt != nil:
			rcpts = append(rcpts, op.rcpt)
		default:
			if err := op.fn(tx); err != nil {
				return err
			}
			if op.notice != nil {
				if n, ok := op.notice(); ok {
					*ns = append(*ns, n)
				}
			}
		}
	}
	if len(parts) == 0 && len(rcpts) == 0 {
		return nil
	}
	ctx, now := context.Background(), s.ms()
	if len(parts) > 0 {
		if err := s.applyParts(ctx, tx, parts, now, ns); err != nil {
			return err
		}
	}
	if len(rcpts) > 0 {
		return s.applyReceipts(ctx, tx, rcpts, now, ns)
	}
	return nil
}

// stopGroup ends the group loop after the writes already handed to it.
func (s *Store) stopGroup() {
	s.group.once.Do(func() {}) // never started: nothing to stop
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	if s.group.lanes != nil && !s.group.closed {
		s.group.closed = true
		for _, ch := range s.group.lanes {
			close(ch)
		}
		s.group.wg.Wait()
	}
}
