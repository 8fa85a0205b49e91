package store_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

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
// Submitted messages from before 17 wait for receipts since their last
// change.
func TestMigrateSent(t *testing.T) { dsns(t, testMigrateSent) }

func testMigrateSent(t *testing.T, dsn string) {
	ctx := context.Background()
	s := openStore(t, dsn)
	ms := []*store.Outbound{
		{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: bobNum, StanzaID: "a", Body: "no fallback", PeerJID: bobJID},
		{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: bobNum, StanzaID: "b", Body: "fallback", PeerJID: bobJID, FallbackAt: time.Now().Add(time.Hour)},
	}
	must(t, s.AcceptOutbound(ctx, ms))
	sms := accept(t, s, 1)
	claimOne(t, s, "a")
	if _, err := s.PartSubmitted(ctx, sms.ID, 1, "", []string{"m1"}); err != nil {
		t.Fatal(err)
	}
	// Back to before the migrations: every relay was relayed, and a
	// submitted message did not say since when it waits.
	must(t, store.Exec(s, `DELETE FROM schema_migrations WHERE version IN (16, 17)`))
	must(t, store.Exec(s, `UPDATE messages SET state = 'relayed' WHERE peer_jid <> ''`))
	must(t, store.Exec(s, `UPDATE messages SET next_attempt_at = 0 WHERE peer_jid = ''`))
	if d, err := s.QueueDepths(ctx); err != nil || d[store.StateRelayed] != 2 {
		t.Fatalf("before: %v, %v", d, err)
	}
	if n, err := s.EndReceiptWaits(ctx, time.Now().Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("a message with no wait recorded ended: %d, %v", n, err)
	}
	s.Close()

	s = openStore(t, dsn)
	defer s.Close()
	for i, want := range []string{store.StateSent, store.StateRelayed} {
		if st, _, err := s.MessageState(ctx, ms[i].ID); err != nil || st != want {
			t.Errorf("%s: state %q, %v; want %s", ms[i].Body, st, err, want)
		}
	}
	if d, err := s.QueueDepths(ctx); err != nil || d[store.StateRelayed] != 1 {
		t.Errorf("after: %v, %v; want 1 relayed", d, err)
	}
	// The submitted one waits since its last change.
	if n, err := s.EndReceiptWaits(ctx, time.Now().Add(-time.Minute)); err != nil || n != 0 {
		t.Errorf("ended too early: %d, %v", n, err)
	}
	if n, err := s.EndReceiptWaits(ctx, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("EndReceiptWaits after the migration = %d, %v; want 1", n, err)
	}
}

// TestEndReceiptWaits: a submitted message whose receipt does not come
// within the wait ends as sent, off the queue, with no notice; a receipt
// that comes later still settles it.
func TestEndReceiptWaits(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Now().Truncate(time.Millisecond)
		store.SetClock(s, func() time.Time { return at })
		waiting := func(forms ...string) *store.Outbound {
			t.Helper()
			m := accept(t, s, 1)
			claimOne(t, s, "a")
			if _, err := s.PartSubmitted(ctx, m.ID, 1, "", forms); err != nil {
				t.Fatal(err)
			}
			return m
		}
		old, late := waiting("e1"), waiting("e2")
		at = at.Add(time.Hour)
		recent := waiting("e3")

		if n, err := s.EndReceiptWaits(ctx, at.Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("ended at the boundary: %d, %v", n, err)
		}
		if n, err := s.EndReceiptWaits(ctx, at.Add(-time.Minute)); err != nil || n != 2 {
			t.Fatalf("EndReceiptWaits = %d, %v; want 2", n, err)
		}
		for m, want := range map[*store.Outbound]string{old: store.StateSent, late: store.StateSent, recent: store.StateSubmitted} {
			if st, _, err := s.MessageState(ctx, m.ID); err != nil || st != want {
				t.Errorf("message %d: %q, %v; want %s", m.ID, st, err, want)
			}
		}
		if d, err := s.QueueDepths(ctx); err != nil || d[store.StateSubmitted] != 1 {
			t.Errorf("depths = %v, %v; want 1 submitted", d, err)
		}
		if ns := notices(t, s); len(ns) != 0 {
			t.Errorf("notices for unconfirmed messages: %+v", ns)
		}
		// A late receipt still delivers it, with the receipt its sender asked for.
		if r, err := s.Receipt(ctx, "", []string{"e2"}, "DELIVRD", ""); err != nil || !r.Final || r.State != store.StateDelivered {
			t.Fatalf("late receipt = %+v, %v", r, err)
		}
		if ns := notices(t, s); len(ns) != 1 || ns[0].ID != late.ID {
			t.Errorf("notices after the late receipt = %+v", ns)
		}
		// Those sent are over: pruned like delivered ones.
		if n, err := s.Prune(ctx, at.Add(time.Second)); err != nil || n != 2 {
			t.Errorf("Prune = %d, %v; want 2 (the sent and the late delivered)", n, err)
		}
	})
}

// TestWorkIndex checks that every read of the work queue uses the index
// messages_work, which holds only the messages at work (see inWork): its
// condition must appear, word for word, in each (SQLite), and be proved
// from it (PostgreSQL).
func TestWorkIndex(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		plans, err := store.WorkPlans(s)
		if err != nil {
			t.Fatal(err)
		}
		for name, plan := range plans {
			if !strings.Contains(plan, "messages_work") {
				t.Errorf("plan of %s:\n%s\nwant the index messages_work", name, plan)
			}
		}
	})
}
