package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Binding ties a phone number (E.164) to the bare JID that texts and is texted as it.
type Binding struct {
	Number     string
	JID        string
	Method     string // how it was verified: "operator" or "sms"
	VerifiedAt time.Time
}

// Bind makes number belong to jid. A number belongs to at most one JID and a
// JID has at most one number, so any older binding of either is replaced.
// The address-book entries of number and of the number jid had before,
// and those of the books of jid and of the number's previous holder, are
// marked dirty for the roster worker, in the same transaction. It returns
// the JID that held the number before, if it was another one.
func (s *Store) Bind(ctx context.Context, number, jid, method string) (previous string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		previous, err = bindTx(ctx, tx, number, jid, method, s.ms())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store: bind %s: %w", number, err)
	}
	return previous, nil
}

func bindTx(ctx context.Context, tx *sql.Tx, number, jid, method string, now int64) (previous string, err error) {
	err = tx.QueryRowContext(ctx, `SELECT jid FROM bindings WHERE number = $1`, number).Scan(&previous)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if previous == jid {
		previous = ""
	}
	// Both numbers change owner: whoever has either in an address book
	// must stop seeing the old owner behind it. And whether a contact is
	// mutual depends on the viewer's own number too: the books of jid and
	// of the number's previous holder are pushed again.
	if _, err := tx.ExecContext(ctx, `UPDATE contacts SET `+markDirty+` WHERE deleted = 0
		AND (number = $1 OR number IN (SELECT number FROM bindings WHERE jid = $2) OR owner IN ($2, $3))`, number, jid, previous); err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM bindings WHERE number = $1 OR jid = $2`, number, jid); err != nil {
		return "", err
	}
	// The forms jid wrote numbers in outlive its bindings (see Routing.Forms).
	_, err = tx.ExecContext(ctx, `INSERT INTO bindings (number, jid, method, verified_at, forms)
		VALUES ($1, $2, $3, $4, CASE WHEN EXISTS (SELECT 1 FROM peer_forms WHERE user_bare = $2) THEN 1 ELSE 0 END)`,
		number, jid, method, now)
	return previous, err
}

// Release removes the binding of number and returns the JID that held it.
// The number's address-book entries, and those of its holder's book, are
// marked dirty for the roster worker. The forms its holder wrote numbers in
// (peer_forms) go with it: a user who unregisters leaves no record of whom
// they wrote to beside the archive, whose retention bounds it.
func (s *Store) Release(ctx context.Context, number string) (jid string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT jid FROM bindings WHERE number = $1`, number).Scan(&jid); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE contacts SET `+markDirty+` WHERE (number = $1 OR owner = $2) AND deleted = 0`, number, jid); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM peer_forms WHERE user_bare = $1`, jid); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM bindings WHERE number = $1`, number)
		return err
	})
	return jid, err
}

// NumberOf returns the binding of a bare JID, or ErrNotFound.
func (s *Store) NumberOf(ctx context.Context, jid string) (Binding, error) {
	return s.binding(ctx, `SELECT number, jid, method, verified_at FROM bindings WHERE jid = $1`, jid)
}

// OwnerOf returns the binding of a number, or ErrNotFound.
func (s *Store) OwnerOf(ctx context.Context, number string) (Binding, error) {
	return s.binding(ctx, `SELECT number, jid, method, verified_at FROM bindings WHERE number = $1`, number)
}

func (s *Store) binding(ctx context.Context, q, arg string) (Binding, error) {
	var (
		b  Binding
		at int64
	)
	err := s.queryRow(ctx, q, arg).Scan(&b.Number, &b.JID, &b.Method, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return b, ErrNotFound
	}
	if err != nil {
		return b, fmt.Errorf("store: binding: %w", err)
	}
	b.VerifiedAt = time.UnixMilli(at)
	return b, nil
}

// NumbersOf returns the numbers bound to each of the given bare JIDs that has one.
func (s *Store) NumbersOf(ctx context.Context, jids []string) (map[string]string, error) {
	out, err := s.bindingMap(ctx, nil, `SELECT jid, number FROM bindings WHERE jid IN `, jids)
	if err != nil {
		return nil, fmt.Errorf("store: numbers: %w", err)
	}
	return out, nil
}

// OwnersOf returns the bare JID bound to each of the given numbers that has one.
func (s *Store) OwnersOf(ctx context.Context, numbers []string) (map[string]string, error) {
	out, err := s.bindingMap(ctx, nil, `SELECT number, jid FROM bindings WHERE number IN `, numbers)
	if err != nil {
		return nil, fmt.Errorf("store: owners: %w", err)
	}
	return out, nil
}

// Routing is what routing a batch of messages needs: the numbers bound to
// the senders, the owners of the destinations, the senders' settings, and
// the forms the senders and the owners last wrote numbers in.
type Routing struct {
	Numbers  map[string]string   // by bare JID
	Owners   map[string]string   // by number
	Settings map[string]Settings // by bare JID, for those that have any
	// Forms holds, for the senders and the destinations' owners, the
	// form (a JID's localpart) each last wrote a number in, where that
	// was not the international one: what a new message changes (see
	// Outbound.SetForm), and what a relay to an owner comes from. Only
	// the batch's numbers are read: the destinations and the senders'
	// numbers.
	Forms map[Form]string
}

// Form names a user (a bare JID) and a number, whose recorded form is the
// localpart of the JID the user last wrote to the number at.
type Form struct{ User, Number string }

// RoutingOf looks up the Routing of the senders jids (bare) and the numbers
// dests, in one statement on the read handle: on PostgreSQL one round trip
// instead of three for every batch the router stores. Forms are read in a
// second statement, only for the senders and owners whose binding is marked
// (bindings.forms: they have written a number in another form than the
// international one): in the common case, not at all.
func (s *Store) RoutingOf(ctx context.Context, jids, dests []string) (Routing, error) {
	const most = 512
	if len(jids) == 0 || len(dests) == 0 || len(jids) > most || len(dests) > most {
		return s.routingApart(ctx, jids, dests)
	}
	r := Routing{Numbers: make(map[string]string, len(jids)), Owners: make(map[string]string, len(dests)), Settings: make(map[string]Settings),
		Forms: make(map[Form]string)}
	// Padded on SQLite, so a few prepared statements serve every batch
	// size; arrays on PostgreSQL (see idsIn).
	var args []any
	in := func(col string, ss []string) string {
		test, a := s.stringsIn(col, len(args)+1, ss)
		args = append(args, a...)
		return test
	}
	q := `SELECT 'n', jid, number, forms, 0 FROM bindings WHERE ` + in("jid", jids) + `
		UNION ALL SELECT 'o', number, jid, forms, 0 FROM bindings WHERE ` + in("number", dests) + `
		UNION ALL SELECT 's', jid, '', fallback, fallback_after FROM user_settings WHERE ` + in("jid", jids)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return Routing{}, fmt.Errorf("store: routing: %w", err)
	}
	defer rows.Close()
	var withForms []string // users who wrote some number in another form
	for rows.Next() {
		var (
			kind, k, v string
			fb         int
			after      int64
		)
		if err := rows.Scan(&kind, &k, &v, &fb, &after); err != nil {
			return Routing{}, fmt.Errorf("store: routing: %w", err)
		}
		switch kind {
		case "n":
			r.Numbers[k] = v
			if fb != 0 {
				withForms = append(withForms, k)
			}
		case "o":
			r.Owners[k] = v
			if fb != 0 {
				withForms = append(withForms, v)
			}
		case "s":
			r.Settings[k] = storedSettings(fb, after)
		}
	}
	if err := rows.Err(); err != nil {
		return Routing{}, fmt.Errorf("store: routing: %w", err)
	}
	if len(withForms) > 0 {
		if r.Forms, err = s.formsOf(ctx, withForms, formNumbers(dests, r.Numbers)); err != nil {
			return Routing{}, err
		}
	}
	return r, nil
}

// formNumbers is the numbers whose forms a batch can use: its destinations
// (a sender's form of the number it writes to) and the senders' numbers
// (an owner's form of the number a relay comes from).
func formNumbers(dests []string, numbers map[string]string) []string {
	return slices.Concat(dests, slices.Collect(maps.Values(numbers)))
}

// routingApart is RoutingOf for lists too long for one statement.
func (s *Store) routingApart(ctx context.Context, jids, dests []string) (r Routing, err error) {
	if r.Numbers, err = s.NumbersOf(ctx, jids); err != nil {
		return Routing{}, err
	}
	if r.Owners, err = s.OwnersOf(ctx, dests); err != nil {
		return Routing{}, err
	}
	if r.Settings, err = s.SettingsOf(ctx, jids); err != nil {
		return Routing{}, err
	}
	users := slices.Concat(jids, slices.Collect(maps.Values(r.Owners)))
	if r.Forms, err = s.formsOf(ctx, users, formNumbers(dests, r.Numbers)); err != nil {
		return Routing{}, err
	}
	return r, nil
}

// formsOf reads the forms users (bare JIDs) last wrote numbers in, where
// that was not the international one (see Routing.Forms), for the numbers
// given only: what a batch can use, not every number a user ever wrote
// in another form, so the read is bounded by the batch.
func (s *Store) formsOf(ctx context.Context, users, numbers []string) (map[Form]string, error) {
	out := make(map[Form]string)
	slices.Sort(users)
	users = slices.Compact(users)
	slices.Sort(numbers)
	numbers = slices.Compact(numbers)
	for us := range slices.Chunk(users, 512) {
		for ns := range slices.Chunk(numbers, 512) {
			uTest, args := s.stringsIn("user_bare", 1, us)
			nTest, nArgs := s.stringsIn("number", len(args)+1, ns)
			rows, err := s.query(ctx, `SELECT user_bare, number, local FROM peer_forms WHERE `+uTest+` AND `+nTest, append(args, nArgs...)...)
			if err != nil {
				return nil, fmt.Errorf("store: forms: %w", err)
			}
			for rows.Next() {
				var f Form
				var local string
				if err := rows.Scan(&f.User, &f.Number, &local); err != nil {
					rows.Close()
					return nil, fmt.Errorf("store: forms: %w", err)
				}
				out[f] = local
			}
			if err := rows.Close(); err != nil {
				return nil, fmt.Errorf("store: forms: %w", err)
			}
		}
	}
	return out, nil
}

// bindingMap runs q (ending in "IN ") for keys, a chunk at a time, and maps
// the first column of each row to the second. A lookup of one chunk (the
// router's, per batch of messages) runs on the read handle, beside the
// writer; a bulk one (an address book) on the writer's handle, whose page
// cache is warm: on SQLite's read handle an upload of 10,000 contacts
// against 1,000,000 registrations took 300 ms instead of 250. With tx, it
// runs in tx (the owners of a batch of parts, looked up with their write).
func (s *Store) bindingMap(ctx context.Context, tx *sql.Tx, q string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	const chunk = 512
	bulk := len(keys) > chunk
	for len(keys) > 0 {
		n := min(len(keys), chunk)
		// The list is padded to a power of two (repeating the last key),
		// so a few statements, prepared once, serve every batch size.
		args := strArgs(nil, pad(keys[:n]))
		query := s.query
		switch {
		case tx != nil:
			query = func(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
				return s.txQuery(ctx, tx, q, args...)
			}
		case bulk:
			query = s.writerQuery
		}
		rows, err := query(ctx, q+`(`+inList(1, len(args))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = v
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		keys = keys[n:]
	}
	return out, nil
}

// Bindings lists every binding, ordered by number.
func (s *Store) Bindings(ctx context.Context) ([]Binding, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT number, jid, method, verified_at FROM bindings ORDER BY number`)
	if err != nil {
		return nil, fmt.Errorf("store: bindings: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		var (
			b  Binding
			at int64
		)
		if err := rows.Scan(&b.Number, &b.JID, &b.Method, &at); err != nil {
			return nil, err
		}
		b.VerifiedAt = time.UnixMilli(at)
		out = append(out, b)
	}
	return out, rows.Err()
}
