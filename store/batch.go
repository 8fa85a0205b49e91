package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"switchboard/smsgw/dlr"
)

// Set-based forms of PartSubmitted and Receipt. Those two run once per SMS
// part, concurrently, from the SMPP workers; the group loop hands the ones
// that arrive together to applyOutcomes, which reads everything the batch
// needs in one statement, decides every outcome in memory, and writes the
// results back in one go: one statement on PostgreSQL (each round trip
// there adds to the latency of every receipt waiting in the outcomes lane),
// a few in-process statements on SQLite. The result for each caller is the
// one it would get if the calls had run one after the other: the SMSC ids in
// arrival order, then the receipts in arrival order.

// partOp is one PartSubmitted call.
type partOp struct {
	msgID int64
	seq   int
	forms []string // scoped to the SMSC; the canonical form first
	final bool     // out: this call moved the message to a final state
}

// receiptOp is one Receipt call.
type receiptOp struct {
	forms   []string // scoped to the SMSC; the canonical form first
	smsc    string   // the SMSC, and its id's forms unscoped (see idForms)
	raw     []string
	state   string
	errText string
	res     ReceiptResult // out
}

// msgRow is what settling needs of a message.
type msgRow struct {
	state   string
	parts   int
	updated int64
	notice  Notice // what a notice about it says (Direction, UserJID, numbers, StanzaID, WantReceipt)
	// recorded are its parts that have a row, by seq, as the batch leaves
	// them.
	recorded map[int]*partRec
	// failedBy is the batch's first change that failed one of its parts:
	// one call at a time, that call would have failed the message.
	failedBy *failure
}

// failure is a part's failed state, and the op that set it (as in last).
type failure struct {
	state, err string
	op         int
}

// partFailed tells whether a part's state fails its message: a receipt's
// state that settles (see Receipt), other than DELIVRD.
func partFailed(state string) bool {
	s := dlr.State(state)
	return state != PartSubmitted && s.Settles() && !s.Success()
}

// partRec is a part's row, as read and then as the batch changes it.
type partRec struct {
	msg        int64
	seq        int
	smscID     string
	state, err string
	updated    int64
	dirty      bool // changed by the batch: to be written back
}

// receiptFor tells whether a receipt naming the SMSC id of part p is
// rather p's than best's (nil: none yet). SMSCs reuse ids: the latest
// message's part first; within a message, a part still waiting for its
// receipt, since the other has had one; then the first part. The choice
// must not depend on the order the parts are looked at in (map order);
// within a message it once did, so a receipt could fail a message in one
// run and be kept as early in another.
func receiptFor(p, best *partRec) bool {
	switch {
	case best == nil:
		return true
	case p.msg != best.msg:
		return p.msg > best.msg
	case (p.state == PartSubmitted) != (best.state == PartSubmitted):
		return p.state == PartSubmitted
	}
	return p.seq < best.seq
}

// early is a receipt kept until the SMSC id it names is recorded.
type early struct {
	state, err string
	at         int64
}

// applyOutcomes records the SMSC ids of parts, then applies the receipts
// rcpts, then settles the messages they touched.
func (s *Store) applyOutcomes(ctx context.Context, tx *sql.Tx, parts []*partOp, rcpts []*receiptOp, now int64, ns *[]Notice) error {
	var (
		ids                  = make([]int64, 0, len(parts))
		partForms, rcptForms []string
	)
	for _, op := range parts {
		op.final = false
		ids = append(ids, op.msgID)
		partForms = append(partForms, op.forms...)
	}
	for _, op := range rcpts {
		op.res = ReceiptResult{}
		rcptForms = append(rcptForms, op.forms...)
	}
	if err := s.lockIDs(ctx, tx, slices.Concat(partForms, rcptForms)); err != nil {
		return err
	}
	msgs, earlies, err := s.loadOutcomes(ctx, tx, ids, rcptForms, partForms)
	if err != nil {
		return err
	}
	if err := s.lockMultipart(ctx, tx, msgs); err != nil {
		return err
	}

	var (
		dirty      []*partRec
		earlyWrite = make(map[string]*receiptOp) // early receipts to store (nil: to delete), by form
		earlyOrder []string
		// last is, per message, the op that last changed one of its parts:
		// parts[i] as i, rcpts[i] as len(parts)+i. It reports the outcome.
		last = make(map[int64]int)
	)
	touch := func(p *partRec, state, errText string, op int) {
		p.state, p.err, p.updated = state, errText, now
		if !p.dirty {
			p.dirty = true
			dirty = append(dirty, p)
		}
		if m := msgs[p.msg]; partFailed(state) && m.failedBy == nil {
			m.failedBy = &failure{state, errText, op}
		}
		last[p.msg] = op
	}
	setEarly := func(form string, op *receiptOp) {
		if _, ok := earlyWrite[form]; !ok {
			earlyOrder = append(earlyOrder, form)
		}
		earlyWrite[form] = op
	}

	for i, op := range parts {
		m := msgs[op.msgID]
		if m == nil {
			return fmt.Errorf("message %d: %w", op.msgID, ErrNotFound)
		}
		if _, again := last[op.msgID]; again && m.recorded[op.seq] != nil {
			// A part with a record already, earlier in the batch (the
			// gateway never records one twice at once) or before it (sent
			// again after a lost lease), after another change to its
			// message here. One call at a time, that change may have
			// settled the message, which this record must see and not
			// undo. Nothing is written yet: the parts before it go in a
			// batch of their own.
			if err := s.applyOutcomes(ctx, tx, parts[:i], nil, now, ns); err != nil {
				return err
			}
			return s.applyOutcomes(ctx, tx, parts[i:], rcpts, now, ns)
		}
		// A receipt that came before this submit_sm_resp. Only one that
		// came after this claim began can be for this submit (less a
		// margin for the clocks of other instances); an older one is for
		// an earlier use of the id by the SMSC.
		state, errText := PartSubmitted, ""
		for _, f := range op.forms {
			if e, ok := earlies[f]; ok && e.at >= m.updated-earlySkew.Milliseconds() {
				state, errText = e.state, e.err
				delete(earlies, f)
				setEarly(f, nil)
				break
			}
		}
		p := m.recorded[op.seq]
		if p == nil {
			p = &partRec{msg: op.msgID, seq: op.seq}
			m.recorded[op.seq] = p
		}
		p.smscID = op.forms[0]
		touch(p, state, errText, i)
		if partFailed(state) && m.state != StateDelivered && m.state != StateFailed {
			// One call at a time, that failure would settle the message
			// now (see settle), and its later parts would weigh their
			// early receipts against this time.
			m.updated = now
		}
	}

	if len(rcpts) > 0 {
		byForm := make(map[string][]*partRec)
		for _, m := range msgs {
			for _, p := range m.recorded {
				if p.smscID != "" {
					byForm[p.smscID] = append(byForm[p.smscID], p)
				}
			}
		}
		for i, op := range rcpts {
			best := s.idForms.match(op, byForm)
			if best != nil {
				op.res.Matched, op.res.Message = true, best.msg
			}
			if best == nil || best.state != PartSubmitted {
				// Unknown id, or a part already final: a repeated receipt
				// changes nothing to that part. But SMSCs reuse ids (a
				// counter reset by a restart, or wrapped), so it may also be
				// the receipt of a part just submitted whose submit_sm_resp
				// is not recorded yet: keep it as early. The last one wins.
				// So a DELIVRD after a part's failure changes nothing: a
				// final state is final (SMPP 3.4 §5.2.28), and taken as the
				// SMSC trying again it would deliver, on a reused id, a
				// message that failed for another that was delivered.
				setEarly(op.forms[0], op)
				continue
			}
			op.res.SubmittedAt = time.UnixMilli(best.updated)
			touch(best, op.state, op.errText, len(parts)+i)
		}
	}

	var w writes
	if len(dirty) > 0 {
		const upsert = `ON CONFLICT (message_id, seq) DO UPDATE SET smsc_id = excluded.smsc_id, state = excluded.state, err = excluded.err, updated_at = excluded.updated_at`
		if s.dialect == postgres {
			// An array per column: one statement text for any batch (see idsIn).
			var (
				msg, seq, at      = make(pq.Int64Array, len(dirty)), make(pq.Int64Array, len(dirty)), make(pq.Int64Array, len(dirty))
				smscID, state, er = make(pq.StringArray, len(dirty)), make(pq.StringArray, len(dirty)), make(pq.StringArray, len(dirty))
			)
			for i, p := range dirty {
				msg[i], seq[i], smscID[i], state[i], er[i], at[i] = p.msg, int64(p.seq), p.smscID, p.state, p.err, p.updated
			}
			w.add(`INSERT INTO parts (message_id, seq, smsc_id, state, err, updated_at)
				SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[]) `+upsert,
				msg, seq, smscID, state, er, at)
		} else {
			// In chunks of a power of two rows (at most 512), the largest
			// first: a few prepared statements serve every batch size,
			// where a statement per size was parsed anew for most batches.
			for rest := dirty; len(rest) > 0; {
				n := chunk(len(rest), groupMax)
				args := make([]any, 0, 6*n)
				for _, p := range rest[:n] {
					args = append(args, p.msg, p.seq, p.smscID, p.state, p.err, p.updated)
				}
				w.add(`INSERT INTO parts (message_id, seq, smsc_id, state, err, updated_at) VALUES `+valuesList(n, 6)+` `+upsert, args...)
				rest = rest[n:]
			}
		}
	}
	var gone, kept []any
	for _, f := range earlyOrder {
		if op := earlyWrite[f]; op != nil {
			kept = append(kept, f, op.state, op.errText, now)
		} else {
			gone = append(gone, f)
		}
	}
	if len(gone) > 0 {
		w.add(`DELETE FROM early_receipts WHERE smsc_id IN (`+inList(1, len(gone))+`)`, gone...)
	}
	if len(kept) > 0 {
		w.add(`INSERT INTO early_receipts (smsc_id, state, err, received_at) VALUES `+valuesList(len(kept)/4, 4)+`
			ON CONFLICT (smsc_id) DO UPDATE SET state = excluded.state, err = excluded.err, received_at = excluded.received_at`, kept...)
	}
	finals := s.settle(&w, msgs, slices.Sorted(maps.Keys(last)), now, ns)
	if err := s.flush(ctx, tx, &w); err != nil {
		return err
	}
	for id, state := range finals {
		// Delivered by the last change to its parts; failed by the first
		// that failed one.
		i := last[id]
		if f := msgs[id].failedBy; state == StateFailed && f != nil {
			i = f.op
		}
		if i < len(parts) {
			parts[i].final = true
		} else {
			op := rcpts[i-len(parts)]
			op.res.Final, op.res.State = true, state
			op.res.Unclaimed = s.handoff.sink == nil && (state == StateFailed || msgs[id].notice.WantReceipt)
		}
	}
	return nil
}

// lockMultipart locks the messages of several parts among msgs and reads
// them again, on PostgreSQL. Another instance may be applying, at the same
// time, the receipt of another part of one of them: the locks on SMSC ids
// do not meet, each transaction would see the other's part as it was, and
// neither would settle the message. Locked in one order, in one statement,
// after the SMSC ids' locks and before any write, so two batches never wait
// for each other both ways. A batch of messages of one part (most) pays
// nothing; one with longer messages pays two round trips.
func (s *Store) lockMultipart(ctx context.Context, tx *sql.Tx, msgs map[int64]*msgRow) error {
	if s.dialect != postgres {
		return nil // one writer
	}
	var ids []int64
	for id, m := range msgs {
		if m.parts > 1 {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	if _, err := s.txExec(ctx, tx, `SELECT id FROM messages WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE`, pq.Array(ids)); err != nil {
		return err
	}
	// A statement of its own: one sees what committed before it began,
	// so the lock must be held by then.
	fresh, _, err := s.loadOutcomes(ctx, tx, ids, nil, nil)
	if err != nil {
		return err
	}
	maps.Copy(msgs, fresh)
	return nil
}

// loadOutcomes reads, in one statement, the messages ids and those that
// have a part whose SMSC id is one of rcptForms, each with its parts, and
// the early receipts kept under partForms. It is a union of single-table
// reads by index, one per kind of row, rather than a join: the planner
// picks those reads whatever its statistics say (a fresh PostgreSQL
// database has none, and joined parts and messages by scanning them).
func (s *Store) loadOutcomes(ctx context.Context, tx *sql.Tx, ids []int64, rcptForms, partForms []string) (map[int64]*msgRow, map[string]early, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var (
		q    strings.Builder
		args []any
	)
	// in renders a membership test, its arguments added to args.
	in := func(test string, a []any) string {
		args = append(args, a...)
		return test
	}
	q.WriteString(`WITH ids (id) AS (`)
	if len(rcptForms) > 0 {
		q.WriteString(`SELECT message_id FROM parts WHERE ` + in(s.stringsIn("smsc_id", len(args)+1, rcptForms)))
	}
	if len(ids) > 0 {
		if len(rcptForms) > 0 {
			q.WriteString(` UNION ALL `)
		}
		q.WriteString(`SELECT id FROM messages WHERE ` + in(s.idsIn("id", len(args)+1, ids)))
	}
	// PostgreSQL reads a list of values by index; a subquery it may scan.
	inIDs := `IN (SELECT id FROM ids)`
	if s.dialect == postgres {
		inIDs = `= ANY(ARRAY(SELECT id FROM ids))`
	}
	q.WriteString(`)
		SELECT 'm', id, state, parts, want_receipt, updated_at, direction, user_jid, user_number, peer_number, stanza_id, peer_local, ''
		FROM messages WHERE id ` + inIDs + `
		UNION ALL SELECT 'p', message_id, state, seq, 0, updated_at, '', '', '', '', '', smsc_id, err
		FROM parts WHERE message_id ` + inIDs)
	if len(partForms) > 0 {
		q.WriteString(`
		UNION ALL SELECT 'e', 0, state, 0, 0, received_at, '', '', '', '', '', smsc_id, err
		FROM early_receipts WHERE ` + in(s.stringsIn("smsc_id", len(args)+1, partForms)))
	}
	rows, err := s.txQuery(ctx, tx, q.String(), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		msgs    = make(map[int64]*msgRow, len(ids))
		earlies = make(map[string]early)
		parts   []*partRec
		// Declared once: Scan's pointers make them escape, which inside
		// the loop cost nine allocations a row. Scan sets every one.
		kind, state, smscID, errText string
		id, at                       int64
		num, want                    int
		nt                           Notice
	)
	for rows.Next() {
		if err := rows.Scan(&kind, &id, &state, &num, &want, &at, &nt.Direction, &nt.UserJID, &nt.UserNumber, &nt.PeerNumber, &nt.StanzaID,
			&smscID, &errText); err != nil {
			return nil, nil, err
		}
		switch kind {
		case "m":
			nt.ID, nt.WantReceipt, nt.Route = id, want != 0, RouteSMS // outcomes are the SMS route's
			nt.PeerLocal = smscID                                     // the column's, in a message's row
			msgs[id] = &msgRow{state: state, parts: num, updated: at, notice: nt, recorded: make(map[int]*partRec, num)}
		case "p":
			parts = append(parts, &partRec{msg: id, seq: num, smscID: smscID, state: state, err: errText, updated: at})
		case "e":
			earlies[smscID] = early{state: state, err: errText, at: at}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, p := range parts {
		if m := msgs[p.msg]; m != nil {
			m.recorded[p.seq] = p
		}
	}
	return msgs, earlies, nil
}

// settle moves the messages ids (sorted) forward from their parts, adding
// the writes to w: submitted once every part has an id; delivered once
// every part is DELIVRD; failed as soon as one part failed. Reaching delivered
// (with a receipt requested) or failed raises a notice; with a notice sink
// set (HandNotices), the notice is leased to it at once and added to ns. It
// returns the messages that reached a final state, with that state.
func (s *Store) settle(w *writes, msgs map[int64]*msgRow, ids []int64, now int64, ns *[]Notice) map[int64]string {
	finals := make(map[int64]string)
	var (
		submitted, delivered []int64
		raise                []int64 // messages whose notice to store
	)
	handed := s.handoff.sink != nil
	for _, id := range ids {
		m := msgs[id]
		if m == nil || m.state == StateDelivered || m.state == StateFailed || len(m.recorded) == 0 {
			continue
		}
		ok, failed := 0, m.failedBy
		// The batch's first failure names it; else the first failed part,
		// in order.
		for _, seq := range slices.Sorted(maps.Keys(m.recorded)) {
			switch p := m.recorded[seq]; {
			case p.state == "DELIVRD":
				ok++
			case partFailed(p.state) && failed == nil:
				failed = &failure{state: p.state, err: p.err}
			}
		}
		switch {
		case failed != nil:
			// Plain words for the sender; the receipt's state and code
			// for whoever asks the carrier.
			reason := dlr.State(failed.state).Reason() + " (carrier status " + failed.state
			if failed.err != "" {
				reason += ", error " + failed.err
			}
			reason += ")"
			w.add(`UPDATE messages SET state = 'failed', error = $1, lease_owner = '', updated_at = $2 WHERE id = $3`, reason, now, id)
			finals[id] = StateFailed
			raise = append(raise, id)
			if handed {
				n := m.notice
				n.State, n.Error = StateFailed, reason
				*ns = append(*ns, n)
			}
		case ok == m.parts:
			delivered = append(delivered, id)
			finals[id] = StateDelivered
			if m.notice.WantReceipt {
				raise = append(raise, id)
				if handed {
					n := m.notice
					n.State = StateDelivered
					*ns = append(*ns, n)
				}
			}
		case len(m.recorded) == m.parts && m.state == StateSubmitting:
			submitted = append(submitted, id)
		}
	}
	if len(submitted) > 0 {
		// next_attempt_at: since when it waits for its receipts (see
		// EndReceiptWaits).
		in, args := s.idsIn("id", 2, submitted)
		w.add(`UPDATE messages SET state = 'submitted', lease_owner = '', next_attempt_at = $1, updated_at = $1 WHERE `+in, append([]any{now}, args...)...)
	}
	if len(delivered) > 0 {
		in, args := s.idsIn("id", 2, delivered)
		w.add(`UPDATE messages SET state = 'delivered', lease_owner = '', updated_at = $1 WHERE `+in, append([]any{now}, args...)...)
	}
	s.addNotices(w, raise, now)
	return finals
}

// noticeLease is how a notice raised now is stored: waiting (no owner) for
// any instance to claim, or, with a notice sink (HandNotices), already
// leased to it until its lease runs out.
func (s *Store) noticeLease(now int64) (owner string, until int64) {
	if s.handoff.sink == nil {
		return "", 0
	}
	return s.handoff.owner, now + s.handoff.lease.Milliseconds()
}

// raiseNotices stores notices for the messages ids (see addNotices).
func (s *Store) raiseNotices(ctx context.Context, tx *sql.Tx, ids []int64, now int64) error {
	var w writes
	s.addNotices(&w, ids, now)
	return s.flush(ctx, tx, &w)
}

// addNotices adds to w the notices for the messages ids: pending, for any
// instance to claim, or, with a notice sink (HandNotices), already leased
// to it until its lease runs out. A message with a notice already keeps
// that one (the notice is read from the message when it is sent).
func (s *Store) addNotices(w *writes, ids []int64, now int64) {
	owner, until := s.noticeLease(now)
	if s.dialect == postgres && len(ids) > 0 {
		// One statement text for any number (see idsIn); a repeated id
		// is a conflict, which does nothing.
		w.add(`INSERT INTO notices (message_id, lease_owner, lease_until) SELECT unnest($1::bigint[]), $2, $3
			ON CONFLICT (message_id) DO NOTHING`, pq.Int64Array(ids), owner, until)
		return
	}
	for len(ids) > 0 {
		n := min(len(ids), 256)
		args := make([]any, 0, 3*padded(n))
		for _, id := range pad(ids[:n]) {
			args = append(args, id, owner, until)
		}
		// Padded like the IN lists, so a few prepared statements serve;
		// a repeated row is a conflict, which does nothing.
		w.add(`INSERT INTO notices (message_id, lease_owner, lease_until) VALUES `+valuesList(len(args)/3, 3)+`
			ON CONFLICT (message_id) DO NOTHING`, args...)
		ids = ids[n:]
	}
}

// writes are statements collected to run together once a batch is decided.
// Each is written as if alone, its arguments numbered from $1.
type writes struct {
	qs   []string
	args [][]any
}

func (w *writes) add(q string, args ...any) {
	w.qs = append(w.qs, q)
	w.args = append(w.args, args)
}

// flush runs w's statements in tx: on PostgreSQL as one statement, each in
// a WITH clause of its own (data-modifying WITH clauses all run, to
// completion, on one snapshot; the batches never write a row twice), so they
// cost one round trip; on SQLite, in process, one after the other.
func (s *Store) flush(ctx context.Context, tx *sql.Tx, w *writes) error {
	if s.dialect != postgres || len(w.qs) == 1 {
		for i, q := range w.qs {
			if _, err := s.txExec(ctx, tx, q, w.args[i]...); err != nil {
				return err
			}
		}
		return nil
	}
	if len(w.qs) == 0 {
		return nil
	}
	q, args := w.combined()
	_, err := s.txExec(ctx, tx, q, args...)
	return err
}

// combined is w as one PostgreSQL statement: each write in a WITH clause
// of its own, its arguments renumbered after the previous ones'.
func (w *writes) combined() (string, []any) {
	var (
		b    strings.Builder
		args []any
	)
	for i, q := range w.qs {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(", ")
		}
		off := len(args)
		fmt.Fprintf(&b, "w%d AS (", i)
		b.WriteString(renumber(q, func(n int) string { return "$" + strconv.Itoa(n+off) }))
		b.WriteString(")")
		args = append(args, w.args[i]...)
	}
	b.WriteString(" SELECT 1")
	return b.String(), args
}

// HandNotices makes the notices that receipts raise go straight to sink
// once their transaction committed, leased to owner for lease, instead of
// waiting to be claimed (ClaimNotices still takes them if the lease runs
// out before they are marked done). Call it before the store is used.
func (s *Store) HandNotices(owner string, lease time.Duration, sink func([]Notice)) {
	s.handoff.owner, s.handoff.lease, s.handoff.sink = owner, lease, sink
}

// valuesList renders "($1, $2), ($3, $4)" for rows rows of cols values.
func valuesList(rows, cols int) string { return valuesFrom(1, rows, cols) }

// valuesFrom is valuesList with the arguments numbered from first.
func valuesFrom(first, rows, cols int) string {
	b := make([]byte, 0, rows*(2+cols*7))
	n := first
	for r := range rows {
		if r > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '(')
		for c := range cols {
			if c > 0 {
				b = append(b, ", "...)
			}
			b = placeholder(b, n)
			n++
		}
		b = append(b, ')')
	}
	return string(b)
}
