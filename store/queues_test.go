package store_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/store"
)

func TestQueueDepths(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Now().Truncate(time.Millisecond)
		store.SetClock(s, func() time.Time { return at })
		depths := func() map[string]int {
			t.Helper()
			d, err := s.QueueDepths(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		zero := map[string]int{"queued": 0, "submitting": 0, "submitted": 0, "relayed": 0, "received": 0}
		if d := depths(); !maps.Equal(d, zero) {
			t.Fatalf("empty store: %v", d)
		}
		m := accept(t, s, 1)
		accept(t, s, 1)
		claimOne := func() {
			t.Helper()
			if got, err := s.ClaimOutbound(ctx, "a", 1, time.Minute); err != nil || len(got) != 1 {
				t.Fatalf("ClaimOutbound = %v, %v", got, err)
			}
		}
		claimOne()
		claimOne()
		if _, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{"1a"}); err != nil {
			t.Fatal(err)
		}
		accept(t, s, 1)
		if err := s.AcceptInbound(ctx, &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: "hi"}); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"queued": 1, "submitting": 1, "submitted": 1, "relayed": 0, "received": 1}
		if d := depths(); !maps.Equal(d, want) {
			t.Fatalf("depths = %v, want %v", d, want)
		}

		// The receipt that settles the message says how, and since when the
		// part waited for it.
		res, err := s.Receipt(ctx, "", []string{"1a"}, "DELIVRD", "")
		if err != nil || !res.Final || res.State != store.StateDelivered || !res.SubmittedAt.Equal(at) {
			t.Fatalf("Receipt = %+v, %v", res, err)
		}
		want["submitted"] = 0
		if d := depths(); !maps.Equal(d, want) {
			t.Fatalf("depths after the receipt = %v, want %v", d, want)
		}
	})
}

// TestMigrateSent: relays stored before migration 16 with no fallback to
// wait for become sent, leaving the queue; those waiting for one stay.
func TestMigrateSent(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testMigrateSent(t, "sqlite:"+filepath.Join(t.TempDir(), "sb.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		testMigrateSent(t, testenv.StartPostgres(t))
	})
}

func testMigrateSent(t *testing.T, dsn string) {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ms := []*store.Outbound{
		{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: bobNum, StanzaID: "a", Body: "no fallback", PeerJID: bobJID},
		{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: bobNum, StanzaID: "b", Body: "fallback", PeerJID: bobJID, FallbackAt: time.Now().Add(time.Hour)},
	}
	must(t, s.AcceptOutbound(ctx, ms))
	// Back to before the migration: every relay was relayed.
	must(t, store.Exec(s, `DELETE FROM schema_migrations WHERE version = 16`))
	must(t, store.Exec(s, `UPDATE messages SET state = 'relayed'`))
	if d, err := s.QueueDepths(ctx); err != nil || d[store.StateRelayed] != 2 {
		t.Fatalf("before: %v, %v", d, err)
	}
	s.Close()

	s, err = store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, want := range []string{store.StateSent, store.StateRelayed} {
		if st, _, err := s.MessageState(ctx, ms[i].ID); err != nil || st != want {
			t.Errorf("%s: state %q, %v; want %s", ms[i].Body, st, err, want)
		}
	}
	if d, err := s.QueueDepths(ctx); err != nil || d[store.StateRelayed] != 1 {
		t.Errorf("after: %v, %v; want 1 relayed", d, err)
	}
}
