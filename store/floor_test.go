package store_test

import (
	"context"
	"database/sql"
	"os/exec"
	"strings"
	"testing"

	"switchboard/internal/testenv"
)

// TestFloorScript runs testdata/pgfloor/life.sql, the pgbench script of
// scripts/pg-floor.sh (BENCHMARKS.md's floor of PostgreSQL's CPU for a
// message's rows), under pgbench itself on the store's own schema, from
// two clients at once: so a change of schema that breaks the floor shows
// here, and the script is held to what it says it does: each client's 100
// messages inserted, each submitted with a part carrying an SMSC id,
// delivered with a notice, the notice gone at the end.
func TestFloorScript(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.StartPostgres(t)
	openStore(t, dsn).Close() // the migrations
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Every notice the script inserts is recorded here, since the script
	// deletes them again.
	if _, err := db.ExecContext(ctx, `CREATE TABLE floor_noticed (message_id BIGINT NOT NULL);
		CREATE FUNCTION floor_notice() RETURNS trigger LANGUAGE plpgsql AS
			'BEGIN INSERT INTO floor_noticed VALUES (NEW.message_id); RETURN NEW; END';
		CREATE TRIGGER floor_notice AFTER INSERT ON notices FOR EACH ROW EXECUTE FUNCTION floor_notice()`); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, testenv.PostgresProgram(t, "pgbench"),
		"-n", "-c", "2", "-t", "1", "-f", "../testdata/pgfloor/life.sql", dsn).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "number of failed transactions: 0 ") {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	count := func(what, q string, want int) {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n != want {
			t.Errorf("%s: %d, want %d", what, n, want)
		}
	}
	const floor = `m.user_jid IN ('c0@floor/r', 'c1@floor/r')` // pgbench numbers its clients from 0
	count("messages delivered", `SELECT count(*) FROM messages m
		WHERE `+floor+` AND m.state = 'delivered' AND m.direction = 'out' AND m.route = 'sms'`, 200)
	count("parts delivered with their SMSC id", `SELECT count(*) FROM parts p JOIN messages m ON m.id = p.message_id
		WHERE `+floor+` AND p.state = 'delivered' AND p.smsc_id = to_hex(m.id)`, 200)
	count("messages that had a notice", `SELECT count(DISTINCT m.id) FROM floor_noticed f JOIN messages m ON m.id = f.message_id
		WHERE `+floor, 200)
	count("notices left", `SELECT count(*) FROM notices`, 0)
}
