package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// The archive is the messages table read as XEP-0313 expects: a user's
// conversation with a number is every message with a body that the user sent
// to it or that reached the user from it, over SMS or relayed over XMPP from
// another user. Archive ids are message ids.

// ArchiveQuery selects part of a user's archive.
type ArchiveQuery struct {
	User string // bare JID; required
	With string // E.164 of the other party; "" for every conversation
	// Start and End bound the time a message was accepted, inclusive; zero
	// means unbounded.
	Start, End time.Time
	// AfterID and BeforeID narrow the result set to ids strictly between
	// them (0: unbounded); they must name messages of the user's archive.
	AfterID, BeforeID int64
	// Page: Max items (0 asks for the count alone), after the message
	// PageAfter or, with Backward, before PageBefore (0: from the end).
	// PageAfter and PageBefore must name messages of the user's archive.
	Max        int
	PageAfter  int64
	PageBefore int64
	Backward   bool
}

// ArchiveItem is one archived message, seen from the user's side.
type ArchiveItem struct {
	ID       int64
	Outgoing bool   // the user sent it; else it reached the user
	Number   string // E.164 of the other party
	// Local is the localpart of the JID the user wrote Number at, when
	// not Number itself (Outbound.PeerLocal, and for a message from a
	// phone the form the user last wrote it in): the JID the message
	// came from or went to live. "" for Number's own JID.
	Local    string
	StanzaID string // the sender's stanza id, if any
	Body     string
	// Payload is the message's children as its sender wrote them (XML),
	// for one that carried more than its text (a correction, a reaction,
	// a reply, a link: Outbound.Extra); "" for the rest, Body alone.
	Payload string
	At      time.Time // when it was accepted
}

// ArchivePage is a page of a result set.
type ArchivePage struct {
	Items    []ArchiveItem // oldest first
	Count    int           // items in the whole result set
	Index    int           // position of Items[0] in the result set
	Complete bool          // the page reaches the end of the set in the paging direction
}

// archiveSet is a user's archive (with with, one conversation of it) as
// SQL: the ids of its messages, narrowed by conditions on id and
// created_at, which both archive indexes hold. It is read as two index
// reads: the messages the user sent or got as SMS (messages_user), and
// those relayed to the user from another user's number (messages_peer).
// On SQLite they are a UNION ALL: as an OR, SQLite read every row of the set
// to test it (a page of an archive of 50,000 messages took 0.7 s). On
// PostgreSQL they stay an OR, which it reads as a union of bitmaps (its
// plan for the UNION took three times as long).
//
// Messages without a body, and those whose sender is not a number
// (verification codes, sent from an alphanumeric ID), are not part of the
// archive. archivePart is that condition, word for word the indexes' own,
// so that SQLite uses them and tests it on no row.
type archiveSet struct {
	u, w string // the user's and the number's arguments
	args []any
	or   bool // render the two reads as an OR (PostgreSQL)
}

const archivePart = "body <> '' AND user_number LIKE '+%'"

func (s *Store) newArchiveSet(user, with string) *archiveSet {
	a := &archiveSet{or: s.dialect == postgres}
	a.u = a.arg(user)
	if with != "" {
		a.w = a.arg(with)
	}
	return a
}

// arg adds an argument and returns its placeholder.
func (a *archiveSet) arg(v any) string {
	a.args = append(a.args, v)
	return "$" + strconv.Itoa(len(a.args))
}

// ids renders the set's ids, narrowed by conds.
func (a *archiveSet) ids(conds ...string) string {
	user := archivePart + " AND user_bare = " + a.u
	peer := archivePart + " AND peer_jid <> '' AND peer_jid = " + a.u
	if a.w != "" {
		user += " AND peer_number = " + a.w
		peer += " AND user_number = " + a.w
	}
	var narrow string
	for _, c := range conds {
		narrow += " AND " + c
	}
	if a.or {
		return "SELECT id FROM messages WHERE ((" + user + ") OR (" + peer + "))" + narrow
	}
	// The second read leaves out what the first has (a message to the
	// user's own number), so the two need no merging to count.
	return "SELECT id FROM messages WHERE " + user + narrow +
		" UNION ALL SELECT id FROM messages WHERE " + peer + " AND user_bare <> " + a.u + narrow
}

// Archive returns a page of the user's archive. An id bound that is not a
// message of the user's archive gives an error wrapping ErrNotFound.
func (s *Store) Archive(ctx context.Context, q ArchiveQuery) (ArchivePage, error) {
	var page ArchivePage
	if q.User == "" {
		return page, errors.New("store: archive: no user")
	}
	for _, id := range []int64{q.AfterID, q.BeforeID, q.PageAfter, q.PageBefore} {
		if id == 0 {
			continue
		}
		ok, err := s.inArchive(ctx, q.User, id)
		if err != nil {
			return page, err
		}
		if !ok {
			return page, fmt.Errorf("store: archive: no message %d: %w", id, ErrNotFound)
		}
	}
	a := s.newArchiveSet(q.User, q.With)
	var conds []string
	if !q.Start.IsZero() {
		conds = append(conds, "created_at >= "+a.arg(q.Start.UnixMilli()))
	}
	if !q.End.IsZero() {
		conds = append(conds, "created_at <= "+a.arg(q.End.UnixMilli()))
	}
	if q.AfterID != 0 {
		conds = append(conds, "id > "+a.arg(q.AfterID))
	}
	if q.BeforeID != 0 {
		conds = append(conds, "id < "+a.arg(q.BeforeID))
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (`+a.ids(conds...)+`) AS a`, a.args...).Scan(&page.Count); err != nil {
		return page, fmt.Errorf("store: archive count: %w", err)
	}
	if q.Max <= 0 || page.Count == 0 {
		page.Complete = page.Count == 0
		return page, nil
	}
	// The page's ids from the indexes, then its rows by id.
	pa := *a
	pa.args = slices.Clone(a.args)
	pconds, order := slices.Clone(conds), "ASC"
	if q.Backward {
		order = "DESC"
		if q.PageBefore != 0 {
			pconds = append(pconds, "id < "+pa.arg(q.PageBefore))
		}
	} else if q.PageAfter != 0 {
		pconds = append(pconds, "id > "+pa.arg(q.PageAfter))
	}
	limit := pa.arg(q.Max + 1)
	ids, err := queryIDs(ctx, s.rdb, `SELECT id FROM (`+pa.ids(pconds...)+`) AS a ORDER BY id `+order+` LIMIT `+limit, pa.args...)
	if err != nil {
		return page, fmt.Errorf("store: archive: %w", err)
	}
	page.Complete = len(ids) <= q.Max
	if !page.Complete {
		ids = ids[:q.Max]
	}
	if len(ids) == 0 {
		return page, nil
	}
	slices.Sort(ids)
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, direction, user_bare, user_number, peer_number, peer_local, stanza_id, body, extra, created_at
		FROM messages WHERE id IN (`+inList(1, len(ids))+`) ORDER BY id`, idArgs(nil, ids)...)
	if err != nil {
		return page, fmt.Errorf("store: archive: %w", err)
	}
	defer rows.Close()
	var relayed []int // indexes in page.Items of messages relayed from another user
	for rows.Next() {
		var (
			it                                  ArchiveItem
			dir, userBare, uNum, peerNum, local string
			at                                  int64
		)
		if err := rows.Scan(&it.ID, &dir, &userBare, &uNum, &peerNum, &local, &it.StanzaID, &it.Body, &it.Payload, &at); err != nil {
			return page, fmt.Errorf("store: archive: %w", err)
		}
		it.At = time.UnixMilli(at)
		if userBare == q.User {
			it.Outgoing, it.Number, it.Local = dir == Out, peerNum, local
		} else {
			// Relayed to the user from another user's number (its
			// peer_local is the form the sender wrote the user's in):
			// from the form the user writes that number in, read below.
			it.Outgoing, it.Number = false, uNum
			relayed = append(relayed, len(page.Items))
		}
		page.Items = append(page.Items, it)
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("store: archive: %w", err)
	}
	if err := s.relayedForms(ctx, q.User, page.Items, relayed); err != nil {
		return page, err
	}
	// The page's position in the set: known for the first page and the
	// last one (the common queries), counted for a page in between.
	switch {
	case len(page.Items) == 0, !q.Backward && q.PageAfter == 0:
	case q.Backward && q.PageBefore == 0:
		page.Index = page.Count - len(page.Items)
	default:
		first := a.arg(page.Items[0].ID)
		err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (`+a.ids(append(conds, "id < "+first)...)+`) AS a`, a.args...).Scan(&page.Index)
		if err != nil {
			return page, fmt.Errorf("store: archive index: %w", err)
		}
	}
	return page, nil
}

// relayedForms sets the Local of the items at indexes relayed, messages
// relayed to user from other users' numbers, to the form user writes each
// number in (peer_forms): the form a relay comes from (see Routing.Forms),
// so the archive puts the message in the conversation it came to. Those
// the user writes in the international form keep none.
func (s *Store) relayedForms(ctx context.Context, user string, items []ArchiveItem, relayed []int) error {
	if len(relayed) == 0 {
		return nil
	}
	numbers := make([]string, 0, len(relayed))
	for _, i := range relayed {
		numbers = append(numbers, items[i].Number)
	}
	forms, err := s.formsOf(ctx, []string{user}, numbers)
	if err != nil {
		return fmt.Errorf("store: archive: %w", err)
	}
	for _, i := range relayed {
		items[i].Local = forms[Form{User: user, Number: items[i].Number}]
	}
	return nil
}

// inArchive reports whether message id is in the user's archive.
func (s *Store) inArchive(ctx context.Context, user string, id int64) (bool, error) {
	a := s.newArchiveSet(user, "")
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM (`+a.ids("id = "+a.arg(id))+`) AS a`, a.args...).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: archive: %w", err)
	}
	return n > 0, nil
}

// ArchiveBounds are the first and last messages of a user's archive.
type ArchiveBounds struct {
	Empty   bool // no messages; the other fields are zero
	FirstID int64
	FirstAt time.Time
	LastID  int64
	LastAt  time.Time
	Count   int // messages in the archive
}

// ArchiveMetadata returns the bounds of the user's archive (XEP-0313 metadata).
func (s *Store) ArchiveMetadata(ctx context.Context, user string) (ArchiveBounds, error) {
	var (
		b     ArchiveBounds
		first sql.NullInt64
		last  sql.NullInt64
	)
	a := s.newArchiveSet(user, "")
	err := s.rdb.QueryRowContext(ctx, `SELECT min(id), max(id), count(*) FROM (`+a.ids()+`) AS a`, a.args...).Scan(&first, &last, &b.Count)
	if err != nil {
		return b, fmt.Errorf("store: archive metadata: %w", err)
	}
	if !first.Valid {
		b.Empty = true
		return b, nil
	}
	b.FirstID, b.LastID = first.Int64, last.Int64
	for _, p := range []struct {
		id int64
		at *time.Time
	}{{b.FirstID, &b.FirstAt}, {b.LastID, &b.LastAt}} {
		var ms int64
		if err := s.rdb.QueryRowContext(ctx, `SELECT created_at FROM messages WHERE id = $1`, p.id).Scan(&ms); err != nil {
			return b, fmt.Errorf("store: archive metadata: %w", err)
		}
		*p.at = time.UnixMilli(ms)
	}
	return b, nil
}

// pruneBatch bounds one delete, so SQLite's single writer is not held long.
const pruneBatch = 1000

// finalCond selects messages whose life is over: outbound delivered,
// failed or sent (see StateSent), inbound delivered, no notice waiting to
// be sent. The states are
// compared after appending the empty string to them, which no index
// serves, so that Prune walks messages_created from the oldest and stops
// after its batch. SQLite read
// every final message through messages_work instead, and sorted them all,
// for each batch: BenchmarkPrune, among 100,000 finished messages, took
// 144 ms to delete a batch of 1,000 (now 23) and 53 ms to find nothing
// (now 0.14), holding the writer each time.
const finalCond = `((direction = 'out' AND (state || '') IN ('delivered', 'failed', 'sent')) OR (direction = 'in' AND (state || '') = 'delivered'))
	AND NOT EXISTS (SELECT 1 FROM notices WHERE message_id = messages.id)`

// Prune deletes messages accepted before the cutoff whose life is over
// (see finalCond), with their parts, and returns how many it deleted.
// Messages still on their way are kept, however old.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	const batch = `SELECT id FROM messages WHERE created_at < $1 AND ` + finalCond + ` ORDER BY created_at LIMIT $2`
	var (
		n   int64
		err error
	)
	if s.dialect == postgres {
		n, err = inBatches(ctx, s.execBatch(ctx, `DELETE FROM messages WHERE id IN (`+batch+`)`, before.UnixMilli()))
	} else {
		n, err = inBatches(ctx, s.pruneSQLite(ctx, batch, before.UnixMilli()))
	}
	if err != nil {
		return n, fmt.Errorf("store: prune: %w", err)
	}
	return n, nil
}

// pruneSQLite is a batch of Prune on SQLite, which enforces no foreign keys
// (see Open): it deletes its messages' parts, then the messages, in one
// transaction on the single writer, so both statements select the same
// messages. Notices need no deleting: a message with one is not final.
func (s *Store) pruneSQLite(ctx context.Context, batch string, before int64) func() (int64, error) {
	return func() (n int64, err error) {
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM parts WHERE message_id IN (`+batch+`)`, before, pruneBatch); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE id IN (`+batch+`)`, before, pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		return n, err
	}
}

// inBatches runs one, a step on at most pruneBatch rows that says how
// many it changed, until it changes fewer, and returns how many it changed
// in all: each batch its own statement or transaction, so SQLite's writer
// is not held long.
func inBatches(ctx context.Context, one func() (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := one()
		if err != nil {
			return total, err
		}
		total += n
		if n < pruneBatch || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// execBatch is a step of inBatches: q, whose last argument is the bound.
func (s *Store) execBatch(ctx context.Context, q string, args ...any) func() (int64, error) {
	return func() (int64, error) {
		res, err := s.db.ExecContext(ctx, q, append(args, pruneBatch)...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
}
