package component

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/store"
	"switchboard/store/storetest"
)

// TestGatewayPresenceKeepsRecord: a user's subscription request, probe and
// unsubscribe to the gateway's own address are answered as a contact
// answers them, and none of them touches the record of the user's
// presence, which the available and unavailable presence forwarded to that
// same address under the privilege still keeps.
func TestGatewayPresenceKeepsRecord(t *testing.T) {
	st := storetest.SQLite(t)
	h := start(t, newFakeServer(t), func(c *Config) { c.Presences = st })
	sc := h.srv.session()
	h.onConnect(t)
	advertise(sc, nsPriv2, "roster")
	alice := jid.MustParse("alice@example.com")
	available := func() bool {
		t.Helper()
		known, avail := h.comp.Available(alice)
		if !known {
			t.Fatal("presence not known under the presence privilege")
		}
		return avail
	}
	exchange := func(in string, want ...want) {
		t.Helper()
		sc.send(in)
		got := sc.ping()
		if len(got) != len(want) {
			t.Fatalf("%s: got %v, want %d stanzas", in, got, len(want))
		}
		for i := range want {
			want[i].match(t, got[i])
		}
	}

	exchange(`<presence from='alice@example.com/phone' to='sms.example.com'/>`)
	if !available() {
		t.Fatal("alice's forwarded presence not recorded")
	}
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='subscribe'/>`,
		presenceWant(testDomain, "alice@example.com", "subscribed", ""),
		presenceWant(testDomain, "alice@example.com", "", ""))
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='probe'/>`,
		presenceWant(testDomain, "alice@example.com", "", ""))
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='unsubscribe'/>`,
		presenceWant(testDomain, "alice@example.com", "unavailable", ""))
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='unsubscribed'/>`)
	if !available() {
		t.Fatal("alice, online, recorded offline after presence to the gateway that was not hers")
	}
	exchange(`<presence from='alice@example.com/phone' to='sms.example.com' type='unavailable'/>`)
	if available() {
		t.Fatal("alice's forwarded unavailable presence not recorded")
	}
}

// TestServerRestarted: as it connects, the component asks the server's
// uptime (XEP-0012); presence recorded before the server started is
// ended (the server ended those sessions, and ejabberd does not say so),
// what was read since is kept; a server that does not answer changes
// nothing.
func TestServerRestarted(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	now := time.Now()
	if err := st.SetPresences(ctx, []store.PresenceChange{
		{JID: "alice@example.com", Resource: "phone", Available: true, At: now.Add(-time.Hour)},
		{JID: "bob@example.com", Resource: "laptop", Available: true, At: now.Add(-10 * time.Second)},
	}); err != nil {
		t.Fatal(err)
	}
	h := start(t, newFakeServer(t), func(c *Config) { c.Presences = st })
	sc := h.srv.session()
	h.onConnect(t)
	var q node
	select {
	case q = <-sc.lasts:
	case <-time.After(waitFor):
		t.Fatal("the component did not ask the server's uptime")
	}
	want{name: "iq", attr: map[string]string{"type": "get", "from": testDomain, "to": testDomain}}.match(t, q)
	// Up for a minute: alice's record is older, bob's newer.
	sc.send(`<iq type='result' id='` + q.attr("id") + `' from='` + testDomain + `' to='` + testDomain + `'><query xmlns='jabber:iq:last' seconds='60'/></iq>`)
	waitUntil(t, "alice, recorded online an hour before the server started, to be offline", func() bool {
		a, err := st.UserAvailable(ctx, "alice@example.com", "")
		return err == nil && !a
	})
	if b, err := st.UserAvailable(ctx, "bob@example.com", ""); err != nil || !b {
		t.Errorf("bob, recorded online since the server started: %v, %v", b, err)
	}

	// Connecting again to a server that does not answer: nothing changes.
	sc.conn.Close()
	sc2 := h.srv.session()
	h.onConnect(t)
	q = <-sc2.lasts
	sc2.send(`<iq type='error' id='` + q.attr("id") + `' from='` + testDomain + `' to='` + testDomain + `'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
	sc2.ping()
	if b, err := st.UserAvailable(ctx, "bob@example.com", ""); err != nil || !b {
		t.Errorf("bob after a server without uptime: %v, %v", b, err)
	}
}

// TestUnavailableLargeRoster: the roster read that tells a user's going
// offline from their removing a number (ejabberd, privilege:1) may be far
// larger than the stanza bound; it is read, and the session stays.
func TestUnavailableLargeRoster(t *testing.T) {
	st := storetest.SQLite(t)
	h := start(t, newFakeServer(t), func(c *Config) { c.Presences, c.MaxStanza = st, 4096 })
	sc := h.srv.session()
	h.onConnect(t)
	advertise(sc, nsPrivilege1, "roster")
	alice := jid.MustParse("alice@example.com/phone")
	sc.send(`<presence from='alice@example.com/phone' to='` + testDomain + `'/>`) // forwarded: online
	sc.ping()
	sc.send(`<presence from='alice@example.com/phone' to='+12015550123@` + testDomain + `' type='unavailable'/>`)
	get := sc.nextWhere(isRosterGet)
	var items strings.Builder
	for i := range 200 { // about 20 KB
		fmt.Fprintf(&items, `<item jid='+1201555%04d@%s' name='Contact %d' subscription='both'><group>Phone contacts</group></item>`, 1000+i, testDomain, i)
	}
	items.WriteString(`<item jid='+12015550123@` + testDomain + `' subscription='both'/>`)
	sc.send(`<iq type='result' id='` + get.attr("id") + `' from='alice@example.com' to='` + testDomain + `'><query xmlns='jabber:iq:roster'>` + items.String() + `</query></iq>`)
	sc.ping()
	if !h.comp.Connected() {
		t.Fatal("the session ended on the roster's size")
	}
	if known, avail := h.comp.Available(alice); !known || avail {
		t.Errorf("alice after her session's end was broadcast: known %v, available %v; want offline", known, avail)
	}
}

// TestLateLargeRoster: a roster read's answer that comes after the wait
// (a busy server) is still read off the stream, however large; the session
// stays.
func TestLateLargeRoster(t *testing.T) {
	h := start(t, newFakeServer(t), func(c *Config) { c.MaxStanza = 4096 })
	sc := h.srv.session()
	h.onConnect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := h.comp.readRoster(ctx, jid.MustParse("alice@example.com"))
		done <- err
	}()
	get := sc.nextWhere(isRosterGet)
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("readRoster unanswered: %v, want the deadline", err)
	}
	var items strings.Builder
	for i := range 200 { // about 20 KB
		fmt.Fprintf(&items, `<item jid='+1201555%04d@%s' name='Contact %d' subscription='both'><group>Phone contacts</group></item>`, 1000+i, testDomain, i)
	}
	sc.send(`<iq type='result' id='` + get.attr("id") + `' from='alice@example.com' to='` + testDomain + `'><query xmlns='jabber:iq:roster'>` + items.String() + `</query></iq>`)
	sc.ping()
	if !h.comp.Connected() {
		t.Fatal("the session ended on the late answer's size")
	}
}
