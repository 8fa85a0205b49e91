package store_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"switchboard/store"
)

// TestPeerForms: a message keeps the form of the number its sender wrote
// to, and its notices carry it, claimed or handed; the form recorded for
// a user and a number (the last one written in, if not the international
// one) is read with the routing, for the senders and for the owners of
// the destinations, and a phone's message to the user is stored, and
// noticed, with it.
func TestPeerForms(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const (
			alice, aliceNum = "alice@example.com", "+12015550100"
			carol, carolNum = "carol@example.com", "+12015550102"
			phone, national = "+12015550199", "2015550199"
		)
		for n, j := range map[string]string{aliceNum: alice, carolNum: carol} {
			if _, err := s.Bind(ctx, n, j, "operator"); err != nil {
				t.Fatal(err)
			}
		}
		out := func(id, local string, setForm bool) *store.Outbound {
			return &store.Outbound{SenderJID: alice + "/phone", SenderNumber: aliceNum, Dest: phone, StanzaID: id, WantReceipt: true,
				Body: "hello " + id, Parts: 1, ExpiresAt: time.Now().Add(time.Hour), PeerLocal: local, SetForm: setForm}
		}
		forms := func(jids, dests []string) map[store.Form]string {
			t.Helper()
			r, err := s.RoutingOf(ctx, jids, dests)
			if err != nil {
				t.Fatal(err)
			}
			return r.Forms
		}
		inbound := func(body string) *store.Inbound {
			t.Helper()
			in := &store.Inbound{Source: phone, Dest: aliceNum, Body: body}
			if err := s.AcceptInbound(ctx, in); err != nil {
				t.Fatal(err)
			}
			return in
		}
		claim := func(id int64) store.Notice {
			t.Helper()
			ns, err := s.ClaimNotices(ctx, "i1", 10, time.Minute)
			if err != nil || len(ns) != 1 || ns[0].ID != id {
				t.Fatalf("claimed %+v, %v; want the notice of %d", ns, err, id)
			}
			if err := s.NoticesDone(ctx, []int64{ns[0].ID}); err != nil {
				t.Fatal(err)
			}
			return ns[0]
		}

		// Two forms in one batch: the later one is recorded.
		m1, m2 := out("m1", "12015550199", true), out("m2", national, true)
		if err := s.AcceptOutbound(ctx, []*store.Outbound{m1, m2}); err != nil {
			t.Fatal(err)
		}
		// Carol writes to alice's number in another form (a relay).
		rel := &store.Outbound{SenderJID: carol + "/pc", SenderNumber: carolNum, Dest: aliceNum, StanzaID: "r1", Body: "hi",
			PeerJID: alice, PeerLocal: "+1-201-555-0100", SetForm: true}
		if err := s.AcceptOutbound(ctx, []*store.Outbound{rel}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.FindRelay(ctx, carolNum, aliceNum, "r1"); err != nil || got.PeerLocal != rel.PeerLocal {
			t.Fatalf("FindRelay = %+v, %v; want the form %q", got, err, rel.PeerLocal)
		}
		// Alice's forms as a sender; carol's as the owner of a destination.
		want := map[store.Form]string{{User: alice, Number: phone}: national, {User: carol, Number: aliceNum}: "+1-201-555-0100"}
		if got := forms([]string{alice}, []string{phone, carolNum}); !maps.Equal(got, want) {
			t.Fatalf("forms = %v, want %v", got, want)
		}
		if got := forms([]string{carol}, []string{aliceNum}); len(got) != 1 {
			t.Fatalf("carol's forms, to alice = %v, want hers only", got)
		}
		// A new binding keeps them.
		if _, err := s.Bind(ctx, aliceNum, alice, "sms"); err != nil {
			t.Fatal(err)
		}
		if got := forms([]string{alice}, []string{phone, carolNum}); !maps.Equal(got, want) {
			t.Fatalf("forms after binding again = %v, want %v", got, want)
		}

		// A failure's notice, claimed, comes from the form written to.
		if err := s.Fail(ctx, m1.ID, "no"); err != nil {
			t.Fatal(err)
		}
		if n := claim(m1.ID); n.PeerLocal != "12015550199" || n.PeerNumber != phone {
			t.Fatalf("failure notice %+v, want from 12015550199", n)
		}
		// The phone's reply, claimed, comes from the form last written in.
		if in := inbound("reply"); claim(in.ID).PeerLocal != national {
			t.Fatalf("reply not from %s", national)
		}

		// Handed: a receipt's notice and a reply's.
		got := make(chan []store.Notice, 10)
		s.HandNotices("i1", time.Minute, func(ns []store.Notice) { got <- ns })
		handed := func() store.Notice {
			t.Helper()
			select {
			case ns := <-got:
				if len(ns) != 1 {
					t.Fatalf("handed %+v", ns)
				}
				return ns[0]
			case <-time.After(5 * time.Second):
				t.Fatal("no notice handed")
			}
			return store.Notice{}
		}
		if _, err := s.ClaimOutbound(ctx, "i1", 10, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PartSubmitted(ctx, m2.ID, 1, "", []string{"id2"}); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Receipt(ctx, "", []string{"id2"}, "DELIVRD", ""); err != nil || !r.Final {
			t.Fatalf("Receipt = %+v, %v", r, err)
		}
		if n := handed(); n.ID != m2.ID || n.State != store.StateDelivered || n.PeerLocal != national {
			t.Fatalf("receipt notice %+v, want m2's from %s", n, national)
		}
		if in, n := inbound("again"), handed(); n.ID != in.ID || n.PeerLocal != national {
			t.Fatalf("reply notice %+v, want from %s", n, national)
		}

		// Written to in the international form again: the form is deleted,
		// and replies come from that form.
		if err := s.AcceptOutbound(ctx, []*store.Outbound{out("m3", "", true)}); err != nil {
			t.Fatal(err)
		}
		if got := forms([]string{alice}, []string{phone}); len(got) != 0 {
			t.Fatalf("forms after the international form = %v, want none", got)
		}
		if in, n := inbound("back"), handed(); n.ID != in.ID || n.PeerLocal != "" {
			t.Fatalf("reply notice %+v, want from the international form", n)
		}
	})
}

// TestPeerFormsReleased: a user whose number is released (unregistered)
// leaves no forms behind; bound again, they start with none.
func TestPeerFormsReleased(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const alice, aliceNum, phone = "alice@example.com", "+12015550100", "+12015550199"
		if _, err := s.Bind(ctx, aliceNum, alice, "sms"); err != nil {
			t.Fatal(err)
		}
		m := &store.Outbound{SenderJID: alice + "/phone", SenderNumber: aliceNum, Dest: phone, Body: "hi", Parts: 1,
			PeerLocal: "2015550199", SetForm: true}
		if err := s.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
			t.Fatal(err)
		}
		forms := func() map[store.Form]string {
			t.Helper()
			r, err := s.RoutingOf(ctx, []string{alice}, []string{phone})
			if err != nil {
				t.Fatal(err)
			}
			return r.Forms
		}
		if got := forms(); len(got) != 1 {
			t.Fatalf("forms before the release = %v, want one", got)
		}
		if _, err := s.Release(ctx, aliceNum); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Bind(ctx, aliceNum, alice, "sms"); err != nil {
			t.Fatal(err)
		}
		if got := forms(); len(got) != 0 {
			t.Fatalf("forms after release and binding again = %v, want none", got)
		}
	})
}

// TestPeerFormsBounded: the routing reads only the forms a batch can use
// (a sender's for the numbers it writes to, an owner's for the senders'
// numbers), not every form a user ever wrote a number in: work per batch
// bounded by the batch, not by the user's history.
func TestPeerFormsBounded(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const alice, aliceNum, bob, bobNum = "alice@example.com", "+12015550100", "bob@example.com", "+12015550101"
		for n, j := range map[string]string{aliceNum: alice, bobNum: bob} {
			if _, err := s.Bind(ctx, n, j, "operator"); err != nil {
				t.Fatal(err)
			}
		}
		// Alice has written many numbers in their national form, bob too.
		var msgs []*store.Outbound
		for i := range 20 {
			for _, u := range []struct{ jid, num string }{{alice, aliceNum}, {bob, bobNum}} {
				n := fmt.Sprintf("20155502%02d", i)
				msgs = append(msgs, &store.Outbound{SenderJID: u.jid + "/phone", SenderNumber: u.num, Dest: "+1" + n, Body: "hi", Parts: 1,
					ExpiresAt: time.Now().Add(time.Hour), PeerLocal: n, SetForm: true})
			}
		}
		// And bob wrote alice's number in another form.
		msgs = append(msgs, &store.Outbound{SenderJID: bob + "/phone", SenderNumber: bobNum, Dest: aliceNum, Body: "hi", Parts: 1,
			PeerJID: alice, PeerLocal: "2015550100", SetForm: true})
		if err := s.AcceptOutbound(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			jids, dests []string
			want        map[store.Form]string
		}{
			// Alice writes to one of her numbers: her form of it.
			{[]string{alice}, []string{"+12015550203"}, map[store.Form]string{{User: alice, Number: "+12015550203"}: "2015550203"}},
			// Alice writes to bob: bob's form of her number, none of alice's.
			{[]string{alice}, []string{bobNum}, map[store.Form]string{{User: bob, Number: aliceNum}: "2015550100"}},
			// Bob writes to short codes only (no destinations: read apart).
			{[]string{bob}, nil, map[store.Form]string{}},
		} {
			r, err := s.RoutingOf(ctx, tc.jids, tc.dests)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(r.Forms, tc.want) {
				t.Errorf("RoutingOf(%v, %v).Forms = %d forms %v, want %v", tc.jids, tc.dests, len(r.Forms), r.Forms, tc.want)
			}
		}
	})
}
