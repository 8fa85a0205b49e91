package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Set-based forms of PartSubmitted and Receipt. Those two run once per SMS
// part, concurrently, from the SMPP workers; the group loop hands the ones
// that arrive together to applyParts and applyReceipts, which do the work of
// the whole batch in a handful of statements (one SELECT for the early
// receipts of all the ids, one multi-row INSERT for the parts, one UPDATE
// per outcome…) instead of five or six statements per part. The result for
// each caller is the one it would get if the calls had run one after the
// other in arrival order.

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
	state   string
	errText string
	res     ReceiptResult // out
}

// msgRow is what settling needs of a message.
type msgRow struct {
	state   string
	parts   int
	want    int
	updated int64
	notice  Notice // what a notice about it says (Direction, UserJID, numbers, StanzaID)
	// recorded are its parts that have an SMSC id, by seq: read with it,
	// and kept up to date with the batch's own writes.
	recorded map[int]partState
}

type partState struct{ state, err string }

type partKey struct {
	msg int64
	seq int
}

// applyParts records the SMSC ids of ops. Calls for the same part (which
// the gateway never makes at once) are split into separate chunks, so each
// chunk's upsert touches a row once.
func (s *Store) applyParts(ctx context.Context, tx *sql.Tx, ops []*partOp, now int64, ns *[]Notice) error {
	for len(ops) > 0 {
		n := 0
		seen := make(map[partKey]bool, len(ops))
		for ; n < len(ops); n++ {
			k := partKey{ops[n].msgID, ops[n].seq}
			if seen[k] {
				break
			}
			seen[k] = true
		}
		if err := s.applyPartChunk(ctx, tx, ops[:n], now, ns); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

func (s *Store) applyPartChunk(ctx context.Context, tx *sql.Tx, ops []*partOp, now int64, ns *[]Notice) error {
	var forms []string
	ids := make([]int64, 0, len(ops))
	for _, op := range ops {
		op.final = false
		forms = append(forms, op.forms...)
		ids = append(ids, op.msgID)
	}
	if err := s.lockIDs(ctx, tx, forms); err != nil {
		return err
	}
	msgs, err := s.loadMessages(ctx, tx, ids)
	if err != nil {
		return err
	}

	// Receipts that came before their submit_sm_resp. Only one that came
	// after this claim began can be for this submit (less a margin for the
	// clocks of other instances); an older one is for an earlier use of the
	// id by the SMSC.
	type early struct {
		state, err string
		at         int64
	}
	earlies := make(map[string]early)
	rows, err := s.txQuery(ctx, tx, `SELECT smsc_id, state, err, received_at FROM early_receipts WHERE smsc_id IN (`+inList(1, padded(len(forms)))+`)`,
		strArgs(nil, pad(forms))...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var (
			id string
			e  early
		)
		if err := rows.Scan(&id, &e.state, &e.err, &e.at); err != nil {
			rows.Close()
			return err
		}
		earlies[id] = e
	}
	if err := rows.Close(); err != nil {
		return err
	}

	var (
		used []string
		args = make([]any, 0, 6*len(ops))
	)
	for _, op := range ops {
		m := msgs[op.msgID]
		if m == nil {
			return fmt.Errorf("message %d not found", op.msgID)
		}
		state, errText := PartSubmitted, ""
		for _, f := range op.forms {
			if e, ok := earlies[f]; ok && e.at >= m.updated-earlySkew.Milliseconds() {
				state, errText = e.state, e.err
				delete(earlies, f)
				used = append(used, f)
				break
			}
		}
		args = append(args, op.msgID, op.seq, op.forms[0], state, errText, now)
		m.recorded[op.seq] = partState{state, errText}
	}
	if len(used) > 0 {
		if _, err := s.txExec(ctx, tx, `DELETE FROM early_receipts WHERE smsc_id IN (`+inList(1, len(used))+`)`, strArgs(nil, used)...); err != nil {
			return err
		}
	}
	if _, err := s.txExec(ctx, tx, `INSERT INTO parts (message_id, seq, smsc_id, state, err, updated_at) VALUES `+valuesList(len(ops), 6)+`
		ON CONFLICT (message_id, seq) DO UPDATE SET smsc_id = excluded.smsc_id, state = excluded.state, err = excluded.err, updated_at = excluded.updated_at`,
		args...); err != nil {
		return err
	}
	finals, err := s.settleMany(ctx, tx, msgs, now, ns)
	if err != nil {
		return err
	}
	// The last call for a message is the one that settled it.
	for i := len(ops) - 1; i >= 0; i-- {
		if _, ok := finals[ops[i].msgID]; ok {
			ops[i].final = true
			delete(finals, ops[i].msgID)
		}
	}
	return nil
}

// applyReceipts applies ops in order, as Receipt describes.
func (s *Store) applyReceipts(ctx context.Context, tx *sql.Tx, ops []*receiptOp, now int64, ns *[]Notice) error {
	var forms []string
	for _, op := range ops {
		op.res = ReceiptResult{}
		forms = append(forms, op.forms...)
	}
	if err := s.lockIDs(ctx, tx, forms); err != nil {
		return err
	}
	type part struct {
		key       partKey
		state     string
		submitted int64
	}
	byForm := make(map[string][]*part)
	rows, err := s.txQuery(ctx, tx, `SELECT smsc_id, message_id, seq, state, updated_at FROM parts WHERE smsc_id IN (`+inList(1, padded(len(forms)))+`)`,
		strArgs(nil, pad(forms))...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var (
			id string
			p  part
		)
		if err := rows.Scan(&id, &p.key.msg, &p.key.seq, &p.state, &p.submitted); err != nil {
			rows.Close()
			return err
		}
		byForm[id] = append(byForm[id], &p)
	}
	if err := rows.Close(); err != nil {
		return err
	}

	type outcome struct {
		state, err string
		seq        int
	}
	var (
		keep     = make(map[string]*receiptOp) // by canonical form: the last one wins
		keepList []string
		updates  = make(map[outcome][]int64)
		outcomes []outcome
		last     = make(map[int64]int) // message → index of the last op that changed one of its parts
		touched  []int64
	)
	for i, op := range ops {
		var best *part
		for _, f := range op.forms {
			for _, p := range byForm[f] {
				if best == nil || p.key.msg > best.key.msg {
					best = p
				}
			}
		}
		if best != nil {
			op.res.Matched = true
			op.res.Message = best.key.msg
		}
		if best == nil || best.state != PartSubmitted {
			// Unknown id, or a part already final: a repeated receipt changes
			// nothing to that part. But SMSCs reuse ids (a counter reset by a
			// restart, or wrapped), so it may also be the receipt of a part
			// just submitted whose submit_sm_resp is not recorded yet: keep it
			// as early.
			if _, ok := keep[op.forms[0]]; !ok {
				keepList = append(keepList, op.forms[0])
			}
			keep[op.forms[0]] = op
			continue
		}
		best.state = op.state
		op.res.SubmittedAt = time.UnixMilli(best.submitted)
		o := outcome{op.state, op.errText, best.key.seq}
		if _, ok := updates[o]; !ok {
			outcomes = append(outcomes, o)
		}
		updates[o] = append(updates[o], best.key.msg)
		if _, ok := last[best.key.msg]; !ok {
			touched = append(touched, best.key.msg)
		}
		last[best.key.msg] = i
	}

	if len(keepList) > 0 {
		args := make([]any, 0, 4*len(keepList))
		for _, f := range keepList {
			op := keep[f]
			args = append(args, f, op.state, op.errText, now)
		}
		if _, err := s.txExec(ctx, tx, `INSERT INTO early_receipts (smsc_id, state, err, received_at) VALUES `+valuesList(len(keepList), 4)+`
			ON CONFLICT (smsc_id) DO UPDATE SET state = excluded.state, err = excluded.err, received_at = excluded.received_at`,
			args...); err != nil {
			return err
		}
	}
	for _, o := range outcomes {
		ids := updates[o]
		if _, err := s.txExec(ctx, tx, `UPDATE parts SET state = $1, err = $2, updated_at = $3 WHERE seq = $4 AND message_id IN (`+inList(5, padded(len(ids)))+`)`,
			idArgs([]any{o.state, o.err, now, o.seq}, pad(ids))...); err != nil {
			return err
		}
	}
	if len(touched) == 0 {
		return nil
	}
	msgs, err := s.loadMessages(ctx, tx, touched)
	if err != nil {
		return err
	}
	finals, err := s.settleMany(ctx, tx, msgs, now, ns)
	if err != nil {
		return err
	}
	for id, state := range finals {
		op := ops[last[id]]
		op.res.Final, op.res.State = true, state
	}
	return nil
}

// loadMessages reads what settling needs of the messages ids, their
// recorded parts with them (one statement: on PostgreSQL one round trip
// less in every outcome's transaction).
func (s *Store) loadMessages(ctx context.Context, tx *sql.Tx, ids []int64) (map[int64]*msgRow, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	rows, err := s.txQuery(ctx, tx, `SELECT m.id, m.state, m.parts, m.want_receipt, m.updated_at, m.direction, m.user_jid, m.user_number,
		m.peer_number, m.stanza_id, p.seq, p.state, p.err
		FROM messages m LEFT JOIN parts p ON p.message_id = m.id WHERE m.id IN (`+inList(1, padded(len(ids)))+`)`, idArgs(nil, pad(ids))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]*msgRow, len(ids))
	for rows.Next() {
		var (
			id       int64
			m        msgRow
			seq      sql.NullInt64
			pst, per sql.NullString
		)
		n := &m.notice
		if err := rows.Scan(&id, &m.state, &m.parts, &m.want, &m.updated, &n.Direction, &n.UserJID, &n.UserNumber, &n.PeerNumber, &n.StanzaID,
			&seq, &pst, &per); err != nil {
			return nil, err
		}
		row := out[id]
		if row == nil {
			n.ID, n.WantReceipt = id, m.want != 0
			m.recorded = make(map[int]partState, m.parts)
			row = &m
			out[id] = row
		}
		if seq.Valid {
			row.recorded[int(seq.Int64)] = partState{pst.String, per.String}
		}
	}
	return out, rows.Err()
}

// settleMany moves messages forward from their parts: submitted once every
// part has an id; delivered once every part is DELIVRD; failed as soon as
// one part failed. Reaching delivered (with a receipt requested) or failed
// raises a notice; with a notice sink set (HandNotices), the notice is
// leased to it at once and added to ns. It returns the messages that
// reached a final state, with that state.
func (s *Store) settleMany(ctx context.Context, tx *sql.Tx, msgs map[int64]*msgRow, now int64, ns *[]Notice) (map[int64]string, error) {
	open := make([]int64, 0, len(msgs))
	for id, m := range msgs {
		if m.state != StateDelivered && m.state != StateFailed {
			open = append(open, id)
		}
	}
	if len(open) == 0 {
		return nil, nil
	}
	type tally struct {
		n, ok              int
		failed, failedText string
	}
	tallies := make(map[int64]*tally, len(open))
	for _, id := range open {
		rec := msgs[id].recorded
		if len(rec) == 0 {
			continue
		}
		t := &tally{n: len(rec)}
		// The first failed part, in order, names the failure.
		for _, seq := range slices.Sorted(maps.Keys(rec)) {
			switch p := rec[seq]; p.state {
			case PartSubmitted, "ENROUTE", "ACCEPTD":
			case "DELIVRD":
				t.ok++
			default:
				if t.failed == "" {
					t.failed, t.failedText = p.state, p.err
				}
			}
		}
		tallies[id] = t
	}

	finals := make(map[int64]string)
	var (
		submitted, delivered []int64
		deliveredNotify      []int64 // delivered, with a receipt asked for
		raise                []int64 // notices for raiseNotices to store
	)
	handed := s.handoff.sink != nil
	for _, id := range open {
		m, t := msgs[id], tallies[id]
		if t == nil {
			continue
		}
		switch {
		case t.failed != "":
			reason := "the carrier reported " + t.failed
			if t.failedText != "" {
				reason += " (error " + t.failedText + ")"
			}
			if _, err := s.txExec(ctx, tx, `UPDATE messages SET state = 'failed', error = $1, lease_owner = '', updated_at = $2 WHERE id = $3`,
				reason, now, id); err != nil {
				return nil, err
			}
			finals[id] = StateFailed
			raise = append(raise, id)
			if handed {
				n := m.notice
				n.State, n.Error = StateFailed, reason
				*ns = append(*ns, n)
			}
		case t.ok == m.parts:
			delivered = append(delivered, id)
			if m.want != 0 {
				deliveredNotify = append(deliveredNotify, id)
				if handed {
					n := m.notice
					n.State = StateDelivered
					*ns = append(*ns, n)
				}
			}
			finals[id] = StateDelivered
		case t.n == m.parts && m.state == StateSubmitting:
			submitted = append(submitted, id)
		}
	}
	if len(submitted) > 0 {
		if _, err := s.txExec(ctx, tx, `UPDATE messages SET state = 'submitted', lease_owner = '', updated_at = $1 WHERE id IN (`+
			inList(2, padded(len(submitted)))+`)`, idArgs([]any{now}, pad(submitted))...); err != nil {
			return nil, err
		}
	}
	if len(delivered) > 0 && s.dialect == postgres {
		// The update and the notices of deliveredNotify in one round trip:
		// the receipt's transaction holds the outcomes lane, and every
		// round trip adds to its latency.
		owner, until := s.noticeLease(now)
		if _, err := s.txExec(ctx, tx, `WITH u AS (UPDATE messages SET state = 'delivered', lease_owner = '', updated_at = $1
			WHERE id IN (`+inList(4, padded(len(delivered)))+`) RETURNING id, want_receipt)
			INSERT INTO notices (message_id, lease_owner, lease_until) SELECT id, $2, $3 FROM u WHERE want_receipt <> 0
			ON CONFLICT (message_id) DO NOTHING`, idArgs([]any{now, owner, until}, pad(delivered))...); err != nil {
			return nil, err
		}
	} else if len(delivered) > 0 {
		if _, err := s.txExec(ctx, tx, `UPDATE messages SET state = 'delivered', lease_owner = '', updated_at = $1 WHERE id IN (`+
			inList(2, padded(len(delivered)))+`)`, idArgs([]any{now}, pad(delivered))...); err != nil {
			return nil, err
		}
		raise = append(raise, deliveredNotify...)
	}
	if err := s.raiseNotices(ctx, tx, raise, now); err != nil {
		return nil, err
	}
	return finals, nil
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

// raiseNotices stores notices for the messages ids: pending, for any
// instance to claim, or, with a notice sink (HandNotices), already leased
// to it until its lease runs out. A message with a notice already keeps
// that one (the notice is read from the message when it is sent).
func (s *Store) raiseNotices(ctx context.Context, tx *sql.Tx, ids []int64, now int64) error {
	owner, until := s.noticeLease(now)
	for len(ids) > 0 {
		n := min(len(ids), 256)
		args := make([]any, 0, 3*padded(n))
		for _, id := range pad(ids[:n]) {
			args = append(args, id, owner, until)
		}
		// Padded like the IN lists, so a few prepared statements serve;
		// a repeated row is a conflict, which does nothing.
		if _, err := s.txExec(ctx, tx, `INSERT INTO notices (message_id, lease_owner, lease_until) VALUES `+valuesList(len(args)/3, 3)+`
			ON CONFLICT (message_id) DO NOTHING`, args...); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// HandNotices makes the notices that receipts raise go straight to sink
// once their transaction committed, leased to owner for lease, instead of
// waiting to be claimed (ClaimNotices still takes them if the lease runs
// out before they are marked done). Call it before the store is used.
func (s *Store) HandNotices(owner string, lease time.Duration, sink func([]Notice)) {
	s.handoff.owner, s.handoff.lease, s.handoff.sink = owner, lease, sink
}

// valuesList renders "($1, $2), ($3, $4)" for rows rows of cols values.
func valuesList(rows, cols int) string {
	var b strings.Builder
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", n)
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}
