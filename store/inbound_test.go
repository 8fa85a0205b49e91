package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/store"
)

// TestAcceptInboundsTogether: messages from phones accepted in one batch
// (set-based on PostgreSQL) end as they do accepted one after the other,
// in the same order: the same ones stored, refused, and taken for resends
// (of a message stored before, and of one earlier in the same batch), the
// same rows, notices and fragments left.
func TestAcceptInboundsTogether(t *testing.T) {
	engineStores(t, func(t *testing.T, open func() *store.Store) {
		together, alone := open(), open()
		a, a1 := acceptInbounds(t, together, true)
		b, b1 := acceptInbounds(t, alone, false)
		if !slices.Equal(a, b) {
			t.Errorf("accepted together:\n%s\none by one:\n%s", join(a), join(b))
		}
		if !slices.Equal(a1, b1) {
			t.Errorf("stored together:\n%s\none by one:\n%s", join(a1), join(b1))
		}
		// What both are held to, besides being the same.
		want := []string{
			"0 resend of stored",
			"1 stored, handed, recipient alice@example.com, local \"\"",
			"2 resend of 1",
			"3 stored, handed, recipient alice@example.com, local \"\"",
			"4 refused: no owner",
			"5 stored, handed, recipient alice@example.com, local \"\"",
			"6 refused: no owner",
			"7 stored, handed, recipient alice@example.com, local \"2015550199\"",
			"8 resend of 1",
			"9 stored, handed, recipient bob@example.com, local \"\"",
		}
		if !slices.Equal(a, want) {
			t.Errorf("accepted together:\n%s\nwant:\n%s", join(a), join(want))
		}
	})
}

func join(lines []string) string {
	var b []byte
	for _, l := range lines {
		b = append(b, "\t"+l+"\n"...)
	}
	return string(b)
}

// acceptInbounds sets up s (two owners, a form, a message stored on a bind
// now down, the fragments of two messages) and accepts a list of messages
// from phones in one batch (together) or one by one. It returns what each
// call came to, then the rows and notices stored and the fragments left,
// in terms that do not depend on the ids the engine drew.
func acceptInbounds(t *testing.T, s *store.Store, together bool) (calls, rows []string) {
	t.Helper()
	ctx := context.Background()
	now := epoch
	store.SetClock(s, func() time.Time { return now })
	handed := make(chan []store.Notice, 100)
	s.HandNotices("i1", time.Minute, func(ns []store.Notice) { handed <- ns })
	const alice, aliceNum, bob, bobNum, nobody = "alice@example.com", "+12015550100", "bob@example.com", "+12015550101", "+12015550177"
	const p, q, r, formed = "+12015550201", "+12015550202", "+12015550203", "+12015550199"
	for n, j := range map[string]string{aliceNum: alice, bobNum: bob} {
		if _, err := s.Bind(ctx, n, j, "sms"); err != nil {
			t.Fatal(err)
		}
	}
	// Alice writes to formed as 2015550199: its messages come from that form.
	m := &store.Outbound{SenderJID: alice + "/phone", SenderNumber: aliceNum, Dest: formed, Body: "hi", Parts: 1, PeerLocal: "2015550199", SetForm: true}
	if err := s.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
		t.Fatal(err)
	}
	const up = "gw/9" // the one bind still up
	ended := func(session string) bool { return session != up }
	first := &store.Inbound{Source: p, Dest: aliceNum, Body: "hi", Session: "gw/1", Ended: ended}
	if err := s.AcceptInbound(ctx, first); err != nil {
		t.Fatal(err)
	}
	k1 := store.FragmentKey{Source: r, Dest: aliceNum, Ref: 1, Total: 2}
	k2 := store.FragmentKey{Source: r, Dest: nobody, Ref: 2, Total: 2}
	for _, k := range []store.FragmentKey{k1, k2} {
		for seq := 1; seq <= 2; seq++ {
			if _, err := s.AddFragment(ctx, store.Fragment{FragmentKey: k, Seq: seq, Payload: []byte("ab")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	now = now.Add(time.Minute)
	in := func(from, to, body, session string, k *store.FragmentKey) *store.Inbound {
		return &store.Inbound{Source: from, Dest: to, Body: body, Session: session, Ended: ended, FragmentKey: k, SMSC: "c", SourceTON: 1, SourceNPI: 1}
	}
	ins := []*store.Inbound{
		in(p, aliceNum, "hi", "gw/2", nil),                       // resends first (gw/1 is down)
		in(q, aliceNum, "yo", "gw/2", nil),                       // new
		in(q, aliceNum, "yo", "gw/3", nil),                       // resends 1 (gw/2 is down)
		in(q, aliceNum, "yo", "gw/2", nil),                       // the same bind as 1: written again
		in(q, nobody, "yo", "gw/2", nil),                         // nobody's number
		in(r, aliceNum, "abab", "gw/2", &k1),                     // reassembled: its fragments go
		in(r, nobody, "abab", "gw/2", &k2),                       // nobody's: its fragments stay
		in(formed, aliceNum, "hey", "gw/2", nil),                 // from the form alice writes in
		in(q, aliceNum, "yo", up, nil),                           // resends 1: first on a bind now down
		{Source: q, Dest: bobNum, RecipientJID: bob, Body: "yo"}, // recipient given, no bind named
	}
	found := make([]bool, len(ins))
	if together {
		var err error
		if found, err = store.AcceptInbounds(s, ins); err != nil {
			t.Fatal(err)
		}
	} else {
		for i, x := range ins {
			err := s.AcceptInbound(ctx, x)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			found[i] = err == nil
		}
	}
	name := map[int64]string{first.ID: "stored"}
	for i, x := range ins {
		switch {
		case !found[i]:
			if x.ID != 0 || x.Handed || x.RecipientJID != "" {
				t.Errorf("message %d refused, yet %+v", i, x)
			}
			calls = append(calls, fmt.Sprintf("%d refused: no owner", i))
		case x.Duplicate:
			calls = append(calls, fmt.Sprintf("%d resend of %s", i, name[x.ID]))
		default:
			name[x.ID] = fmt.Sprint(i)
		}
	}
	got := make(map[int64]store.Notice)
	for len(got) < len(name) {
		select {
		case ns := <-handed:
			for _, n := range ns {
				got[n.ID] = n
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d notices handed, want %d", len(got), len(name))
		}
	}
	for i, x := range ins {
		if !found[i] || x.Duplicate {
			continue
		}
		n := got[x.ID]
		if n.Body != x.Body || n.PeerNumber != x.Source || n.UserJID != x.RecipientJID || n.Direction != store.In {
			t.Errorf("message %d: handed %+v", i, n)
		}
		handedText := "not handed"
		if x.Handed {
			handedText = "handed"
		}
		calls = append(calls, fmt.Sprintf("%d stored, %s, recipient %s, local %q", i, handedText, x.RecipientJID, n.PeerLocal))
	}
	slices.Sort(calls)
	stored, err := store.Dump(s, `SELECT id, ' ' || user_jid || '|' || user_bare || '|' || user_number || '|' || peer_number || '|' || body || '|' || state
		|| '|' || smpp_session || '|' || frag_key || '|' || CAST(peer_ton AS TEXT) || '|' || CAST(peer_npi AS TEXT) || '|' || smsc || '|' || peer_local
		|| '|' || CAST(created_at AS TEXT) FROM messages WHERE direction = 'in' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range stored {
		id, rest, _ := strings.Cut(row, " ")
		var n int64
		fmt.Sscan(id, &n)
		rows = append(rows, name[n]+": "+rest)
	}
	leases, err := store.Dump(s, `SELECT count(*), ' ' || min(lease_owner) || '|' || max(lease_owner) FROM notices`)
	if err != nil {
		t.Fatal(err)
	}
	frags, err := s.StaleFragments(ctx, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rows = append(rows, "notices: "+leases[0], fmt.Sprint("fragments left: ", len(frags)))
	for _, g := range frags {
		rows = append(rows, fmt.Sprintf("fragments of %v", g[0].FragmentKey))
	}
	return calls, rows
}
