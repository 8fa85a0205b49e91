package store_test

import (
	"context"
	"testing"
	"time"

	"switchboard/store"
)

// TestPresences: what one instance records, another reads; a change older
// than the recorded one does not undo it (two instances writing late); an
// unavailable without resource ends every resource; the sweep drops old
// tombstones only.
func TestPresences(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := epoch
		store.SetClock(s, func() time.Time { return now })
		at := func(d time.Duration) time.Time { return epoch.Add(d) }
		set := func(cs ...store.PresenceChange) { // one handle serves: the store keeps no state of its own
			t.Helper()
			if err := s.SetPresences(ctx, cs); err != nil {
				t.Fatal(err)
			}
		}
		availRes := func(jid, resource string, want bool) {
			t.Helper()
			if got, err := s.UserAvailable(ctx, jid, resource); err != nil || got != want {
				t.Fatalf("UserAvailable(%s, %q) = %v, %v; want %v", jid, resource, got, err, want)
			}
		}
		avail := func(jid string, want bool) { t.Helper(); availRes(jid, "", want) }
		const alice, bob = "alice@example.com", "bob@example.com"
		avail(alice, false)
		set( // instance a
			store.PresenceChange{JID: alice, Resource: "phone", Available: true, At: at(time.Second)})
		avail(alice, true)
		avail(bob, false)

		// Offline through the other instance; the first's late write of an
		// older "available" changes nothing.
		set( // instance b
			store.PresenceChange{JID: alice, Resource: "phone", At: at(3 * time.Second)})
		avail(alice, false)
		set( // instance a
			store.PresenceChange{JID: alice, Resource: "phone", Available: true, At: at(2 * time.Second)})
		avail(alice, false)
		set( // instance a
			store.PresenceChange{JID: alice, Resource: "phone", Available: true, At: at(4 * time.Second)})
		avail(alice, true)

		// Two resources; unavailable from the bare JID ends both, in one
		// batch with a change after it.
		set( // instance b
			store.PresenceChange{JID: alice, Resource: "laptop", Available: true, At: at(5 * time.Second)},
			store.PresenceChange{JID: bob, Resource: "r", Available: true, At: at(5 * time.Second)},
		)
		availRes(alice, "phone", true)
		availRes(alice, "laptop", true)
		availRes(alice, "tablet", false)
		set( // instance a
			store.PresenceChange{JID: alice, At: at(6 * time.Second)},
			store.PresenceChange{JID: bob, Resource: "r2", Available: true, At: at(6 * time.Second)},
		)
		avail(alice, false)
		availRes(alice, "laptop", false)
		avail(bob, true)
		availRes(bob, "r", true)

		// Tombstones are swept once older than the keep; available rows
		// are not, however old.
		set( // instance a
			store.PresenceChange{JID: alice, Resource: "phone", At: at(10 * time.Second)},
			store.PresenceChange{JID: bob, Resource: "r", Available: true, At: at(10 * time.Second)},
		)
		now = epoch.Add(time.Hour)
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		rows, err := store.Dump(s, `SELECT jid || '/' || resource FROM presences ORDER BY jid, resource`)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0] != bob+"/r" || rows[1] != bob+"/r2" {
			t.Fatalf("after the sweep: %q; want only bob's available resources", rows)
		}
		avail(bob, true)
	})
}

// TestGrants: the latest advertisement per domain is kept; an older one
// written late changes nothing.
func TestGrants(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, ok, err := s.GrantOf(ctx, "example.com"); ok || err != nil {
			t.Fatalf("GrantOf before any = %v, %v", ok, err)
		}
		g := store.Grant{NS: "urn:xmpp:privilege:2", Roster: "both", Message: "outgoing", Presence: "roster", At: epoch.Add(time.Second)}
		older := store.Grant{NS: "urn:xmpp:privilege:1", Roster: "none", Message: "none", Presence: "none", At: epoch}
		for _, w := range []store.Grant{g, older} {
			if err := s.SetGrant(ctx, "example.com", w); err != nil {
				t.Fatal(err)
			}
		}
		got, ok, err := s.GrantOf(ctx, "example.com")
		same := got.At.Equal(g.At)
		got.At = g.At
		if err != nil || !ok || got != g || !same {
			t.Fatalf("GrantOf = %+v, %v, %v; want %+v", got, ok, err, g)
		}
		if _, ok, _ := s.GrantOf(ctx, "example.org"); ok {
			t.Fatal("a grant for another domain")
		}
	})
}

// TestEndPresencesBefore: a restart of the XMPP server ends the resources
// recorded online before it; those recorded since, and a change read
// later, are kept.
func TestEndPresencesBefore(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		start := time.Now().Add(-time.Minute)
		must(t, s.SetPresences(ctx, []store.PresenceChange{
			{JID: "a@example.com", Resource: "phone", Available: true, At: start.Add(-time.Hour)},
			{JID: "a@example.com", Resource: "laptop", Available: true, At: start.Add(-time.Second)},
			{JID: "b@example.com", Resource: "phone", Available: true, At: start.Add(time.Second)},
		}))
		n, err := s.EndPresencesBefore(ctx, start)
		if err != nil || n != 2 {
			t.Fatalf("EndPresencesBefore = %d, %v; want 2", n, err)
		}
		for _, c := range []struct {
			jid  string
			want bool
		}{{"a@example.com", false}, {"b@example.com", true}} {
			if got, err := s.UserAvailable(ctx, c.jid, ""); err != nil || got != c.want {
				t.Errorf("%s available %v, %v; want %v", c.jid, got, err, c.want)
			}
		}
		// a's phone comes back after the restart: recorded.
		must(t, s.SetPresences(ctx, []store.PresenceChange{{JID: "a@example.com", Resource: "phone", Available: true, At: time.Now()}}))
		if got, _ := s.UserAvailable(ctx, "a@example.com", "phone"); !got {
			t.Error("a's phone, back after the restart, not recorded")
		}
	})
}
