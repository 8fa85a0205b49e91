package component

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/roster"
)

const nsPriv2 = "urn:xmpp:privilege:2"

// waitUntil polls cond until it holds or waitFor passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func privileges(c *Component, domain string) string {
	r, m, p := c.Privileges(domain)
	return r + "/" + m + "/" + p
}

func TestPrivilegeAdvertisement(t *testing.T) {
	h, sc := connected(t)

	sc.send(`<message from='example.com' to='` + testDomain + `'><privilege xmlns='urn:xmpp:privilege:2'>` +
		`<perm access='roster' type='both'/><perm access='message' type='outgoing'/><perm access='presence' type='roster'/>` +
		`<perm access='iq'><namespace ns='urn:example' type='get'/></perm></privilege></message>`)
	// XEP-0356 0.2 as ejabberd 23.01 sends it, with explicit "none".
	sc.send(`<message from='other.example' to='` + testDomain + `'><privilege xmlns='urn:xmpp:privilege:1'>` +
		`<perm type='none' access='message'/><perm type='set' access='roster'/><perm type='none' access='presence'/></privilege></message>`)
	// From a server whose users the gateway does not serve (another host,
	// or a remote server): ignored.
	sc.send(`<message from='forbidden.example' to='` + testDomain + `'><privilege xmlns='urn:xmpp:privilege:2'>` +
		`<perm access='roster' type='both'/><perm access='presence' type='roster'/></privilege></message>`)
	// Not from a server: ignored, and not taken for a message to route.
	sc.send(`<message from='mallory@example.com/r' to='` + testDomain + `'><privilege xmlns='urn:xmpp:privilege:2'>` +
		`<perm access='roster' type='both'/></privilege></message>`)
	sc.send(`<message from='evil.example' to='` + testNumber + `' type='error'><privilege xmlns='urn:xmpp:privilege:2'>` +
		`<perm access='roster' type='both'/></privilege></message>`)
	if got := sc.ping(); len(got) != 0 {
		t.Errorf("the component answered privilege messages: %v", got)
	}
	if calls := h.router.taken(); len(calls) != 0 {
		t.Errorf("privilege messages reached the router: %v", calls)
	}
	for domain, want := range map[string]string{
		"example.com":       "both/outgoing/roster",
		"other.example":     "set/none/none",
		"evil.example":      "//",
		"forbidden.example": "//",
		"mallory":           "//",
	} {
		if got := privileges(h.comp, domain); got != want {
			t.Errorf("Privileges(%q) = %s, want %s", domain, got, want)
		}
	}

	// A new session starts without grants.
	sc.conn.Close()
	h.srv.session()
	h.onConnect(t)
	if got := privileges(h.comp, "example.com"); got != "//" {
		t.Errorf("after reconnecting: Privileges = %s, want none", got)
	}
}

func TestPushRosterDisconnected(t *testing.T) {
	c := New(Config{JID: jid.MustParse(testDomain), Logger: zerolog.New(zerolog.NewTestWriter(t))}, &fakeRouter{})
	ctx := context.Background()
	alice := jid.MustParse("alice@example.com")
	num := jid.MustParse(testNumber)
	if _, err := c.PushRoster(ctx, alice, []roster.Item{{JID: num}}); !errors.Is(err, ErrDisconnected) {
		t.Errorf("PushRoster while down: %v, want ErrDisconnected", err)
	}
	if err := c.ContactPresence(ctx, num, alice, true, ""); !errors.Is(err, ErrDisconnected) {
		t.Errorf("ContactPresence while down: %v, want ErrDisconnected", err)
	}
	if err := c.ContactPresence(ctx, jid.MustParse("bob@example.com"), alice, true, ""); err == nil || errors.Is(err, ErrDisconnected) {
		t.Errorf("ContactPresence from outside the component domain: %v, want a refusal", err)
	}
	if _, err := c.PushRoster(ctx, jid.MustParse("example.com"), []roster.Item{{JID: num}}); err == nil {
		t.Error("PushRoster to a domain's roster succeeded")
	}
}

// TestPushRosterFallback drives the fake server: a roster read first, which
// finds an item the user made (left, and returned) and one the gateway
// pushed before (not pushed again); then privileged sets while they work,
// XEP-0144 for the rest once the server refuses the first one.
func TestPushRosterFallback(t *testing.T) {
	h, sc := connected(t)
	sc.send(`<message from='example.com' to='` + testDomain + `'><privilege xmlns='urn:xmpp:privilege:1'><perm access='roster' type='both'/></privilege></message>`)
	sc.ping()

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	alice := jid.MustParse("alice@example.com/phone")
	items := []roster.Item{
		{JID: jid.MustParse("+12015550101@" + testDomain), Name: "Bob", Group: "Phone"},
		{JID: jid.MustParse("+12015550102@" + testDomain), Remove: true},
		{JID: jid.MustParse("+12015550103@" + testDomain), Name: "Dave", Group: "Phone"},
		{JID: jid.MustParse("+12015550104@" + testDomain), Name: "Eve", Group: "Phone"},
	}
	done := make(chan error, 1)
	var users []jid.JID
	go func() {
		var err error
		users, err = h.comp.PushRoster(ctx, alice, items)
		done <- err
	}()

	get := sc.next()
	want{name: "iq", attr: map[string]string{"type": "get", "from": testDomain, "to": "alice@example.com"}}.match(t, get)
	if q := get.children(nsRoster, "query"); len(q) != 1 || len(q[0].Nodes) != 0 {
		t.Fatalf("roster get %s", get)
	}
	sc.send(`<iq type='result' id='` + get.attr("id") + `' from='alice@example.com' to='` + testDomain + `'><query xmlns='jabber:iq:roster'>` +
		`<item jid='+12015550103@` + testDomain + `' name='Dad' subscription='none'><group>Family</group></item>` +
		`<item jid='+12015550104@` + testDomain + `' name='Eve' subscription='both'><group>Phone</group></item>` +
		`<item jid='carol@example.com' subscription='both'/></query></iq>`)

	iq := sc.next()
	want{name: "iq", attr: map[string]string{"type": "set", "from": testDomain, "to": "alice@example.com"}}.match(t, iq)
	q := iq.children(nsRoster, "query")
	if len(q) != 1 || len(q[0].Nodes) != 1 {
		t.Fatalf("roster set %s", iq)
	}
	it := q[0].Nodes[0]
	if it.attr("jid") != "+12015550101@"+testDomain || it.attr("name") != "Bob" || it.attr("subscription") != "both" ||
		len(it.Nodes) != 1 || it.Nodes[0].XMLName.Local != "group" || it.Nodes[0].Text != "Phone" {
		t.Errorf("roster item %s", it)
	}
	// ejabberd 23.01's answer.
	sc.send(`<iq type='error' id='` + iq.attr("id") + `' from='alice@example.com' to='` + testDomain + `'>` +
		`<error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)

	msg := sc.next()
	want{name: "message", attr: map[string]string{"type": "normal", "from": testDomain, "to": "alice@example.com"}}.match(t, msg)
	checkSuggestion(t, msg, `add +12015550101@`+testDomain+` name="Bob" group="Phone"`, `delete +12015550102@`+testDomain+` name="" group=""`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := []jid.JID{items[2].JID}; !slices.EqualFunc(users, want, jid.JID.Equal) {
		t.Errorf("users' items %v, want %v", users, want)
	}

	// The domain is now known to refuse: straight to XEP-0144. A renamed
	// item, suggested before, is a modify (clients skip an add of a JID
	// their roster has).
	renamed := roster.Item{JID: items[0].JID, Name: "Bob (work)", Group: "Phone", Changed: true}
	if _, err := h.comp.PushRoster(ctx, alice, []roster.Item{renamed}); err != nil {
		t.Fatal(err)
	}
	msg = sc.next()
	want{name: "message", attr: map[string]string{"type": "normal"}}.match(t, msg)
	checkSuggestion(t, msg, `modify +12015550101@`+testDomain+` name="Bob (work)" group="Phone"`)

	// Presence from a number.
	if err := h.comp.ContactPresence(ctx, items[0].JID, alice, true, "reachable by SMS"); err != nil {
		t.Fatal(err)
	}
	if err := h.comp.ContactPresence(ctx, items[0].JID, alice, false, ""); err != nil {
		t.Fatal(err)
	}
	on, off := sc.next(), sc.next()
	want{name: "presence", attr: map[string]string{"from": items[0].JID.String(), "to": "alice@example.com"}}.match(t, on)
	if on.hasAttr("type") || len(on.Nodes) != 1 || on.Nodes[0].XMLName.Local != "status" || on.Nodes[0].Text != "reachable by SMS" {
		t.Errorf("available presence %s", on)
	}
	want{name: "presence", attr: map[string]string{"type": "unavailable", "to": "alice@example.com"}}.match(t, off)
}

// checkSuggestion checks a XEP-0144 message: its items as `action jid name="…" group="…"`.
func checkSuggestion(t *testing.T, msg node, items ...string) {
	t.Helper()
	xs := msg.children(nsRosterX, "x")
	if len(xs) != 1 {
		t.Fatalf("no rosterx payload in %s", msg)
	}
	var got []string
	for _, it := range xs[0].Nodes {
		g := ""
		for _, c := range it.Nodes {
			g += c.Text
		}
		got = append(got, fmt.Sprintf("%s %s name=%q group=%q", it.attr("action"), it.attr("jid"), it.attr("name"), g))
	}
	if !slices.Equal(got, items) {
		t.Errorf("suggested %q, want %q", got, items)
	}
	body := msg.children(nsAccept, "body")
	if len(body) != 1 || !strings.Contains(body[0].Text, contacts(len(items))) {
		t.Errorf("body %v does not say how many contacts were suggested", body)
	}
}

// realServer runs a Component against an XMPP server started by testenv.
func realServer(t *testing.T, addr, domain, secret string) *Component {
	t.Helper()
	c := New(Config{
		JID:          jid.MustParse(domain),
		Server:       addr,
		Secret:       secret,
		ReconnectMin: 10 * time.Millisecond,
		ReconnectMax: 100 * time.Millisecond,
		Logger:       zerolog.New(zerolog.NewTestWriter(t)),
	}, &fakeRouter{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("Run did not return after its context ended")
		}
	})
	waitUntil(t, "the component to connect", c.Connected)
	return c
}

// privilegedServer is realServer once the server of domain granted the
// component the privileges the test configurations give: roster both,
// message outgoing, presence roster (XEP-0356).
func privilegedServer(t *testing.T, addr, component, secret, domain string) *Component {
	t.Helper()
	c := realServer(t, addr, component, secret)
	waitUntil(t, "the privilege advertisement", func() bool { return privileges(c, domain) == "both/outgoing/roster" })
	return c
}

type rosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr"`
	Subscription string   `xml:"subscription,attr"`
	Groups       []string `xml:"group"`
}

func (it rosterItem) String() string {
	return fmt.Sprintf("%s %q %s %v", it.JID, it.Name, it.Subscription, it.Groups)
}

func rosterItems(t *testing.T, s testenv.Stanza) []string {
	t.Helper()
	var q struct {
		Items []rosterItem `xml:"jabber:iq:roster query>item"`
	}
	if err := s.Decode(&q); err != nil {
		t.Fatalf("%s: %v", s.XML, err)
	}
	var out []string
	for _, it := range q.Items {
		out = append(out, it.String())
	}
	slices.Sort(out)
	return out
}

func getRoster(t *testing.T, ctx context.Context, c *testenv.Client) []string {
	t.Helper()
	r, err := c.IQ(ctx, `<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Attr["type"] != "result" {
		t.Fatalf("roster get: %s", r.XML)
	}
	return rosterItems(t, r)
}

func isRosterPush(s testenv.Stanza) bool {
	return s.Name == "iq" && s.Attr["type"] == "set" && strings.Contains(s.XML, "<query xmlns='jabber:iq:roster'")
}

func TestPushRosterProsodyPrivileged(t *testing.T) {
	t.Parallel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{Privilege: true, Users: map[string]string{"alice": "alice"}})
	comp := privilegedServer(t, p.ComponentAddr, p.Component, p.Secret, p.Domain)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	alice := testenv.Login(t, p.C2SAddr, jid.MustParse("alice@localhost/phone"), "alice")
	// Prosody pushes roster changes only to sessions that fetched the roster, as clients do.
	if got := getRoster(t, ctx, alice); len(got) != 0 {
		t.Fatalf("alice's roster before: %v", got)
	}
	bob := jid.MustParse("+12015550101@" + p.Component)
	carol := jid.MustParse("+12015550102@" + p.Component)
	_, err := comp.PushRoster(ctx, alice.JID, []roster.Item{
		{JID: bob, Name: "Bob", Group: "Address book"},
		{JID: carol, Name: "Carol & Ω", Group: "Address book"},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantBob := fmt.Sprintf("%s %q both [Address book]", bob, "Bob")
	wantCarol := fmt.Sprintf("%s %q both [Address book]", carol, "Carol & Ω")
	var pushed []string
	for range 2 {
		push, err := alice.Next(ctx, isRosterPush)
		if err != nil {
			t.Fatal(err)
		}
		pushed = append(pushed, rosterItems(t, push)...)
	}
	slices.Sort(pushed)
	if want := []string{wantBob, wantCarol}; !slices.Equal(pushed, want) {
		t.Errorf("roster pushes %q, want %q", pushed, want)
	}
	if got, want := getRoster(t, ctx, alice), []string{wantBob, wantCarol}; !slices.Equal(got, want) {
		t.Errorf("alice's roster %q, want %q", got, want)
	}

	// Remove one; removing it again is no error.
	for range 2 {
		if _, err := comp.PushRoster(ctx, alice.JID, []roster.Item{{JID: carol, Remove: true}}); err != nil {
			t.Fatal(err)
		}
	}
	push, err := alice.Next(ctx, isRosterPush)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rosterItems(t, push), []string{fmt.Sprintf("%s \"\" remove []", carol)}; !slices.Equal(got, want) {
		t.Errorf("removal push %q, want %q", got, want)
	}
	if got, want := getRoster(t, ctx, alice), []string{wantBob}; !slices.Equal(got, want) {
		t.Errorf("alice's roster after the removal %q, want %q", got, want)
	}
	for _, s := range alice.Pending() {
		// Prosody's mod_privilege sends every client an empty <privilege/> on initial presence.
		if s.Name == "message" && !strings.Contains(s.XML, "<privilege xmlns='urn:xmpp:privilege:2'></privilege>") {
			t.Errorf("alice got a message although the roster was set: %s", s.XML)
		}
	}

	// Presence from a contact in the roster reaches alice.
	if err := comp.ContactPresence(ctx, bob, alice.JID, true, "reachable by SMS"); err != nil {
		t.Fatal(err)
	}
	pres, err := alice.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "presence" && s.Attr["from"] == bob.String() })
	if err != nil {
		t.Fatal(err)
	}
	if pres.Attr["type"] != "" || !strings.Contains(pres.XML, "<status>reachable by SMS</status>") {
		t.Errorf("presence %s", pres.XML)
	}

	// A reconnection gets the grant again.
	p.Restart(t)
	waitUntil(t, "the grant after a restart", func() bool { return comp.Connected() && privileges(comp, p.Domain) == "both/outgoing/roster" })
}

func TestPushRosterProsodyUnprivileged(t *testing.T) {
	t.Parallel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{Users: map[string]string{"alice": "alice"}})
	comp := realServer(t, p.ComponentAddr, p.Component, p.Secret)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice := testenv.Login(t, p.C2SAddr, jid.MustParse("alice@localhost/phone"), "alice")
	getRoster(t, ctx, alice)

	items := make([]roster.Item, 150)
	for i := range items {
		items[i] = roster.Item{JID: jid.MustParse(fmt.Sprintf("+120155501%02d@%s", i%100, p.Component)), Name: fmt.Sprintf("Contact %d", i), Group: "SMS"}
	}
	items[149].JID = jid.MustParse("+12015550200@" + p.Component)
	items[149].Remove = true
	if _, err := comp.PushRoster(ctx, alice.JID, items); err != nil {
		t.Fatal(err)
	}
	if got := privileges(comp, p.Domain); got != "//" {
		t.Errorf("Privileges = %s without mod_privilege", got)
	}
	for i, want := range []int{100, 50} {
		m, err := alice.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "message" && s.Attr["from"] == p.Component })
		if err != nil {
			t.Fatal(err)
		}
		last := checkRosterX(t, m, want)
		if i == 1 && (last.Action != "delete" || last.JID != "+12015550200@"+p.Component) {
			t.Errorf("second suggestion ends with %+v, want the deletion", last)
		}
		if i == 1 && !strings.Contains(m.Body, "49 to add, 1 to remove") {
			t.Errorf("second suggestion's body: %q", m.Body)
		}
	}
	if got := getRoster(t, ctx, alice); len(got) != 0 {
		t.Errorf("alice's roster changed without privilege: %v", got)
	}
}

type rosterXItem struct {
	Action string   `xml:"action,attr"`
	JID    string   `xml:"jid,attr"`
	Name   string   `xml:"name,attr"`
	Groups []string `xml:"group"`
}

// checkRosterX checks a XEP-0144 message as a client receives it and
// returns its last item.
func checkRosterX(t *testing.T, m testenv.Stanza, n int) rosterXItem {
	t.Helper()
	var v struct {
		Type  string        `xml:"type,attr"`
		Items []rosterXItem `xml:"http://jabber.org/protocol/rosterx x>item"`
	}
	if err := m.Decode(&v); err != nil {
		t.Fatalf("%s: %v", m.XML, err)
	}
	// ejabberd drops type='normal', the default.
	if v.Type != "normal" && v.Type != "" || len(v.Items) != n || !strings.Contains(m.Body, contacts(n)) {
		t.Fatalf("suggestion with %d items (want %d), type %q, body %q", len(v.Items), n, v.Type, m.Body)
	}
	first := v.Items[0]
	if first.Action != "add" || first.Name == "" || !slices.Equal(first.Groups, []string{"SMS"}) || !strings.HasSuffix(first.JID, "@sms.localhost") {
		t.Errorf("first suggested item %+v", first)
	}
	return v.Items[len(v.Items)-1]
}

func TestPushRosterEjabberdFallsBack(t *testing.T) {
	t.Parallel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{Privilege: true, Users: map[string]string{"alice": "alice"}})
	comp := privilegedServer(t, e.ComponentAddr, e.Component, e.Secret, e.Domain)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice := testenv.Login(t, e.C2SAddr, jid.MustParse("alice@localhost/phone"), "alice")
	getRoster(t, ctx, alice)

	for round := range 2 {
		items := []roster.Item{
			{JID: jid.MustParse("+12015550101@" + e.Component), Name: "Bob", Group: "SMS"},
			{JID: jid.MustParse("+12015550102@" + e.Component), Name: "Carol", Group: "SMS"},
		}
		if _, err := comp.PushRoster(ctx, alice.JID, items); err != nil {
			t.Fatal(err)
		}
		m, err := alice.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "message" && s.Attr["from"] == e.Component })
		if err != nil {
			t.Fatal(err)
		}
		checkRosterX(t, m, 2)
		comp.priv.mu.Lock()
		failed := comp.priv.setFail[e.Domain]
		comp.priv.mu.Unlock()
		if !failed {
			t.Errorf("round %d: the failed privileged set was not remembered", round)
		}
	}
	if got := getRoster(t, ctx, alice); len(got) != 0 {
		t.Errorf("alice's roster changed: %v", got)
	}
}

// TestPushRosterLeavesUsersItems: against real servers, an item the user
// made for a number (by hand, in a group of their own) before the gateway
// pushes one from the address book is left as the user made it and
// returned; the other items are pushed (Prosody) or suggested (ejabberd,
// whose privileged sets fail).
func TestPushRosterLeavesUsersItems(t *testing.T) {
	t.Parallel()
	type server struct {
		c2s, comp, domain, secret, suffix string
		suggests                          bool
	}
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) server
	}{
		{"prosody", func(t *testing.T) server {
			p := testenv.StartProsody(t, testenv.ProsodyOptions{Privilege: true, Users: map[string]string{"alice": "alice"}})
			return server{p.C2SAddr, p.ComponentAddr, p.Component, p.Secret, p.Domain, false}
		}},
		{"ejabberd", func(t *testing.T) server {
			e := testenv.StartEjabberd(t, testenv.EjabberdOptions{Privilege: true, Users: map[string]string{"alice": "alice"}})
			return server{e.C2SAddr, e.ComponentAddr, e.Component, e.Secret, e.Domain, true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := tc.start(t)
			comp := privilegedServer(t, srv.comp, srv.domain, srv.secret, srv.suffix)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			alice := testenv.Login(t, srv.c2s, jid.MustParse("alice@localhost/phone"), "alice")
			getRoster(t, ctx, alice)
			dad := jid.MustParse("+12015550103@" + srv.domain)
			bob := jid.MustParse("+12015550101@" + srv.domain)
			r, err := alice.IQ(ctx, `<iq type='set'><query xmlns='jabber:iq:roster'><item jid='`+dad.String()+`' name='Dad'><group>Family</group></item></query></iq>`)
			if err != nil || r.Attr["type"] != "result" {
				t.Fatalf("alice's own roster set: %v %v", r.XML, err)
			}
			wantDad := fmt.Sprintf("%s %q none [Family]", dad, "Dad")
			if got := getRoster(t, ctx, alice); !slices.Equal(got, []string{wantDad}) {
				t.Fatalf("alice's roster before: %q", got)
			}
			users, err := comp.PushRoster(ctx, alice.JID, []roster.Item{
				{JID: dad, Name: "Robert Smith", Group: "Phone contacts"},
				{JID: bob, Name: "Bob", Group: "Phone contacts"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(users, []jid.JID{dad}, jid.JID.Equal) {
				t.Errorf("users' items %v, want %v", users, dad)
			}
			wantBob := fmt.Sprintf("%s %q both [Phone contacts]", bob, "Bob")
			want := []string{wantBob, wantDad}
			if srv.suggests {
				m, err := alice.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "message" && s.Attr["from"] == srv.domain })
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(m.XML, dad.String()) || !strings.Contains(m.XML, bob.String()) {
					t.Errorf("suggestion %s: want bob only", m.XML)
				}
				want = []string{wantDad}
			}
			slices.Sort(want)
			if got := getRoster(t, ctx, alice); !slices.Equal(got, want) {
				t.Errorf("alice's roster after: %q, want %q", got, want)
			}
		})
	}
}
