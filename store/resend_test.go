package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"switchboard/store"
)

// TestInboundResend: a message from a phone that comes again on another
// bind, now down, within the window, with the same text, from the same
// phone to the same number, is a resend: nothing stored, no notice, the
// first one's id. The same text on the same bind, or on a bind still up,
// is a person writing it twice; a different text, phone or number, an old
// first copy, or no bind named, is a new message. A reassembled resend's
// parts are deleted all the same.
func TestInboundResend(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := epoch
		store.SetClock(s, func() time.Time { return now })
		const phone, other, num = "+12015550199", "+12015550198", "+12015550100"
		const up = "gw-9/1" // a bind still up; every other one is down
		ended := func(session string) bool { return session != up }
		accept := func(from, body, session string, key *store.FragmentKey) *store.Inbound {
			t.Helper()
			in := &store.Inbound{Source: from, Dest: num, RecipientJID: "alice@example.com", Body: body, Session: session, FragmentKey: key, Ended: ended}
			if err := s.AcceptInbound(ctx, in); err != nil {
				t.Fatal(err)
			}
			return in
		}
		first := accept(phone, "see you at 8", "gw-1/1", nil)
		if first.Duplicate || len(notices(t, s)) != 1 {
			t.Fatalf("first copy: %+v", first)
		}
		if again := accept(phone, "see you at 8", "gw-1/1", nil); again.Duplicate || again.ID == first.ID {
			t.Fatalf("the same text on the same bind taken for a resend: %+v", again)
		}
		now = now.Add(9 * time.Minute)
		resend := accept(phone, "see you at 8", "gw-2/7", nil)
		if !resend.Duplicate || resend.ID != first.ID || resend.Handed {
			// Two copies came before it; it is the first one's resend.
			t.Fatalf("resend on another bind: %+v; want the first copy's id %d", resend, first.ID)
		}
		if ns := notices(t, s); len(ns) != 1 {
			t.Fatalf("notices after the resend: %+v; want the second copy's only", ns)
		}
		for _, in := range []*store.Inbound{
			accept(phone, "see you at 9", "gw-2/7", nil),
			accept(other, "see you at 8", "gw-2/7", nil),
			accept(phone, "see you at 8", "", nil),
		} {
			if in.Duplicate {
				t.Fatalf("taken for a resend: %+v", in)
			}
		}
		now = now.Add(11 * time.Minute) // the first two copies are out of the window
		if in := accept(phone, "see you at 8", "gw-3/1", nil); in.Duplicate {
			t.Fatalf("a copy older than the window counted: %+v", in)
		}
		// The same text first on a bind still up: a person writing it again.
		accept(phone, "on my way", up, nil)
		if in := accept(phone, "on my way", "gw-3/1", nil); in.Duplicate {
			t.Fatalf("a copy whose first came on a bind still up taken for a resend: %+v", in)
		}
		rows, err := store.Dump(s, `SELECT count(*) FROM messages WHERE direction = 'in'`)
		if err != nil || len(rows) != 1 || rows[0] != "8" {
			t.Fatalf("messages from phones stored: %v, %v; want 8", rows, err)
		}

		// A concatenated message, and parts of it sent again on another
		// bind after it was reassembled: acknowledged, stored nowhere.
		key := store.FragmentKey{Source: phone, Dest: num, Ref: 3, Total: 2}
		part := func(seq int, text, session string) error {
			_, err := s.AddFragment(ctx, store.Fragment{FragmentKey: key, Seq: seq, Payload: []byte(text), Session: session, Text: text, Ended: ended})
			return err
		}
		for seq, p := range []string{"long ", "story"} {
			if err := part(seq+1, p, "gw-3/1"); err != nil {
				t.Fatal(err)
			}
		}
		accept(phone, "long story", "gw-3/1", &key)
		for seq, p := range []string{"long ", "story"} {
			if err := part(seq+1, p, "gw-3/2"); !errors.Is(err, store.ErrResent) {
				t.Fatalf("part %d sent again on another bind: %v; want ErrResent", seq+1, err)
			}
		}
		// The whole message again, its parts taken before the check (no
		// bind named): the reassembled copy is the resend, and its parts go.
		for seq, p := range []string{"long ", "story"} {
			if err := part(seq+1, p, ""); err != nil {
				t.Fatal(err)
			}
		}
		if in := accept(phone, "long story", "gw-3/2", &key); !in.Duplicate {
			t.Fatalf("reassembled resend: %+v", in)
		}
		if groups, err := s.StaleFragments(ctx, now.Add(time.Hour)); err != nil || len(groups) != 0 {
			t.Fatalf("parts of the resend left: %v, %v", groups, err)
		}
		// A new message that reuses the reference, with other text, and a
		// part on the same bind, are parts to keep.
		if err := part(1, "brand ", "gw-3/2"); err != nil {
			t.Fatalf("a new message's part with a reused reference: %v", err)
		}
		if err := part(2, "story", "gw-3/1"); err != nil {
			t.Fatalf("a part again on the same bind: %v", err)
		}
		if groups, err := s.StaleFragments(ctx, now.Add(time.Hour)); err != nil || len(groups) != 1 || len(groups[0]) != 2 {
			t.Fatalf("parts kept: %v, %v; want both", groups, err)
		}
	})
}
