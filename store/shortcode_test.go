package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"switchboard/store"
)

// TestShortCodeWrote: a short code may be answered by a user it wrote to,
// at the number it wrote to, since the window's start; the latest
// message says how it was addressed and by which SMSC. Another user's
// short code, a message to the user's number before they had it, and one
// older than the window do not count. The lookup reads the index of
// messages from phones.
func TestShortCodeWrote(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := epoch
		store.SetClock(s, func() time.Time { return now })
		const aliceNum, bobNum = "+12015550100", "+12015550101"
		from := func(code, num, user string, ton, npi byte, smsc string) {
			t.Helper()
			in := &store.Inbound{Source: code, Dest: num, RecipientJID: user, Body: "Reply YES to confirm",
				SourceTON: ton, SourceNPI: npi, SMSC: smsc}
			if err := s.AcceptInbound(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		lookup := func(user, num, code string, window time.Duration) (store.ShortCode, error) {
			return s.ShortCodeWrote(ctx, user, num, code, now.Add(-window))
		}
		// 54321 wrote to alice ten days ago; 67890 to bob, at the number
		// alice has since, then to bob at his.
		from("54321", aliceNum, "alice@example.com", 3, 0, "")
		from("67890", aliceNum, "bob@example.com", 3, 0, "")
		now = now.Add(10 * 24 * time.Hour)
		from("67890", bobNum, "bob@example.com", 0, 1, "")
		// 12345 wrote to alice twice, the second time through another SMSC.
		from("12345", aliceNum, "alice@example.com", 0, 1, "")
		now = now.Add(time.Hour)
		from("12345", aliceNum, "alice@example.com", 3, 0, "carrier-b")
		now = now.Add(time.Hour)

		sc, err := lookup("alice@example.com", aliceNum, "12345", 24*time.Hour)
		if err != nil || sc != (store.ShortCode{TON: 3, NPI: 0, SMSC: "carrier-b"}) {
			t.Fatalf("in the window: %+v, %v; want the latest message's TON 3, NPI 0, carrier-b", sc, err)
		}
		if sc, err := lookup("alice@example.com", aliceNum, "12345", 30*time.Minute); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("out of the window: %+v, %v; want ErrNotFound", sc, err)
		}
		if sc, err := lookup("alice@example.com", aliceNum, "54321", 7*24*time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("wrote ten days ago, window seven: %+v, %v; want ErrNotFound", sc, err)
		}
		if sc, err := lookup("alice@example.com", aliceNum, "54321", 11*24*time.Hour); err != nil || sc.TON != 3 {
			t.Fatalf("wrote ten days ago, window eleven: %+v, %v", sc, err)
		}
		// Bob's short code is not alice's, neither at her number (which
		// was his when it wrote) nor at his.
		for _, num := range []string{aliceNum, bobNum} {
			if sc, err := lookup("alice@example.com", num, "67890", 30*24*time.Hour); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("another user's short code at %s: %+v, %v; want ErrNotFound", num, sc, err)
			}
		}
		if sc, err := lookup("bob@example.com", bobNum, "67890", 24*time.Hour); err != nil || sc != (store.ShortCode{TON: 0, NPI: 1}) {
			t.Fatalf("bob's short code: %+v, %v", sc, err)
		}

		// The parts of a long message keep them while they wait.
		k := store.FragmentKey{Source: "65432", Dest: aliceNum, Ref: 7, Total: 2}
		if _, err := s.AddFragment(ctx, store.Fragment{FragmentKey: k, Seq: 1, Payload: []byte("half"), SourceTON: 6, SourceNPI: 1, SMSC: "c"}); err != nil {
			t.Fatal(err)
		}
		groups, err := s.StaleFragments(ctx, now.Add(time.Hour))
		if err != nil || len(groups) != 1 || groups[0][0].SourceTON != 6 || groups[0][0].SourceNPI != 1 || groups[0][0].SMSC != "c" {
			t.Fatalf("stale parts: %+v, %v; want TON 6, NPI 1, SMSC c", groups, err)
		}

		plan, err := store.ShortCodePlan(s)
		if err != nil || !strings.Contains(plan, "messages_from_phone") {
			t.Fatalf("plan of the lookup: %v\n%s\nwant the index messages_from_phone", err, plan)
		}
	})
}

// TestShortCodeOutbound: an SMS to a short code keeps its address's TON,
// NPI and SMSC from accept to claim; other SMS have none.
func TestShortCodeOutbound(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		reply := &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "12345",
			StanzaID: "s1", Body: "YES", Parts: 1, ExpiresAt: time.Now().Add(time.Hour), DestTON: 3, DestNPI: 0, SMSC: "carrier-b"}
		plain := &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199",
			StanzaID: "s2", Body: "hi", Parts: 1, ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.AcceptOutbound(ctx, []*store.Outbound{reply, plain}); err != nil {
			t.Fatal(err)
		}
		msgs, err := s.ClaimOutbound(ctx, "gw", 10, time.Minute)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("claimed %d, %v", len(msgs), err)
		}
		for _, m := range msgs {
			switch m.StanzaID {
			case "s1":
				if m.Dest != "12345" || m.DestTON != 3 || m.DestNPI != 0 || m.SMSC != "carrier-b" {
					t.Fatalf("reply to a short code claimed as %+v", m)
				}
			case "s2":
				if m.DestTON != 0 || m.DestNPI != 0 || m.SMSC != "" {
					t.Fatalf("SMS to a number claimed as %+v", m)
				}
			}
		}
	})
}

// TestReceivedText: a message's text is read back only by the user who
// received it, in the conversation it came in.
func TestReceivedText(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "alice@example.com/phone", Body: "See you at 8"}
		if err := s.AcceptInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
		out := &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199", Body: "mine", Parts: 1,
			ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.AcceptOutbound(ctx, []*store.Outbound{out}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReceivedText(ctx, in.ID, "alice@example.com", "+12015550199"); err != nil || got != "See you at 8" {
			t.Fatalf("ReceivedText = %q, %v", got, err)
		}
		for _, tc := range []struct {
			id         int64
			user, peer string
		}{
			{in.ID, "bob@example.com", "+12015550199"},    // another user
			{in.ID, "alice@example.com", "+12015550177"},  // another conversation
			{out.ID, "alice@example.com", "+12015550199"}, // one she sent
			{in.ID + 100, "alice@example.com", "+12015550199"},
		} {
			if got, err := s.ReceivedText(ctx, tc.id, tc.user, tc.peer); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ReceivedText(%d, %s, %s) = %q, %v; want ErrNotFound", tc.id, tc.user, tc.peer, got, err)
			}
		}
	})
}
