package component

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"switchboard/roster/verify"
	"switchboard/store/storetest"
	"switchboard/xep/adhoc"
)

// TestCommandErrors: a command request the gateway cannot take is answered
// with the error XEP-0050 §4.6 gives it, the specific condition included:
// an unknown action malformed-action, an action the stage did not offer
// bad-action, a session that is not (or no longer) there bad-sessionid. A
// refused request leaves the session as it was.
func TestCommandErrors(t *testing.T) {
	st := storetest.SQLite(t)
	reg := verify.New(verify.Config{Logger: zerolog.New(zerolog.NewTestWriter(t))}, st)
	h := start(t, newFakeServer(t), func(c *Config) { c.Registrar, c.Sessions = reg, st })
	sc := h.srv.session()
	h.onConnect(t)

	send := func(id, node, sid, action, inner string) node {
		t.Helper()
		attrs := ` node='` + node + `'`
		if sid != "" {
			attrs += ` sessionid='` + sid + `'`
		}
		if action != "" {
			attrs += ` action='` + action + `'`
		}
		sc.send(`<iq type='set' id='` + id + `' from='alice@example.com/r' to='sms.example.com'>` +
			`<command xmlns='http://jabber.org/protocol/commands'` + attrs + `>` + inner + `</command></iq>`)
		return sc.next()
	}
	result := func(n node) node {
		t.Helper()
		if n.attr("type") != "result" {
			t.Fatalf("want a result: %s", n)
		}
		return n.children(adhoc.NS, "command")[0]
	}
	refused := func(n node, typ, cond, specific string) {
		t.Helper()
		typGot, condGot, text, ok := n.stanzaError()
		if !ok || n.attr("type") != "error" || typGot != typ || condGot != cond || text == "" {
			t.Errorf("want a %s/%s error with a text: %s", typ, cond, n)
			return
		}
		var got []string
		for _, c := range n.children(nsAccept, "error")[0].Nodes {
			if c.XMLName.Space == adhoc.NS {
				got = append(got, c.XMLName.Local)
			}
		}
		if len(got) != 1 || got[0] != specific {
			t.Errorf("specific conditions %q, want [%s]: %s", got, specific, n)
		}
	}
	phone := `<x xmlns='jabber:x:data' type='submit'><field var='phone'><value>+12015550142</value></field></x>`

	// The first stage of registration offers next only.
	c := result(send("c1", "jabber:iq:register", "", "execute", ""))
	sid := c.attr("sessionid")
	if len(c.children(adhoc.NS, "actions")) != 1 || len(c.children(adhoc.NS, "actions")[0].children(adhoc.NS, "next")) != 1 {
		t.Fatalf("stage 1 does not offer next: %s", c)
	}
	refused(send("c2", "jabber:iq:register", sid, "prev", phone), "modify", "bad-request", adhoc.BadAction)
	refused(send("c3", "jabber:iq:register", sid, "complete", phone), "modify", "bad-request", adhoc.BadAction)
	refused(send("c4", "jabber:iq:register", sid, "frobnicate", phone), "modify", "bad-request", adhoc.MalformedAction)
	refused(send("c5", "jabber:iq:register", "", "next", phone), "modify", "bad-request", adhoc.BadAction)
	refused(send("c6", "jabber:iq:register", "no-such-session", "next", phone), "modify", "bad-request", adhoc.BadSessionID)
	refused(send("c7", "status", sid, "execute", ""), "modify", "bad-request", adhoc.BadSessionID)

	// The session is as it was: next goes on, to the code, which is
	// completed, not nexted.
	c = result(send("c8", "jabber:iq:register", sid, "next", phone))
	if c.attr("status") != "executing" || !strings.Contains(c.String(), "+12015550142") {
		t.Fatalf("stage 2 after the refusals: %s", c)
	}
	refused(send("c9", "jabber:iq:register", sid, "next", ""), "modify", "bad-request", adhoc.BadAction)
	refused(send("c10", "jabber:iq:register", sid, "prev", ""), "modify", "bad-request", adhoc.BadAction)

	// Once cancelled, the session is gone.
	if c = result(send("c11", "jabber:iq:register", sid, "cancel", "")); c.attr("status") != "canceled" {
		t.Fatalf("cancel: %s", c)
	}
	refused(send("c12", "jabber:iq:register", sid, "complete", ""), "modify", "bad-request", adhoc.BadSessionID)
}

// TestOfferRoundTrip: the actions a stage offered go in front of the
// command's data and come back out; data stored without them (by an
// instance of an earlier version) is taken whole, as offering next and
// complete.
func TestOfferRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		a    *adhoc.Actions
		data string
	}{
		{adhoc.NextActions(false), "+12015550142"},
		{adhoc.NextActions(true), "a|b"},
		{nil, ""},
	} {
		packed := packOffer(tc.a, tc.data)
		a, data := unpackOffer(packed)
		if data != tc.data {
			t.Errorf("%q: data %q, want %q", packed, data, tc.data)
		}
		for _, name := range []string{adhoc.Prev, adhoc.Next, adhoc.Complete} {
			if a.Allows(name) != tc.a.Allows(name) {
				t.Errorf("%q: %s allowed %v, want %v", packed, name, a.Allows(name), tc.a.Allows(name))
			}
		}
	}
	a, data := unpackOffer("+12015550142")
	if data != "+12015550142" || !a.Allows(adhoc.Next) || !a.Allows(adhoc.Complete) || a.Allows(adhoc.Prev) {
		t.Errorf("data without actions: %q, %+v", data, a)
	}
}
