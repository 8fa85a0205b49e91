package component

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/roster/verify"
	"switchboard/store"
	"switchboard/store/storetest"
)

// TestCommandAcrossInstances: two instances share one store; the stages of
// a registration reach them in turn (as ejabberd spreads stanzas over a
// component's connections) and the command still completes.
func TestCommandAcrossInstances(t *testing.T) {
	st := storetest.SQLite(t)
	reg := verify.New(verify.Config{Logger: zerolog.New(zerolog.NewTestWriter(t))}, st)
	with := func(c *Config) { c.Registrar, c.Sessions = reg, st }
	srvA, srvB := newFakeServer(t), newFakeServer(t)
	a, b := start(t, srvA, with), start(t, srvB, with)
	scA, scB := srvA.session(), srvB.session()
	a.onConnect(t)
	b.onConnect(t)

	run := func(sc *serverConn, id, inner string) node {
		t.Helper()
		sc.send(`<iq type='set' id='` + id + `' from='alice@example.com/r' to='sms.example.com'>` + inner + `</iq>`)
		n := sc.next()
		if n.attr("type") != "result" {
			t.Fatalf("%s: %s", id, n)
		}
		return n.children("http://jabber.org/protocol/commands", "command")[0]
	}
	c := run(scA, "c1", `<command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' action='execute'/>`)
	sid := c.attr("sessionid")
	c = run(scB, "c2", `<command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' sessionid='`+sid+`' action='next'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='phone'><value>+12015550142</value></field></x></command>`)
	if c.attr("status") != "executing" || !strings.Contains(c.String(), "+12015550142") {
		t.Fatalf("stage 2 on the other instance: %s", c)
	}
	msgs, err := st.ClaimOutbound(context.Background(), "t", 10, time.Minute)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("code SMS: %v %v", msgs, err)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(msgs[0].Body)
	c = run(scA, "c3", `<command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' sessionid='`+sid+`' action='complete'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='code'><value>`+code+`</value></field></x></command>`)
	if c.attr("status") != "completed" || !strings.Contains(c.String(), "Your number is now +12015550142") {
		t.Fatalf("stage 3 back on the first instance: %s", c)
	}
	if bnd, err := st.NumberOf(context.Background(), "alice@example.com"); err != nil || bnd.Number != "+12015550142" {
		t.Fatalf("binding = %+v, %v", bnd, err)
	}
}

// twoInstances starts two components sharing one SQLite store, as two
// instances of the gateway, each with a fake server of its own.
func twoInstances(t *testing.T) (st *store.Store, a, b *harness, srvA, srvB *fakeServer) {
	t.Helper()
	st = storetest.SQLite(t)
	srvA, srvB = newFakeServer(t), newFakeServer(t)
	shared := func(c *Config) { c.Presences = st }
	return st, start(t, srvA, shared), start(t, srvB, shared), srvA, srvB
}

// TestPresenceAcrossInstances: ejabberd spreads a component's stanzas over
// its connections, so alice's coming online may reach one instance and a
// message for her another. With the shared record, each instance sees
// what the other read; on its own stream, an instance sees at once what it
// read before (no race with the write); the record outlives a stream, for
// ejabberd does not send users' presence again to a component that
// connects.
func TestPresenceAcrossInstances(t *testing.T) {
	_, a, b, srvA, srvB := twoInstances(t)
	scA, scB := srvA.session(), srvB.session()
	a.onConnect(t)
	b.onConnect(t)
	grant := func(sc *serverConn) { advertise(sc, nsPriv2, "roster") }
	grant(scA)
	grant(scB)
	alice := jid.MustParse("alice@example.com")
	avail := func(c *Component) bool {
		known, ok := c.Available(alice)
		if !known {
			t.Fatal("presence not known under the presence privilege")
		}
		return ok
	}
	// pres has the server forward alice's presence (typ "" or
	// "unavailable"; resource "" for her bare JID) on sc, and waits until
	// the instance has read it.
	pres := func(sc *serverConn, resource, typ string) {
		from := "alice@example.com"
		if resource != "" {
			from += "/" + resource
		}
		if typ != "" {
			typ = ` type='` + typ + `'`
		}
		sc.send(`<presence from='` + from + `' to='` + testDomain + `'` + typ + `/>`)
		sc.ping()
	}
	if avail(b.comp) || avail(a.comp) {
		t.Fatal("alice available before any presence")
	}

	pres(scA, "phone", "")
	if !avail(a.comp) {
		t.Fatal("instance a does not see the presence it has just read")
	}
	if !avail(b.comp) {
		t.Fatal("instance b does not see alice online, read by a")
	}
	pres(scB, "phone", "unavailable")
	if avail(b.comp) {
		t.Fatal("instance b still sees alice online after reading her going offline")
	}
	if avail(a.comp) {
		t.Fatal("instance a still sees alice online, gone offline through b")
	}

	// alice online on two resources, one read by each instance. Both
	// streams end and start again, and the server sends nothing: she is
	// still online, until both resources go.
	pres(scA, "laptop", "")
	pres(scB, "phone", "")
	scA.conn.Close()
	scB.conn.Close()
	scA, scB = srvA.session(), srvB.session()
	a.onConnect(t)
	b.onConnect(t)
	grant(scA)
	grant(scB)
	if !avail(a.comp) || !avail(b.comp) {
		t.Fatal("alice, online throughout, forgotten when the streams started again")
	}
	pres(scB, "laptop", "unavailable")
	if !avail(b.comp) {
		t.Fatal("alice offline with her phone still online")
	}
	// One resource asked about on its own (whom a failure report can reach).
	for res, want := range map[string]bool{"phone": true, "laptop": false, "tablet": false} {
		known, ok := a.comp.Available(jid.MustParse("alice@example.com/" + res))
		if !known || ok != want {
			t.Errorf("Available(alice/%s) = %v, %v; want true, %v", res, known, ok, want)
		}
	}
	pres(scA, "phone", "unavailable")
	if avail(a.comp) || avail(b.comp) { // a first: it waits for its own write
		t.Fatal("alice online with both resources gone")
	}

	// Unavailable from the bare JID ends every resource.
	pres(scA, "laptop", "")
	pres(scB, "phone", "")
	if !avail(a.comp) {
		t.Fatal("alice not online again")
	}
	pres(scB, "", "unavailable")
	if avail(b.comp) || avail(a.comp) { // b first: it waits for its own write
		t.Fatal("alice still online after unavailable from her bare JID")
	}

	// Unavailable sent to one number, as when alice unsubscribes from it or
	// blocks it: under Prosody's privilege:2, whose forwarding is
	// complete, it is not her presence.
	pres(scA, "phone", "")
	if !avail(a.comp) {
		t.Fatal("alice not online again")
	}
	broadcast := func(sc *serverConn, typ string, numbers ...string) []node {
		for _, n := range numbers {
			sc.send(`<presence from='alice@example.com/phone' to='` + n + `@` + testDomain + `'` + typ + `/>`)
		}
		return sc.ping()
	}
	// rosterGet answers the component's privileged roster get of alice's
	// roster (among before, else the next stanza), with number in it
	// subscribed as sub ("" not in it). One get serves a broadcast.
	rosterGet := func(sc *serverConn, before []node, number, sub string) {
		t.Helper()
		var iq node
		for _, n := range before {
			if isRosterGet(n) {
				iq = n
			}
		}
		if iq.XMLName.Local == "" {
			iq = sc.nextWhere(isRosterGet)
		}
		if iq.XMLName.Local != "iq" || iq.attr("type") != "get" || iq.attr("to") != "alice@example.com" ||
			len(iq.children(nsRoster, "query")) != 1 {
			t.Fatalf("want a roster get of alice's roster, got %s", iq)
		}
		item := ""
		if sub != "" {
			item = `<item jid='` + number + `@` + testDomain + `' subscription='` + sub + `'/>`
		}
		sc.send(`<iq type='result' id='` + iq.attr("id") + `' from='alice@example.com' to='` + testDomain + `'>` +
			`<query xmlns='jabber:iq:roster'>` + item + `</query></iq>`)
	}
	broadcast(scA, ` type='unavailable'`, "+12015550123")
	if !avail(a.comp) || !avail(b.comp) {
		t.Fatal("alice offline after unavailable to one number, with privilege:2")
	}

	// ejabberd 23.01 (privilege:1) forwards nothing when a client's
	// connection ends without its unavailable presence, but broadcasts
	// the unavailable to the numbers in her roster, once for each.
	advertise(scA, nsPrivilege1, "roster")
	advertise(scB, nsPrivilege1, "roster")
	// The same presence comes when she removes a number from her roster,
	// or cancels its subscription, while staying online: her roster,
	// read, tells them apart.
	rosterGet(scA, broadcast(scA, ` type='unavailable'`, "+12015550126"), "+12015550126", "")
	rosterGet(scA, broadcast(scA, ` type='unavailable'`, "+12015550127"), "+12015550127", "to")
	scA.ping()
	if !avail(a.comp) || !avail(b.comp) {
		t.Fatal("alice offline after removing a number from her roster")
	}
	before := broadcast(scA, ` type='unavailable'`, "+12015550123", "+12015550124", "+12015550125")
	rosterGet(scA, before, "+12015550123", "both")
	if avail(a.comp) || avail(b.comp) { // a first: it waits for its own write
		t.Fatal("alice online after her presence to the numbers in her roster said she had gone")
	}
	// Available presence broadcast to numbers is not read (the server
	// forwards the client's own): only what is forwarded counts.
	broadcast(scB, "", "+12015550123")
	if avail(b.comp) || avail(a.comp) {
		t.Fatal("available presence to a number taken for alice's")
	}
	pres(scB, "phone", "")
	if !avail(b.comp) {
		t.Fatal("alice's forwarded presence not recorded")
	}
}

// advertise has the server advertise the presence privilege typ in ns, as
// Prosody (privilege:2) or ejabberd 23.01 (privilege:1) does, and waits
// until the component has read it.
func advertise(sc *serverConn, ns, typ string) {
	sc.send(`<message from='example.com' to='` + testDomain + `'><privilege xmlns='` + ns + `'>` +
		`<perm access='presence' type='` + typ + `'/></privilege></message>`)
	sc.ping()
}

// TestPresenceQueueCoalesces: the same change again, as a broadcast to
// every number in a roster brings it, is queued once.
func TestPresenceQueueCoalesces(t *testing.T) {
	var q presenceQueue
	q.init()
	at := time.Now()
	on := store.PresenceChange{JID: "alice@example.com", Resource: "phone", Available: true, At: at}
	off := on
	off.Available = false
	for _, ch := range []store.PresenceChange{on, on, on, off, off, on} {
		q.add(ch)
	}
	var got []bool
	for _, ch := range q.ops {
		got = append(got, ch.Available)
	}
	if fmt.Sprint(got) != "[true false true]" || q.queued != 3 {
		t.Fatalf("queued %v (%d); want [true false true] (3)", got, q.queued)
	}
	// The one write carries the latest copy's time, which must win over
	// another instance's write in between, as that copy would have.
	later := on
	later.At = at.Add(time.Second)
	q.add(later)
	if last := q.ops[len(q.ops)-1]; len(q.ops) != 3 || !last.At.Equal(later.At) {
		t.Fatalf("after a later copy: %d queued, the last at %v; want 3, at %v", len(q.ops), last.At, later.At)
	}
}

// TestAvailableWithoutRecord: with no presence record, a user's presence
// is unknown even under the presence privilege, whatever the server sends.
func TestAvailableWithoutRecord(t *testing.T) {
	h, sc := connected(t)
	advertise(sc, nsPriv2, "roster")
	if got := privileges(h.comp, "example.com"); got != "none/none/roster" {
		t.Fatalf("privileges = %s; the advertisement was not read", got)
	}
	sc.send(`<presence from='alice@example.com/phone' to='` + testDomain + `'/>`)
	sc.ping()
	if known, avail := h.comp.Available(jid.MustParse("alice@example.com")); known || avail {
		t.Fatalf("Available = %v, %v; want unknown", known, avail)
	}
}

// TestGrantSharedByInstances: ejabberd addresses its privilege
// advertisement to the component's domain, so the one for an instance's
// connection may reach another instance. An instance that got none uses
// what another recorded since its session started, and nothing older.
func TestGrantSharedByInstances(t *testing.T) {
	st, a, b, srvA, srvB := twoInstances(t)
	scA, scB := srvA.session(), srvB.session()
	a.onConnect(t)
	b.onConnect(t)
	alice := jid.MustParse("alice@example.com")
	if known, _ := b.comp.Available(alice); known {
		t.Fatal("presence known before any advertisement")
	}
	advertise(scA, nsPriv2, "managed_entity")
	scB.ping()
	if known, _ := b.comp.Available(alice); !known {
		t.Fatal("instance b does not use the advertisement instance a got")
	}
	if _, _, perm := b.comp.Privileges("example.com"); perm != "" {
		t.Fatalf("instance b's own privileges = %q; want none advertised to it", perm)
	}

	// An advertisement recorded long before b's session does not count.
	ctx := context.Background()
	carol := jid.MustParse("carol@example.org")
	grant := store.Grant{NS: nsPrivilege1, Roster: "none", Message: "none", Presence: "roster", At: time.Now().Add(-time.Hour)}
	if err := st.SetGrant(ctx, "example.org", grant); err != nil {
		t.Fatal(err)
	}
	if known, _ := b.comp.Available(carol); known {
		t.Fatal("an advertisement older than the session counted")
	}
	grant.At = time.Now()
	if err := st.SetGrant(ctx, "example.org", grant); err != nil {
		t.Fatal(err)
	}
	if known, _ := b.comp.Available(carol); !known {
		t.Fatal("a fresh advertisement for example.org did not count")
	}
	// A late write of an older advertisement changes nothing.
	grant.At, grant.Presence = time.Now().Add(-time.Minute), "none"
	if err := st.SetGrant(ctx, "example.org", grant); err != nil {
		t.Fatal(err)
	}
	if known, _ := b.comp.Available(carol); !known {
		t.Fatal("an older advertisement written late replaced a newer one")
	}
}
