package roster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/store/storetest"
)

// pushes records what the worker sends, in order.
type pushes struct {
	items     []string // "owner: jid name"
	presences []string // "to: from available|unavailable status"
}

func (p *pushes) PushRoster(_ context.Context, owner jid.JID, items []Item) error {
	for _, it := range items {
		p.items = append(p.items, fmt.Sprintf("%s: %s %s", owner, it.JID, it.Name))
	}
	return nil
}

func (p *pushes) ContactPresence(_ context.Context, from, owner jid.JID, available bool, status string) error {
	a := "available"
	if !available {
		a = "unavailable"
	}
	p.presences = append(p.presences, fmt.Sprintf("%s: %s %s %s", owner, from.Localpart(), a, status))
	return nil
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

// service returns a roster service on a fresh SQLite store, with alice
// and bob registered.
func service(t *testing.T) (*Service, *store.Store, *pushes) {
	t.Helper()
	st := storetest.SQLite(t)
	s := New(Config{Component: jid.MustParse("sms.example.com"), Logger: zerolog.New(zerolog.NewTestWriter(t))}, st)
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
	wantPresences(t, "carol, not registered, has bob", p,
		"carol@example.com: +12015550177 available SMS")
	if _, err := st.Bind(ctx, carolNum, carol.String(), "operator"); err != nil {
		t.Fatal(err)
	}
	if err := s.Registered(ctx, carolNum); err != nil {
		t.Fatal(err)
	}
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
}
