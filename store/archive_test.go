package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"switchboard/store"
)

const (
	aliceJID   = "alice@example.com"
	aliceNum   = "+12015550100"
	bobJID     = "bob@example.com"
	bobNum     = "+12015550142"
	phoneNum   = "+12015550199"
	otherPhone = "+12015550198"
)

// archiveClock is a store clock that moves one second per reading, so every
// message has its own time.
type archiveClock struct{ t time.Time }

func (c *archiveClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

var epoch = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

type archiveFixture struct {
	s     *store.Store
	clock *archiveClock
}

func newArchiveFixture(s *store.Store) *archiveFixture {
	c := &archiveClock{t: epoch}
	store.SetClock(s, c.now)
	return &archiveFixture{s: s, clock: c}
}

func (f *archiveFixture) out(t *testing.T, m store.Outbound) int64 {
	t.Helper()
	if m.Parts == 0 {
		m.Parts = 1
	}
	if err := f.s.AcceptOutbound(context.Background(), []*store.Outbound{&m}); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func (f *archiveFixture) in(t *testing.T, from, body string) int64 {
	t.Helper()
	in := &store.Inbound{Source: from, Dest: aliceNum, RecipientJID: aliceJID, Body: body}
	if err := f.s.AcceptInbound(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return in.ID
}

func aliceTo(dest, id, body string) store.Outbound {
	return store.Outbound{SenderJID: aliceJID + "/phone", SenderNumber: aliceNum, Dest: dest, StanzaID: id, Body: body}
}

// item renders an archive item for comparison: ">" sent, "<" received.
func item(it store.ArchiveItem) string {
	dir := "<"
	if it.Outgoing {
		dir = ">"
	}
	return fmt.Sprintf("%s%s %s %s", dir, it.Number, it.StanzaID, it.Body)
}

func items(p store.ArchivePage) []string {
	out := make([]string, len(p.Items))
	for i, it := range p.Items {
		out[i] = item(it)
	}
	return out
}

func archive(t *testing.T, s *store.Store, q store.ArchiveQuery) store.ArchivePage {
	t.Helper()
	p, err := s.Archive(context.Background(), q)
	if err != nil {
		t.Fatalf("Archive(%+v): %v", q, err)
	}
	return p
}

func sameItems(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestArchive(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newArchiveFixture(s)
		// A conversation with a phone, interleaved with other traffic.
		var ids []int64
		ids = append(ids, f.out(t, aliceTo(phoneNum, "a1", "hello phone")))
		ids = append(ids, f.in(t, phoneNum, "hi alice"))
		f.out(t, aliceTo(otherPhone, "o1", "to the other phone"))
		ids = append(ids, f.out(t, aliceTo(phoneNum, "a2", "how are you")))
		// A verification code and a message without a body are not archived.
		f.out(t, store.Outbound{SenderJID: aliceJID + "/phone", SenderNumber: "Switchboard", Dest: aliceNum, Body: "Your code is 123456"})
		f.out(t, aliceTo(phoneNum, "e1", ""))
		ids = append(ids, f.in(t, phoneNum, "fine"))
		// Bob writes to alice's number; it is relayed to her over XMPP.
		relayed := f.out(t, store.Outbound{SenderJID: bobJID + "/pc", SenderNumber: bobNum, Dest: aliceNum, StanzaID: "b1", Body: "hi from bob", PeerJID: aliceJID})
		ids = append(ids, f.out(t, aliceTo(phoneNum, "a3", "good")))
		ids = append(ids, f.in(t, phoneNum, "bye"))
		notices(t, s) // inbound messages delivered

		conv := []string{
			">" + phoneNum + " a1 hello phone",
			"<" + phoneNum + "  hi alice",
			">" + phoneNum + " a2 how are you",
			"<" + phoneNum + "  fine",
			">" + phoneNum + " a3 good",
			"<" + phoneNum + "  bye",
		}
		p := archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 50})
		sameItems(t, "with phone", items(p), conv...)
		if p.Count != 6 || p.Index != 0 || !p.Complete {
			t.Errorf("with phone: count %d index %d complete %v", p.Count, p.Index, p.Complete)
		}
		for i, it := range p.Items {
			if it.ID != ids[i] || !it.At.Equal(epoch.Add(time.Duration(it.ID)*time.Second)) {
				t.Errorf("item %d: id %d at %v, want id %d", i, it.ID, it.At, ids[i])
			}
		}

		// Forward paging.
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 4})
		sameItems(t, "page 1", items(p), conv[:4]...)
		if p.Count != 6 || p.Index != 0 || p.Complete {
			t.Errorf("page 1: count %d index %d complete %v", p.Count, p.Index, p.Complete)
		}
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 4, PageAfter: p.Items[3].ID})
		sameItems(t, "page 2", items(p), conv[4:]...)
		if p.Count != 6 || p.Index != 4 || !p.Complete {
			t.Errorf("page 2: count %d index %d complete %v", p.Count, p.Index, p.Complete)
		}
		// An exact fit is complete.
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 3, PageAfter: ids[2]})
		if len(p.Items) != 3 || !p.Complete || p.Index != 3 {
			t.Errorf("exact last page: %q index %d complete %v", items(p), p.Index, p.Complete)
		}

		// Backward paging from the end.
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 4, Backward: true})
		sameItems(t, "last page", items(p), conv[2:]...)
		if p.Index != 2 || p.Complete {
			t.Errorf("last page: index %d complete %v", p.Index, p.Complete)
		}
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 4, Backward: true, PageBefore: p.Items[0].ID})
		sameItems(t, "first page", items(p), conv[:2]...)
		if p.Index != 0 || !p.Complete {
			t.Errorf("first page: index %d complete %v", p.Index, p.Complete)
		}

		// The count alone.
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum})
		if p.Count != 6 || len(p.Items) != 0 {
			t.Errorf("count only: %d, %q", p.Count, items(p))
		}

		// Time and id filters narrow the result set.
		at := func(id int64) time.Time { return epoch.Add(time.Duration(id) * time.Second) }
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 50, Start: at(ids[1]), End: at(ids[3])})
		sameItems(t, "start/end", items(p), conv[1:4]...)
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 50, AfterID: ids[1], BeforeID: ids[5]})
		sameItems(t, "after-id/before-id", items(p), conv[2:5]...)
		if p.Count != 3 {
			t.Errorf("after-id/before-id count = %d", p.Count)
		}
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 2, AfterID: ids[1], PageAfter: ids[2]})
		sameItems(t, "after-id and page", items(p), conv[3:5]...)
		if p.Count != 4 || p.Index != 1 || p.Complete {
			t.Errorf("after-id and page: count %d index %d complete %v", p.Count, p.Index, p.Complete)
		}
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 50, Start: at(ids[5] + 10)})
		if p.Count != 0 || len(p.Items) != 0 || !p.Complete {
			t.Errorf("after the end: %+v", p)
		}

		// Other conversations, and the whole archive.
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: bobNum, Max: 50})
		sameItems(t, "with bob's number", items(p), "<"+bobNum+" b1 hi from bob")
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: "+12015550111", Max: 50})
		if p.Count != 0 || len(p.Items) != 0 {
			t.Errorf("with a stranger: %q", items(p))
		}
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, Max: 50})
		if p.Count != 8 || len(p.Items) != 8 || p.Items[2].Body != "to the other phone" || p.Items[5].ID != relayed {
			t.Errorf("whole archive: %d %q", p.Count, items(p))
		}
		p = archive(t, s, store.ArchiveQuery{User: bobJID, Max: 50})
		sameItems(t, "bob's archive", items(p), ">"+aliceNum+" b1 hi from bob")
		p = archive(t, s, store.ArchiveQuery{User: "carol@example.com", Max: 50})
		if p.Count != 0 || !p.Complete {
			t.Errorf("carol's archive: %+v", p)
		}

		// Ids outside the user's archive are not found.
		for _, q := range []store.ArchiveQuery{
			{User: bobJID, Max: 10, PageAfter: ids[0]},
			{User: bobJID, Max: 10, Backward: true, PageBefore: ids[0]},
			{User: aliceJID, Max: 10, AfterID: 999999},
			{User: aliceJID, Max: 10, BeforeID: 999999},
		} {
			if _, err := s.Archive(ctx, q); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Archive(%+v) = %v, want ErrNotFound", q, err)
			}
		}

		// Metadata.
		md, err := s.ArchiveMetadata(ctx, aliceJID)
		if err != nil || md.Empty || md.FirstID != ids[0] || md.LastID != ids[5] || md.Count != 8 ||
			!md.FirstAt.Equal(at(ids[0])) || !md.LastAt.Equal(at(ids[5])) {
			t.Errorf("metadata = %+v, %v", md, err)
		}
		if md, err := s.ArchiveMetadata(ctx, "carol@example.com"); err != nil || !md.Empty {
			t.Errorf("carol's metadata = %+v, %v", md, err)
		}
	})
}

func TestPrune(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newArchiveFixture(s)
		var (
			gone []int64
			kept []int64
		)
		// Delivered by the carrier.
		delivered := f.out(t, aliceTo(phoneNum, "d", "delivered"))
		claimOne(t, s, "test")
		if _, err := s.PartSubmitted(ctx, delivered, 1, "", []string{"smsc-1"}); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Receipt(ctx, "", []string{"smsc-1"}, "DELIVRD", ""); err != nil || !r.Final {
			t.Fatalf("receipt = %+v, %v", r, err)
		}
		gone = append(gone, delivered)
		// Failed, its error sent to the user.
		failed := f.out(t, aliceTo(phoneNum, "f", "failed"))
		must(t, s.Fail(ctx, failed, "no"))
		notices(t, s)
		gone = append(gone, failed)
		// Delivered from a phone.
		gone = append(gone, f.in(t, phoneNum, "delivered in"))
		notices(t, s)
		// Relayed over XMPP and acknowledged.
		acked := f.out(t, store.Outbound{SenderJID: bobJID, SenderNumber: bobNum, Dest: aliceNum, StanzaID: "x", Body: "acked", PeerJID: aliceJID})
		if fresh, err := s.AckRelays(ctx, []int64{acked}); err != nil || !fresh[acked] {
			t.Fatalf("AckRelays = %v, %v", fresh, err)
		}
		gone = append(gone, acked)
		// Relayed over XMPP with no fallback to wait for: over once handed on.
		sent := f.out(t, store.Outbound{SenderJID: bobJID, SenderNumber: bobNum, Dest: aliceNum, StanzaID: "y", Body: "sent", PeerJID: aliceJID})
		if st, _, err := s.MessageState(ctx, sent); err != nil || st != store.StateSent {
			t.Fatalf("relay with no fallback: state %q, %v; want sent", st, err)
		}
		gone = append(gone, sent)
		// Still on their way: queued, submitted, relayed, received, and a
		// failure whose error is not sent yet.
		kept = append(kept, f.out(t, aliceTo(otherPhone, "q", "queued")))
		submitted := f.out(t, aliceTo(phoneNum, "s", "submitted"))
		claimed, err := s.ClaimOutbound(ctx, "test", 10, time.Minute)
		if err != nil || len(claimed) != 2 {
			t.Fatalf("claim = %v, %v", claimed, err)
		}
		for _, m := range claimed {
			if m.ID == submitted {
				if _, err := s.PartSubmitted(ctx, submitted, 1, "", []string{"smsc-2"}); err != nil {
					t.Fatal(err)
				}
			} else {
				must(t, s.Retry(ctx, m.ID, time.Time{}, "later", true))
			}
		}
		kept = append(kept, submitted)
		kept = append(kept, f.out(t, store.Outbound{SenderJID: bobJID, SenderNumber: bobNum, Dest: aliceNum, StanzaID: "r", Body: "relayed", PeerJID: aliceJID,
			FallbackAt: f.clock.now().Add(time.Hour)}))
		kept = append(kept, f.in(t, phoneNum, "received"))
		unsent := f.out(t, aliceTo(phoneNum, "u", "failed, not told"))
		must(t, s.Fail(ctx, unsent, "no"))
		kept = append(kept, unsent)
		cutoff := f.clock.now()
		// Recent, final.
		recent := f.out(t, aliceTo(phoneNum, "n", "recent"))
		must(t, s.Fail(ctx, recent, "no"))
		// The received and unsent ones above get their notices claimed, not done.
		if _, err := s.ClaimNotices(ctx, "test", 10, time.Minute); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, recent)

		n, err := s.Prune(ctx, cutoff)
		if err != nil || n != int64(len(gone)) {
			t.Fatalf("Prune = %d, %v; want %d", n, err, len(gone))
		}
		for _, id := range gone {
			if _, _, err := s.MessageState(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("message %d not pruned: %v", id, err)
			}
		}
		// With their parts, and only theirs.
		var parts int
		must(t, store.QueryRow(s, `SELECT count(*) FROM parts WHERE message_id = $1`, delivered).Scan(&parts))
		if parts != 0 {
			t.Errorf("%d parts of pruned message %d left", parts, delivered)
		}
		must(t, store.QueryRow(s, `SELECT count(*) FROM parts WHERE message_id = $1`, submitted).Scan(&parts))
		if parts != 1 {
			t.Errorf("kept message %d has %d parts, want 1", submitted, parts)
		}
		for _, id := range kept {
			if st, _, err := s.MessageState(ctx, id); err != nil {
				t.Errorf("message %d (%s) pruned: %v", id, st, err)
			}
		}
		// The carrier's late receipt for a pruned message changes nothing.
		if r, err := s.Receipt(ctx, "", []string{"smsc-1"}, "DELIVRD", ""); err != nil || r.Matched {
			t.Errorf("late receipt = %+v, %v", r, err)
		}
		if n, err := s.Prune(ctx, cutoff); err != nil || n != 0 {
			t.Errorf("second Prune = %d, %v", n, err)
		}
		// Pruned messages leave the archive.
		p := archive(t, s, store.ArchiveQuery{User: aliceJID, Max: 50})
		if p.Count != len(kept) {
			t.Errorf("archive after prune: %q", items(p))
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestArchiveOwnNumber: a message a user relayed to their own number is
// both sent and received by them, and is in their archive once.
func TestArchiveOwnNumber(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		f := newArchiveFixture(s)
		id := f.out(t, store.Outbound{SenderJID: aliceJID + "/phone", SenderNumber: aliceNum, Dest: aliceNum, StanzaID: "self", Body: "note to self", PeerJID: aliceJID})
		f.out(t, aliceTo(phoneNum, "a1", "hello phone"))
		for _, with := range []string{"", aliceNum} {
			p := archive(t, s, store.ArchiveQuery{User: aliceJID, With: with, Max: 10})
			n := 0
			for _, it := range p.Items {
				if it.ID == id {
					n++
				}
			}
			if n != 1 || (with == "" && p.Count != 2) || (with != "" && p.Count != 1) {
				t.Errorf("with %q: count %d, items %q; want the message to self once", with, p.Count, items(p))
			}
		}
		if b, err := s.ArchiveMetadata(context.Background(), aliceJID); err != nil || b.Count != 2 {
			t.Errorf("metadata = %+v, %v; want 2 messages", b, err)
		}
	})
}

// TestArchiveForms checks that archived messages carry the form of the
// number the user wrote to, as they came and went live: a message written
// to a national form, the phone's reply after it; that a message relayed
// from another user does not carry the form that user wrote; and that it
// carries the form the user writes that user's number in, once there is one.
func TestArchiveForms(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		f := newArchiveFixture(s)
		national := aliceTo(phoneNum, "a1", "hello phone")
		national.PeerLocal, national.SetForm = "2015550199", true
		f.out(t, national)
		f.in(t, phoneNum, "hi alice")
		f.out(t, store.Outbound{SenderJID: bobJID + "/pc", SenderNumber: bobNum, Dest: aliceNum, StanzaID: "b1", Body: "hi from bob",
			PeerJID: aliceJID, PeerLocal: "2015550100", SetForm: true})
		back := aliceTo(phoneNum, "a2", "now in full")
		back.SetForm = true // the international form again: the recorded form goes
		f.out(t, back)
		f.in(t, phoneNum, "ok")
		notices(t, s)
		p := archive(t, s, store.ArchiveQuery{User: aliceJID, Max: 50})
		var got []string
		for _, it := range p.Items {
			got = append(got, item(it)+" @"+it.Local)
		}
		sameItems(t, "forms", got,
			">"+phoneNum+" a1 hello phone @2015550199",
			"<"+phoneNum+"  hi alice @2015550199",
			"<"+bobNum+" b1 hi from bob @",
			">"+phoneNum+" a2 now in full @",
			"<"+phoneNum+"  ok @",
		)

		// Alice now writes to Bob's number in its national form: his
		// message relayed to her is shown from that form, the conversation
		// his relays now come to (Routing.Forms).
		f.out(t, store.Outbound{SenderJID: aliceJID + "/phone", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "a3", Body: "hi bob",
			PeerJID: bobJID, PeerLocal: "2015550142", SetForm: true})
		notices(t, s)
		p = archive(t, s, store.ArchiveQuery{User: aliceJID, With: bobNum, Max: 50})
		got = got[:0]
		for _, it := range p.Items {
			got = append(got, item(it)+" @"+it.Local)
		}
		sameItems(t, "forms of a user's number", got,
			"<"+bobNum+" b1 hi from bob @2015550142",
			">"+bobNum+" a3 hi bob @2015550142",
		)
	})
}

// TestOddTextInBatches stores, in one batch, texts that an array literal
// must quote (PostgreSQL takes a batch as an array per column): the word
// NULL, quotes, braces, commas, backslashes, a newline, an emoji; and reads
// them back unchanged.
func TestOddTextInBatches(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		f := newArchiveFixture(s)
		texts := []string{"NULL", `{"a",b}`, `back\slash \"`, "two\nlines", "👍 ok", "", " "}
		var msgs []*store.Outbound
		for i, text := range texts {
			m := aliceTo(phoneNum, text, text+"!")
			m.Parts, m.Extra = 1, text
			if i%2 == 0 {
				m.PeerLocal, m.SetForm = text, true
			}
			msgs = append(msgs, &m)
		}
		if err := f.s.AcceptOutbound(context.Background(), msgs); err != nil {
			t.Fatal(err)
		}
		p := archive(t, s, store.ArchiveQuery{User: aliceJID, With: phoneNum, Max: 50})
		var want []string
		for _, text := range texts {
			want = append(want, ">"+phoneNum+" "+text+" "+text+"!")
		}
		sameItems(t, "odd texts", items(p), want...)
	})
}
