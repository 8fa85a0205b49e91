// Package storetest opens stores for the tests of the packages that use
// one, as httptest serves HTTP for theirs.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

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
