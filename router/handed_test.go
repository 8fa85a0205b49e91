package router

import (
	"context"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/store/storetest"
)

// TestHandedBound checks that handed notices waiting in memory stay within
// handedMax, and that expired ones are dropped, not sent.
func TestHandedBound(t *testing.T) {
	r := New(Config{}, storetest.SQLite(t))
	many := make([]store.Notice, handedMax+10)
	for i := range many {
		many[i].ID = int64(i + 1)
	}
	r.HandNotices(many)
	if n := len(r.handed); n != handedMax {
		t.Fatalf("%d handed notices kept, want %d", n, handedMax)
	}
	// All expired: none is taken, and the next hand-over drops them.
	for i := range r.handed {
		r.handed[i].deadline = time.Now().Add(-time.Second)
	}
	r.HandNotices([]store.Notice{{ID: 1 << 40}})
	got := r.takeHanded(noticeBatch)
	if len(got) != 1 || got[0].ID != 1<<40 {
		t.Fatalf("took %d notices (first %+v), want only the fresh one", len(got), got[0])
	}
	if len(r.handed) != 0 {
		t.Fatalf("%d handed notices left", len(r.handed))
	}
	// All of them dropped, and given back: more than one statement holds.
	if len(r.dropped) != handedMax+10 {
		t.Fatalf("%d dropped, want %d", len(r.dropped), handedMax+10)
	}
	r.claimDue.Store(false)
	r.releaseDropped(t.Context())
	if !r.claimDue.Load() || len(r.dropped) != 0 {
		t.Fatalf("giving back %d notices failed (claim due %v, %d left)", handedMax+10, r.claimDue.Load(), len(r.dropped))
	}
}

// TestDroppedGivenBack: a handed notice dropped from memory — past its
// deadline (the XMPP side was down), or beyond handedMax — goes back to the
// store at once, claimable in its turn, rather than staying leased to this
// instance until its lease runs out while newer ones are sent.
func TestDroppedGivenBack(t *testing.T) {
	st := storetest.SQLite(t)
	r := New(Config{Instance: "i1"}, st)
	st.HandNotices("i1", NoticeLease, r.HandNotices)
	ctx := t.Context()
	accept := func(body string) int64 {
		t.Helper()
		in := &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: body}
		if err := st.AcceptInbound(ctx, in); err != nil || !in.Handed {
			t.Fatalf("AcceptInbound(%q): handed %v, %v", body, in.Handed, err)
		}
		return in.ID
	}
	claim := func() []int64 {
		t.Helper()
		ns, err := st.ClaimNotices(ctx, "i2", 10, NoticeLease)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}

	first := accept("first")
	if len(r.handed) != 1 || r.handed[0].n.ID != first {
		t.Fatalf("handed %+v, want message %d", r.handed, first)
	}
	r.handed[0].deadline = time.Now().Add(-time.Second) // waited out an outage
	second := accept("second")
	r.releaseDropped(ctx)
	if got := claim(); len(got) != 1 || got[0] != first {
		t.Fatalf("claimed %v after the first expired, want [%d]", got, first)
	}
	if got := r.takeHanded(noticeBatch); len(got) != 1 || got[0].ID != second {
		t.Fatalf("took %+v, want message %d", got, second)
	}

	// Past the bound: not kept, given back.
	r.handed = make([]handedNotice, handedMax)
	for i := range r.handed {
		r.handed[i] = handedNotice{store.Notice{ID: 1<<40 + int64(i)}, time.Now().Add(time.Minute)}
	}
	third := accept("third")
	r.releaseDropped(ctx)
	if got := claim(); len(got) != 1 || got[0] != third {
		t.Fatalf("claimed %v past the bound, want [%d]", got, third)
	}
	if !r.claimDue.Load() {
		t.Fatal("no claim due after notices were given back")
	}
}

// TestDelayedFromPhone: a message from a phone sent to its user well after
// it came carries the time it came; one sent at once does not.
func TestDelayedFromPhone(t *testing.T) {
	x := &textXMPP{}
	r := New(Config{Component: jid.MustParse("sms.example.com")}, storetest.SQLite(t))
	r.SetXMPP(x)
	came := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for _, n := range []store.Notice{
		{ID: 1, Direction: store.In, UserJID: "alice@example.com", PeerNumber: "+12015550199", Body: "now", Stored: time.Now()},
		{ID: 2, Direction: store.In, UserJID: "alice@example.com", PeerNumber: "+12015550199", Body: "waited", Stored: came},
	} {
		if err := r.send(t.Context(), n, make(presenceSeen)); err != nil {
			t.Fatal(err)
		}
	}
	if len(x.sent) != 2 || x.sent[0].body != "now" || !x.sent[0].written.IsZero() ||
		x.sent[1].body != "waited" || !x.sent[1].written.Equal(came) {
		t.Fatalf("sent %+v; want %q undated, then %q written at %v", x.sent, "now", "waited", came)
	}
}

// textXMPP records SendText; nothing else of XMPP is used.
type textXMPP struct {
	XMPP
	sent []struct {
		body    string
		written time.Time
	}
}

func (x *textXMPP) SendText(_ context.Context, _, _ jid.JID, _, body string, written time.Time) error {
	x.sent = append(x.sent, struct {
		body    string
		written time.Time
	}{body, written})
	return nil
}

// countingXMPP answers Available and counts the calls; nothing else of
// XMPP is used.
type countingXMPP struct {
	XMPP
	calls int
}

func (c *countingXMPP) Available(jid.JID) (bool, bool) { c.calls++; return true, false }

// TestPresenceSeenOncePerBatch: within one batch (of messages to route, or
// of notices), a JID's presence is read once, however many messages name it.
func TestPresenceSeenOncePerBatch(t *testing.T) {
	x := &countingXMPP{}
	r := New(Config{}, storetest.SQLite(t))
	r.SetXMPP(x)
	seen := make(presenceSeen)
	for _, u := range []string{"alice@example.com/phone", "alice@example.com/phone", "bob@example.com/a", "alice@example.com/phone"} {
		if known, avail := r.available(jid.MustParse(u), seen); !known || avail {
			t.Fatalf("available(%s) = %v, %v", u, known, avail)
		}
	}
	if x.calls != 2 {
		t.Fatalf("Available called %d times for 2 senders", x.calls)
	}
}

// TestQuoteStart: a report's quote is cut at a character boundary as a
// reader sees it.
func TestQuoteStart(t *testing.T) {
	family := "\U0001F468\u200D\U0001F469\u200D\U0001F467" // man ZWJ woman ZWJ girl
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 5, "short"},
		{"  on\n two\tlines ", 20, "on two lines"},
		{"abcdefgh", 5, "abcde…"},
		{"abcd efgh", 5, "abcd…"},
		{"abcde\u0301fgh", 5, "abcd…"},              // e + combining acute: not split
		{"abcd\U0001F44D\U0001F3FDxyz", 5, "abcd…"}, // thumbs up + skin tone
		{"ab" + family + "xyz", 5, "ab…"},           // the whole family or nothing
		{"abcd\U0001F1EB\U0001F1F7xyz", 5, "abcd…"}, // a flag (FR) across the cut
		{"abc\U0001F1EB\U0001F1F7xyz", 5, "abc\U0001F1EB\U0001F1F7…"},
		{"\U0001F1EB\U0001F1F7\U0001F1E9\U0001F1EAxy", 3, "\U0001F1EB\U0001F1F7…"}, // FR DE, cut inside DE
	} {
		if got := quoteStart(tc.in, tc.max, "…"); got != tc.want {
			t.Errorf("quoteStart(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
