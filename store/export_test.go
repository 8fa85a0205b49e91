package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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

// Outcome is a PartSubmitted call (Part) or a Receipt call, for
// ApplyOutcomes.
type Outcome struct {
	Part       bool
	Msg        int64 // Part
	Seq        int   // Part
	Forms      []string
	State, Err string // receipt

	Final bool          // out, Part
	Res   ReceiptResult // out, receipt
}

// ApplyOutcomes applies ops as one group-commit batch, in one transaction.
func ApplyOutcomes(s *Store, ops []*Outcome) error {
	batch := make([]*groupOp, len(ops))
	for i, o := range ops {
		if o.Part {
			batch[i] = &groupOp{part: &partOp{msgID: o.Msg, seq: o.Seq, forms: o.Forms}}
		} else {
			batch[i] = &groupOp{rcpt: &receiptOp{forms: o.Forms, state: o.State, errText: o.Err}}
		}
	}
	var ns []Notice
	err := s.tx(context.Background(), func(tx *sql.Tx) error { return s.runGroup(tx, batch, &ns) })
	for i, o := range ops {
		if o.Part {
			o.Final = batch[i].part.final
		} else {
			o.Res = batch[i].rcpt.res
		}
	}
	return err
}

// Dump runs q and renders each row's columns, separated by spaces.
func Dump(s *Store, q string) ([]string, error) {
	rows, err := s.rdb.QueryContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	var out []string
	err = eachRow(rows, func(vals []any) { out = append(out, fmt.Sprint(vals...)) })
	return out, err
}

// eachRow calls f with the columns of each row of rows (text as strings),
// and closes rows.
func eachRow(rows *sql.Rows, f func(vals []any)) error {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		f(vals)
	}
	return rows.Err()
}

// Exec runs q on the writer's handle, outside the group commit.
func Exec(s *Store, q string, args ...any) error {
	_, err := s.db.ExecContext(context.Background(), q, args...)
	return err
}

// ShortCodePlan returns the plan of ShortCodeWrote's query (see plan).
func ShortCodePlan(s *Store) (string, error) {
	return plan(s, shortCodeWrote, "12345", "+12015550100", int64(0), "alice@example.com")
}

// WorkPlans returns the plans of the reads of messages_work (see plan),
// by name.
func WorkPlans(s *Store) (map[string]string, error) {
	out := make(map[string]string)
	for name, q := range map[string]struct {
		q    string
		args []any
	}{
		"claimable":       {s.claimable(), []any{int64(1), 10, 40}},
		"endReceiptWaits": {endReceiptWaits, []any{int64(1), int64(1), 10}},
		"dueRelays":       {dueRelays, []any{int64(1), 10}},
		"recentFailures":  {recentFailures, []any{10}},
	} {
		p, err := plan(s, q.q, q.args...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = p
	}
	return out, nil
}

// plan returns the plan of query q with args, one line per step (on
// PostgreSQL with sequential scans off: its tables in tests are too small
// for an index to pay).
func plan(s *Store, q string, args ...any) (string, error) {
	ctx := context.Background()
	q, col := `EXPLAIN QUERY PLAN `+q, 3
	plain := strings.TrimPrefix(q, `EXPLAIN QUERY PLAN `)
	var out []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.dialect == postgres {
			if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
			q, col = `EXPLAIN `+plain, 0
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		return eachRow(rows, func(vals []any) { out = append(out, fmt.Sprint(vals[col])) })
	})
	return strings.Join(out, "\n"), err
}

// Spilled returns how many SMSC ids and receipts went past the first
// outcome lane (PostgreSQL; see outcomeLane).
func Spilled(s *Store) int64 { return s.group.spilled.Load() }

// AcceptInbounds accepts ins as one group-commit batch, in one
// transaction, and hands the notices raised to the notice sink. found
// tells, for each, whether its number had an owner (AcceptInbound's
// ErrNotFound when not).
func AcceptInbounds(s *Store, ins []*Inbound) (found []bool, err error) {
	batch := make([]*groupOp, len(ins))
	for i, in := range ins {
		batch[i] = &groupOp{lane: laneNew, in: &inboundOp{in: in, now: s.ms(), lookup: in.RecipientJID == ""}}
	}
	if err := s.runGroupTx(context.Background(), batch); err != nil {
		return nil, err
	}
	found = make([]bool, len(ins))
	for i, op := range batch {
		found[i] = op.in.found
		op.in.in.Handed = s.handoff.sink != nil && op.in.stored()
	}
	return found, nil
}

// AddFragments stores fs as one group-commit batch, in one transaction,
// and returns, for each, what AddFragment would: the parts stored, or
// ErrResent.
func AddFragments(s *Store, fs []Fragment) ([][]Fragment, []error, error) {
	batch := make([]*groupOp, len(fs))
	for i, f := range fs {
		batch[i] = &groupOp{lane: laneNew, frag: &fragmentOp{f: f, now: s.ms()}}
	}
	if err := s.runGroupTx(context.Background(), batch); err != nil {
		return nil, nil, err
	}
	parts, errs := make([][]Fragment, len(fs)), make([]error, len(fs))
	for i, op := range batch {
		switch {
		case op.frag.unowned:
			errs[i] = ErrNotFound
		case op.frag.resent:
			errs[i] = ErrResent
		case op.frag.clash:
			errs[i] = &PartClash{Parts: op.frag.parts}
		}
		parts[i] = op.frag.parts
	}
	return parts, errs, nil
}

// FragmentCall is an AddFragment call for RunMixed, and what it returned
// (Parts are a PartClash's when Clash).
type FragmentCall struct {
	F      Fragment
	Parts  []Fragment
	Resent bool
	Clash  bool
}

// RunMixed runs ops, each an *Inbound to accept or a *FragmentCall, as one
// group-commit batch in arrival order, in one transaction.
func RunMixed(s *Store, ops []any) error {
	batch := make([]*groupOp, len(ops))
	for i, o := range ops {
		switch o := o.(type) {
		case *Inbound:
			batch[i] = &groupOp{lane: laneNew, in: &inboundOp{in: o, now: s.ms(), lookup: o.RecipientJID == ""}}
		case *FragmentCall:
			batch[i] = &groupOp{lane: laneNew, frag: &fragmentOp{f: o.F, now: s.ms()}}
		}
	}
	err := s.runGroupTx(context.Background(), batch)
	for i, o := range ops {
		if c, ok := o.(*FragmentCall); ok {
			c.Parts, c.Resent, c.Clash = batch[i].frag.parts, batch[i].frag.resent, batch[i].frag.clash
		}
	}
	return err
}

// MigrationVersion is the version of the first migration whose text holds
// part (0: none).
func MigrationVersion(part string) int {
	for i, m := range migrations {
		if strings.Contains(m, part) {
			return i + 1
		}
	}
	return 0
}
