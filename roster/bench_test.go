package roster_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/roster"
	"switchboard/roster/addressbook"
	"switchboard/roster/number"
	"switchboard/store"
)

const (
	registrations = 1_000_000
	bookSize      = 10_000
)

// registered returns the number of registration i: +1 201 2xx xxxx.
func registered(i int) string { return fmt.Sprintf("+12012%06d", i) }

// bulkRegister inserts n bindings (number registered(i) ↔ ui@example.com)
// in one statement, generating the rows in the database.
func bulkRegister(b *testing.B, driver, dsn string, n int) {
	b.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var q string
	if driver == "postgres" {
		q = `INSERT INTO bindings (number, jid, method, verified_at)
			SELECT '+12012' || lpad(g::text, 6, '0'), 'u' || g || '@example.com', 'operator', 0 FROM generate_series(0, $1 - 1) g`
	} else {
		q = `WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x + 1 < $1)
			INSERT INTO bindings (number, jid, method, verified_at)
			SELECT '+12012' || printf('%06d', x), 'u' || x || '@example.com', 'operator', 0 FROM g`
	}
	begin := time.Now()
	if _, err := db.Exec(q, n); err != nil {
		b.Fatalf("bulk insert: %v", err)
	}
	if driver == "postgres" {
		if _, err := db.Exec(`ANALYZE bindings`); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d registrations inserted in %v", n, time.Since(begin).Round(time.Millisecond))
}

// book is an address book of bookSize contacts, half of them registered.
func book(b *testing.B) []addressbook.Contact {
	out := make([]addressbook.Contact, bookSize)
	for i := range out {
		raw := registered(i * (registrations / bookSize))
		if i%2 == 1 {
			raw = fmt.Sprintf("+12013%06d", i) // nobody's
		}
		n, err := number.Parse(raw, "")
		if err != nil {
			b.Fatalf("%s: %v", raw, err)
		}
		out[i] = addressbook.Contact{Name: fmt.Sprintf("Contact %d", i), Number: n}
	}
	return out
}

// BenchmarkAddressBook matches an uploaded address book of 10,000 contacts
// against 1,000,000 registrations: a new user's first upload (store the
// contacts, look every number up, report who is on XMPP). The target is
// under 300 ms per upload.
func BenchmarkAddressBook(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		var dsn, driver string
		switch engine {
		case "sqlite":
			path := filepath.Join(b.TempDir(), "sb.db")
			dsn, driver = "sqlite:"+path, "sqlite"
		case "postgres":
			dsn = testenv.StartPostgres(b)
			driver = "postgres"
		}
		st, err := store.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		raw := dsn
		if driver == "sqlite" {
			raw = "file:" + strings.TrimPrefix(dsn, "sqlite:") + "?_pragma=busy_timeout(10000)"
		}
		bulkRegister(b, driver, raw, registrations)
		svc := roster.New(roster.Config{Component: jid.MustParse("sms.example.com"), DailyLookups: 1 << 30}, st)
		contacts := book(b)
		owner := 0
		b.Run(engine+"/upload", func(b *testing.B) {
			for b.Loop() {
				owner++
				rep, err := svc.Merge(context.Background(), jid.MustParse(fmt.Sprintf("owner%d@example.com", owner)), contacts)
				if err != nil {
					b.Fatal(err)
				}
				if on := rep.OnXMPP(); on != bookSize/2 {
					b.Fatalf("%d contacts on XMPP, want %d", on, bookSize/2)
				}
			}
		})
		nums := make([]string, len(contacts))
		for i, c := range contacts {
			nums[i] = c.Number.String()
		}
		b.Run(engine+"/match", func(b *testing.B) {
			for b.Loop() {
				owners, err := st.OwnersOf(context.Background(), nums)
				if err != nil {
					b.Fatal(err)
				}
				if len(owners) != bookSize/2 {
					b.Fatalf("%d owners, want %d", len(owners), bookSize/2)
				}
			}
		})
	}
}
