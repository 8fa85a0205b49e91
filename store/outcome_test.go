package store_test

import (
	"context"
	"errors"
	"testing"

	"switchboard/store"
)

// TestReceiptsInProgress: receipts whose state decides nothing (in
// progress, and UNKNOWN) change nothing, so the receipt that decides the
// part, after them, still settles it.
func TestReceiptsInProgress(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := accept(t, s, 1)
		claimOne(t, s, "a")
		if _, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{"p1"}); err != nil {
			t.Fatal(err)
		}
		for _, stat := range []string{"ENROUTE", "ACCEPTD", "BUFFRED", "BUFFERD", "ACKED", "UNKNOWN"} {
			if res, err := s.Receipt(ctx, "", []string{"p1"}, stat, "000"); err != nil || res.Final {
				t.Fatalf("Receipt %s = %+v, %v", stat, res, err)
			}
			if st, why, _ := s.MessageState(ctx, m.ID); st != store.StateSubmitted {
				t.Fatalf("after %s: %s (%s), want submitted", stat, st, why)
			}
		}
		if res, err := s.Receipt(ctx, "", []string{"p1"}, "DELIVRD", "000"); err != nil || !res.Final || res.State != store.StateDelivered {
			t.Fatalf("Receipt DELIVRD after them = %+v, %v", res, err)
		}
	})
}

// TestFinalStaysFinal: a part the carrier reported failed stays failed: a
// DELIVRD for its id afterwards changes nothing of it, and is kept as the
// early receipt of a part whose submit_sm_resp is not recorded yet. For an
// SMSC that reuses ids, that is another message's: it is delivered, the
// failed one is not. In one batch as in calls apart.
func TestFinalStaysFinal(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := accept(t, s, 1)
		claimOne(t, s, "i")
		if _, err := s.PartSubmitted(ctx, a.ID, 1, "", []string{"x1"}); err != nil {
			t.Fatal(err)
		}
		if res, err := s.Receipt(ctx, "", []string{"x1"}, "UNDELIV", "001"); err != nil || res.State != store.StateFailed {
			t.Fatalf("Receipt UNDELIV = %+v, %v", res, err)
		}
		if ns := notices(t, s); len(ns) != 1 || ns[0].ID != a.ID || ns[0].State != store.StateFailed {
			t.Fatalf("notices after the failure = %+v", ns)
		}
		// The SMSC gives x1 again, to b, and its DELIVRD comes before b's
		// submit_sm_resp is recorded.
		b := accept(t, s, 1)
		claimOne(t, s, "i")
		if res, err := s.Receipt(ctx, "", []string{"x1"}, "DELIVRD", "000"); err != nil || res.Final {
			t.Fatalf("Receipt DELIVRD for the reused id = %+v, %v; want nothing settled", res, err)
		}
		if final, err := s.PartSubmitted(ctx, b.ID, 1, "", []string{"x1"}); err != nil || !final {
			t.Fatalf("PartSubmitted of b after its early receipt = %v, %v; want final", final, err)
		}
		for id, want := range map[int64]string{a.ID: store.StateFailed, b.ID: store.StateDelivered} {
			if st, _, _ := s.MessageState(ctx, id); st != want {
				t.Errorf("message %d is %s, want %s", id, st, want)
			}
		}
		if ns := notices(t, s); len(ns) != 1 || ns[0].ID != b.ID || ns[0].State != store.StateDelivered {
			t.Fatalf("notices after the reused id = %+v; want b's delivery only", ns)
		}

		// In one batch.
		c := accept(t, s, 1)
		claimOne(t, s, "i")
		ops := []*store.Outcome{
			{Part: true, Msg: c.ID, Seq: 1, Forms: []string{"c1"}},
			{Forms: []string{"c1"}, State: "UNDELIV", Err: "001"},
			{Forms: []string{"c1"}, State: "DELIVRD"},
		}
		if err := store.ApplyOutcomes(s, ops); err != nil {
			t.Fatal(err)
		}
		if r := ops[1].Res; !r.Final || r.State != store.StateFailed {
			t.Errorf("UNDELIV in the batch = %+v, want failed", r)
		}
		if r := ops[2].Res; r.Final {
			t.Errorf("DELIVRD after it in the batch = %+v, want nothing settled", r)
		}
		if st, _, _ := s.MessageState(ctx, c.ID); st != store.StateFailed {
			t.Fatalf("state after the batch: %s, want failed", st)
		}
	})
}

// TestResubmittedAfterSettled: a part recorded and delivered, then
// submitted again (its lease was lost) in the batch where another part
// delivers the message, leaves the message delivered, as one call at a
// time would: the first part's record reports it final.
func TestResubmittedAfterSettled(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := accept(t, s, 2)
		claimOne(t, s, "a")
		if _, err := s.PartSubmitted(ctx, m.ID, 2, "", []string{"b"}); err != nil {
			t.Fatal(err)
		}
		if res, err := s.Receipt(ctx, "", []string{"b"}, "DELIVRD", "000"); err != nil || !res.Matched || res.Final {
			t.Fatalf("Receipt for part 2 = %+v, %v", res, err)
		}
		// Part 1's receipt before its submit_sm_resp: kept early.
		if res, err := s.Receipt(ctx, "", []string{"a"}, "DELIVRD", "000"); err != nil || res.Matched {
			t.Fatalf("early Receipt for part 1 = %+v, %v", res, err)
		}
		ops := []*store.Outcome{
			{Part: true, Msg: m.ID, Seq: 1, Forms: []string{"a"}},
			{Part: true, Msg: m.ID, Seq: 2, Forms: []string{"c"}},
		}
		if err := store.ApplyOutcomes(s, ops); err != nil {
			t.Fatal(err)
		}
		if !ops[0].Final || ops[1].Final {
			t.Errorf("final: part 1 %v, part 2 again %v; want true, false", ops[0].Final, ops[1].Final)
		}
		if st, why, _ := s.MessageState(ctx, m.ID); st != store.StateDelivered {
			t.Errorf("message is %s (%s), want delivered", st, why)
		}
	})
}

// TestPartSubmittedErrors: what the store refuses as asked, and a message
// that is gone, are told apart from the database's errors.
func TestPartSubmittedErrors(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := accept(t, s, 1)
		claimOne(t, s, "a")
		if _, err := s.PartSubmitted(ctx, m.ID, 1, "", nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PartSubmitted without an id: %v, want ErrInvalid", err)
		}
		if _, err := s.Receipt(ctx, "", nil, "DELIVRD", ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Receipt without an id: %v, want ErrInvalid", err)
		}
		if _, err := s.PartSubmitted(ctx, m.ID+1000, 1, "", []string{"x"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PartSubmitted for no message: %v, want ErrNotFound", err)
		}
	})
}

// TestOddSMSCIDs records SMSC ids an array literal must quote (PostgreSQL
// reads and writes a batch's ids as arrays) and matches their receipts:
// an SMSC's message_id is any C string.
func TestOddSMSCIDs(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, id := range []string{"NULL", `{"1",2}`, `a\b"c`, "with space", "ünï"} {
			m := accept(t, s, 1)
			claimOne(t, s, "i")
			if _, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{id}); err != nil {
				t.Fatalf("PartSubmitted %q: %v", id, err)
			}
			if res, err := s.Receipt(ctx, "", []string{id}, "DELIVRD", "000"); err != nil || !res.Matched || res.Message != m.ID || res.State != store.StateDelivered {
				t.Fatalf("Receipt %q = %+v, %v; want message %d delivered", id, res, err, m.ID)
			}
		}
	})
}
