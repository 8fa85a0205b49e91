package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit: the per-message writes that callers wait on (an SMSC id
// recorded, a receipt applied, a message from a phone accepted) arrive
// concurrently from many goroutines. Each still commits before its caller
// goes on, but the ones that arrive together share one transaction, so one
// fsync (SQLite) or one commit round trip (PostgreSQL) serves many; and the
// SMSC ids and receipts among them are applied set-based (batch.go), a few
// statements for the whole batch.

// groupMax bounds one shared transaction. At full speed the outcome
// batches filled 128 (the bound until the fifth session); 512 took SQLite
// from about 6,800 to 7,900 msg/s and PostgreSQL from about 2,900 to 3,800
// (means of alternating runs), 2,048 no further.
const groupMax = 512

// Lanes: SQLite has one writer, so every write goes through one loop. On
// PostgreSQL one loop waits for round trips and the commit's WAL flush one
// transaction at a time, so loops commit side by side: new messages (from
// users and phones), notices done, and outcomes (SMSC ids and receipts).
// At a paced 1,000 msg/s that took the median XMPP → submit_sm from 20 to
// 7 ms. The new-messages and notices-done lanes write rows no other lane
// writes at the same time: new rows, and notices whose outcome has
// committed.
//
// Outcomes have outcomeLanes loops (see outcomeLane): the first takes them
// all until spillAt wait for it, then each goes to the one its SMSC id
// picks. A receipt and the SMSC id it is for may so commit side by side in
// two lanes, as they may in two instances sharing the database: lockIDs
// serialises them, and lockMultipart the parts of one message. With one
// lane, the lane was the limit once receipts came apart from their SMSC
// ids (as a carrier's do, seconds later; see BENCHMARKS.md).
//
// The lanes cost CPU where the server shares two slow cores with the rest:
// one loop for everything made 6 commits per 1,000 messages at full speed
// instead of 27, and halved the server's CPU per message (0.12–0.16 s per
// 1,000 against 0.23–0.30) at 23 % more msg/s; but at a paced 1,000 msg/s
// it added 3–7 ms to the median XMPP → submit_sm, and with receipts half a
// second late a single outcome lane was the limit (−16 % msg/s). Sending
// everything to the first lane only while 32 ops wait for it, without the
// second outcome lane, kept the paced latency but not the late receipts'
// rate (docs/benchmarks/sessions.md, twenty-third session).
const (
	laneOutcomes = iota
	laneNew
	laneNoticesDone
	pgLanes
)

// outcomeLanes is the number of outcome loops on PostgreSQL: laneOutcomes,
// then the lanes from pgLanes on. Two took PostgreSQL from about 9,400 to
// 10,100 msg/s with receipts half a second after their SMSC ids (means of
// three alternating runs each); three and four gained less, each batch
// smaller and the server's CPU per message higher.
//
// spillAt is how many ops wait for the first outcome lane before the
// others take any. Spread over both lanes at any load, the ops of a paced
// 1,000 msg/s made twice the transactions: the server's CPU per 1,000
// messages rose from 1.00 to 1.14 s, and the receipt → client p99 from 8–9
// to 12–15 ms (two alternating runs each, spilling at 128 and at 0).
const (
	outcomeLanes = 2
	spillAt      = groupMax / 4
)

// groupOp is one write: fn, or an SMSC id recorded, a receipt applied, a
// message from a phone accepted, or a part of one stored.
type groupOp struct {
	ctx context.Context
	fn  func(*sql.Tx) error
	// alone, when set, does what fn does as one statement on the database
	// itself; noticed are the ids of a NoticesDone, which fn writes. Both
	// let a batch run as one statement (see oneStatement).
	alone   func(context.Context) error
	noticed []int64
	part    *partOp
	rcpt    *receiptOp
	in      *inboundOp
	frag    *fragmentOp
	lane    int // for fn, in and frag; parts and receipts take an outcome lane (outcomeLane)
	// lazy: nobody is waiting for this write soon, so it may wait (up to
	// lazyWait) to share a commit with others.
	lazy bool
	done chan error
}

type grouper struct {
	once   sync.Once
	lanes  []chan *groupOp
	wg     sync.WaitGroup
	mu     sync.RWMutex // held for reading while sending on a lane
	closed bool

	lmu     sync.Mutex
	largest int // the largest batch so far; read by tests
	commits int // batches run so far; read by tests

	spilled atomic.Int64 // outcomes sent past the first outcome lane; read by tests

	lazyWait atomic.Int64 // nanoseconds: the const lazyWait, but for tests

	onCommit atomic.Pointer[func(writes int, d time.Duration)] // see OnCommit
}

// OnCommit sets f (nil: none) to be called after each group commit (see
// grouped), with the writes it held and the time it took, commit included,
// whether it succeeded or not; when a shared one failed, again for each
// write run on its own after it. It runs on the commit's loop and must not
// block.
func (s *Store) OnCommit(f func(writes int, d time.Duration)) {
	if f == nil {
		s.group.onCommit.Store(nil)
		return
	}
	s.group.onCommit.Store(&f)
}

// committed reports a commit of n writes that began at start to OnCommit's
// function.
func (s *Store) committed(n int, start time.Time) {
	if f := s.group.onCommit.Load(); f != nil {
		(*f)(n, time.Since(start))
	}
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
			n = pgLanes + outcomeLanes - 1
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
		lane = s.outcomeLane(op)
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

// outcomeLane picks the lane of an SMSC id recorded or a receipt applied:
// the first outcome lane, or, once spillAt ops wait for it, the outcome
// lane of the id. That is picked by the least of the id's forms, not the
// canonical one: an SMSC giving ids in hex and receipts in decimal names
// one id by the same forms in both, in another order, and the two then
// take one lane instead of waiting on each other's locks from two.
func (s *Store) outcomeLane(op *groupOp) int {
	n := len(s.group.lanes) - pgLanes + 1
	if n <= 1 || len(s.group.lanes[laneOutcomes]) < spillAt {
		return laneOutcomes
	}
	var forms []string // never empty: PartSubmitted and Receipt refuse none
	if op.part != nil {
		forms = op.part.forms
	} else {
		forms = op.rcpt.forms
	}
	h := fnv.New32a()
	h.Write([]byte(slices.Min(forms)))
	k := int(h.Sum32() % uint32(n))
	if k == 0 {
		return laneOutcomes
	}
	s.group.spilled.Add(1)
	return pgLanes + k - 1
}

func (s *Store) groupLoop(ch chan *groupOp) {
	defer s.group.wg.Done()
	batch := make([]*groupOp, 0, groupMax)
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	var held <-chan time.Time // set while a batch of lazy writes waits
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	below, wait := gatherBelow, gatherWait
	if s.dialect == postgres {
		below, wait = pgGatherBelow, pgGatherWait
	}
	for open := true; open; {
		expired := false
		select {
		case op, ok := <-ch:
			if !ok {
				open = false
				break
			}
			batch = append(batch, op)
		case <-held:
			held, expired = nil, true
		}
		if open {
			batch, open = take(ch, batch, nil)
		}
		if len(batch) == 0 {
			continue
		}
		if open && len(batch) < below && !allLazy(batch) {
			// Few writes: wait a little for more. See gatherWait.
			gather.Reset(wait)
			batch, open = take(ch, batch, gather.C)
			gather.Stop()
		}
		if !expired && open && len(batch) < groupMax && allLazy(batch) {
			// Only writes nobody waits for: wait for company (up to
			// lazyWait), so they share a commit with the next ones.
			if held == nil {
				hold.Reset(cmp.Or(time.Duration(s.group.lazyWait.Load()), lazyWait))
				held = hold.C
			}
			continue
		}
		if held != nil {
			hold.Stop()
			held = nil
		}
		s.commitBatch(batch)
		batch = batch[:0]
	}
}

// take adds to batch, up to groupMax, the ops already waiting on ch and,
// when wait is set, those that come before it fires. It reports whether ch
// is still open.
func take(ch <-chan *groupOp, batch []*groupOp, wait <-chan time.Time) ([]*groupOp, bool) {
	for len(batch) < groupMax {
		var (
			op *groupOp
			ok bool
		)
		select {
		case op, ok = <-ch:
		default:
			if wait == nil {
				return batch, true
			}
			select {
			case op, ok = <-ch:
			case <-wait:
				return batch, true
			}
		}
		if !ok {
			return batch, false
		}
		batch = append(batch, op)
	}
	return batch, true
}

// lazyWait is how long writes that nobody waits for (notices done) may wait
// to share a commit with other writes.
const lazyWait = 20 * time.Millisecond

func allLazy(batch []*groupOp) bool {
	for _, op := range batch {
		if !op.lazy {
			return false
		}
	}
	return true
}

// commitBatch runs batch in one transaction (or, on PostgreSQL, as one
// statement when it comes to one) and reports to each op.
func (s *Store) commitBatch(batch []*groupOp) {
	s.group.lmu.Lock()
	s.group.largest = max(s.group.largest, len(batch)) // for tests
	s.group.commits++
	s.group.lmu.Unlock()
	ctx := context.Background()
	if len(batch) == 1 {
		ctx = context.WithoutCancel(batch[0].ctx)
	}
	var err error
	if run := s.oneStatement(batch); run != nil {
		start := time.Now()
		err = run(ctx)
		s.committed(len(batch), start)
	} else {
		err = s.runGroupTx(ctx, batch)
	}
	if err == nil || len(batch) == 1 {
		for _, op := range batch {
			op.done <- err
		}
		return
	}
	// One failed (or the commit did): each on its own, so only the
	// failing one reports an error.
	for _, op := range batch {
		op.done <- s.runGroupTx(context.WithoutCancel(op.ctx), []*groupOp{op})
	}
}

// oneStatement returns, on PostgreSQL, a batch's work as one statement on
// the database itself, when it comes to one: an accept on its own (its
// alone), or notices done and nothing else (their ids merged, up to
// 4,096). Without a transaction of its own it costs one round trip instead
// of the transaction's begin, statements and commit. Else nil.
func (s *Store) oneStatement(batch []*groupOp) func(context.Context) error {
	if s.dialect != postgres {
		return nil
	}
	if len(batch) == 1 && batch[0].alone != nil {
		return batch[0].alone
	}
	var ids []int64
	for _, op := range batch {
		if op.noticed == nil {
			return nil
		}
		ids = append(ids, op.noticed...)
	}
	if len(ids) > 4096 {
		return nil
	}
	return func(ctx context.Context) error {
		w := s.noticesDone(ids)
		q, args := w.combined()
		_, err := s.db.ExecContext(ctx, q, args...)
		return err
	}
}

// runGroupTx runs batch in a transaction of its own and, once it
// committed, reports the commit (OnCommit) and then hands the notices it
// raised to the notice sink: whoever sees a notice's effect (a receipt at
// a client) sees the commit counted.
func (s *Store) runGroupTx(ctx context.Context, batch []*groupOp) error {
	var ns []Notice
	start := time.Now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ns = ns[:0]
		return s.runGroup(tx, batch, &ns)
	})
	s.committed(len(batch), start)
	if err == nil && len(ns) > 0 {
		s.handoff.sink(ns)
	}
	return err
}

// runGroup runs the ops of a batch in tx: the functions in arrival order,
// then the parts of messages from phones, the messages from phones, the
// parts that came after a message from the same phone with the same
// reference (see below), the SMSC ids, and the receipts, set-based. A receipt and the SMSC id it is for give the same outcome in
// either order (a receipt before its id is kept as early, and applied when
// the id is recorded).
func (s *Store) runGroup(tx *sql.Tx, batch []*groupOp, ns *[]Notice) error {
	var (
		parts []*partOp
		rcpts []*receiptOp
		ins   []*inboundOp
		frags []*fragmentOp
		// after: parts that came after a message reassembled with their
		// key, which deletes that key's parts: a new message reusing the
		// reference (or a part sent again, a resend once the message is
		// stored). Run before it, the part would be deleted with it.
		after    []*fragmentOp
		accepted map[FragmentKey]bool
		deferred map[FragmentKey]bool // the keys of the parts in after
	)
	// flush runs the phases gathered so far: parts, messages, then the
	// parts that came after a message with their key.
	flush := func() error {
		if len(frags) > 0 {
			if err := s.addFragments(context.Background(), tx, frags); err != nil {
				return err
			}
		}
		if len(ins) > 0 {
			if err := s.acceptInbounds(context.Background(), tx, ins, ns); err != nil {
				return err
			}
		}
		if len(after) > 0 {
			if err := s.addFragments(context.Background(), tx, after); err != nil {
				return err
			}
		}
		frags, ins, after, accepted, deferred = nil, nil, nil, nil, nil
		return nil
	}
	for _, op := range batch {
		switch {
		case op.part != nil:
			parts = append(parts, op.part)
		case op.rcpt != nil:
			rcpts = append(rcpts, op.rcpt)
		case op.in != nil:
			k := op.in.in.FragmentKey
			if k != nil && deferred[*k] {
				// A part of k waits to run after the messages so far; it
				// came before this message, which deletes k's parts, so it
				// runs first.
				if err := flush(); err != nil {
					return err
				}
			}
			ins = append(ins, op.in)
			if k != nil {
				if accepted == nil {
					accepted = make(map[FragmentKey]bool)
				}
				accepted[*k] = true
			}
		case op.frag != nil && accepted[op.frag.f.FragmentKey]:
			after = append(after, op.frag)
			if deferred == nil {
				deferred = make(map[FragmentKey]bool)
			}
			deferred[op.frag.f.FragmentKey] = true
		case op.frag != nil:
			frags = append(frags, op.frag)
		default:
			if err := op.fn(tx); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(parts) == 0 && len(rcpts) == 0 {
		return nil
	}
	return s.applyOutcomes(context.Background(), tx, parts, rcpts, s.ms(), ns)
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

// A batch of fewer than gatherBelow writes waits up to gatherWait for more:
// under a moderate load most batches held one or two writes, and each
// commit has a cost of its own. On SQLite it is the gateway's CPU (the WAL
// frames of the pages it touched, written one by one, and an fsync): at a
// paced 1,000 msg/s, 1 ms took the CPU per 1,000 messages from 0.94 to
// 0.68-0.71 s, with the p99 latencies unchanged (the medians rise by the
// wait). On PostgreSQL it is mostly the server's, a transaction per lane
// per write: at a paced 1,000 msg/s the server's CPU per 1,000 messages
// fell from 1.04 to 0.68 s and Switchboard's from 0.47 to 0.36 (two
// alternating runs each), the p99 XMPP → submit_sm rising from 5–6 to
// 8 ms; at 3,000 msg/s the server's from 0.34 to 0.28. A saturated run's
// batches are larger and never wait.
//
// PostgreSQL gathers more (pgGatherBelow, pgGatherWait): there every
// commit costs the server a transaction's round trips and a WAL flush, and
// the server's CPU at a paced 1,000 msg/s fell from 0.73–0.87 to 0.63–0.67
// s per 1,000 messages (means 0.783 → 0.644, 3 alternating pairs;
// Switchboard's 0.476 → 0.455), the median XMPP → submit_sm rising by 1–2
// ms. On SQLite 3 ms below 32 writes took 15 % off the CPU at that rate
// but its p99 XMPP → submit_sm to 15.5–17.4 ms, too near the 20 ms
// target; 2 ms gained nothing measurable (docs/benchmarks/sessions.md, twenty-second
// session).
const (
	gatherBelow   = 8
	gatherWait    = time.Millisecond
	pgGatherBelow = 32
	pgGatherWait  = 2 * time.Millisecond
)
