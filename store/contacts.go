package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Contact is one number in a user's address book.
type Contact struct {
	Owner     string // bare JID
	Number    string // E.164
	Name      string
	Photo     []byte
	PhotoType string
	Deleted   bool // gone from the address book; its roster item is still to remove
	// UserItem: the roster item for the number is the user's own (it was
	// there, made by the user, before the gateway pushed one): the gateway
	// leaves it as it is, neither renamed nor removed. The roster worker
	// sets it; ContactsPushed records it.
	UserItem bool

	mark      int64 // the mark DirtyContacts read (see markDirty)
	itemDirty int   // its roster item: 0 pushed as it is, 1 never pushed, 2 changed since pushed (DirtyContacts)
}

// ItemPushed reports whether the contact's roster item, as it is, was
// pushed already (read by DirtyContacts): only its presence is to send.
// Pushing the item again would undo the name and group the user gave it,
// or put back an item the user removed.
func (c Contact) ItemPushed() bool { return c.itemDirty == 0 }

// ItemChanged reports whether the contact's roster item was pushed before
// and changed since (renamed, or gone from the book): the roster has it,
// so a suggestion (XEP-0144) says modify, not add.
func (c Contact) ItemChanged() bool { return c.itemDirty == 2 }

// markDirty is the SET clause that marks contacts for the roster worker:
// dirty, and a mark other than the one they had, so a mark made while the
// worker pushes what it read is not cleared by ContactsPushed. (dirty
// stays 0 or 1: the worker's read is an equality on its index.)
const markDirty = `dirty = 1, mark = mark + 1`

// markItem marks, with markDirty, a contact whose roster item changed:
// item_dirty 2 for one pushed before (0), kept 1 for one never pushed; new
// rows are 1 by default.
const markItem = `item_dirty = CASE WHEN item_dirty = 0 THEN 2 ELSE item_dirty END, ` + markDirty

// ImportResult counts what an import changed.
type ImportResult struct {
	Added, Changed, Removed, Unchanged int
	// Book is the owner's address book as the import left it, as
	// ContactsOf would read it after the commit (without photos): saves
	// reading back 10,000 rows just written.
	Book []Contact
}

// ErrLookupLimit is returned when an import would look up more new numbers
// in a day than allowed.
var ErrLookupLimit = errors.New("store: daily limit of new numbers reached")

// LookupLimitError says how far over the limit an import was.
type LookupLimitError struct {
	New, Used, Limit int
}

func (e *LookupLimitError) Error() string {
	return fmt.Sprintf("store: %d new numbers, %d of %d looked up in the last 24 hours", e.New, e.Used, e.Limit)
}

func (e *LookupLimitError) Unwrap() error { return ErrLookupLimit }

// ImportContacts merges contacts into owner's address book. With replace,
// contacts not in the list are marked deleted (the upload is the whole book);
// without, the list only adds and renames. Numbers owner never looked up
// before count against dailyLimit per 24 hours (≤ 0: no limit); over it,
// nothing changes and a *LookupLimitError is returned. Every changed row is
// marked dirty for the roster worker.
func (s *Store) ImportContacts(ctx context.Context, owner string, contacts []Contact, replace bool, dailyLimit int, now time.Time) (ImportResult, error) {
	var res ImportResult
	at := now.UnixMilli()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.dialect == postgres {
			// One import per owner at a time.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "contacts:"+owner); err != nil {
				return err
			}
		}
		existing := make(map[string]Contact)
		rows, err := tx.QueryContext(ctx, `SELECT number, name, photo, photo_type, deleted FROM contacts WHERE owner = $1`, owner)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				c   Contact
				del int
			)
			if err := rows.Scan(&c.Number, &c.Name, &c.Photo, &c.PhotoType, &del); err != nil {
				rows.Close()
				return err
			}
			c.Deleted = del != 0
			existing[c.Number] = c
		}
		if err := rows.Close(); err != nil {
			return err
		}
		looked := make(map[string]bool)
		rows, err = tx.QueryContext(ctx, `SELECT number FROM lookups WHERE owner = $1`, owner)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			looked[n] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		var fresh []string
		for _, c := range contacts {
			if !looked[c.Number] {
				looked[c.Number] = true
				fresh = append(fresh, c.Number)
			}
		}
		if dailyLimit > 0 && len(fresh) > 0 {
			var used int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM lookups WHERE owner = $1 AND at >= $2`,
				owner, at-24*3600*1000).Scan(&used); err != nil {
				return err
			}
			if used+len(fresh) > dailyLimit {
				return &LookupLimitError{New: len(fresh), Used: used, Limit: dailyLimit}
			}
		}
		var lookups []any
		for _, n := range fresh {
			lookups = append(lookups, owner, n, at)
		}
		// fresh holds no number already looked up, and imports for one owner
		// run one at a time: a plain insert (or COPY) cannot conflict.
		if err := s.insertRows(ctx, tx, "lookups", []string{"owner", "number", "at"}, lookups); err != nil {
			return err
		}
		var added []any
		seen := make(map[string]bool, len(contacts))
		book := make([]Contact, 0, len(contacts)+len(existing))
		for _, c := range contacts {
			if seen[c.Number] {
				continue // as the rows below hold it once
			}
			seen[c.Number] = true
			old, ok := existing[c.Number]
			stored := Contact{Owner: owner, Number: c.Number, Name: c.Name, PhotoType: c.PhotoType}
			switch {
			case !ok:
				res.Added++
				var photo any // NULL without a photo (COPY would store an empty one)
				if c.Photo != nil {
					photo = c.Photo
				}
				added = append(added, owner, c.Number, c.Name, photo, c.PhotoType, at)
			case old.Deleted || old.Name != c.Name || (c.Photo != nil && !bytes.Equal(old.Photo, c.Photo)):
				if old.Deleted {
					res.Added++
				} else {
					res.Changed++
				}
				photo, ptype := c.Photo, c.PhotoType
				if photo == nil {
					photo, ptype = old.Photo, old.PhotoType
				}
				stored.PhotoType = ptype
				_, err = tx.ExecContext(ctx, `UPDATE contacts SET name = $1, photo = $2, photo_type = $3, deleted = 0, `+markItem+`
					WHERE owner = $4 AND number = $5`, c.Name, photo, ptype, owner, c.Number)
			default:
				res.Unchanged++
				stored.PhotoType = old.PhotoType
			}
			if err != nil {
				return err
			}
			book = append(book, stored)
		}
		if err := s.insertRows(ctx, tx, "contacts", []string{"owner", "number", "name", "photo", "photo_type", "added_at"}, added); err != nil {
			return err
		}
		for n, old := range existing {
			if seen[n] || old.Deleted {
				continue
			}
			if !replace {
				book = append(book, Contact{Owner: owner, Number: n, Name: old.Name, PhotoType: old.PhotoType})
				continue
			}
			res.Removed++
			if _, err := tx.ExecContext(ctx, `UPDATE contacts SET deleted = 1, `+markItem+` WHERE owner = $1 AND number = $2`, owner, n); err != nil {
				return err
			}
		}
		slices.SortFunc(book, func(a, b Contact) int {
			return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Number, b.Number))
		})
		res.Book = book
		// Forget lookups older than a day that are not in the book.
		_, err = tx.ExecContext(ctx, `DELETE FROM lookups WHERE owner = $1 AND at < $2
			AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.owner = lookups.owner AND c.number = lookups.number)`, owner, at-24*3600*1000)
		return err
	})
	if err != nil {
		var le *LookupLimitError
		if errors.As(err, &le) {
			return res, le
		}
		return res, fmt.Errorf("store: import contacts: %w", err)
	}
	return res, nil
}

// ContactsOf returns owner's address book (without deleted entries),
// ordered by name then number.
func (s *Store) ContactsOf(ctx context.Context, owner string) ([]Contact, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT number, name, photo_type FROM contacts WHERE owner = $1 AND deleted = 0 ORDER BY name, number`, owner)
	if err != nil {
		return nil, fmt.Errorf("store: contacts: %w", err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		c := Contact{Owner: owner}
		if err := rows.Scan(&c.Number, &c.Name, &c.PhotoType); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ContactOf returns one contact of owner's (with its photo), or ErrNotFound.
func (s *Store) ContactOf(ctx context.Context, owner, number string) (Contact, error) {
	c := Contact{Owner: owner, Number: number}
	err := s.db.QueryRowContext(ctx, `SELECT name, photo, photo_type FROM contacts WHERE owner = $1 AND number = $2 AND deleted = 0`,
		owner, number).Scan(&c.Name, &c.Photo, &c.PhotoType)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("store: contact: %w", err)
	}
	return c, nil
}

// HoldersAmong returns those of owners whose address books hold number:
// the owners are looked up by key, a chunk at a time, so the work is
// bounded by the list, not by how many books hold the number.
func (s *Store) HoldersAmong(ctx context.Context, number string, owners []string) (map[string]bool, error) {
	out := make(map[string]bool)
	const chunk = 512
	for len(owners) > 0 {
		n := min(len(owners), chunk)
		// Padded (see bindingMap), so a few prepared statements serve every size.
		args := strArgs([]any{number}, pad(owners[:n]))
		rows, err := s.query(ctx, `SELECT owner FROM contacts WHERE number = $1 AND deleted = 0 AND owner IN (`+inList(2, len(args)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: holders: %w", err)
		}
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: holders: %w", err)
			}
			out[o] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: holders: %w", err)
		}
		owners = owners[n:]
	}
	return out, nil
}

// DropContacts marks owner's whole address book deleted (the roster worker
// then removes the items and the rows).
func (s *Store) DropContacts(ctx context.Context, owner string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE contacts SET deleted = 1, `+markItem+` WHERE owner = $1`, owner)
	if err != nil {
		return fmt.Errorf("store: drop contacts: %w", err)
	}
	return nil
}

// DirtyContacts returns up to limit contacts whose roster items need a push.
func (s *Store) DirtyContacts(ctx context.Context, limit int) ([]Contact, error) {
	return s.DirtyContactsAfter(ctx, "", limit)
}

// DirtyContactsAfter returns up to limit contacts whose roster items need
// a push, of owners after the bare JID after (in byte order), by owner and
// number: a worker that goes on after the last owner it read serves owners
// in turn, so that one who keeps many contacts changing holds back nobody.
func (s *Store) DirtyContactsAfter(ctx context.Context, after string, limit int) ([]Contact, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT owner, number, name, deleted, mark, item_dirty, user_item FROM contacts
		WHERE dirty = 1 AND owner > $1 ORDER BY owner, number LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: dirty contacts: %w", err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		var (
			c               Contact
			del, item, mine int
		)
		if err := rows.Scan(&c.Owner, &c.Number, &c.Name, &del, &c.mark, &item, &mine); err != nil {
			return nil, err
		}
		c.Deleted, c.itemDirty, c.UserItem = del != 0, item, mine != 0
		out = append(out, c)
	}
	return out, rows.Err()
}

// ContactsPushed records that the given contacts' roster items are as
// they were read: clean, and deleted rows gone; and which items are the
// user's (UserItem). A row changed since it was read stays dirty.
func (s *Store) ContactsPushed(ctx context.Context, pushed []Contact) error {
	var gone, kept []any
	for _, c := range pushed {
		if c.Deleted {
			gone = append(gone, c.Owner, c.Number, c.mark)
			continue
		}
		mine := 0
		if c.UserItem {
			mine = 1
		}
		kept = append(kept, c.Owner, c.Number, c.mark, mine)
	}
	// Rows match on the mark read: one marked again since (a rebind while
	// the worker pushed) stays dirty. SQLite runs a cached statement per
	// row, in process; PostgreSQL a statement per thousand rows (a row at
	// a time took 2.7 s for 10,000).
	// (The VALUES' parameters are text to PostgreSQL: the mark is cast.)
	del := `DELETE FROM contacts USING (VALUES %s) AS v
		WHERE v.column1 = contacts.owner AND v.column2 = contacts.number AND CAST(v.column3 AS BIGINT) = contacts.mark AND contacts.deleted = 1`
	upd := `UPDATE contacts SET dirty = 0, item_dirty = 0, user_item = CAST(v.column4 AS SMALLINT) FROM (VALUES %s) AS v
		WHERE v.column1 = contacts.owner AND v.column2 = contacts.number AND CAST(v.column3 AS BIGINT) = contacts.mark AND contacts.deleted = 0`
	chunk := 1000
	if s.dialect == sqlite {
		del = `DELETE FROM contacts WHERE owner = $1 AND number = $2 AND mark = $3 AND deleted = 1`
		upd = `UPDATE contacts SET dirty = 0, item_dirty = 0, user_item = $4 WHERE owner = $1 AND number = $2 AND mark = $3 AND deleted = 0`
		chunk = 1
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, w := range []struct {
			args  []any
			q     string
			width int
		}{{gone, del, 3}, {kept, upd, 4}} {
			for args := w.args; len(args) > 0; {
				n, q := min(len(args)/w.width, chunk), w.q
				if chunk > 1 {
					q = fmt.Sprintf(q, valuesList(n, w.width))
				}
				if _, err := s.txExec(ctx, tx, q, args[:w.width*n]...); err != nil {
					return fmt.Errorf("store: contacts pushed: %w", err)
				}
				args = args[w.width*n:]
			}
		}
		return nil
	})
}

// insertChunk is the most rows insertRows puts in one SQLite statement.
const insertChunk = 128

// insertRows inserts rows into table, len(cols) values each in args. On
// PostgreSQL they go in one COPY. SQLite takes them in statements of up
// to insertChunk rows (see chunk): 10,000 rows cost 80 statements, not
// 10,000 (each a trip through database/sql and the driver's locks).
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, table string, cols []string, args []any) error {
	if len(args) == 0 {
		return nil
	}
	if s.dialect == sqlite {
		head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
		w := len(cols)
		for len(args) > 0 {
			n := chunk(len(args)/w, insertChunk)
			if _, err := s.txExec(ctx, tx, head+valuesList(n, w), args[:n*w]...); err != nil {
				return err
			}
			args = args[n*w:]
		}
		return nil
	}
	st, err := tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return err
	}
	defer st.Close()
	for ; len(args) > 0; args = args[len(cols):] {
		if _, err := st.ExecContext(ctx, args[:len(cols)]...); err != nil {
			return err
		}
	}
	_, err = st.ExecContext(ctx)
	return err
}
