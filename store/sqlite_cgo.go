//go:build cgo

package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net/url"
	"strconv"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// SQLiteLibrary names the SQLite library this build links: with cgo, SQLite's
// own C (github.com/mattn/go-sqlite3); without, its translation to Go
// (modernc.org/sqlite, sqlite_nocgo.go).
const SQLiteLibrary = "mattn/go-sqlite3 (cgo)"

// openSQLite opens the file at path, running each pragma ("name(value)") on
// every new connection; immediate makes BEGIN take the write lock at once.
func openSQLite(path string, pragmas []string, immediate bool) (*sql.DB, error) {
	q := url.Values{}
	// database/sql hands a connection to one goroutine at a time, so
	// SQLite's own per-connection mutex (modernc.org/sqlite always takes
	// it) only costs.
	q.Set("_mutex", "no")
	if immediate {
		q.Set("_txlock", "immediate")
	}
	stmts := make([]string, len(pragmas))
	for i, p := range pragmas {
		name, value, _ := strings.Cut(strings.TrimSuffix(p, ")"), "(")
		stmts[i] = "PRAGMA " + name + " = " + value
	}
	d := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, s := range stmts {
			if _, err := c.Exec(s, nil); err != nil {
				return err
			}
		}
		return nil
	}}
	return sql.OpenDB(connector{d, "file:" + path + "?" + q.Encode()}), nil
}

type connector struct {
	d   *sqlite3.SQLiteDriver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	sc, err := c.d.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return conn{sc.(*sqlite3.SQLiteConn)}, nil
}

func (c connector) Driver() driver.Driver { return c.d }

// conn gives SQLite the store's statements with their numbered arguments
// ($1) as SQLite numbers them (?1). To SQLite, $1 is a name: go-sqlite3
// binds the first argument to the first name in the text, the second to the
// second, so `$1 … $3 … $2` took the second argument for $3 (modernc.org/sqlite
// reads the number).
// (database/sql prepares through PrepareContext, never the older Prepare.)
type conn struct{ *sqlite3.SQLiteConn }

func (c conn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.SQLiteConn.PrepareContext(ctx, numbered(q))
}

func (c conn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.SQLiteConn.ExecContext(ctx, numbered(q), args)
}

func (c conn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.SQLiteConn.QueryContext(ctx, numbered(q), args)
}

// numbered turns each $N outside quotes in q into ?N.
func numbered(q string) string {
	return renumber(q, func(n int) string { return "?" + strconv.Itoa(n) })
}
