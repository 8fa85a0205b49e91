//go:build !cgo

package store

import (
	"database/sql"
	"net/url"

	_ "modernc.org/sqlite" // SQLite driver
)

// SQLiteLibrary names the SQLite library this build links (see sqlite_cgo.go).
const SQLiteLibrary = "modernc.org/sqlite (no cgo)"

// openSQLite opens the file at path, running each pragma ("name(value)") on
// every new connection; immediate makes BEGIN take the write lock at once.
func openSQLite(path string, pragmas []string, immediate bool) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if immediate {
		q.Set("_txlock", "immediate")
	}
	return sql.Open("sqlite", "file:"+path+"?"+q.Encode())
}
