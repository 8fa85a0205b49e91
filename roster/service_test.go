package roster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/roster/addressbook"
	"switchboard/router"
	"switchboard/store"
	"switchboard/store/storetest"
)

// pushes records what the worker sends, in order.
type pushes struct {
	items     []string // "owner: jid name"
	presences []string // "to: from available|unavailable status"
	// users are the items users made ("owner: jid"), which PushRoster
	// leaves and returns, as the component does.
	users map[string]bool
}

func (p *pushes) PushRoster(_ context.Context, owner jid.JID, items []Item) (users []jid.JID, err error) {
	for _, it := range items {
		if !it.Changed && !it.Remove && p.users[fmt.Sprintf("%s: %s", owner, it.JID)] {
			users = append(users, it.JID)
			continue
		}
		line := fmt.Sprintf("%s: %s %s", owner, it.JID, it.Name)
		switch {
		case it.Remove:
			line += " (removed)"
		case it.Changed:
			line += " (changed)"
		}
		p.items = append(p.items, line)
	}
	return users, nil
}

func (p *pushes) ContactPresence(_ context.Context, from, owner jid.JID, available bool, status string) error {
	a := "available"
	if !available {
		a = "unavailable"
	}
	p.presences = append(p.presences, fmt.Sprintf("%s: %s %s %s", owner, from.Localpart(), a, status))
	return nil
}

// takeItems returns the items pushed since the last call, in order.
func (p *pushes) takeItems() []string {
	out := p.items
	p.items = nil
	return out
}

// take returns the presences sent since the last take, sorted.
func (p *pushes) take() []string {
	out := p.presences
	p.presences = nil
	slices.Sort(out)
	return out
}

const (
	aliceNum = "+12015550100"
	bobNum   = "+12015550177"
	carolNum = "+12015550142"
)

var (
	alice = jid.MustParse("alice@example.com")
	bob   = jid.MustParse("bob@example.com")
	carol = jid.MustParse("carol@example.com")
)

// service returns a roster service on a fresh SQLite store with the SMS
// limits of the demo (US and Canada; premium-rate prefixes blocked), as
// the router decides them, and alice and bob registered.
func service(t *testing.T) (*Service, *store.Store, *pushes) {
	t.Helper()
	st := storetest.SQLite(t)
	rt := router.New(router.Config{Limits: router.Limits{
		AllowedRegions: []string{"US", "CA"}, BlockedPrefixes: []string{"+1900", "+1976", "+449"},
	}}, st)
	s := New(Config{Component: jid.MustParse("sms.example.com"), Refuse: rt.Forbidden,
		Logger: zerolog.New(zerolog.NewTestWriter(t))}, st)
	p := &pushes{}
	s.SetPusher(p)
	for who, num := range map[string]string{alice.String(): aliceNum, bob.String(): bobNum} {
		if _, err := st.Bind(context.Background(), num, who, "operator"); err != nil {
			t.Fatal(err)
		}
	}
	return s, st, p
}

func upload(t *testing.T, s *Service, owner jid.JID, book string) *Report {
	t.Helper()
	rep, err := s.Upload(context.Background(), owner, []byte(book))
	if err != nil {
		t.Fatalf("upload by %s: %v", owner, err)
	}
	return rep
}

// drain runs the worker until nothing is left to push.
func drain(t *testing.T, s *Service) {
	t.Helper()
	for i := 0; s.pushOnce(context.Background()); i++ {
		if i > 100 {
			t.Fatal("the worker never finishes")
		}
	}
}

func wantPresences(t *testing.T, when string, p *pushes, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := p.take(); !slices.Equal(got, want) {
		t.Errorf("%s: presences sent\n%s\nwant\n%s", when, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMutualPresence: whether two users have each other's numbers shows
// in both their rosters as soon as either's book or registration changes
// it — not only in the roster of the user whose book changed.
func TestMutualPresence(t *testing.T) {
	s, st, p := service(t)
	ctx := context.Background()

	upload(t, s, alice, "Bob, "+bobNum)
	drain(t, s)
	wantPresences(t, "alice has bob", p,
		"alice@example.com: +12015550177 available SMS")

	// Bob adds alice (online or not): mutual for both.
	upload(t, s, bob, "Alice, "+aliceNum+"\nCarol, "+carolNum)
	drain(t, s)
	wantPresences(t, "bob has alice too", p,
		"bob@example.com: +12015550100 available on XMPP",
		"bob@example.com: +12015550142 available SMS",
		"alice@example.com: +12015550177 available on XMPP")
	if status, avail := s.PresenceFor(ctx, alice, bobNum); status != StatusXMPP || !avail {
		t.Errorf("alice's probe of bob = %q %v", status, avail)
	}

	// Carol has bob, and registers the number bob has for her: mutual.
	upload(t, s, carol, "Bob, "+bobNum)
	drain(t, s)
	// With no number of her own, nothing she writes gets through.
	wantPresences(t, "carol, not registered, has bob", p,
		"carol@example.com: +12015550177 unavailable "+StatusNoNumber)
	if status, avail := s.PresenceFor(ctx, carol, bobNum); status != StatusNoNumber || avail {
		t.Errorf("carol's probe of bob, with no number = %q %v", status, avail)
	}
	if _, err := st.Bind(ctx, carolNum, carol.String(), "operator"); err != nil {
		t.Fatal(err)
	}
	s.Wake() // Bind marked the number's holders; serve wakes the worker
	drain(t, s)
	wantPresences(t, "carol registers", p,
		"bob@example.com: +12015550142 available on XMPP",
		"carol@example.com: +12015550177 available on XMPP")

	// Bob drops alice: no longer mutual, for alice either.
	upload(t, s, bob, "Carol, "+carolNum)
	drain(t, s)
	wantPresences(t, "bob drops alice", p,
		"alice@example.com: +12015550177 available SMS")
	if status, avail := s.PresenceFor(ctx, alice, bobNum); status != StatusSMS || !avail {
		t.Errorf("alice's probe of bob after = %q %v", status, avail)
	}

	// Dave verifies carol's number: carol has none left, and bob's
	// carol is dave now, who does not have bob's number.
	if _, err := st.Bind(ctx, carolNum, "dave@example.com", "operator"); err != nil {
		t.Fatal(err)
	}
	s.Wake()
	drain(t, s)
	wantPresences(t, "carol loses her number", p,
		"bob@example.com: +12015550142 available SMS",
		"carol@example.com: +12015550177 unavailable "+StatusNoNumber)

	// Bob unregisters: his book goes with his number, and the items that
	// stay (a server that only suggests their removal) show it.
	if _, err := st.Release(ctx, bobNum); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, bob); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	wantPresences(t, "bob unregisters", p,
		"bob@example.com: +12015550142 unavailable "+StatusNoNumber,
		"alice@example.com: +12015550177 available SMS",
		"carol@example.com: +12015550177 unavailable "+StatusNoNumber) // still none of her own
}

// TestItemsPushedOnce: a contact's roster item is pushed when it is new,
// renamed in the book, or gone from it; a number registered or released
// sends its presence only, so the name and group the user gave the item
// stay, and an item the user removed is not put back.
func TestItemsPushedOnce(t *testing.T) {
	s, st, p := service(t)
	ctx := context.Background()
	items := p.takeItems
	upload(t, s, alice, "Carol, "+carolNum+"\nBob, "+bobNum)
	drain(t, s)
	if got, want := items(), []string{"alice@example.com: +12015550142@sms.example.com Carol", "alice@example.com: +12015550177@sms.example.com Bob"}; !slices.Equal(got, want) {
		t.Fatalf("first upload pushed %q, want %q", got, want)
	}
	p.take()
	// Carol registers the number alice has for her: presence, no item.
	if _, err := st.Bind(ctx, carolNum, carol.String(), "operator"); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	if got := items(); len(got) != 0 {
		t.Errorf("a registration pushed items %q", got)
	}
	wantPresences(t, "carol registers", p, "alice@example.com: +12015550142 available SMS")
	// Renamed in the book: pushed again; bob gone: removed.
	upload(t, s, alice, "Carol Smith, "+carolNum)
	drain(t, s)
	if got, want := items(), []string{"alice@example.com: +12015550142@sms.example.com Carol Smith (changed)", "alice@example.com: +12015550177@sms.example.com Bob (removed)"}; !slices.Equal(got, want) {
		t.Errorf("rename and removal pushed %q, want %q", got, want)
	}
}

// TestUsersItemsLeft: a contact whose roster item the user made before it
// came in an address book keeps that item as the user made it: not renamed
// when the book renames the contact, not removed when the book drops it or
// the whole book is forgotten, while the gateway's own items are; and its
// presence is still sent. Back in a later book, it is still the user's.
func TestUsersItemsLeft(t *testing.T) {
	s, st, p := service(t)
	ctx := context.Background()
	items := p.takeItems
	p.users = map[string]bool{"alice@example.com: +12015550142@sms.example.com": true}
	upload(t, s, alice, "Carol, "+carolNum+"\nBob, "+bobNum)
	drain(t, s)
	if got, want := items(), []string{"alice@example.com: +12015550177@sms.example.com Bob"}; !slices.Equal(got, want) {
		t.Fatalf("first upload pushed %q, want %q", got, want)
	}
	wantPresences(t, "first upload", p,
		"alice@example.com: +12015550142 available SMS",
		"alice@example.com: +12015550177 available SMS")
	if dirty, err := st.DirtyContacts(ctx, 10); err != nil || len(dirty) != 0 {
		t.Fatalf("contacts left dirty: %v, %v", dirty, err)
	}
	// The pusher would now push carol's item (it is no longer new to it):
	// the worker must not ask.
	p.users = nil
	upload(t, s, alice, "Carol Smith, "+carolNum+"\nRobert, "+bobNum)
	drain(t, s)
	if got, want := items(), []string{"alice@example.com: +12015550177@sms.example.com Robert (changed)"}; !slices.Equal(got, want) {
		t.Errorf("renames pushed %q, want %q", got, want)
	}
	p.take()
	upload(t, s, alice, "Robert, "+bobNum)
	drain(t, s)
	if got := items(); len(got) != 0 {
		t.Errorf("dropping carol from the book pushed %q", got)
	}
	if _, err := st.ContactOf(ctx, alice.String(), carolNum); err == nil {
		t.Error("carol is still in the book")
	}
	// Back in the book: the roster still has the user's item.
	p.users = map[string]bool{"alice@example.com: +12015550142@sms.example.com": true}
	upload(t, s, alice, "Carol, "+carolNum+"\nRobert, "+bobNum)
	drain(t, s)
	if got := items(); len(got) != 0 {
		t.Errorf("carol back in the book pushed %q", got)
	}
	p.users = nil
	p.take()
	if err := s.Forget(ctx, alice); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	if got, want := items(), []string{"alice@example.com: +12015550177@sms.example.com Robert (removed)"}; !slices.Equal(got, want) {
		t.Errorf("forgetting the book pushed %q, want %q", got, want)
	}
}

// TestReportMutual: an upload's report tells the registered numbers whose
// users have the uploader's number (the roster shows them "on XMPP") from
// those who do not (shown as SMS until they add it), as the presences do.
func TestReportMutual(t *testing.T) {
	s, _, p := service(t)
	mutual := func(rep *Report) map[string][2]bool {
		m := make(map[string][2]bool)
		for _, e := range rep.Entries {
			m[e.Name] = [2]bool{e.OnXMPP, e.Mutual}
		}
		return m
	}
	rep := upload(t, s, alice, "Bob, "+bobNum+"\nCarol, "+carolNum+"\nMe, "+aliceNum)
	if got, want := mutual(rep), map[string][2]bool{"Bob": {true, false}, "Carol": {}, "Me": {true, true}}; !maps.Equal(got, want) {
		t.Errorf("alice's first report (on XMPP, mutual): %v, want %v", got, want)
	}
	if rep.OnXMPP() != 2 || rep.NotMutual() != 1 {
		t.Errorf("alice's first report: %d on XMPP, %d of them not mutual; want 2, 1", rep.OnXMPP(), rep.NotMutual())
	}
	rep = upload(t, s, bob, "Alice, "+aliceNum)
	if got, want := mutual(rep), map[string][2]bool{"Alice": {true, true}}; !maps.Equal(got, want) {
		t.Errorf("bob's report: %v, want %v", got, want)
	}
	rep = upload(t, s, alice, "Bob, "+bobNum)
	if got, want := mutual(rep), map[string][2]bool{"Bob": {true, true}}; !maps.Equal(got, want) || rep.NotMutual() != 0 {
		t.Errorf("alice's second report: %v, want %v", got, want)
	}
	drain(t, s)
	p.take()
	if status, _ := s.PresenceFor(context.Background(), alice, bobNum); status != StatusXMPP {
		t.Errorf("bob's presence for alice = %q, want %q as her report says", status, StatusXMPP)
	}
}

// TestUnreachable: numbers the SMS limits forbid are reported unreachable,
// with the reason, and shown unavailable with it — unless registered, for
// XMPP reaches them; every other number is reached by SMS.
func TestUnreachable(t *testing.T) {
	s, st, p := service(t)
	ctx := context.Background()
	dave := jid.MustParse("dave@example.com")
	const mum, premium, daveNum = "+442071234567", "+19005551234", "+442071234568"
	if _, err := st.Bind(ctx, daveNum, dave.String(), "operator"); err != nil {
		t.Fatal(err)
	}
	rep := upload(t, s, alice, "Mum, +44 20 7123 4567\nPremium, +19005551234\nCarol, "+carolNum+"\nDave, +44 20 7123 4568\nBob, "+bobNum)
	got := make(map[string]Entry)
	for _, e := range rep.Entries {
		got[e.Name] = e
	}
	for name, want := range map[string]struct {
		onXMPP bool
		why    string // in Unreachable; "" for reachable
	}{
		"Mum":     {why: "(GB)"},
		"Premium": {why: "+1900"},
		"Carol":   {},
		"Dave":    {onXMPP: true},
		"Bob":     {onXMPP: true},
	} {
		e := got[name]
		if e.OnXMPP != want.onXMPP || (want.why == "") != (e.Unreachable == "") || !strings.Contains(e.Unreachable, want.why) {
			t.Errorf("%s = %+v, want on XMPP %v, unreachable for %q", name, e, want.onXMPP, want.why)
		}
	}
	if rep.OnXMPP() != 2 || rep.BySMS() != 1 || rep.Unreachable() != 2 {
		t.Errorf("counts: %d on XMPP, %d by SMS, %d unreachable", rep.OnXMPP(), rep.BySMS(), rep.Unreachable())
	}

	drain(t, s)
	mumWhy, premiumWhy := got["Mum"].Unreachable, got["Premium"].Unreachable
	wantPresences(t, "alice's roster", p,
		"alice@example.com: +442071234567 unavailable "+mumWhy,
		"alice@example.com: +19005551234 unavailable "+premiumWhy,
		"alice@example.com: +12015550142 available SMS",
		"alice@example.com: +442071234568 available SMS",
		"alice@example.com: +12015550177 available SMS")
	for _, c := range []struct {
		who       jid.JID
		num       string
		status    string // contained in the status
		available bool
	}{
		{alice, mum, mumWhy, false},
		{alice, daveNum, StatusSMS, true}, // registered: XMPP reaches it
		{bob, mum, mumWhy, false},         // not in bob's book
		{bob, premium, premiumWhy, false},
		// Not in bob's book: registration is not told, so like any number there.
		{bob, daveNum, "(GB)", false},
		{bob, carolNum, StatusSMS, true},
	} {
		if status, avail := s.PresenceFor(ctx, c.who, c.num); !strings.Contains(status, c.status) || avail != c.available {
			t.Errorf("%s probes %s: %q %v, want %q %v", c.who, c.num, status, avail, c.status, c.available)
		}
	}
}

// TestUnreachableMany: a book large enough to be checked on several CPUs
// gets every number's verdict, in its place.
func TestUnreachableMany(t *testing.T) {
	s, _, _ := service(t)
	var b strings.Builder
	for i := range 1000 {
		if i%2 == 0 {
			fmt.Fprintf(&b, "C%d, +4420712%05d\n", i, i)
		} else {
			fmt.Fprintf(&b, "C%d, +1201556%04d\n", i, i)
		}
	}
	rep := upload(t, s, carol, b.String())
	if rep.BySMS() != 500 || rep.Unreachable() != 500 {
		t.Fatalf("%d by SMS, %d unreachable", rep.BySMS(), rep.Unreachable())
	}
	for _, e := range rep.Entries {
		if gb := strings.HasPrefix(e.Number.String(), "+44"); gb != strings.Contains(e.Unreachable, "(GB)") {
			t.Errorf("%s %s: unreachable %q", e.Name, e.Number, e.Unreachable)
		}
	}
}

// TestItemNames: one person's numbers are told apart in the roster by
// their labels, or by their last digits where labels do not.
func TestItemNames(t *testing.T) {
	got := itemNames([]addressbook.Contact{
		{Name: "Bob Builder", Number: "+12015550101", Label: "cell"},
		{Name: "Bob Builder", Number: "+12015550102", Label: "work"},
		{Name: "Alice", Number: "+12015550103", Label: "mobile"},
		{Name: "Ann", Number: "+12015550104", Label: "mobile"},
		{Name: "Ann", Number: "+12015550105", Label: "mobile"},
		{Number: "+12015550106"},
		{Number: "+12015550107"},
	})
	want := []string{"Bob Builder (cell)", "Bob Builder (work)", "Alice", "Ann (…0104)", "Ann (…0105)", "", ""}
	if !slices.Equal(got, want) {
		t.Errorf("itemNames = %q, want %q", got, want)
	}
}

// TestPushInTurn: the worker serves owners in turn, a batch each: one
// whose book keeps changing (1,200 contacts dirty, uploads in a loop)
// holds back nobody else's push beyond one batch.
func TestPushInTurn(t *testing.T) {
	s, _, p := service(t)
	var book strings.Builder
	for i := range 1200 {
		fmt.Fprintf(&book, "C%d, +1201300%04d\n", i, i)
	}
	upload(t, s, alice, book.String())
	upload(t, s, bob, "Carol, "+carolNum)
	pushedTo := func(items []string) map[string]int {
		out := map[string]int{}
		for _, it := range items {
			owner, _, _ := strings.Cut(it, ":")
			out[owner]++
		}
		return out
	}
	if !s.pushOnce(context.Background()) {
		t.Fatal("first batch: no more said to wait")
	}
	if got := pushedTo(p.takeItems()); got[alice.String()] != pushBatch || len(got) != 1 {
		t.Fatalf("first batch pushed %v, want %d of alice's", got, pushBatch)
	}
	s.pushOnce(context.Background())
	if got := pushedTo(p.takeItems()); got[bob.String()] != 1 || got[alice.String()] != 0 {
		t.Fatalf("second batch pushed %v, want bob's one item before more of alice's", got)
	}
	drain(t, s)
	if got := pushedTo(p.takeItems()); got[alice.String()] != 1200-pushBatch || got[bob.String()] != 0 {
		t.Fatalf("the rest pushed %v, want alice's other %d", got, 1200-pushBatch)
	}
}
