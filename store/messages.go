package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"switchboard/smsgw/dlr"
)

// Message directions, routes and states. A message's state only moves forward:
//
//	out: queued → submitting → submitted → delivered | failed
//	     (submitting goes back to queued for a retry after a temporary error,
//	     or when the instance holding it died: see ClaimOutbound)
//	in:  received → delivered
const (
	Out = "out"
	In  = "in"

	RouteSMS  = "sms"
	RouteXMPP = "xmpp"

	StateQueued     = "queued"
	StateSubmitting = "submitting"
	StateSubmitted  = "submitted"
	StateDelivered  = "delivered"
	StateFailed     = "failed"
	StateReceived   = "received"
)

// inWork is the condition of the index messages_work, word for word: the
// messages not delivered or sent. A read of that index repeats it, for
// SQLite uses a partial index only for a query that has its condition
// among its own (PostgreSQL proves it from the state read).
const inWork = "state NOT IN ('delivered', 'sent')"

// Part states besides the carrier's receipt states (DELIVRD, UNDELIV…).
const (
	PartSubmitted = "submitted"
)

// A notice (a receipt, an error, or an inbound message to deliver) is a
// row in the notices table from when it is raised until it was sent to the
// XMPP side: lease_until 0 while it waits, leased to an instance while that
// one sends it. The messages.notify column is no longer used.

// Outbound is a message from an XMPP user to a phone number.
type Outbound struct {
	ID           int64
	SenderJID    string // full JID the message came from
	SenderNumber string // E.164
	Dest         string // E.164
	StanzaID     string
	WantReceipt  bool
	Body         string
	Parts        int
	Attempts     int       // claims so far, this one included
	ExpiresAt    time.Time // validity: past it, the message fails instead of being sent
	// Done lists the parts that already have an SMSC id, from an earlier
	// claim; they are not submitted again.
	Done map[int]bool

	// For a message relayed over XMPP: the recipient's bare JID, the
	// stanza's children as relayed, and when to fall back to SMS (zero:
	// never). Body is then the text an SMS fallback would carry.
	PeerJID    string
	Extra      string
	FallbackAt time.Time

	// PeerLocal is the localpart of the JID the sender wrote to when it
	// is another form of Dest than Dest itself (12015550123, a national
	// number): the message's receipt or error comes from that JID. ""
	// for Dest itself.
	PeerLocal string
	// SetForm, on a new message, records PeerLocal as the form its
	// sender last wrote to Dest in (see Routing.Forms), or deletes the
	// form recorded when PeerLocal is "", in the message's transaction.
	// The router sets it only on a change, so most messages write nothing
	// more.
	SetForm bool

	// For an SMS to a short code (Dest is not E.164; see ShortCodeWrote):
	// the SMPP type of number and numbering plan to address it with, and
	// the SMSC to send it through ("" the default one). Zero otherwise.
	DestTON, DestNPI byte
	SMSC             string

	// LeaseOwner, when set on a new SMS, stores it already claimed by that
	// instance until LeaseUntil (state submitting, first attempt), for an
	// instance that submits it at once (hand-off); it is claimed again only
	// when that lease runs out.
	LeaseOwner string
	LeaseUntil time.Time
}

// AcceptOutbound stores new messages, state queued, all or none, and sets
// their IDs. The transaction is shared with other writes (group commit).
func (s *Store) AcceptOutbound(ctx context.Context, msgs []*Outbound) error {
	if len(msgs) == 0 {
		return nil
	}
	now := s.ms()
	op := &groupOp{lane: laneNew, fn: func(tx *sql.Tx) error {
		if err := s.insertOutbound(ctx, tx, msgs, now); err != nil {
			return fmt.Errorf("store: accept: %w", err)
		}
		return nil
	}}
	if s.dialect == postgres && len(msgs) <= acceptBatch && !slices.ContainsFunc(msgs, func(m *Outbound) bool { return m.SetForm }) {
		op.alone = func(ctx context.Context) error {
			if err := s.insertOutboundPG(ctx, nil, msgs, now); err != nil {
				return fmt.Errorf("store: accept: %w", err)
			}
			return nil
		}
	}
	return s.grouped(ctx, op)
}

// insertOutbound inserts msgs, sets their ids, and counts those that go as
// SMS in sms_seconds (and sms_user_counts, see CountSMSPerUser). SQLite
// runs a statement per chunk of up to 64 messages (see
// insertOutboundSQLite), and one per count; PostgreSQL
// one statement per acceptBatch messages, which draws their ids from the
// table's sequence into an array, gives row k the array's k-th id, and
// returns the array (one round trip, and no order of returned rows to
// trust).
func (s *Store) insertOutbound(ctx context.Context, tx *sql.Tx, msgs []*Outbound, now int64) error {
	if s.dialect == sqlite {
		// In statements of up to insertOutboundChunk rows (see chunk). A
		// statement a message took 11 % more CPU: 3.9 against 3.5 s for
		// 102,400 messages accepted 512 at a time (BenchmarkAcceptOutbound).
		for rest := msgs; len(rest) > 0; {
			n := chunk(len(rest), insertOutboundChunk)
			if err := s.insertOutboundSQLite(ctx, tx, rest[:n], now); err != nil {
				return err
			}
			rest = rest[n:]
		}
		if n := smsCount(msgs); n > 0 {
			if _, err := s.txExec(ctx, tx, countSMS, now/1000, n); err != nil {
				return err
			}
		}
		if err := s.countUsers(ctx, tx, s.userSMS(msgs, now)); err != nil {
			return err
		}
		return s.setForms(ctx, tx, msgs)
	}
	for start := 0; start < len(msgs); start += acceptBatch {
		if err := s.insertOutboundPG(ctx, tx, msgs[start:min(start+acceptBatch, len(msgs))], now); err != nil {
			return err
		}
	}
	return s.setForms(ctx, tx, msgs)
}

// insertOutboundChunk is the most messages one SQLite INSERT takes.
const insertOutboundChunk = 64

// insertOutboundStmts holds insertOutboundSQLite's statement for each
// power of two rows up to insertOutboundChunk: row r takes outboundArgs'
// values in order ($1…$23 after the 23·r of the rows before it, the id nil
// for SQLite to assign), created_at's given again as updated_at.
var insertOutboundStmts = func() map[int]string {
	m := make(map[int]string)
	for n := 1; n <= insertOutboundChunk; n <<= 1 {
		var b strings.Builder
		b.WriteString(insertOutboundSQL + ` VALUES `)
		for r := range n {
			if r > 0 {
				b.WriteString(", ")
			}
			b.WriteString(`('out'`)
			for c := range outboundCols {
				k := r*outboundCols + c + 1
				fmt.Fprintf(&b, ", $%d", k)
				if c == outboundCreated {
					fmt.Fprintf(&b, ", $%d", k) // updated_at: the same
				}
			}
			b.WriteString(`)`)
		}
		m[n] = b.String()
	}
	return m
}()

// insertOutboundSQLite inserts msgs (a power of two of them, at most
// insertOutboundChunk) in one statement and sets their ids. SQLite makes
// the rows of a VALUES list in order, each id one above the last: with
// AUTOINCREMENT a new row's id is one more than the largest the table has
// had, and one statement of the single writer makes them all. So the ids
// are the last one inserted and those just below it, read without a
// RETURNING clause (whose rows SQLite gathers in a table of their own and
// database/sql hands over one by one: about 3 % of a message's CPU at full
// speed, 18 alternating pairs in docs/benchmarks/sessions.md, nineteenth session).
func (s *Store) insertOutboundSQLite(ctx context.Context, tx *sql.Tx, msgs []*Outbound, now int64) error {
	q, ok := insertOutboundStmts[len(msgs)]
	if !ok {
		return fmt.Errorf("store: no statement for %d messages", len(msgs))
	}
	args := make([]any, 0, len(msgs)*outboundCols)
	for _, m := range msgs {
		args = outboundArgs(args, m, nil, now)
	}
	res, err := s.txExec(ctx, tx, q, args...)
	if err != nil {
		return err
	}
	last, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != int64(len(msgs)) {
		return fmt.Errorf("store: %d messages inserted of %d", n, len(msgs))
	}
	for i, m := range msgs {
		m.ID = last - int64(len(msgs)-1-i)
	}
	return nil
}

// setForms records the forms of the messages marked SetForm, in order (a
// later message's form wins), in peer_forms: see Outbound.SetForm.
func (s *Store) setForms(ctx context.Context, tx *sql.Tx, msgs []*Outbound) error {
	for _, m := range msgs {
		if !m.SetForm {
			continue
		}
		// The user's binding is marked once they have a form recorded
		// (bindings.forms), for RoutingOf.
		user := bare(m.SenderJID)
		if m.PeerLocal != "" {
			if _, err := s.txExec(ctx, tx, `INSERT INTO peer_forms (user_bare, number, local) VALUES ($1, $2, $3)
				ON CONFLICT (user_bare, number) DO UPDATE SET local = excluded.local`, user, m.Dest, m.PeerLocal); err != nil {
				return err
			}
			if _, err := s.txExec(ctx, tx, `UPDATE bindings SET forms = 1 WHERE jid = $1 AND forms = 0`, user); err != nil {
				return err
			}
			continue
		}
		// The mark stays: cleared when the last form goes, it could be
		// cleared, on PostgreSQL, beside another instance's new form.
		if _, err := s.txExec(ctx, tx, `DELETE FROM peer_forms WHERE user_bare = $1 AND number = $2`, user, m.Dest); err != nil {
			return err
		}
	}
	return nil
}

// rowsQuerier is a transaction or a database handle.
type rowsQuerier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// insertOutboundPG inserts up to acceptBatch messages in one statement (see
// insertOutbound), in a transaction or, alone, on the database.
func (s *Store) insertOutboundPG(ctx context.Context, tx *sql.Tx, msgs []*Outbound, now int64) error {
	args := outboundColumns(msgs, now)
	count := ""
	if n := smsCount(msgs); n > 0 {
		off := len(args)
		count = `, sms AS (` + renumber(countSMS, func(k int) string { return "$" + strconv.Itoa(k+off) }) + `)`
		args = append(args, now/1000, n)
	}
	if cs := s.userSMS(msgs, now); len(cs) > 0 {
		users, ats, ns := make(pq.StringArray, len(cs)), make(pq.Int64Array, len(cs)), make(pq.Int64Array, len(cs))
		for i, c := range cs {
			users[i], ats[i], ns[i] = c.user, c.at, int64(c.n)
		}
		n := len(args)
		count += fmt.Sprintf(`, users AS (INSERT INTO sms_user_counts (user_bare, at, n) SELECT * FROM unnest($%d::text[], $%d::bigint[], $%d::bigint[]))`,
			n+1, n+2, n+3)
		args = append(args, users, ats, ns)
	}
	var ids pq.Int64Array
	q := `WITH ids AS MATERIALIZED (
			SELECT array_agg(nextval(pg_get_serial_sequence('messages', 'id'))) AS a FROM generate_series(1, $1)),
		ins AS (` + insertOutboundSQL + ` ` + outboundUnnest + `)` + count + `
		SELECT a FROM ids`
	row := s.db.QueryRowContext
	if tx != nil {
		row = tx.QueryRowContext
	}
	err := row(ctx, q, args...).Scan(&ids)
	if err != nil {
		return err
	}
	if len(ids) != len(msgs) {
		return fmt.Errorf("%d ids for %d messages", len(ids), len(msgs))
	}
	for i, m := range msgs {
		m.ID = ids[i]
	}
	return nil
}

const insertOutboundSQL = `INSERT INTO messages
		(direction, route, state, user_jid, user_bare, user_number, peer_number, stanza_id, want_receipt, body, parts, expires_at, created_at, updated_at,
		peer_jid, extra, next_attempt_at, lease_owner, lease_until, attempts, peer_ton, peer_npi, smsc, peer_local, id)`

// outboundCols is the number of arguments outboundArgs adds per message.
const outboundCols = 23

// outboundUnnest selects the rows of insertOutboundPG from outboundColumns'
// arrays ($2…$23), one per column, each message's id from the ids drawn.
// One statement text for every batch size: a VALUES row per message made
// each size a statement of its own, parsed and planned anew every time,
// in time growing with its thousands of arguments.
var outboundUnnest = func() string {
	var sel, arrays, names strings.Builder
	for c := range outboundCols - 1 {
		typ := "bigint"
		if outboundText[c] {
			typ = "text"
		}
		fmt.Fprintf(&arrays, ", $%d::%s[]", c+2, typ)
		fmt.Fprintf(&names, ", c%d", c)
		fmt.Fprintf(&sel, ", r.c%d", c)
		if c == outboundCreated {
			sel.WriteString(", r.c" + strconv.Itoa(c)) // updated_at: the same
		}
	}
	return `SELECT 'out'` + sel.String() + `, ids.a[r.n] FROM ids, unnest(` + arrays.String()[2:] + `) WITH ORDINALITY AS r(` +
		names.String()[2:] + `, n)`
}()

// outboundText tells outboundArgs' text columns from its whole numbers
// (the id, last, left out), by the types it gives; outboundCreated is
// created_at's index.
var outboundText = func() (text [outboundCols - 1]bool) {
	for c, v := range outboundArgs(nil, &Outbound{}, nil, 0)[:outboundCols-1] {
		_, text[c] = v.(string)
	}
	return text
}()

const outboundCreated = 11

// outboundColumns returns the arguments of insertOutboundPG: the number of
// messages, then an array per column of outboundArgs (the id left out).
func outboundColumns(msgs []*Outbound, now int64) []any {
	var (
		texts [outboundCols - 1][]string
		nums  [outboundCols - 1][]int64
	)
	row := make([]any, 0, outboundCols)
	for _, m := range msgs {
		row = outboundArgs(row[:0], m, nil, now)
		for c, v := range row[:outboundCols-1] {
			switch v := v.(type) {
			case string:
				texts[c] = append(texts[c], v)
			case int:
				nums[c] = append(nums[c], int64(v))
			case int64:
				nums[c] = append(nums[c], v)
			case byte:
				nums[c] = append(nums[c], int64(v))
			default:
				panic(fmt.Sprintf("store: outbound column %d of type %T", c, v))
			}
		}
	}
	args := make([]any, 0, outboundCols)
	args = append(args, len(msgs))
	for c := range outboundCols - 1 {
		if outboundText[c] {
			args = append(args, pq.StringArray(texts[c]))
		} else {
			args = append(args, pq.Int64Array(nums[c]))
		}
	}
	return args
}

// outboundArgs appends the arguments of m's row; id nil lets SQLite assign it.
func outboundArgs(args []any, m *Outbound, id any, now int64) []any {
	var exp int64
	if !m.ExpiresAt.IsZero() {
		exp = m.ExpiresAt.UnixMilli()
	}
	route, state, next := RouteSMS, StateQueued, int64(0)
	var (
		owner      string
		leaseUntil int64
		attempts   int
	)
	switch {
	case m.PeerJID != "":
		route, state = RouteXMPP, StateSent
		if !m.FallbackAt.IsZero() {
			state, next = StateRelayed, m.FallbackAt.UnixMilli()
		}
	case m.LeaseOwner != "":
		state, owner, leaseUntil, attempts = StateSubmitting, m.LeaseOwner, m.LeaseUntil.UnixMilli(), 1
		next = leaseUntil // see claimable
		m.Attempts = 1
	}
	return append(args, route, state, m.SenderJID, bare(m.SenderJID), m.SenderNumber, m.Dest, m.StanzaID, b2i(m.WantReceipt), m.Body, m.Parts, exp, now,
		m.PeerJID, m.Extra, next, owner, leaseUntil, attempts, m.DestTON, m.DestNPI, m.SMSC, m.PeerLocal, id)
}

// acceptBatch bounds the rows of one INSERT (PostgreSQL takes at most
// 65,535 arguments).
const acceptBatch = 1000

// claimable selects up to $2 messages ClaimOutbound may claim at $1 (ms):
// queued ones whose retry time has come, and submitting ones whose lease
// ran out (their instance died). Each state is read from messages_work
// (whose condition each read repeats, for SQLite) as a range of
// next_attempt_at, which while a message is submitting holds the end of
// its lease: up to $3 of each, the earliest due first; the query around
// them checks what it takes against the rows themselves (and, on
// PostgreSQL, locks them, skipping those another instance holds: $3 leaves
// room for them). A submitting row written before next_attempt_at held
// its lease has there 0 or its earlier retry time, never more than the
// lease's end, so it is read too, and taken once lease_until has passed.
//
// As one OR of the two states, PostgreSQL read them with a bitmap scan of
// every entry the index held for them, dead ones included: every message
// passes through submitting, and until a vacuum removed them each claim
// (every second, in each instance) visited the row of each message sent
// since: 7.7 ms a claim on average, 42 at most, in a paced run of 1,000
// msg/s (docs/benchmarks/sessions.md, twenty-fifth session). Read as ranges,
// those of leases still running are not read at all, and a plain index
// scan marks the dead entries it meets, which the next claims skip.
//
// PostgreSQL reads the ids as an array (an InitPlan, run once, then the
// rows by primary key); SQLite as a list it builds from the subquery. The
// check of the rows is a CASE, which no index serves: as an OR of the two
// states PostgreSQL read the rows by that OR again, with the bitmap scan.
func claimableQuery(in, end string) string {
	return `SELECT id FROM messages WHERE id ` + in + `
		SELECT id FROM (SELECT id FROM messages WHERE ` + inWork + ` AND state = 'queued' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $3) q
		UNION ALL
		SELECT id FROM (SELECT id FROM messages WHERE ` + inWork + ` AND state = 'submitting' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $3) s` + end + `
	AND direction = 'out' AND CASE state WHEN 'queued' THEN next_attempt_at <= $1 WHEN 'submitting' THEN lease_until < $1 ELSE false END
	ORDER BY id LIMIT $2`
}

var (
	claimableSQLite = claimableQuery("IN (", ")")
	claimablePG     = claimableQuery("= ANY(ARRAY(", "))")
)

// claimRoom times the claim's limit is how many due messages of each state
// claimable reads, so that rows other instances hold locked leave enough.
const claimRoom = 4

// claimable is the dialect's claimable query.
func (s *Store) claimable() string {
	if s.dialect == postgres {
		return claimablePG
	}
	return claimableSQLite
}

// ClaimOutbound takes up to limit messages that are due for submission and
// leases them to owner for lease. Due are queued messages whose retry time has
// come, and messages whose lease ran out while submitting (their instance died:
// parts without an SMSC id are submitted again, so a part whose submit_sm the
// SMSC took just before the crash can be sent twice — at-least-once, bounded
// by the caller's attempt limit). Several instances never claim the same message.
func (s *Store) ClaimOutbound(ctx context.Context, owner string, limit int, lease time.Duration) ([]*Outbound, error) {
	now := s.ms()
	var out []*Outbound
	err := s.tx(ctx, func(tx *sql.Tx) error {
		q := s.claimable()
		if s.dialect == postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		ids, err := queryIDs(ctx, tx, q, now, limit, claimRoom*limit)
		if err != nil || len(ids) == 0 {
			return err
		}
		args := idArgs([]any{owner, now + lease.Milliseconds(), now}, pad(ids))
		rows, err := s.txQuery(ctx, tx, `UPDATE messages SET state = 'submitting', lease_owner = $1, lease_until = $2, next_attempt_at = $2,
			attempts = attempts + 1, updated_at = $3 WHERE id IN (`+inList(4, len(args)-3)+`)
			RETURNING id, user_jid, user_number, peer_number, stanza_id, want_receipt, body, parts, attempts, expires_at, peer_ton, peer_npi, smsc`, args...)
		if err != nil {
			return err
		}
		byID := make(map[int64]*Outbound, len(ids))
		for rows.Next() {
			var (
				m        Outbound
				want     int
				exp      int64
				ton, npi int
			)
			if err := rows.Scan(&m.ID, &m.SenderJID, &m.SenderNumber, &m.Dest, &m.StanzaID, &want, &m.Body, &m.Parts, &m.Attempts, &exp,
				&ton, &npi, &m.SMSC); err != nil {
				rows.Close()
				return err
			}
			m.WantReceipt, m.DestTON, m.DestNPI = want != 0, byte(ton), byte(npi)
			if exp != 0 {
				m.ExpiresAt = time.UnixMilli(exp)
			}
			out = append(out, &m)
			byID[m.ID] = &m
		}
		if err := rows.Close(); err != nil {
			return err
		}
		// Parts that already have an SMSC id (from an earlier claim).
		prow, err := s.txQuery(ctx, tx, `SELECT message_id, seq FROM parts WHERE message_id IN (`+inList(1, len(args)-3)+`)`, args[3:]...)
		if err != nil {
			return err
		}
		defer prow.Close()
		for prow.Next() {
			var (
				id  int64
				seq int
			)
			if err := prow.Scan(&id, &seq); err != nil {
				return err
			}
			if m := byID[id]; m != nil {
				if m.Done == nil {
					m.Done = make(map[int]bool)
				}
				m.Done[seq] = true
			}
		}
		return prow.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim outbound: %w", err)
	}
	return out, nil
}

// PartSubmitted records the SMSC id of a part (forms are the id's comparable
// forms, canonical first; see package dlr). A receipt that arrived before the
// submit_sm_resp is applied now. When every part has an id the message becomes
// submitted; final reports whether the message reached a final state.
//
// smsc names the SMSC (link) that took the part: ids are compared only
// within one SMSC. Calls made at the same time share a transaction and its
// statements (see applyOutcomes).
func (s *Store) PartSubmitted(ctx context.Context, msgID int64, seq int, smsc string, forms []string) (final bool, err error) {
	if len(forms) == 0 {
		return false, fmt.Errorf("%w: part submitted without an SMSC id", ErrInvalid)
	}
	op := &partOp{msgID: msgID, seq: seq, forms: scoped(smsc, forms)}
	if err := s.grouped(ctx, &groupOp{part: op}); err != nil {
		return false, fmt.Errorf("store: part submitted: %w", err)
	}
	return op.final, nil
}

// earlySkew is how much older than the claim of its message an early
// receipt may be: the clocks of instances sharing a database differ.
const earlySkew = time.Minute

// ReceiptResult says what a delivery receipt did.
type ReceiptResult struct {
	Matched bool  // a part with that SMSC id was found (else it was kept as early)
	Final   bool  // the message reached a final state
	Message int64 // the message the part belongs to, when matched
	// State is the message's state when Final: StateDelivered or StateFailed.
	State string
	// SubmittedAt is when the part's submit_sm_resp was recorded, for a
	// receipt that settled a part waiting for one; zero otherwise.
	SubmittedAt time.Time
	// Unclaimed is set when Final raised a notice that waits to be
	// claimed: there is no HandNotices sink to hand it to.
	Unclaimed bool
}

// Receipt applies a carrier receipt from SMSC smsc to the part whose SMSC id
// is one of forms. state is the receipt's stat (DELIVRD, UNDELIV…); only
// states that settle a message (dlr.State.Settles) are recorded: others
// change nothing. A receipt for an id not seen yet is kept, to be applied
// when the submit_sm_resp naming it is recorded.
//
// A part's final state is final (SMPP 3.4 §5.2.28): a DELIVRD after a
// failure changes nothing, for SMSCs reuse ids (see applyOutcomes).
func (s *Store) Receipt(ctx context.Context, smsc string, forms []string, state, errText string) (ReceiptResult, error) {
	if len(forms) == 0 {
		return ReceiptResult{}, fmt.Errorf("%w: receipt without an SMSC id", ErrInvalid)
	}
	if !dlr.State(state).Settles() {
		// Recorded, it would take the part out of waiting, and the receipt
		// that decides it would be kept as early, never applied.
		return ReceiptResult{}, nil
	}
	op := &receiptOp{forms: scoped(smsc, forms), smsc: smsc, raw: forms, state: state, errText: errText}
	if err := s.grouped(ctx, &groupOp{rcpt: op}); err != nil {
		return ReceiptResult{}, fmt.Errorf("store: receipt: %w", err)
	}
	return op.res, nil
}

// scoped qualifies SMSC ids with the name of the SMSC that gave them (ids
// are unique only per SMSC). The unnamed SMSC's ids stay as they are.
func scoped(smsc string, forms []string) []string {
	if smsc == "" {
		return forms
	}
	out := make([]string, len(forms))
	for i, f := range forms {
		out[i] = smsc + "/" + f
	}
	return out
}

// lockIDs serialises the transactions that record an SMSC id and a receipt
// for it. Without it, on PostgreSQL, a receipt racing its submit_sm_resp could
// find no part while the part's transaction finds no early receipt, and the
// receipt would never be applied. Both sides lock every form of their id, in
// one global order; they share at least the form under which they match.
// SQLite runs one transaction at a time and needs nothing.
func (s *Store) lockIDs(ctx context.Context, tx *sql.Tx, forms []string) error {
	if s.dialect != postgres {
		return nil
	}
	keys := make([]int64, len(forms))
	for i, f := range forms {
		h := fnv.New64a()
		h.Write([]byte(f))
		keys[i] = int64(h.Sum64())
	}
	slices.Sort(keys)
	// unnest yields the keys in array order, so the locks are taken in it.
	_, err := s.txExec(ctx, tx, `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`, pq.Array(slices.Compact(keys)))
	return err
}

// Retry puts a claimed message back in the queue until at, noting why.
// With refund, the claim does not count as an attempt (nothing was sent).
func (s *Store) Retry(ctx context.Context, msgID int64, at time.Time, reason string, refund bool) error {
	_, err := s.db.ExecContext(ctx, `UPDATE messages SET state = 'queued', next_attempt_at = $1, error = $2, lease_owner = '', lease_until = 0,
		attempts = attempts - $3, updated_at = $4 WHERE id = $5 AND state = 'submitting'`, at.UnixMilli(), reason, b2i(refund), s.ms(), msgID)
	if err != nil {
		return fmt.Errorf("store: retry: %w", err)
	}
	return nil
}

// Replan records that message msgID, claimed by owner, now takes parts
// parts: its sender's SMS gateway planned it again before submitting any
// of them (the SMSCs for its destination write another alphabet than
// when it was accepted). The count decides when every part has an SMSC
// id. It reports false, changing nothing, when the message is no longer
// owner's to submit or one of its parts has an SMSC id.
func (s *Store) Replan(ctx context.Context, msgID int64, owner string, parts int) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE messages SET parts = $1, updated_at = $2
		WHERE id = $3 AND state = 'submitting' AND lease_owner = $4 AND NOT EXISTS (SELECT 1 FROM parts WHERE message_id = $5)`,
		parts, s.ms(), msgID, owner, msgID)
	if err != nil {
		return false, fmt.Errorf("store: replan: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: replan: %w", err)
	}
	return n == 1, nil
}

// Fail ends a message as failed and raises a notice to its sender, for
// any instance to claim.
func (s *Store) Fail(ctx context.Context, msgID int64, reason string) error {
	return s.FailWith(ctx, msgID, reason, "")
}

// FailWith is Fail with the XMPP stanza error condition the failure calls
// for ("" the default, recipient-unavailable; see Notice.ErrorCondition).
func (s *Store) FailWith(ctx context.Context, msgID int64, reason, condition string) error {
	if _, err := s.failWhere(ctx, msgID, reason, condition, `state NOT IN ('delivered', 'failed')`); err != nil {
		return fmt.Errorf("store: fail: %w", err)
	}
	return nil
}

// RefuseInbound records that user's server refused message id from a
// phone (the user blocked the number, or has gone): failed, with reason,
// and its text dropped, so that the archive (which leaves out messages
// without a body) does not give back what the user refused. It reports
// whether id was such a message of user's.
func (s *Store) RefuseInbound(ctx context.Context, id int64, user, reason string) (bool, error) {
	refused := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, `UPDATE messages SET state = 'failed', error = $1, body = '', updated_at = $2
			WHERE id = $3 AND direction = 'in' AND user_bare = $4 AND state <> 'failed'`, reason, s.ms(), id, user)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		refused = true
		_, err = s.txExec(ctx, tx, `DELETE FROM notices WHERE message_id = $1`, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: refuse inbound: %w", err)
	}
	return refused, nil
}

// RaiseNotices raises anew the notices of messages from users that have
// their outcome (delivered or failed), for a client that sent one again
// after its outcome went out, unseen; those still on their way are left,
// their outcome to come. It returns how many it raised.
func (s *Store) RaiseNotices(ctx context.Context, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	in, args := s.idsIn("id", 1, ids)
	res, err := s.db.ExecContext(ctx, `INSERT INTO notices (message_id) SELECT id FROM messages
		WHERE direction = 'out' AND state IN ('delivered', 'failed') AND `+in+` ON CONFLICT (message_id) DO NOTHING`, args...)
	if err != nil {
		return 0, fmt.Errorf("store: raise notices: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Withdraw ends as failed, with reason and no notice, messages from users
// stored after their senders were told they were not (a store that
// answered only after the shutdown's wait: see router.RefuseUnstored), so
// that they are neither sent nor answered again. Those already delivered
// or failed are left.
func (s *Store) Withdraw(ctx context.Context, ids []int64, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	in, args := s.idsIn("id", 3, ids)
	_, err := s.db.ExecContext(ctx, `UPDATE messages SET state = 'failed', error = $1, lease_owner = '', next_attempt_at = 0, updated_at = $2
		WHERE direction = 'out' AND state NOT IN ('delivered', 'failed') AND `+in, append([]any{reason, s.ms()}, args...)...)
	if err != nil {
		return fmt.Errorf("store: withdraw: %w", err)
	}
	return nil
}

// failWhere ends message id as failed with reason and the stanza error
// condition condition ("" the default), if its row meets where (SQL), and
// raises a notice to its sender for any instance to claim, in one
// transaction. It reports whether the message met where.
func (s *Store) failWhere(ctx context.Context, id int64, reason, condition, where string) (bool, error) {
	failed := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, `UPDATE messages SET state = 'failed', error = $1, error_condition = $4, lease_owner = '', next_attempt_at = 0, updated_at = $2
			WHERE id = $3 AND `+where, reason, s.ms(), id, condition)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		failed = true
		_, err = s.txExec(ctx, tx, `INSERT INTO notices (message_id) VALUES ($1) ON CONFLICT (message_id) DO NOTHING`, id)
		return err
	})
	return failed, err
}

// Inbound is a message from a phone to an XMPP user.
type Inbound struct {
	ID           int64
	Source       string // E.164 of the phone, or its name (a short code, an alphanumeric sender)
	Dest         string // E.164 of the user's number
	RecipientJID string // bare JID bound to Dest
	Body         string
	ReceivedAt   time.Time
	FragmentKey  *FragmentKey // set when assembled from fragments, which are deleted with the insert
	// SourceTON and SourceNPI are the SMPP type of number and numbering
	// plan the SMSC gave Source, and SMSC names the SMSC that carried the
	// message ("" the default one): an answer to a short code goes back
	// the same way (see ShortCodeWrote).
	SourceTON, SourceNPI byte
	SMSC                 string
	// Session names the SMPP bind that carried it (instance and bind); ""
	// when unknown. Ended tells whether the bind a session names is down
	// (it may have lost responses); nil checks nothing. See Duplicate.
	Session string
	Ended   func(session string) bool

	// Duplicate is set by AcceptInbound when the message is a resend of
	// one stored within resendWindow from the same phone to the same
	// number with the same text, that came on another bind, now down: the
	// SMSC never got the first response (a stall, a dropped connection)
	// and sent it again after binding anew. Nothing is stored; ID is the
	// first one's. The same text on a bind still up is a person writing
	// it again, and is stored.
	Duplicate bool

	// Handed is set by AcceptInbound when the message's notice went to the
	// HandNotices sink, leased, rather than waiting to be claimed.
	Handed bool
}

// AcceptInbound stores a message from a phone, raising a notice to deliver
// it: handed to the HandNotices sink once committed, or else left to be
// claimed. When in.FragmentKey is set, the fragments it was assembled from
// are deleted in the same transaction. When in.RecipientJID is empty, the
// owner of in.Dest is looked up in the same transaction (and set), so the
// message cannot go to a number's previous owner; it returns ErrNotFound,
// storing nothing, when the number has none.
func (s *Store) AcceptInbound(ctx context.Context, in *Inbound) error {
	op := &inboundOp{in: in, now: s.ms(), lookup: in.RecipientJID == ""}
	if err := s.grouped(ctx, &groupOp{lane: laneNew, in: op}); err != nil {
		return fmt.Errorf("store: accept inbound: %w", err)
	}
	if !op.found {
		return ErrNotFound
	}
	in.Handed = s.handoff.sink != nil && !in.Duplicate
	return nil
}

// ShortCode is how a short code that wrote to a user was addressed.
type ShortCode struct {
	TON, NPI byte   // the SMPP type of number and numbering plan its SMSC gave it
	SMSC     string // the SMSC that carried it; "" the default one
}

// shortCodeWrote reads the latest message from short code $1 to number
// $2 of user $4 since $3 (ms): a range of messages_from_phone, whose
// condition it repeats.
const shortCodeWrote = `SELECT peer_ton, peer_npi, smsc FROM messages
	WHERE direction = 'in' AND peer_number = $1 AND user_number = $2 AND created_at >= $3 AND user_bare = $4
	ORDER BY created_at DESC LIMIT 1`

// ShortCodeWrote tells how short code code was addressed in its latest
// message to user (a bare JID) at number, the user's number, since since;
// ErrNotFound when it sent none. A message the user got at a number they
// had before, or that a number's previous holder got, does not count.
func (s *Store) ShortCodeWrote(ctx context.Context, user, number, code string, since time.Time) (ShortCode, error) {
	var (
		sc       ShortCode
		ton, npi int
	)
	err := s.queryRow(ctx, shortCodeWrote, code, number, since.UnixMilli(), user).Scan(&ton, &npi, &sc.SMSC)
	if errors.Is(err, sql.ErrNoRows) {
		return ShortCode{}, ErrNotFound
	}
	if err != nil {
		return ShortCode{}, fmt.Errorf("store: short code: %w", err)
	}
	sc.TON, sc.NPI = byte(ton), byte(npi)
	return sc, nil
}

// resendWindow is how far back AcceptInbound looks for the first copy of a
// message an SMSC sent again after a new bind.
const resendWindow = 10 * time.Minute

// resent returns the id of a message from phone source to number dest,
// stored within resendWindow before now from a bind other than session
// that has ended, and matching cond (on $5 and on, args); 0 if there is
// none. Of several, the first (the lowest id) among the first 64 found.
//
// The statement has no ORDER BY: with one, SQLite marked it as depending
// on its bound values, and go-sqlite3, which clears the bindings before
// each use, made SQLite prepare it again on every message from a phone
// (a third of the CPU of taking them in; docs/benchmarks/sessions.md, twentieth
// session). More than one candidate is rare: one phone's same text, from
// binds since gone, within minutes.
func (s *Store) resent(ctx context.Context, tx *sql.Tx, ended func(string) bool, cond, source, dest string, now int64, session string, args ...any) (int64, error) {
	rows, err := s.txQuery(ctx, tx, `SELECT id, smpp_session FROM messages WHERE direction = 'in' AND peer_number = $1 AND user_number = $2
		AND created_at >= $3 AND smpp_session <> $4 AND smpp_session <> '' AND `+cond+` LIMIT 64`,
		append([]any{source, dest, now - resendWindow.Milliseconds(), session}, args...)...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var first int64
	for rows.Next() {
		var (
			id   int64
			from string
		)
		if err := rows.Scan(&id, &from); err != nil {
			return 0, err
		}
		if (first == 0 || id < first) && ended(from) {
			first = id
		}
	}
	return first, rows.Err()
}

// Notice is something to tell the XMPP side: an outbound message's outcome
// (a receipt or an error for its sender), or an inbound message to deliver.
type Notice struct {
	ID         int64
	Direction  string // Out or In
	Route      string // RouteSMS or RouteXMPP
	State      string
	UserJID    string // out: the sender's full JID; in: the recipient's bare JID
	UserNumber string
	PeerNumber string
	// PeerLocal is the localpart of the JID the notice comes from when
	// it is not PeerNumber's: the form of the number the user wrote the
	// message to, or, for a message from a phone, last wrote to it in.
	PeerLocal   string
	StanzaID    string
	WantReceipt bool
	Body        string
	Error       string
	// ErrorCondition is the XMPP stanza error condition the failure calls
	// for (RFC 6120 §8.3.3), as FailRelay recorded it; "" the default.
	ErrorCondition string
	// Stored is when the message was stored: for a message from a phone,
	// when it came from the SMSC.
	Stored time.Time
}

// claimableNotices selects the notices waiting (lease_until 0) or whose
// lease ran out before $1, a range of the index notices_due.
const claimableNotices = `SELECT message_id FROM notices WHERE lease_until < $1`

// ClaimNotices leases up to limit pending notices to owner, oldest first. A
// notice whose lease ran out (its instance died before sending it) is
// claimed again.
func (s *Store) ClaimNotices(ctx context.Context, owner string, limit int, lease time.Duration) ([]Notice, error) {
	now := s.ms()
	// Most calls find nothing: look before taking the write lock (SQLite)
	// or opening a transaction.
	var pending int
	err := s.queryRow(ctx, `SELECT count(*) FROM (`+claimableNotices+` LIMIT 1) a`, now).Scan(&pending)
	if err != nil || pending == 0 {
		if err != nil {
			err = fmt.Errorf("store: claim notices: %w", err)
		}
		return nil, err
	}
	var out []Notice
	err = s.tx(ctx, func(tx *sql.Tx) error {
		q := claimableNotices + ` ORDER BY message_id LIMIT $2`
		if s.dialect == postgres {
			q += ` FOR UPDATE SKIP LOCKED`
		}
		ids, err := queryIDs(ctx, tx, q, now, limit)
		if err != nil || len(ids) == 0 {
			return err
		}
		args := idArgs([]any{owner, now + lease.Milliseconds()}, pad(ids))
		if _, err := s.txExec(ctx, tx, `UPDATE notices SET lease_owner = $1, lease_until = $2 WHERE message_id IN (`+inList(3, len(args)-2)+`)`,
			args...); err != nil {
			return err
		}
		rows, err := s.txQuery(ctx, tx, `SELECT id, direction, route, state, user_jid, user_number, peer_number, peer_local, stanza_id, want_receipt, body, error, error_condition, created_at
			FROM messages WHERE id IN (`+inList(1, len(args)-2)+`) ORDER BY id`, args[2:]...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				n       Notice
				want    int
				created int64
			)
			if err := rows.Scan(&n.ID, &n.Direction, &n.Route, &n.State, &n.UserJID, &n.UserNumber, &n.PeerNumber, &n.PeerLocal, &n.StanzaID, &want, &n.Body, &n.Error, &n.ErrorCondition, &created); err != nil {
				return err
			}
			n.WantReceipt, n.Stored = want != 0, time.UnixMilli(created)
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim notices: %w", err)
	}
	return out, nil
}

// NoticesDone records that notices were handed to the XMPP server. Inbound
// messages become delivered.
func (s *Store) NoticesDone(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	// Shares a group commit with the other writes of the moment, waiting
	// for them a little if there are none (the notices stay leased
	// meanwhile).
	err := s.grouped(ctx, &groupOp{lane: laneNoticesDone, lazy: true, noticed: ids, fn: func(tx *sql.Tx) error {
		w := s.noticesDone(ids)
		return s.flush(ctx, tx, &w)
	}})
	if err != nil {
		return fmt.Errorf("store: notices done: %w", err)
	}
	return nil
}

// noticesDone is the writes of NoticesDone for ids.
func (s *Store) noticesDone(ids []int64) writes {
	var w writes
	in, args := s.idsIn("message_id", 1, ids)
	w.add(`DELETE FROM notices WHERE `+in, args...)
	// Finds the messages by id and writes only the inbound ones.
	in, args = s.idsIn("id", 2, ids)
	w.add(`UPDATE messages SET state = 'delivered', updated_at = $1
		WHERE direction = 'in' AND state = 'received' AND `+in, append([]any{s.ms()}, args...)...)
	return w
}

// endReceiptWaits ends, at $1 (ms), up to $3 submitted messages that
// began waiting for their receipts before $2 (ms): a range of
// messages_work.
const endReceiptWaits = `UPDATE messages SET state = 'sent', next_attempt_at = 0, updated_at = $1
	WHERE state = 'submitted' AND id IN (SELECT id FROM messages WHERE ` + inWork + ` AND state = 'submitted' AND next_attempt_at > 0 AND next_attempt_at < $2 LIMIT $3)`

// EndReceiptWaits ends as sent the messages submitted before cutoff whose
// receipts never came (a carrier may send none, or lose it): their delivery
// is not confirmed, and their sender is told nothing more. A receipt that
// comes later still settles one. It returns how many it ended.
func (s *Store) EndReceiptWaits(ctx context.Context, cutoff time.Time) (int64, error) {
	// The range of messages_work holds only the submitted ones due. The
	// state is checked again outside: PostgreSQL re-reads only the outer
	// condition of a row a receipt settled meanwhile.
	n, err := inBatches(ctx, s.execBatch(ctx, endReceiptWaits, s.ms(), cutoff.UnixMilli()))
	if err != nil {
		return n, fmt.Errorf("store: end receipt waits: %w", err)
	}
	return n, nil
}

// MessageState returns a message's state and error text (for tests and admin).
func (s *Store) MessageState(ctx context.Context, id int64) (state, errText string, err error) {
	err = s.queryRow(ctx, `SELECT state, error FROM messages WHERE id = $1`, id).Scan(&state, &errText)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return state, errText, err
}

// MessageBody returns a message's text.
func (s *Store) MessageBody(ctx context.Context, id int64) (string, error) {
	var body string
	err := s.queryRow(ctx, `SELECT body FROM messages WHERE id = $1`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return body, err
}

// ReceivedText returns the text of message id if user (a bare JID)
// received it from peer (a number or short code); ErrNotFound otherwise,
// so that no one reads another's messages by guessing ids.
func (s *Store) ReceivedText(ctx context.Context, id int64, user, peer string) (string, error) {
	var body string
	err := s.queryRow(ctx, `SELECT body FROM messages WHERE id = $1 AND direction = 'in' AND user_bare = $2 AND peer_number = $3`,
		id, user, peer).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("store: received text: %w", err)
	}
	return body, nil
}

// Counts returns the number of messages per direction and state.
func (s *Store) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT direction, state, count(*) FROM messages GROUP BY direction, state`)
	if err != nil {
		return nil, fmt.Errorf("store: counts: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var (
			d, st string
			n     int
		)
		if err := rows.Scan(&d, &st, &n); err != nil {
			return nil, err
		}
		out[d+"/"+st] = n
	}
	return out, rows.Err()
}

// queryIDs runs q, a read of ids, in a transaction or on a handle.
func queryIDs(ctx context.Context, db rowsQuerier, q string, args ...any) ([]int64, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// bare strips the resource from a JID string.
func bare(j string) string {
	b, _, _ := strings.Cut(j, "/")
	return b
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ReleaseNotices gives notices leased to owner back, to be claimed and
// sent at once. Those whose lease another instance has taken since (it
// ran out) stay as they are.
func (s *Store) ReleaseNotices(ctx context.Context, owner string, ids []int64) error {
	// A statement for each releaseChunk: after an XMPP outage the router
	// gives back every handed notice it held, up to 65,536.
	for chunk := range slices.Chunk(ids, releaseChunk) {
		args := idArgs([]any{owner}, pad(chunk))
		_, err := s.exec(ctx, `UPDATE notices SET lease_owner = '', lease_until = 0 WHERE lease_owner = $1 AND message_id IN (`+inList(2, len(args)-1)+`)`, args...)
		if err != nil {
			return fmt.Errorf("store: release notices: %w", err)
		}
	}
	return nil
}

// releaseChunk is how many notices one statement of ReleaseNotices gives
// back.
const releaseChunk = 4096

// Failure is a message that failed, for operators.
type Failure struct {
	ID        int64
	At        time.Time
	Direction string
	UserJID   string
	Peer      string
	Error     string
}

// recentFailures reads the last $1 failed messages from messages_work.
const recentFailures = `SELECT id, updated_at, direction, user_bare, peer_number, error FROM messages
	WHERE ` + inWork + ` AND state = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $1`

// RecentFailures returns the last limit failed messages, newest first.
func (s *Store) RecentFailures(ctx context.Context, limit int) ([]Failure, error) {
	rows, err := s.rdb.QueryContext(ctx, recentFailures, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent failures: %w", err)
	}
	defer rows.Close()
	var out []Failure
	for rows.Next() {
		var (
			f  Failure
			at int64
		)
		if err := rows.Scan(&f.ID, &at, &f.Direction, &f.UserJID, &f.Peer, &f.Error); err != nil {
			return nil, err
		}
		f.At = time.UnixMilli(at)
		out = append(out, f)
	}
	return out, rows.Err()
}

// Kept by Sweep: a receipt for an SMSC id not recorded yet, for an hour
// (the id is recorded within the SMSC's response time of its answer; after
// a crash in between the message is submitted again under a new id, and
// the receipt is no use); everyone's SMS per second, for two minutes (the
// global limit reads the last one); a user's SMS, for 25 hours (the day
// limit reads the last 24); a user's resource gone offline, for
// ten minutes (long enough that an older change written late, by another
// instance, cannot bring it back).
const (
	earlyReceiptKeep = time.Hour
	smsSecondsKeep   = 2 * time.Minute
	smsUserKeep      = 25 * time.Hour
	presenceKeep     = 10 * time.Minute
	instanceKeep     = time.Hour
)

// Sweep deletes what nothing will read or claim any more, and returns how
// many receipts it dropped: those kept early for SMSC ids never recorded (a
// message submitted again after its instance died, another system's message
// on a shared account, a late receipt for a pruned message), the SMS counts
// the limits no longer read (everyone's after two minutes, each user's after
// 25 hours), users' resources gone offline long ago, and instances not seen
// connected for an hour (that died without saying so). Each is a statement of its own, outside any transaction, so
// instances sweeping the same database take no lock an accept or a receipt
// holds.
func (s *Store) Sweep(ctx context.Context) (receipts int64, err error) {
	now := s.now()
	res, err := s.exec(ctx, `DELETE FROM early_receipts WHERE received_at < $1`, now.Add(-earlyReceiptKeep).UnixMilli())
	if err == nil {
		receipts, err = res.RowsAffected()
	}
	if err == nil {
		_, err = s.exec(ctx, `DELETE FROM sms_seconds WHERE at < $1`, now.Add(-smsSecondsKeep).Unix())
	}
	if err == nil {
		_, err = s.exec(ctx, `DELETE FROM sms_user_counts WHERE at < $1`, now.Add(-smsUserKeep).UnixMilli())
	}
	if err == nil {
		_, err = s.exec(ctx, `DELETE FROM presences WHERE available = 0 AND at < $1`, now.Add(-presenceKeep).UnixMilli())
	}
	if err == nil {
		_, err = s.exec(ctx, `DELETE FROM instances WHERE seen_at < $1`, now.Add(-instanceKeep).UnixMilli())
	}
	if err != nil {
		return receipts, fmt.Errorf("store: sweep: %w", err)
	}
	return receipts, nil
}
