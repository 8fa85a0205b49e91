package store_test

import (
	"context"
	"testing"
	"time"

	"switchboard/store"
)

// TestSweepEarlyReceipts: a receipt for an SMSC id not recorded yet is
// kept for it; swept once over an hour old, it is gone, and a younger one
// still waits for its id and applies when the id comes.
func TestSweepEarlyReceipts(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := epoch
		store.SetClock(s, func() time.Time { return now })
		for _, id := range []string{"old-1", "young-1"} {
			if r, err := s.Receipt(ctx, "", []string{id}, "DELIVRD", ""); err != nil || r.Matched {
				t.Fatalf("receipt for %s = %+v, %v", id, r, err)
			}
			now = now.Add(2 * time.Hour)
		}
		now = now.Add(-90 * time.Minute) // the old one 2.5 h old, the young one 0.5 h
		n, err := s.Sweep(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Sweep = %d, %v; want 1 receipt dropped", n, err)
		}
		var left []string
		rows, err := store.Dump(s, `SELECT smsc_id FROM early_receipts ORDER BY smsc_id`)
		if err != nil {
			t.Fatal(err)
		}
		left = append(left, rows...)
		if len(left) != 1 || left[0] != "young-1" {
			t.Fatalf("early receipts left: %q", left)
		}
		// The young one applies when its id is recorded.
		f := newArchiveFixture(s)
		id := f.out(t, aliceTo(phoneNum, "y", "young"))
		claimOne(t, s, "test")
		if final, err := s.PartSubmitted(ctx, id, 1, "", []string{"young-1"}); err != nil || !final {
			t.Fatalf("PartSubmitted = %v, %v; want final from the kept receipt", final, err)
		}
	})
}
