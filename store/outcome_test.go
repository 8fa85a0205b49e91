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

// TestDeliveredAfterFailure: a DELIVRD for a part the carrier reported
// failed delivers it (the SMSC tried again); its message, failed, becomes
// delivered once every part is, and the sender gets the receipt. A
// failure after DELIVRD changes nothing. Within one batch, the failure
// and the delivery are seen one after the other, as when called apart.
func TestDeliveredAfterFailure(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		one := accept(t, s, 1)
		claimOne(t, s, "a")
		if _, err := s.PartSubmitted(ctx, one.ID, 1, "", []string{"a1"}); err != nil {
			t.Fatal(err)
		}
		if res, err := s.Receipt(ctx, "", []string{"a1"}, "UNDELIV", "001"); err != nil || res.State != store.StateFailed {
			t.Fatalf("Receipt UNDELIV = %+v, %v", res, err)
		}
		if ns := notices(t, s); len(ns) != 1 || ns[0].State != store.StateFailed {
			t.Fatalf("notices after the failure = %+v", ns)
		}
		res, err := s.Receipt(ctx, "", []string{"a1"}, "DELIVRD", "000")
		if err != nil || !res.Matched || !res.Final || res.State != store.StateDelivered || res.Message != one.ID {
			t.Fatalf("Receipt DELIVRD after UNDELIV = %+v, %v", res, err)
		}
		if ns := notices(t, s); len(ns) != 1 || ns[0].State != store.StateDelivered || ns[0].StanzaID != "m1" {
			t.Fatalf("notices after the delivery = %+v", ns)
		}
		if res, err := s.Receipt(ctx, "", []string{"a1"}, "UNDELIV", "001"); err != nil || res.Final {
			t.Fatalf("Receipt UNDELIV after DELIVRD = %+v, %v", res, err)
		}
		if st, _, _ := s.MessageState(ctx, one.ID); st != store.StateDelivered {
			t.Fatalf("state after a failure following the delivery: %s", st)
		}

		two := accept(t, s, 2)
		claimOne(t, s, "a")
		for seq, id := range []string{"b1", "b2"} {
			if _, err := s.PartSubmitted(ctx, two.ID, seq+1, "", []string{id}); err != nil {
				t.Fatal(err)
			}
		}
		if res, err := s.Receipt(ctx, "", []string{"b1"}, "EXPIRED", "003"); err != nil || res.State != store.StateFailed {
			t.Fatalf("Receipt EXPIRED = %+v, %v", res, err)
		}
		notices(t, s)
		if res, err := s.Receipt(ctx, "", []string{"b1"}, "DELIVRD", ""); err != nil || !res.Matched || res.Final {
			t.Fatalf("Receipt DELIVRD for part 1 = %+v, %v; want matched, part 2 still waiting", res, err)
		}
		if st, _, _ := s.MessageState(ctx, two.ID); st != store.StateFailed {
			t.Fatalf("state with part 2 waiting: %s, want failed still", st)
		}
		if res, err := s.Receipt(ctx, "", []string{"b2"}, "DELIVRD", ""); err != nil || !res.Final || res.State != store.StateDelivered {
			t.Fatalf("Receipt DELIVRD for part 2 = %+v, %v", res, err)
		}

		// In one batch.
		three := accept(t, s, 1)
		claimOne(t, s, "a")
		notices(t, s)
		ops := []*store.Outcome{
			{Part: true, Msg: three.ID, Seq: 1, Forms: []string{"c1"}},
			{Forms: []string{"c1"}, State: "UNDELIV", Err: "001"},
			{Forms: []string{"c1"}, State: "DELIVRD"},
		}
		if err := store.ApplyOutcomes(s, ops); err != nil {
			t.Fatal(err)
		}
		if r := ops[1].Res; !r.Final || r.State != store.StateFailed {
			t.Errorf("UNDELIV in the batch = %+v, want failed", r)
		}
		if r := ops[2].Res; !r.Final || r.State != store.StateDelivered {
			t.Errorf("DELIVRD after it in the batch = %+v, want delivered", r)
		}
		if st, _, _ := s.MessageState(ctx, three.ID); st != store.StateDelivered {
			t.Fatalf("state after the batch: %s", st)
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
