package testenv_test

import (
	"database/sql"
	"testing"

	"switchboard/internal/testenv"
)

// TestPrivatePostgresRestart: data survives a restart on the same port, and
// connections fail while the server is stopped.
func TestPrivatePostgresRestart(t *testing.T) {
	t.Parallel()
	p := testenv.StartPrivatePostgres(t)
	ctx := timeout(t)
	db, err := sql.Open("postgres", p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)
	if err := db.PingContext(ctx); err == nil {
		t.Error("ping succeeded while stopped")
	}
	p.Start(t)
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: %d, %v", v, err)
	}
	p.Restart(t)
	if err := db.QueryRowContext(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after Restart: %d, %v", v, err)
	}
}
