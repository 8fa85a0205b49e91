package store_test

import (
	"context"
	"database/sql"
	"os"
	"regexp"
	"strings"
	"testing"

	"switchboard/internal/testenv"
)

// TestFloorScript runs testdata/pgfloor/life.sql, the pgbench script of
// scripts/pg-floor.sh (BENCHMARKS.md's floor of PostgreSQL's CPU for a
// message's rows), on the store's own schema as pgbench would for two
// clients in turn: so a change of schema that breaks the floor shows
// here, and the script is held to what it says it does: 100 messages
// inserted, each submitted with a part carrying an SMSC id, delivered with a
// notice, the notice gone at the end.
func TestFloorScript(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.StartPostgres(t)
	openStore(t, dsn).Close() // the migrations
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	text, err := os.ReadFile("../testdata/pgfloor/life.sql")
	if err != nil {
		t.Fatal(err)
	}
	cmds := floorCommands(t, string(text))
	count := func(q string, args ...any) (n int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for _, client := range []string{"1", "2"} {
		jid := "c" + client + "@floor/r"
		conn, err := db.Conn(ctx) // one session, as a pgbench client's
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{"client_id": client}
		for i, c := range cmds {
			if i == len(cmds)-1 { // the notices' delete: each message has one now
				if n := count(`SELECT count(*) FROM notices WHERE message_id IN (SELECT id FROM messages WHERE user_jid = $1)`, jid); n != 100 {
					t.Errorf("client %s: %d notices before the last command, want 100", client, n)
				}
			}
			q := floorVar.ReplaceAllStringFunc(c.sql, func(m string) string {
				name := m[strings.LastIndexByte(m, ':')+1:]
				v, ok := vars[name]
				if !ok {
					t.Fatalf("command %d: no value for :%s", i, name)
				}
				return m[:len(m)-len(name)-1] + v
			})
			if !c.gset {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatalf("client %s, command %d: %v\n%s", client, i, err, q)
				}
				continue
			}
			rows, err := conn.QueryContext(ctx, q)
			if err != nil {
				t.Fatalf("client %s, command %d: %v\n%s", client, i, err, q)
			}
			names, _ := rows.Columns()
			vals := make([]sql.NullString, len(names))
			ptrs := make([]any, len(names))
			for j := range vals {
				ptrs[j] = &vals[j]
			}
			if !rows.Next() {
				t.Fatalf("command %d: \\gset got no row", i)
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			for j, name := range names {
				vars[name] = vals[j].String
			}
		}
		conn.Close()
		if n := count(`SELECT count(*) FROM messages WHERE user_jid = $1 AND state = 'delivered' AND direction = 'out' AND route = 'sms'`, jid); n != 100 {
			t.Errorf("client %s: %d messages delivered, want 100", client, n)
		}
		if n := count(`SELECT count(*) FROM parts p JOIN messages m ON m.id = p.message_id
			WHERE m.user_jid = $1 AND p.state = 'delivered' AND p.smsc_id = to_hex(m.id)`, jid); n != 100 {
			t.Errorf("client %s: %d parts delivered with their SMSC id, want 100", client, n)
		}
		if n := count(`SELECT count(*) FROM notices`); n != 0 {
			t.Errorf("client %s: %d notices left, want 0", client, n)
		}
	}
}

// floorVar is a pgbench variable (:name) with the character before it; a
// cast (::type) is not one.
var floorVar = regexp.MustCompile(`(?:^|[^:]):[a-z_]+`)

type floorCommand struct {
	sql  string
	gset bool // ended by \gset: its row's columns become variables
}

// floorCommands splits a pgbench script as pgbench does for the forms
// life.sql uses: comment lines dropped, a command ended by a semicolon at
// the end of a line, or by \gset.
func floorCommands(t *testing.T, text string) []floorCommand {
	var (
		cmds []floorCommand
		cur  strings.Builder
	)
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		switch {
		case strings.HasSuffix(line, `\gset`):
			cur.WriteString(strings.TrimSuffix(line, `\gset`))
			cmds = append(cmds, floorCommand{sql: cur.String(), gset: true})
			cur.Reset()
		case strings.HasSuffix(line, ";"):
			cur.WriteString(strings.TrimSuffix(line, ";"))
			cmds = append(cmds, floorCommand{sql: cur.String()})
			cur.Reset()
		default:
			cur.WriteString(line + "\n")
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		t.Fatalf("life.sql ends inside a command: %q", cur.String())
	}
	return cmds
}
