package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Messages from phones, accepted together. AcceptInbound runs once per
// message, concurrently, from the SMPP workers; the group loop hands the
// ones that arrive together to acceptInbounds. SQLite runs each one's
// statements in process, one message after the other. PostgreSQL reads
// what the whole batch needs (the numbers' owners, the first copies of
// resends) in one statement and writes the messages, their notices and
// the fragments they were assembled from in another: run one message at a
// time, three round trips each held the new-messages lane, and phones'
// messages reached their users at about 1,400 a second (BENCHMARKS.md).
// The result for each caller is the one it would get if the calls had run
// one after the other, in arrival order.

// inboundOp is one AcceptInbound call.
type inboundOp struct {
	in     *Inbound
	now    int64
	lookup bool // in.RecipientJID was empty: its owner is read in the transaction
	found  bool // out: in.Dest has an owner (always, without lookup)
	local  string
	// dupOf, on PostgreSQL, is the message of the same batch that this one
	// resends: its id is known once the batch is inserted.
	dupOf *inboundOp
}

// checksResend tells whether the op is to be checked for a resend (see
// Inbound.Duplicate).
func (op *inboundOp) checksResend() bool { return op.in.Session != "" && op.in.Ended != nil }

// stored tells whether the op inserts a message.
func (op *inboundOp) stored() bool { return op.found && !op.in.Duplicate }

// acceptInbounds stores the messages of ops in tx, and adds the notices
// for the sink (HandNotices) to ns.
func (s *Store) acceptInbounds(ctx context.Context, tx *sql.Tx, ops []*inboundOp, ns *[]Notice) error {
	for _, op := range ops {
		// Afresh: a batch that failed is run again, one op at a time.
		op.found, op.local, op.dupOf = true, "", nil
		op.in.ID, op.in.Duplicate = 0, false
		if op.lookup {
			op.in.RecipientJID = ""
		}
	}
	var err error
	if s.dialect == postgres {
		err = s.acceptInboundsPG(ctx, tx, ops)
	} else {
		err = s.acceptInboundsSQLite(ctx, tx, ops)
	}
	if err != nil || s.handoff.sink == nil {
		return err
	}
	for _, op := range ops {
		if !op.stored() {
			continue
		}
		in := op.in
		*ns = append(*ns, Notice{ID: in.ID, Direction: In, Route: RouteSMS, State: StateReceived, UserJID: in.RecipientJID,
			UserNumber: in.Dest, PeerNumber: in.Source, PeerLocal: op.local, Body: in.Body, Stored: time.UnixMilli(op.now)})
	}
	return nil
}

// insertInbound inserts a message from a phone, from the form of the number
// the user last wrote to it in: a read of peer_forms by its key, which holds
// only the users who wrote in another form than the international one.
const insertInbound = `INSERT INTO messages
	(direction, route, state, user_jid, user_bare, user_number, peer_number, body, parts, smpp_session, frag_key, created_at, updated_at,
	peer_ton, peer_npi, smsc, peer_local)
	VALUES ('in', 'sms', 'received', $1, $2, $3, $4, $5, 1, $6, $7, $8, $8, $9, $10, $11,
		COALESCE((SELECT local FROM peer_forms WHERE user_bare = $2 AND number = $4), '')) RETURNING id, peer_local`

// acceptInboundsSQLite runs each op's statements in turn (each prepared
// once, in process), then raises the notices of all.
func (s *Store) acceptInboundsSQLite(ctx context.Context, tx *sql.Tx, ops []*inboundOp) error {
	ids := make([]int64, 0, len(ops))
	var now int64 // the notices' lease runs from the latest
	for _, op := range ops {
		in := op.in
		if op.checksResend() {
			id, err := s.resent(ctx, tx, in.Ended, `body = $5`, in.Source, in.Dest, op.now, in.Session, in.Body)
			if err != nil {
				return err
			}
			in.ID, in.Duplicate = id, id != 0
		}
		if op.lookup && !in.Duplicate {
			err := s.txQueryRow(ctx, tx, `SELECT jid FROM bindings WHERE number = $1`, in.Dest).Scan(&in.RecipientJID)
			if errors.Is(err, sql.ErrNoRows) {
				// Not an error for the shared transaction: the other
				// messages in it commit. Its fragments stay, for the
				// caller to drop.
				op.found = false
				continue
			}
			if err != nil {
				return err
			}
		}
		if k := in.FragmentKey; k != nil {
			if _, err := s.txExec(ctx, tx, deleteFragments, k.Source, k.Dest, k.Ref, k.Total); err != nil {
				return err
			}
		}
		if in.Duplicate {
			continue // its parts go all the same
		}
		if err := s.txQueryRow(ctx, tx, insertInbound, inboundArgs(op)...).Scan(&in.ID, &op.local); err != nil {
			return err
		}
		ids = append(ids, in.ID)
		now = max(now, op.now)
	}
	if len(ids) == 0 {
		return nil
	}
	return s.raiseNotices(ctx, tx, ids, now)
}

func inboundArgs(op *inboundOp) []any {
	in := op.in
	return []any{in.RecipientJID, bare(in.RecipientJID), in.Dest, in.Source, in.Body, in.Session, op.fragKey(), op.now, in.SourceTON, in.SourceNPI, in.SMSC}
}

// fragKey is the frag_key of the op's message: "" when it came whole.
func (op *inboundOp) fragKey() string {
	if op.in.FragmentKey == nil {
		return ""
	}
	return op.in.FragmentKey.fragKey()
}

// readInboundsPG reads, for each message $1[k] from $2[k] to $3[k] with
// text $4[k], the owner of $3[k] when $6[k], and, when it came on bind
// $5[k] (not ""), the first 16 messages it may resend (those resent reads)
// stored since $7[k]: one row per candidate, or one with none.
const readInboundsPG = `SELECT v.i, b.jid, m.id, m.smpp_session
	FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::bigint[]) AS v(i, src, dst, body, session, lookup, since)
	LEFT JOIN bindings b ON v.lookup AND b.number = v.dst
	LEFT JOIN LATERAL (SELECT id, smpp_session FROM messages
		WHERE v.session <> '' AND direction = 'in' AND peer_number = v.src AND user_number = v.dst AND created_at >= v.since
			AND smpp_session <> v.session AND smpp_session <> '' AND body = v.body
		ORDER BY id LIMIT 16) m ON true
	ORDER BY v.i, m.id`

// writeInboundsPG inserts $1 messages, their columns in arrays $2…$12
// (inboundColumns), with ids drawn from the table's sequence in array
// order; raises their notices, leased to $13 until $14; and deletes the
// fragments $15…$18 (source, dest, ref, total). It returns the ids drawn,
// and the ids inserted with their peer_local.
const writeInboundsPG = `WITH ids AS MATERIALIZED (
		SELECT array_agg(nextval(pg_get_serial_sequence('messages', 'id'))) AS a FROM generate_series(1, $1)),
	ins AS (INSERT INTO messages
		(id, direction, route, state, user_jid, user_bare, user_number, peer_number, body, parts, smpp_session, frag_key, created_at, updated_at,
		peer_ton, peer_npi, smsc, peer_local)
		SELECT ids.a[v.k], 'in', 'sms', 'received', v.jid, v.bare, v.dst, v.src, v.body, 1, v.session, v.fk, v.at, v.at, v.ton, v.npi, v.smsc,
			COALESCE((SELECT local FROM peer_forms f WHERE f.user_bare = v.bare AND f.number = v.src), '')
		FROM ids, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::smallint[], $11::smallint[], $12::text[])
			WITH ORDINALITY AS v(jid, bare, dst, src, body, session, fk, at, ton, npi, smsc, k)
		RETURNING id, peer_local),
	n AS (INSERT INTO notices (message_id, lease_owner, lease_until) SELECT id, $13, $14 FROM ins),
	f AS (DELETE FROM fragments WHERE (source, dest, ref, total) IN (SELECT * FROM unnest($15::text[], $16::text[], $17::int[], $18::int[])))
	SELECT (SELECT a FROM ids), (SELECT array_agg(id) FROM ins), (SELECT array_agg(peer_local) FROM ins)`

// acceptInboundsPG accepts ops in two statements: readInboundsPG, then
// writeInboundsPG. A resend of a message earlier in the same batch is
// found in memory, as the later call would have found it stored.
func (s *Store) acceptInboundsPG(ctx context.Context, tx *sql.Tx, ops []*inboundOp) error {
	read := false
	for _, op := range ops {
		read = read || op.lookup || op.checksResend()
	}
	// The candidates for each op's resend, and its number's owner, by op.
	cands := make([][]candidate, len(ops))
	owners := make([]sql.NullString, len(ops))
	if read {
		var (
			is                          = make(pq.Int64Array, len(ops))
			srcs, dsts, bodies, session = make(pq.StringArray, len(ops)), make(pq.StringArray, len(ops)), make(pq.StringArray, len(ops)), make(pq.StringArray, len(ops))
			lookups                     = make(pq.BoolArray, len(ops))
			since                       = make(pq.Int64Array, len(ops))
		)
		for i, op := range ops {
			is[i], srcs[i], dsts[i], bodies[i], lookups[i] = int64(i), op.in.Source, op.in.Dest, op.in.Body, op.lookup
			since[i] = op.now - resendWindow.Milliseconds()
			if op.checksResend() {
				session[i] = op.in.Session
			}
		}
		rows, err := s.txQuery(ctx, tx, readInboundsPG, is, srcs, dsts, bodies, session, lookups, since)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				i     int
				owner sql.NullString
				id    sql.NullInt64
				from  sql.NullString
			)
			if err := rows.Scan(&i, &owner, &id, &from); err != nil {
				rows.Close()
				return err
			}
			owners[i] = owner
			if id.Valid {
				cands[i] = append(cands[i], candidate{id: id.Int64, session: from.String})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}

	var (
		w            inboundColumns
		fsrc, fdst   pq.StringArray
		fref, ftotal pq.Int64Array
		stored       []*inboundOp
		now          int64 // the notices' lease runs from the latest
	)
	for i, op := range ops {
		in := op.in
		if op.checksResend() {
			op.resendOf(cands[i], ops[:i])
		}
		if op.lookup && !in.Duplicate {
			if in.RecipientJID, op.found = owners[i].String, owners[i].Valid; !op.found {
				continue // nobody has the number: nothing stored, its fragments kept
			}
		}
		if k := in.FragmentKey; k != nil {
			fsrc, fdst = append(fsrc, k.Source), append(fdst, k.Dest)
			fref, ftotal = append(fref, int64(k.Ref)), append(ftotal, int64(k.Total))
		}
		if in.Duplicate {
			continue
		}
		w.add(op)
		stored = append(stored, op)
		now = max(now, op.now)
	}
	if len(stored) == 0 && len(fsrc) == 0 {
		return nil
	}
	owner, until := s.noticeLease(now)
	var drawn, ids pq.Int64Array
	var locals pq.StringArray
	err := s.txQueryRow(ctx, tx, writeInboundsPG, len(stored),
		w.jid, w.bare, w.dst, w.src, w.body, w.session, w.fk, w.at, w.ton, w.npi, w.smsc,
		owner, until, fsrc, fdst, fref, ftotal).Scan(&drawn, &ids, &locals)
	if err != nil {
		return err
	}
	if len(drawn) != len(stored) || len(ids) != len(stored) || len(locals) != len(stored) {
		return fmt.Errorf("%d ids drawn, %d inserted, for %d messages from phones", len(drawn), len(ids), len(stored))
	}
	local := make(map[int64]string, len(ids))
	for i, id := range ids {
		local[id] = locals[i]
	}
	for k, op := range stored {
		op.in.ID, op.local = drawn[k], local[drawn[k]]
	}
	for _, op := range ops {
		if op.dupOf != nil {
			op.in.ID = op.dupOf.in.ID
		}
	}
	return nil
}

// candidate is a stored message a message from a phone may resend.
type candidate struct {
	id      int64
	session string
}

// resendOf marks op as a resend (see Inbound.Duplicate) of the first of
// cands, stored before the batch and ordered by id, whose bind has ended;
// else, as the 16 of resent would have reached them, of the first of the
// batch's earlier ops that would have been stored with the same phone,
// number and text on another bind, now ended.
func (op *inboundOp) resendOf(cands []candidate, earlier []*inboundOp) {
	in := op.in
	for _, c := range cands {
		if in.Ended(c.session) {
			in.ID, in.Duplicate = c.id, true
			return
		}
	}
	n := len(cands)
	for _, e := range earlier {
		if n >= 16 {
			return
		}
		if !e.stored() || e.in.Source != in.Source || e.in.Dest != in.Dest || e.in.Body != in.Body ||
			e.in.Session == "" || e.in.Session == in.Session {
			continue
		}
		n++
		if in.Ended(e.in.Session) {
			op.dupOf, in.Duplicate = e, true
			return
		}
	}
}

// inboundColumns are the columns of messages from phones, as arrays for
// writeInboundsPG.
type inboundColumns struct {
	jid, bare, dst, src, body, session, fk, smsc pq.StringArray
	at, ton, npi                                 pq.Int64Array
}

// add appends the values of op's message.
func (c *inboundColumns) add(op *inboundOp) {
	in := op.in
	c.jid, c.bare = append(c.jid, in.RecipientJID), append(c.bare, bare(in.RecipientJID))
	c.dst, c.src, c.body = append(c.dst, in.Dest), append(c.src, in.Source), append(c.body, in.Body)
	c.session, c.fk, c.at = append(c.session, in.Session), append(c.fk, op.fragKey()), append(c.at, op.now)
	c.ton, c.npi, c.smsc = append(c.ton, int64(in.SourceTON)), append(c.npi, int64(in.SourceNPI)), append(c.smsc, in.SMSC)
}
