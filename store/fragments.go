package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// FragmentKey names one concatenated message from a phone.
type FragmentKey struct {
	Source, Dest string
	Ref, Total   int
}

// Fragment is one part of a concatenated message from a phone, kept until
// all parts are in (or the reassembly time runs out).
type Fragment struct {
	FragmentKey
	Seq        int
	DataCoding byte
	Payload    []byte
	ReceivedAt time.Time
	// SourceTON, SourceNPI and SMSC are as in Inbound, for the message
	// the parts make.
	SourceTON, SourceNPI byte
	SMSC                 string
	// Session names the SMPP bind that carried it, Ended tells which
	// binds are down (see Inbound.Session), and Text is the part decoded on
	// its own: with all three, a part found in a message from the same
	// phone reassembled with the same reference and count is known for a
	// resend (see AddFragment). None is stored.
	Session, Text string
	Ended         func(session string) bool
	// Owned makes AddFragment store the part only if a user has Dest,
	// looked up in the part's own transaction (with the other parts that
	// share it), and return ErrNotFound otherwise, storing nothing.
	Owned bool
}

// fragKey is how messages.frag_key names the parts a message was
// reassembled from.
func (k FragmentKey) fragKey() string { return strconv.Itoa(k.Ref) + "/" + strconv.Itoa(k.Total) }

// AddFragment stores a part durably and returns every stored part of its
// message, ordered by sequence, so the caller can tell whether it is complete.
// A repeated part (the SMSC retrying) replaces the stored copy. A part
// whose sequence is stored with another payload belongs to another message
// that reuses the reference: it is stored nowhere, and the error is a
// *PartClash holding the stored message's parts (it replaced them, and
// the first message's text was lost). A part of
// a message already reassembled and stored within resendWindow, from
// another bind now down, whose text is in that message's, is stored
// nowhere: it returns ErrResent (the SMSC sent it again after a new bind,
// never having got its response). A new message that reuses the reference
// has other text, and is stored. With f.Owned, a part to a number no user
// has returns ErrNotFound.
func (s *Store) AddFragment(ctx context.Context, f Fragment) ([]Fragment, error) {
	op := &fragmentOp{f: f, now: s.ms()}
	if err := s.grouped(ctx, &groupOp{lane: laneNew, frag: op}); err != nil {
		return nil, fmt.Errorf("store: add fragment: %w", err)
	}
	if op.unowned {
		return nil, fmt.Errorf("store: add fragment: %w", ErrNotFound)
	}
	if op.resent {
		return nil, ErrResent
	}
	if op.clash {
		return nil, &PartClash{Parts: op.parts}
	}
	return op.parts, nil
}

// Reassembled reports whether every one of texts (parts of a message from
// k's phone to k's number, each decoded alone) is in a message reassembled
// from parts with k's reference and count within resendWindow: parts
// sent again once their message was complete, which would otherwise be
// delivered as a second, incomplete message.
func (s *Store) Reassembled(ctx context.Context, k FragmentKey, texts []string) (bool, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT body FROM messages WHERE direction = 'in' AND peer_number = $1 AND user_number = $2
		AND created_at >= $3 AND frag_key = $4 ORDER BY id DESC LIMIT 16`,
		k.Source, k.Dest, s.ms()-resendWindow.Milliseconds(), k.fragKey())
	if err != nil {
		return false, fmt.Errorf("store: reassembled: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return false, fmt.Errorf("store: reassembled: %w", err)
		}
		all := len(texts) > 0
		for _, t := range texts {
			all = all && t != "" && strings.Contains(body, t)
		}
		if all {
			return true, nil
		}
	}
	return false, rows.Err()
}

// StaleFragments returns the stored parts of messages whose first part came
// before cutoff, grouped by message: they will not be completed, or were
// completed just before a crash, and are to be delivered as they are.
func (s *Store) StaleFragments(ctx context.Context, cutoff time.Time) ([][]Fragment, error) {
	var all []Fragment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		all, err = fragments(ctx, tx, `f WHERE EXISTS (SELECT 1 FROM fragments o WHERE o.source = f.source AND o.dest = f.dest
			AND o.ref = f.ref AND o.total = f.total AND o.received_at < $1) ORDER BY source, dest, ref, total, seq`, cutoff.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: stale fragments: %w", err)
	}
	var groups [][]Fragment
	for i, f := range all {
		if i == 0 || f.FragmentKey != all[i-1].FragmentKey {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], f)
	}
	return groups, nil
}

// fragmentColumns are the columns scanFragments reads.
const fragmentColumns = `source, dest, ref, total, seq, data_coding, payload, received_at, source_ton, source_npi, smsc`

func fragments(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]Fragment, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+fragmentColumns+` FROM fragments `+where, args...)
	if err != nil {
		return nil, err
	}
	return scanFragments(rows)
}

// scanFragments reads rows of fragmentColumns, and closes rows.
func scanFragments(rows *sql.Rows) ([]Fragment, error) {
	defer rows.Close()
	var out []Fragment
	for rows.Next() {
		var (
			f            Fragment
			dc, ton, npi int
			at           int64
		)
		if err := rows.Scan(&f.Source, &f.Dest, &f.Ref, &f.Total, &f.Seq, &dc, &f.Payload, &at, &ton, &npi, &f.SMSC); err != nil {
			return nil, err
		}
		f.DataCoding, f.SourceTON, f.SourceNPI = byte(dc), byte(ton), byte(npi)
		f.ReceivedAt = time.UnixMilli(at)
		out = append(out, f)
	}
	return out, rows.Err()
}

// deleteFragments deletes the stored parts of one message from a phone.
const deleteFragments = `DELETE FROM fragments WHERE source = $1 AND dest = $2 AND ref = $3 AND total = $4`

// DropFragments deletes the stored parts of one message from a phone: for
// a number nobody has any more, there is no one to deliver them to.
func (s *Store) DropFragments(ctx context.Context, k FragmentKey) error {
	_, err := s.exec(ctx, deleteFragments, k.Source, k.Dest, k.Ref, k.Total)
	if err != nil {
		return fmt.Errorf("store: drop fragments: %w", err)
	}
	return nil
}

// Parts of messages from phones, stored together. AddFragment runs once
// per part, concurrently, from the SMPP workers, and its transaction of
// its own cost a commit per part: two-part messages reached their users
// at about 770 a second on SQLite, at 1.2 CPU s per 1,000, against
// 10,000 a second for messages of one part (BENCHMARKS.md). The group
// loop now hands the parts that arrive together to addFragments, in the
// transaction it shares with the other writes. Each call's result is the
// one it would get if the calls had run one after the other, in arrival
// order: a call sees the parts stored before it, never a later one's, so
// of two parts completing a message together only the second finds it
// complete.

// fragmentOp is one AddFragment call.
type fragmentOp struct {
	f       Fragment
	now     int64
	unowned bool       // out: f.Owned and no user has f.Dest (ErrNotFound); nothing stored
	resent  bool       // out: the part is a resend (ErrResent); nothing stored
	clash   bool       // out: another payload is stored for the part (PartClash); nothing stored
	parts   []Fragment // out: the message's parts stored, by sequence
}

// stored is f as the store keeps it, received at: the columns of
// fragmentColumns, none of the fields it does not store.
func (f Fragment) stored(at time.Time) Fragment {
	return Fragment{FragmentKey: f.FragmentKey, Seq: f.Seq, DataCoding: f.DataCoding, Payload: f.Payload, ReceivedAt: at,
		SourceTON: f.SourceTON, SourceNPI: f.SourceNPI, SMSC: f.SMSC}
}

// samePart tells whether two parts with one key and sequence are the same
// part (the SMSC sending it again) rather than two messages' parts.
func samePart(a, b Fragment) bool {
	return a.DataCoding == b.DataCoding && bytes.Equal(a.Payload, b.Payload)
}

// checksResend tells whether the op's part is to be checked for a resend.
func (op *fragmentOp) checksResend() bool {
	return op.f.Session != "" && op.f.Text != "" && op.f.Ended != nil
}

// upsertFragment stores a part; a repeated one (the SMSC retrying) replaces
// the stored copy, which keeps the time the first came. (addFragments
// stores no part that clashes with the stored one.)
const upsertFragment = `INSERT INTO fragments (` + fragmentColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (source, dest, ref, total, seq) DO UPDATE SET data_coding = excluded.data_coding, payload = excluded.payload,
		source_ton = excluded.source_ton, source_npi = excluded.source_npi, smsc = excluded.smsc`

// addFragments stores the parts of ops in tx.
func (s *Store) addFragments(ctx context.Context, tx *sql.Tx, ops []*fragmentOp) error {
	for _, op := range ops {
		op.unowned, op.resent, op.clash, op.parts = false, false, false, nil // afresh: a failed batch runs again, one op at a time
	}
	ops, err := s.ownedFragments(ctx, tx, ops)
	if err != nil {
		return err
	}
	if s.dialect == postgres {
		return s.addFragmentsPG(ctx, tx, ops)
	}
	contains := `instr(body, $6) > 0`
	for _, op := range ops {
		f := op.f
		if op.checksResend() {
			id, err := s.resent(ctx, tx, f.Ended, `frag_key = $5 AND `+contains, f.Source, f.Dest, op.now, f.Session, f.fragKey(), f.Text)
			if err != nil {
				return err
			}
			if op.resent = id != 0; op.resent {
				continue
			}
		}
		stored, err := s.storedParts(ctx, tx, f.FragmentKey)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(stored, func(p Fragment) bool { return p.Seq == f.Seq })
		if i >= 0 && !samePart(stored[i], f) {
			op.clash, op.parts = true, stored
			continue
		}
		if _, err := s.txExec(ctx, tx, upsertFragment, f.Source, f.Dest, f.Ref, f.Total, f.Seq, int(f.DataCoding), f.Payload, op.now,
			int(f.SourceTON), int(f.SourceNPI), f.SMSC); err != nil {
			return err
		}
		// The parts as the upsert left them.
		part := f.stored(time.UnixMilli(op.now))
		if i >= 0 {
			part.ReceivedAt, stored[i] = stored[i].ReceivedAt, part
		} else {
			stored = append(stored, part)
			slices.SortFunc(stored, func(a, b Fragment) int { return cmp.Compare(a.Seq, b.Seq) })
		}
		op.parts = stored
	}
	return nil
}

// storedParts reads k's parts in tx, by sequence.
func (s *Store) storedParts(ctx context.Context, tx *sql.Tx, k FragmentKey) ([]Fragment, error) {
	// In seq order, sorted here: with an ORDER BY, go-sqlite3 made SQLite
	// prepare the statement again on every use (see resent).
	rows, err := s.txQuery(ctx, tx, `SELECT `+fragmentColumns+` FROM fragments WHERE source = $1 AND dest = $2 AND ref = $3 AND total = $4`,
		k.Source, k.Dest, k.Ref, k.Total)
	if err != nil {
		return nil, err
	}
	parts, err := scanFragments(rows)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(parts, func(a, b Fragment) int { return cmp.Compare(a.Seq, b.Seq) })
	return parts, nil
}

// ownedFragments marks the ops whose part must have an owner and has none
// (unowned), and returns the others. The owners are looked up in tx, in
// one statement for the batch (at most groupMax parts), as OwnersOf looks
// them up (bindingMap). (The gateway asked the router for each part's
// recipient before storing it: on PostgreSQL a round trip of its own per
// part, a third of the server's time for messages of two parts;
// docs/benchmarks/sessions.md, twenty-third session.)
func (s *Store) ownedFragments(ctx context.Context, tx *sql.Tx, ops []*fragmentOp) ([]*fragmentOp, error) {
	var numbers []string
	for _, op := range ops {
		if op.f.Owned && !slices.Contains(numbers, op.f.Dest) {
			numbers = append(numbers, op.f.Dest)
		}
	}
	if len(numbers) == 0 {
		return ops, nil
	}
	owners, err := s.bindingMap(ctx, tx, `SELECT number, jid FROM bindings WHERE number IN `, numbers)
	if err != nil {
		return nil, err
	}
	kept := make([]*fragmentOp, 0, len(ops))
	for _, op := range ops {
		if op.unowned = op.f.Owned && owners[op.f.Dest] == ""; !op.unowned {
			kept = append(kept, op)
		}
	}
	return kept, nil
}

// readFragmentResendsPG reads, for each part $1[k] from $2[k] to $3[k] on
// bind $4[k] of a message reassembled as frag_key $5[k], whose text is
// $6[k], the first 16 messages it may be a part of (as resent reads them)
// stored since $7[k].
const readFragmentResendsPG = `SELECT v.i, m.id, m.smpp_session
	FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]) AS v(i, src, dst, session, fk, text, since)
	CROSS JOIN LATERAL (SELECT id, smpp_session FROM messages
		WHERE direction = 'in' AND peer_number = v.src AND user_number = v.dst AND created_at >= v.since
			AND smpp_session <> v.session AND smpp_session <> '' AND frag_key = v.fk AND strpos(body, v.text) > 0
		ORDER BY id LIMIT 16) m
	ORDER BY v.i, m.id`

// writeFragmentsPG stores the parts in arrays $1…$11 (fragmentColumns; no
// two with the same key and sequence) as upsertFragment does, but a part
// stored with another payload is left as it is (addFragmentsPG reports the
// clash), and returns the parts of their messages stored before it.
const writeFragmentsPG = `WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::smallint[], $7::bytea[], $8::bigint[],
		$9::smallint[], $10::smallint[], $11::text[]) AS v(source, dest, ref, total, seq, data_coding, payload, received_at, source_ton, source_npi, smsc)),
	up AS (INSERT INTO fragments (` + fragmentColumns + `) SELECT * FROM v
		ON CONFLICT (source, dest, ref, total, seq) DO UPDATE SET data_coding = excluded.data_coding, payload = excluded.payload,
			source_ton = excluded.source_ton, source_npi = excluded.source_npi, smsc = excluded.smsc
		WHERE fragments.payload = excluded.payload AND fragments.data_coding = excluded.data_coding)
	SELECT ` + fragmentColumns + ` FROM fragments WHERE (source, dest, ref, total) IN (SELECT DISTINCT source, dest, ref, total FROM v)`

// addFragmentsPG stores the parts of ops in two statements: the resend
// check's read, then writeFragmentsPG. Each op's parts are worked out in
// memory from those stored before and the batch's earlier ops.
func (s *Store) addFragmentsPG(ctx context.Context, tx *sql.Tx, ops []*fragmentOp) error {
	var (
		is                        pq.Int64Array
		srcs, dsts, sessions, fks pq.StringArray
		texts                     pq.StringArray
		since                     pq.Int64Array
	)
	for i, op := range ops {
		if f := op.f; op.checksResend() {
			is, srcs, dsts = append(is, int64(i)), append(srcs, f.Source), append(dsts, f.Dest)
			sessions, fks, texts = append(sessions, f.Session), append(fks, f.fragKey()), append(texts, f.Text)
			since = append(since, op.now-resendWindow.Milliseconds())
		}
	}
	if len(is) > 0 {
		rows, err := s.txQuery(ctx, tx, readFragmentResendsPG, is, srcs, dsts, sessions, fks, texts, since)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				i    int
				id   int64
				from string
			)
			if err := rows.Scan(&i, &id, &from); err != nil {
				rows.Close()
				return err
			}
			op := ops[i]
			op.resent = op.resent || op.f.Ended(from)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}

	// The parts to write, one per key and sequence: the latest op's, from
	// the time the first came.
	type partKey struct {
		FragmentKey
		seq int
	}
	var (
		rows  []Fragment
		index = make(map[partKey]int)
	)
	for _, op := range ops {
		if op.resent {
			continue
		}
		f := op.f
		f.ReceivedAt = time.UnixMilli(op.now)
		k := partKey{f.FragmentKey, f.Seq}
		if j, ok := index[k]; ok {
			if samePart(rows[j], f) {
				f.ReceivedAt = rows[j].ReceivedAt
				rows[j] = f
			}
			continue // else a clash, found below
		}
		index[k] = len(rows)
		rows = append(rows, f)
	}
	if len(rows) == 0 {
		return nil
	}
	var c fragmentArrays
	for _, f := range rows {
		c.add(f)
	}
	res, err := s.txQuery(ctx, tx, writeFragmentsPG, c.source, c.dest, c.ref, c.total, c.seq, c.dataCoding, c.payload, c.receivedAt,
		c.sourceTON, c.sourceNPI, c.smsc)
	if err != nil {
		return err
	}
	before, err := scanFragments(res)
	if err != nil {
		return err
	}
	// Each message's parts as the ops, in turn, leave them.
	stored := make(map[FragmentKey]map[int]Fragment)
	for _, f := range before {
		if stored[f.FragmentKey] == nil {
			stored[f.FragmentKey] = make(map[int]Fragment)
		}
		stored[f.FragmentKey][f.Seq] = f
	}
	for _, op := range ops {
		if op.resent {
			continue
		}
		f := op.f
		m := stored[f.FragmentKey]
		if m == nil {
			m = make(map[int]Fragment)
			stored[f.FragmentKey] = m
		}
		at := time.UnixMilli(op.now)
		if old, ok := m[f.Seq]; ok {
			if !samePart(old, f) {
				op.clash, op.parts = true, sortedParts(m)
				continue
			}
			at = old.ReceivedAt
		}
		m[f.Seq] = f.stored(at)
		op.parts = sortedParts(m)
	}
	return nil
}

// sortedParts returns a message's parts by sequence.
func sortedParts(m map[int]Fragment) []Fragment {
	parts := make([]Fragment, 0, len(m))
	for _, seq := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, m[seq])
	}
	return parts
}

// fragmentArrays are parts, a column per array, for writeFragmentsPG.
type fragmentArrays struct {
	source, dest, smsc                                            pq.StringArray
	ref, total, seq, dataCoding, receivedAt, sourceTON, sourceNPI pq.Int64Array
	payload                                                       pq.ByteaArray
}

func (c *fragmentArrays) add(f Fragment) {
	c.source, c.dest, c.smsc = append(c.source, f.Source), append(c.dest, f.Dest), append(c.smsc, f.SMSC)
	c.ref, c.total, c.seq = append(c.ref, int64(f.Ref)), append(c.total, int64(f.Total)), append(c.seq, int64(f.Seq))
	c.dataCoding, c.receivedAt = append(c.dataCoding, int64(f.DataCoding)), append(c.receivedAt, f.ReceivedAt.UnixMilli())
	c.sourceTON, c.sourceNPI = append(c.sourceTON, int64(f.SourceTON)), append(c.sourceNPI, int64(f.SourceNPI))
	c.payload = append(c.payload, f.Payload)
}
