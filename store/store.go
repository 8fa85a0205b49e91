// Package store persists Switchboard's state — number bindings, every message
// with its parts, SMSC ids and state, and inbound fragments — in one schema with
// two engines: PostgreSQL (github.com/lib/pq) for several instances, and an
// embedded SQLite file as the single-process default: SQLite's C through
// github.com/mattn/go-sqlite3 when built with cgo, its Go translation
// (modernc.org/sqlite) when not (SQLiteLibrary says which).
//
// Every state change is a committed transaction before the caller acts on it
// across a process boundary, so a restart resumes from the tables.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lib/pq" // PostgreSQL driver
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrInvalid is returned (wrapped) for a request the store refuses as it
// stands: asking again will not change the answer, unlike an error of the
// database.
var ErrInvalid = errors.New("store: invalid request")

// ErrResent is returned by AddFragment for a part of a message from a phone
// already delivered, that the SMSC sent again after a new bind.
var ErrResent = errors.New("store: sent again after a new bind")

// PartClash is AddFragment's error when another message's part is stored
// under the same phone, number, reference, count and sequence: the phone
// (or its SMSC) gave two messages one reference. Parts holds that other
// message's parts stored so far; nothing was stored.
type PartClash struct{ Parts []Fragment }

func (e *PartClash) Error() string {
	return "store: another message's part is stored with the same reference, count and number"
}

type dialect int

const (
	sqlite dialect = iota
	postgres
)

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// rdb serves the hot reads outside transactions, and the long ones (the
	// archive, operators' listings). On SQLite it is a second handle on the
	// file, read-only, several connections: reads then run beside the
	// writer (WAL) instead of queueing on its one connection behind a
	// commit's fsync, or holding it (a page of a user's archive of 50,000
	// messages took 0.6 s, and every write waited). On PostgreSQL it is db.
	rdb      *sql.DB
	lock     io.Closer // on SQLite opened by OpenExclusive: the file's lock (lock_unix.go)
	dsn      string    // on PostgreSQL: for the listener of ListenAnswers
	dialect  dialect
	now      func() time.Time
	group    grouper
	idForms  idForms  // how each SMSC's receipts write the ids of its submit_sm_resp (receipts.go)
	stmts    stmts    // on db
	rstmts   stmts    // on rdb (SQLite)
	rewrites rewrites // numbered arguments made anonymous (SQLite)
	// userCounts: count each user's SMS (see CountSMSPerUser).
	userCounts atomic.Bool
	handoff    struct { // see HandNotices
		owner string
		lease time.Duration
		sink  func([]Notice)
	}
}

// Open connects to dsn and applies migrations. dsn is "sqlite:PATH" (a file,
// created if missing) or a "postgres://" / "postgresql://" URL as lib/pq takes it
// (sslmode and the other lib/pq parameters are honoured).
func Open(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, false) }

// OpenExclusive is Open for switchboard serve: on SQLite it also takes the
// file for this process's gateway alone, before the migrations, and
// refuses (ErrInUse) while another holds it; the lock goes with Close, or
// with the process. SQLite is for one gateway: a second one on the same
// file would claim and submit beside the first, under another instance's
// leases, and be refused by Prosody as the component's second connection.
// Open, as switchboard numbers and check use it, still opens the file
// beside a gateway. On PostgreSQL it is Open.
func OpenExclusive(ctx context.Context, dsn string) (*Store, error) { return open(ctx, dsn, true) }

// ErrInUse is OpenExclusive's error (wrapped) when another process's
// gateway holds the SQLite file.
var ErrInUse = errors.New("store: another switchboard serve is using this SQLite file")

func open(ctx context.Context, dsn string, exclusive bool) (*Store, error) {
	var (
		s    = &Store{now: time.Now}
		err  error
		path string
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path = strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return nil, errors.New("store: sqlite: DSN has no path")
		}
		s.dialect = sqlite
		pragmas := []string{
			"journal_mode(WAL)",
			"synchronous(FULL)",
			"busy_timeout(10000)",
			// No foreign keys: parts and notices name their message, and a
			// batch of new messages in one multi-row INSERT made SQLite look
			// each one up in both (fkScanChildren, for the deferred-violation
			// count), besides the parent check of every part and notice
			// inserted. Off, a message costs about 10 % less CPU at full speed
			// (docs/benchmarks/sessions.md, nineteenth session). The store writes those rows
			// only for messages it holds, and Prune deletes a message's parts
			// with it (pruneSQLite). PostgreSQL keeps its foreign keys.
			"foreign_keys(0)",
			// Statement journals in memory, not in a temporary file: every
			// statement of a transaction that may need undoing on its own
			// (an upsert, RETURNING) wrote one, two write(2)s a page.
			"temp_store(MEMORY)",
		}
		s.db, err = openSQLite(path, pragmas, true)
		if err == nil {
			// One writer at a time is SQLite's model; a single connection
			// avoids SQLITE_BUSY and lets transactions batch the fsyncs.
			s.db.SetMaxOpenConns(1)
			s.rdb, err = openSQLite(path, append(pragmas, "query_only(1)"), false)
			if err != nil {
				s.db.Close()
			} else {
				s.rdb.SetMaxOpenConns(readConns)
				s.rdb.SetMaxIdleConns(readConns)
			}
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			// lib/pq's own message would quote the DSN, password and all.
			return nil, errors.New("store: the PostgreSQL DSN is not a valid URL (percent-encode any of @ : / ? # % in the user name or password)")
		}
		s.dialect, s.dsn = postgres, dsn
		s.db, err = sql.Open("postgres", withBinaryParameters(dsn))
		if err == nil {
			s.db.SetMaxOpenConns(16)
			s.db.SetMaxIdleConns(16)
			s.rdb = s.db
		}
	default:
		return nil, fmt.Errorf("store: DSN must start with sqlite:, postgres:// or postgresql://, got %q", redact(dsn))
	}
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", scrub(err, dsn))
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("store: connect %s: %w", redact(dsn), scrub(err, dsn))
	}
	if exclusive && s.dialect == sqlite {
		// The ping made the file.
		if s.lock, err = lockFile(path); err != nil {
			s.closeDBs()
			if errors.Is(err, ErrInUse) {
				return nil, fmt.Errorf("%w (%s): SQLite is for one gateway; stop the other, or use PostgreSQL for several instances", err, path)
			}
			return nil, fmt.Errorf("store: lock %s: %w", path, err)
		}
	}
	if err := s.migrate(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if exclusive {
		if err := s.checkWritable(ctx); err != nil {
			s.closeDBs()
			return nil, err
		}
	}
	return s, nil
}

// checkWritable makes sure the store takes writes, so that serve does not
// start on one that refuses every write later: an SQLite file another user
// made (`check` or `numbers` run as root) opens, reads, and needs no
// migration; a PostgreSQL user may lack the rights, or the server be a
// standby.
func (s *Store) checkWritable(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE name = ''`); err != nil {
		hint := "is the database read-only to this user?"
		if s.dialect == sqlite {
			hint = "is the file (or its directory) owned by another user, e.g. made by `switchboard check` or `numbers` run as root? Run those as the gateway's user, or chown the file"
		}
		return fmt.Errorf("store: the database takes no writes (%w): %s", err, hint)
	}
	return nil
}

// Close closes the database. SQLite checkpoints its write-ahead log.
func (s *Store) Close() error {
	s.stopGroup()
	s.stmts.close()
	s.rstmts.close()
	if s.dialect == sqlite {
		_, _ = s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return s.closeDBs()
}

// OpenSQLite opens the SQLite file at path with the SQLite library this
// build links, and nothing of Open (no migrations, no pragmas but a
// 10-second busy timeout): for tests and tools that look at a store's file,
// a running gateway's among them.
func OpenSQLite(path string) (*sql.DB, error) {
	return openSQLite(path, []string{"busy_timeout(10000)"}, false)
}

// readConns is how many read connections SQLite's read handle keeps.
const readConns = 4

func (s *Store) closeDBs() error {
	if s.rdb != nil && s.rdb != s.db {
		s.rdb.Close()
	}
	err := s.db.Close()
	if s.lock != nil {
		s.lock.Close()
	}
	return err
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Engine names the engine: "sqlite" or "postgres".
func (s *Store) Engine() string {
	if s.dialect == postgres {
		return "postgres"
	}
	return "sqlite"
}

func (s *Store) ms() int64 { return s.now().UnixMilli() }

// withBinaryParameters turns on lib/pq's binary_parameters unless the DSN
// sets it: a statement with arguments then costs one round trip (parse,
// bind and execute sent together) instead of two.
func withBinaryParameters(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // lib/pq reports it
	}
	q := u.Query()
	if q.Has("binary_parameters") {
		return dsn
	}
	q.Set("binary_parameters", "yes")
	u.RawQuery = q.Encode()
	return u.String()
}

// redact removes a password from a DSN for messages.
func redact(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a DSN that is no valid URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx") // lib/pq reads one there too
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dsnSecrets are the passwords a DSN holds (in its user info, and as a
// password parameter, which lib/pq reads too), as written and as read,
// each followed by "xxxxx", as strings.NewReplacer takes them.
func dsnSecrets(dsn string) []string {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil
	}
	var pairs []string
	add := func(read, written string) {
		if read != "" {
			pairs = append(pairs, read, "xxxxx")
			if written != read {
				pairs = append(pairs, written, "xxxxx")
			}
		}
	}
	if pw, _ := u.User.Password(); pw != "" {
		add(pw, strings.TrimPrefix(url.UserPassword("", pw).String(), ":"))
	}
	pw := u.Query().Get("password")
	add(pw, url.QueryEscape(pw))
	return pairs
}

// scrub hides the DSN's password wherever err's text would show it.
func scrub(err error, dsn string) error {
	if pairs := dsnSecrets(dsn); len(pairs) > 0 {
		return scrubbed{err, strings.NewReplacer(pairs...)}
	}
	return err
}

// scrubbed is an error whose text hides secrets; it unwraps to the error.
type scrubbed struct {
	err     error
	secrets *strings.Replacer
}

func (e scrubbed) Error() string { return e.secrets.Replace(e.err.Error()) }

func (e scrubbed) Unwrap() error { return e.err }

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// inList renders "$first, $first+1, …" for n values.
func inList(first, n int) string {
	b := make([]byte, 0, n*6)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = placeholder(b, first+i)
	}
	return string(b)
}

// placeholder appends "$n" to b. (fmt.Fprintf, before, was 3 % of the CPU
// of a saturated run, building these lists.)
func placeholder(b []byte, n int) []byte {
	return strconv.AppendInt(append(b, '$'), int64(n), 10)
}

// padded is n rounded up to a power of two: the length of an IN list
// padded so that few distinct statements, each prepared once on SQLite,
// serve every batch size.
func padded(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// chunk is how many of n items (n > 0) the next statement of a batch
// takes: the largest power of two not above n, at most most. Batches go
// the largest chunks first, so a few cached statements serve every size.
func chunk(n, most int) int {
	return min(1<<(bits.Len(uint(n))-1), most)
}

// pad returns v padded to padded(len(v)) by repeating its last element,
// for an IN list (a value repeated changes nothing in it). v is not
// modified.
func pad[T any](v []T) []T {
	n := padded(len(v))
	if len(v) == 0 || len(v) == n {
		return v
	}
	out := make([]T, n)
	copy(out, v)
	for i := len(v); i < n; i++ {
		out[i] = v[len(v)-1]
	}
	return out
}

// idsIn renders "col IN ($first, …)" for ids, padded (see pad), with
// their arguments; on PostgreSQL "col = ANY($first::bigint[])" with one
// array argument: one statement text for any number of ids, where a list
// of arguments made each length (each power of two) a statement of its
// own, parsed and planned anew every time it ran (PostgreSQL's statements
// are not prepared, see stmts), in time growing with the list.
func (s *Store) idsIn(col string, first int, ids []int64) (string, []any) {
	if s.dialect == postgres {
		return col + " = ANY(" + string(placeholder(nil, first)) + "::bigint[])", []any{pq.Int64Array(ids)}
	}
	ids = pad(ids)
	return col + " IN (" + inList(first, len(ids)) + ")", idArgs(nil, ids)
}

// stringsIn is idsIn for strings.
func (s *Store) stringsIn(col string, first int, ss []string) (string, []any) {
	if s.dialect == postgres {
		return col + " = ANY(" + string(placeholder(nil, first)) + "::text[])", []any{pq.StringArray(ss)}
	}
	ss = pad(ss)
	return col + " IN (" + inList(first, len(ss)) + ")", strArgs(nil, ss)
}

// idArgs appends ids to args, as statement arguments.
func idArgs(args []any, ids []int64) []any {
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

// strArgs appends ss to args, as statement arguments.
func strArgs(args []any, ss []string) []any {
	for _, s := range ss {
		args = append(args, s)
	}
	return args
}
