// Package storetest opens stores for the tests of the packages that use
// one, as httptest serves HTTP for theirs.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"switchboard/internal/testenv"
	"switchboard/store"
)

// SQLite opens a store on a new SQLite file in the test's temporary
// directory, closed at the test's end.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Postgres opens a store on a fresh database of a PostgreSQL server the
// test helpers start (testenv.StartPostgres), closed at the test's end.
func Postgres(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Engines runs f against a store on a fresh SQLite file and on a fresh
// PostgreSQL database, as subtests "sqlite" and "postgres".
func Engines(t *testing.T, f func(t *testing.T, st *store.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}
