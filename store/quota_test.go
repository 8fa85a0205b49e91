package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"switchboard/store"
)

// TestSMSSent counts SMS per user over a minute and a day, and everyone's
// over a minute: SMS stored to go and relays fallen back to SMS count,
// relays still over XMPP do not; the global count forgets seconds more than
// a minute old, and Sweep deletes the seconds and users' counts no count
// reads. A user's SMS are counted only while CountSMSPerUser is on.
func TestSMSSent(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := epoch
		store.SetClock(s, func() time.Time { return now })
		s.CountSMSPerUser(true)
		accept := func(ms ...store.Outbound) []int64 {
			t.Helper()
			var ptrs []*store.Outbound
			for i := range ms {
				ms[i].Parts = max(ms[i].Parts, 1)
				ptrs = append(ptrs, &ms[i])
			}
			must(t, s.AcceptOutbound(ctx, ptrs))
			var ids []int64
			for _, m := range ptrs {
				ids = append(ids, m.ID)
			}
			return ids
		}
		bobTo := func(dest string) store.Outbound {
			return store.Outbound{SenderJID: bobJID + "/pc", SenderNumber: bobNum, Dest: dest, Body: "b"}
		}
		check := func(what string, wantAlice, wantBob store.SMSCounts, wantGlobal int) {
			t.Helper()
			counts, global, err := s.SMSSent(ctx, []string{aliceJID, bobJID}, now.Add(-time.Minute), now.Add(-24*time.Hour))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if counts[aliceJID] != wantAlice || counts[bobJID] != wantBob || global != wantGlobal {
				t.Errorf("%s: alice %+v, bob %+v, everyone %d; want %+v, %+v, %d",
					what, counts[aliceJID], counts[bobJID], global, wantAlice, wantBob, wantGlobal)
			}
		}

		accept(aliceTo(phoneNum, "a1", "x"), aliceTo(otherPhone, "a2", "y"), bobTo(phoneNum))
		// A relay to a registered user is no SMS, until it falls back: then
		// its two parts are two SMS, as the carrier bills them.
		relay := accept(store.Outbound{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: bobNum, StanzaID: "r", Body: "r", PeerJID: bobJID,
			FallbackAt: now.Add(30 * time.Second), Parts: 2})[0]
		check("accepted", store.SMSCounts{Minute: 2, Day: 2}, store.SMSCounts{Minute: 1, Day: 1}, 3)

		now = now.Add(30 * time.Second)
		if ms, err := s.FallBackIDs(ctx, []int64{relay}, now); err != nil || len(ms) != 1 {
			t.Fatalf("FallBackIDs = %v, %v", ms, err)
		}
		check("fallen back", store.SMSCounts{Minute: 4, Day: 4}, store.SMSCounts{Minute: 1, Day: 1}, 5)

		// 45 s later the first three are out of a user's minute; the
		// relay counts from when it fell back, for the user as for
		// everyone (the limits check a fallback then).
		now = now.Add(45 * time.Second)
		accept(bobTo(otherPhone))
		check("a minute on", store.SMSCounts{Minute: 2, Day: 4}, store.SMSCounts{Minute: 1, Day: 2}, 3)

		// Two hours on, the sweep deletes what no minute reads any more.
		now = now.Add(2 * time.Hour)
		accept(bobTo(phoneNum))
		check("hours on", store.SMSCounts{Minute: 0, Day: 4}, store.SMSCounts{Minute: 1, Day: 3}, 1)
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		var rows int
		must(t, store.QueryRow(s, `SELECT count(*) FROM sms_seconds`).Scan(&rows))
		if rows != 1 {
			t.Errorf("%d seconds kept after the sweep, want 1 (the last)", rows)
		}

		// A day on, the sweep deletes the users' counts of the first day,
		// and the day counts of the last hours are still read.
		now = now.Add(23 * time.Hour)
		check("a day on", store.SMSCounts{}, store.SMSCounts{Day: 1}, 0)
		now = now.Add(2 * time.Hour)
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		must(t, store.QueryRow(s, `SELECT count(*) FROM sms_user_counts`).Scan(&rows))
		if rows != 1 {
			t.Errorf("%d user counts kept after the sweep, want 1 (bob's last)", rows)
		}

		// Off, users' SMS are not counted; everyone's still are.
		s.CountSMSPerUser(false)
		accept(bobTo(phoneNum), aliceTo(phoneNum, "a3", "z"))
		relay = accept(store.Outbound{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: bobNum, StanzaID: "r2", Body: "r", PeerJID: bobJID,
			FallbackAt: now})[0]
		if ms, err := s.FallBackIDs(ctx, []int64{relay}, now); err != nil || len(ms) != 1 {
			t.Fatalf("FallBackIDs = %v, %v", ms, err)
		}
		check("not counting", store.SMSCounts{}, store.SMSCounts{}, 3)
		must(t, store.QueryRow(s, `SELECT count(*) FROM sms_user_counts`).Scan(&rows))
		if rows != 1 {
			t.Errorf("%d user counts with counting off, want the 1 from before", rows)
		}
	})
}

// The migration to sms_user_counts carries over each user's SMS of the
// last day from the messages, so the limits hold across the upgrade.
func TestMigrateSMSCounts(t *testing.T) { dsns(t, testMigrateSMSCounts) }

func testMigrateSMSCounts(t *testing.T, dsn string) {
	ctx := context.Background()
	s := openStore(t, dsn)
	ms := []*store.Outbound{
		{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: phoneNum, Body: "now", Parts: 1},
		{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: otherPhone, Body: "an hour ago", Parts: 1},
		{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: phoneNum, Body: "two days ago", Parts: 1},
		{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: bobNum, Body: "over XMPP", Parts: 1, PeerJID: bobJID},
	}
	must(t, s.AcceptOutbound(ctx, ms))
	// Back to the schema before the migration.
	for _, q := range []string{
		`DELETE FROM schema_migrations WHERE version = 15`,
		`DROP TABLE sms_user_counts`,
		`CREATE INDEX messages_sms_quota ON messages (user_bare, created_at) WHERE direction = 'out' AND route = 'sms'`,
		fmt.Sprintf(`UPDATE messages SET created_at = %d WHERE id = %d`, time.Now().Add(-time.Hour).UnixMilli(), ms[1].ID),
		fmt.Sprintf(`UPDATE messages SET created_at = %d WHERE id = %d`, time.Now().Add(-48*time.Hour).UnixMilli(), ms[2].ID),
	} {
		must(t, store.Exec(s, q))
	}
	s.Close()

	s = openStore(t, dsn)
	defer s.Close()
	now := time.Now()
	counts, _, err := s.SMSSent(ctx, []string{aliceJID}, now.Add(-time.Minute), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.SMSCounts{Minute: 1, Day: 2}); counts[aliceJID] != want {
		t.Errorf("alice's SMS after the migration: %+v, want %+v", counts[aliceJID], want)
	}
}
