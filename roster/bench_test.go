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
	"switchboard/router"
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
func bulkRegister(b *testing.B, db *sql.DB, driver string, n int) {
	b.Helper()
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

// holdAll puts num in the books of the owners of the book's registered
// numbers (ui@example.com for every even contact i·step), already pushed.
func holdAll(b *testing.B, db *sql.DB, driver, num string) {
	b.Helper()
	const step = registrations / bookSize
	var q string
	if driver == "postgres" {
		q = `INSERT INTO contacts (owner, number, added_at, dirty)
			SELECT 'u' || (g * $2) || '@example.com', $1, 0, 0 FROM generate_series(0, $3 - 1, 2) g`
	} else {
		q = `WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 2 FROM g WHERE x + 2 < $3)
			INSERT INTO contacts (owner, number, added_at, dirty)
			SELECT 'u' || (x * $2) || '@example.com', $1, 0, 0 FROM g`
	}
	if _, err := db.Exec(q, num, step, bookSize); err != nil {
		b.Fatalf("holders of %s: %v", num, err)
	}
}

// countPresence counts the presence the roster worker sends: to the
// uploader, and to others.
type countPresence struct {
	owner       string
	own, others int
}

func (c *countPresence) PushRoster(context.Context, jid.JID, []roster.Item) ([]jid.JID, error) {
	return nil, nil
}

func (c *countPresence) ContactPresence(_ context.Context, _, to jid.JID, _ bool, _ string) error {
	if to.String() == c.owner {
		c.own++
	} else {
		c.others++
	}
	return nil
}

// book is an address book of bookSize contacts, half of them registered.
// The other half, nobody's, are +1 201 xxx with the exchange 300 + k: a
// book of another k has none of them, so that the gateway has seen none
// before (it remembers numbers' regions, which the SMS limits check).
func book(b *testing.B, k int) []addressbook.Contact {
	if k < 0 || k >= 600 {
		b.Fatalf("book %d: exchanges 300 to 899 only", k)
	}
	out := make([]addressbook.Contact, bookSize)
	for i := range out {
		raw := registered(i * (registrations / bookSize))
		if i%2 == 1 {
			raw = fmt.Sprintf("+1201%03d%04d", 300+k, i) // nobody's
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
// contacts, look every number up, check the others against the SMS
// limits, report who is on XMPP), the lookup alone, and the roster
// worker's pushes after the upload. The target is under 300 ms per upload.
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
		var db *sql.DB
		if driver == "sqlite" {
			// With the SQLite library the store links (its driver's name
			// differs between the cgo and the pure-Go build).
			db, err = store.OpenSQLite(strings.TrimPrefix(dsn, "sqlite:"))
		} else {
			db, err = sql.Open(driver, dsn)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		bulkRegister(b, db, driver, registrations)
		// The demo's SMS limits, as the router applies them (serve wires the same).
		rt := router.New(router.Config{Limits: router.Limits{
			AllowedRegions: []string{"US", "CA"}, BlockedPrefixes: []string{"+1900", "+1976", "+449"},
		}}, st)
		svc := roster.New(roster.Config{Component: jid.MustParse("sms.example.com"), DailyLookups: 1 << 30, Refuse: rt.Forbidden}, st)
		contacts := book(b, 0)
		owner := 0
		b.Run(engine+"/upload", func(b *testing.B) {
			for b.Loop() {
				// A book of numbers the gateway has not seen before: the
				// worst case, what a first upload of new numbers costs.
				b.StopTimer()
				owner++
				fresh := book(b, owner%600)
				b.StartTimer()
				rep, err := svc.Merge(context.Background(), jid.MustParse(fmt.Sprintf("owner%d@example.com", owner)), fresh)
				if err != nil {
					b.Fatal(err)
				}
				if on, sms := rep.OnXMPP(), rep.BySMS(); on != bookSize/2 || sms != bookSize/2 {
					b.Fatalf("%d contacts on XMPP and %d by SMS, want %d each", on, sms, bookSize/2)
				}
			}
		})
		// The roster worker after such an upload by a registered user whose
		// number every registered contact has: 10,000 roster items and
		// presences to the uploader, and 5,000 presences (now "on XMPP")
		// to the contacts.
		if _, err := db.Exec(`UPDATE contacts SET dirty = 0`); err != nil {
			b.Fatal(err)
		}
		b.Run(engine+"/push", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				owner++
				j := fmt.Sprintf("owner%d@example.com", owner)
				num := fmt.Sprintf("+12014%06d", owner)
				if _, err := st.Bind(context.Background(), num, j, "operator"); err != nil {
					b.Fatal(err)
				}
				holdAll(b, db, driver, num)
				if _, err := svc.Merge(context.Background(), jid.MustParse(j), contacts); err != nil {
					b.Fatal(err)
				}
				if driver == "postgres" {
					// What autovacuum does within its minute: without it the
					// planner takes the grown table for an empty one.
					if _, err := db.Exec(`ANALYZE contacts`); err != nil {
						b.Fatal(err)
					}
				}
				count := &countPresence{owner: j}
				svc.SetPusher(count)
				b.StartTimer()
				svc.PushAll(context.Background())
				if count.own != bookSize || count.others != bookSize/2 {
					b.Fatalf("%d presences to the uploader and %d to others, want %d and %d", count.own, count.others, bookSize, bookSize/2)
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
