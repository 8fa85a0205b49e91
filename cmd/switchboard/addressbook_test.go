package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/xep/adhoc"
)

const bobBook = `BEGIN:VCARD
VERSION:3.0
FN:Alice Example
TEL;TYPE=CELL:+1 201-555-0100
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Phone Guy
TEL;TYPE=HOME:(201) 555-0199
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Nobody
TEL:12
END:VCARD
`

// rosterPush waits for a roster push naming jid and returns it.
func rosterPush(t *testing.T, c *testenv.Client, j string) testenv.Stanza {
	t.Helper()
	st, err := c.Next(ctxT(t, 15*time.Second), func(s testenv.Stanza) bool {
		return s.Name == "iq" && s.Attr["type"] == "set" && strings.Contains(s.XML, "jabber:iq:roster") && strings.Contains(norm(s.XML), `jid="`+j+`"`)
	})
	must(t, err)
	return st
}

// rosterRemoval waits for a roster push removing jid (other pushes for it,
// queued earlier, may come first).
func rosterRemoval(t *testing.T, c *testenv.Client, j string) {
	t.Helper()
	_, err := c.Next(ctxT(t, 15*time.Second), func(s testenv.Stanza) bool {
		x := norm(s.XML)
		return s.Name == "iq" && s.Attr["type"] == "set" && strings.Contains(x, `jid="`+j+`"`) && strings.Contains(x, `subscription="remove"`)
	})
	if err != nil {
		t.Fatalf("no roster push removing %s: %v", j, err)
	}
}

func identity(t *testing.T, c *testenv.Client, to string) string {
	t.Helper()
	iq, err := c.IQ(ctxT(t, 10*time.Second), fmt.Sprintf(`<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, to))
	must(t, err)
	x := norm(iq.XML)
	i := strings.Index(x, `category="client"`)
	j := strings.Index(x, "<identity")
	if i < 0 || j < 0 {
		t.Fatalf("disco#info of %s = %s", to, iq.XML)
	}
	id := x[j:]
	id = id[:strings.Index(id, ">")]
	for _, typ := range []string{"phone", "sms"} {
		if strings.Contains(id, `type="`+typ+`"`) {
			return typ
		}
	}
	t.Fatalf("identity %s", id)
	return ""
}

// TestAddressBook: an uploaded address book is matched, reported, and
// becomes roster items (XEP-0356 on Prosody); disco and vCards answer
// from the requester's own book; re-uploading syncs; a later registration
// shows; unregistering removes it all.
func TestAddressBook(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStackWith(t, dsn, testenv.ProsodyOptions{Privilege: true}, smsc.Config{})
		bind(t, s, "bob", bobNumber)
		comp := s.prosody.Component
		a, b := s.login(t, "alice"), s.login(t, "bob")
		waitComponent(t, s, b)
		// Prosody pushes roster changes only to sessions that fetched the roster.
		if _, err := b.IQ(ctxT(t, 10*time.Second), `<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`); err != nil {
			t.Fatal(err)
		}
		aliceNum, phoneJID := s.numberJID(alice), s.numberJID(phone)

		c, _ := adhocRun(t, b, comp, "address-book", "", "execute", nil)
		if c.Form == nil {
			t.Fatalf("address-book stage 1 = %+v", c)
		}
		c, iq := adhocRun(t, b, comp, "address-book", c.SessionID, "complete", map[string]string{"contacts": escape(bobBook)})
		if c.Status != adhoc.Completed || !strings.Contains(notes(c), "2 contacts: 1 on XMPP (1 without your number yet, shown as SMS in your roster until they add it), 1 by SMS") || !strings.Contains(notes(c), "could not be read") {
			t.Fatalf("report = %s\n%s", notes(c), iq.XML)
		}
		if c.Form == nil || len(c.Form.Items) != 2 {
			t.Fatalf("report table = %+v", c.Form)
		}
		reached := make(map[string]string)
		for _, it := range c.Form.Items {
			row := make(map[string]string)
			for _, f := range it.Fields {
				row[f.Var] = strings.Join(f.Values, "")
			}
			reached[row["number"]] = row["reach"]
		}
		if want := "XMPP (shown as SMS until they have your number)"; reached[alice] != want || reached[phone] != "SMS" {
			t.Errorf("report table: %v; want alice %q, the phone SMS", reached, want)
		}
		p := rosterPush(t, b, aliceNum)
		if !strings.Contains(norm(p.XML), `name="Alice Example"`) || !strings.Contains(p.XML, "Phone contacts") {
			t.Fatalf("push = %s", p.XML)
		}
		rosterPush(t, b, phoneJID)

		// Disco answers from the requester's own book only.
		if got := identity(t, b, aliceNum); got != "phone" {
			t.Errorf("bob sees alice's number as %s", got)
		}
		if got := identity(t, b, phoneJID); got != "sms" {
			t.Errorf("bob sees the phone as %s", got)
		}
		if got := identity(t, a, s.numberJID(bobNumber)); got != "sms" {
			t.Errorf("alice (no book) sees bob's number as %s: registration leaked", got)
		}
		vc, err := b.IQ(ctxT(t, 10*time.Second), fmt.Sprintf(`<iq type='get' to='%s'><vCard xmlns='vcard-temp'/></iq>`, phoneJID))
		must(t, err)
		if !strings.Contains(vc.XML, "<FN>Phone Guy</FN>") {
			t.Errorf("vCard = %s", vc.XML)
		}

		// Re-upload: the phone renamed, alice gone, carol new.
		book2 := "Phone Friend, +1 201 555 0199\nCarol, +1 201 555 0142\n"
		c, _ = adhocRun(t, b, comp, "address-book", "", "execute", nil)
		c, _ = adhocRun(t, b, comp, "address-book", c.SessionID, "complete", map[string]string{"contacts": book2})
		if !strings.Contains(notes(c), "Added 1, changed 1, removed 1") {
			t.Fatalf("re-upload = %s", notes(c))
		}
		rosterRemoval(t, b, aliceNum)
		p = rosterPush(t, b, phoneJID)
		if !strings.Contains(norm(p.XML), `name="Phone Friend"`) {
			t.Fatalf("rename push = %s", p.XML)
		}
		carol := s.numberJID("+12015550142")
		rosterPush(t, b, carol)
		if got := identity(t, b, carol); got != "sms" {
			t.Fatalf("carol before registering = %s", got)
		}
		// Carol registers later: bob's view changes without re-uploading.
		out, err := command(t, "numbers", "-config", writeConfig(t, s), "assign", "carol@"+s.prosody.Domain, "+12015550142").CombinedOutput()
		if err != nil {
			t.Fatalf("numbers assign: %v\n%s", err, out)
		}
		if got := identity(t, b, carol); got != "phone" {
			t.Fatalf("carol after registering = %s", got)
		}
		if _, err := b.Next(ctxT(t, 15*time.Second), func(st testenv.Stanza) bool {
			return st.Name == "presence" && st.Attr["from"] == carol
		}); err != nil {
			t.Fatalf("no presence update from carol: %v", err)
		}

		// Unregistering deletes the address book and its roster items.
		c, _ = adhocRun(t, b, comp, "unregister", "", "execute", nil)
		adhocRun(t, b, comp, "unregister", c.SessionID, "complete", map[string]string{"confirm": "1"})
		rosterRemoval(t, b, carol)
	})
}

// TestAddressBookRebind: a user given another number stops showing as on
// XMPP behind the old one. Alice and bob have each other's numbers, so bob
// sees alice's as "on XMPP"; when an operator moves alice to a new number,
// bob's item for her old one is refreshed to "SMS".
func TestAddressBookRebind(t *testing.T) {
	s := startStackWith(t, sqliteDSN(t), testenv.ProsodyOptions{Privilege: true}, smsc.Config{})
	bind(t, s, "bob", bobNumber)
	comp := s.prosody.Component
	a, b := s.login(t, "alice"), s.login(t, "bob")
	waitComponent(t, s, b)
	ctx := ctxT(t, 30*time.Second)
	// Prosody pushes roster changes only to sessions that fetched the roster.
	if _, err := b.IQ(ctx, `<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`); err != nil {
		t.Fatal(err)
	}
	uploadBook(t, a, comp, "Bob, "+bobNumber+"\n")
	uploadBook(t, b, comp, "Alice, "+alice+"\n")
	aliceNum := s.numberJID(alice)
	// status waits for the presence of alice's old number to show status,
	// taking those before it in the order they came.
	status := func(status string) {
		t.Helper()
		for {
			p, err := b.Next(ctx, func(st testenv.Stanza) bool { return st.Name == "presence" && st.Attr["from"] == aliceNum })
			if err != nil {
				t.Fatalf("no presence of %s with status %q: %v", aliceNum, status, err)
			}
			if strings.Contains(p.XML, ">"+status+"</status>") {
				return
			}
		}
	}
	status("on XMPP")

	out, err := command(t, "numbers", "-config", writeConfig(t, s), "assign", "alice@"+s.prosody.Domain, "+12015550177").CombinedOutput()
	if err != nil {
		t.Fatalf("numbers assign: %v\n%s", err, out)
	}
	status("SMS")
	if got := identity(t, b, aliceNum); got != "sms" {
		t.Errorf("bob sees alice's old number as %s", got)
	}
}

// TestAddressBookUsersItem: a contact bob had in his roster, made by hand,
// before it came in his address book keeps the name and group he gave it,
// and stays when a later upload drops the number, while the gateway's own
// items are pushed, renamed and removed with the book.
func TestAddressBookUsersItem(t *testing.T) {
	s := startStackWith(t, sqliteDSN(t), testenv.ProsodyOptions{Privilege: true}, smsc.Config{})
	bind(t, s, "bob", bobNumber)
	comp := s.prosody.Component
	b := s.login(t, "bob")
	waitComponent(t, s, b)
	ctx := ctxT(t, 30*time.Second)
	// roster returns bob's roster items as "jid name subscription [groups]".
	roster := func() string {
		t.Helper()
		r, err := b.IQ(ctx, `<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`)
		if err != nil || r.Attr["type"] != "result" {
			t.Fatalf("roster get: %v %v", r.XML, err)
		}
		var q struct {
			Items []struct {
				JID    string   `xml:"jid,attr"`
				Name   string   `xml:"name,attr"`
				Sub    string   `xml:"subscription,attr"`
				Groups []string `xml:"group"`
			} `xml:"jabber:iq:roster query>item"`
		}
		must(t, r.Decode(&q))
		var out []string
		for _, it := range q.Items {
			out = append(out, fmt.Sprintf("%s %q %s %v", it.JID, it.Name, it.Sub, it.Groups))
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	roster() // Prosody pushes roster changes only to sessions that fetched the roster.
	dad, carol, dave := s.numberJID("+12015550102"), s.numberJID("+12015550103"), s.numberJID("+12015550199")
	if r, err := b.IQ(ctx, `<iq type='set'><query xmlns='jabber:iq:roster'><item jid='`+dad+`' name='Dad'><group>Family</group></item></query></iq>`); err != nil || r.Attr["type"] != "result" {
		t.Fatalf("bob's own roster set: %v %v", r.XML, err)
	}
	rosterPush(t, b, dad)
	handMade := dad + ` "Dad" none [Family]`

	uploadBook(t, b, comp, "Robert Smith, +12015550102\nCarol, +12015550103\n")
	if p := rosterPush(t, b, carol); !strings.Contains(p.XML, "Phone contacts") {
		t.Fatalf("carol's push: %s", p.XML)
	}
	if r, want := roster(), handMade+"\n"+carol+` "Carol" both [Phone contacts]`; r != want {
		t.Errorf("after the first upload bob's roster is\n%s\nwant\n%s", r, want)
	}
	// Both renamed, then both dropped: carol's item follows the book, dad's
	// stays as bob made it. (Pushes for one owner go in number order:
	// dad's, had there been one, comes before the others.)
	uploadBook(t, b, comp, "Rob, +12015550102\nCarol Jones, +12015550103\n")
	if p := rosterPush(t, b, carol); !strings.Contains(p.XML, "Carol Jones") {
		t.Fatalf("carol's rename: %s", p.XML)
	}
	uploadBook(t, b, comp, "Dave, +12015550199\n")
	rosterRemoval(t, b, carol)
	rosterPush(t, b, dave)
	if r, want := roster(), handMade+"\n"+dave+` "Dave" both [Phone contacts]`; r != want {
		t.Errorf("after the last upload bob's roster is\n%s\nwant\n%s", r, want)
	}
	for _, st := range b.Pending() {
		if strings.Contains(norm(st.XML), `jid="`+dad+`"`) && st.Name == "iq" {
			t.Errorf("a roster push for bob's own item: %s", st.XML)
		}
	}
}

// uploadBook has c upload book (pasted contacts) with the address-book
// command of comp, and returns the completed command.
func uploadBook(t *testing.T, c *testenv.Client, comp, book string) adhoc.Command {
	t.Helper()
	cmd, _ := adhocRun(t, c, comp, "address-book", "", "execute", nil)
	cmd, iq := adhocRun(t, c, comp, "address-book", cmd.SessionID, "complete", map[string]string{"contacts": book})
	if cmd.Status != adhoc.Completed {
		t.Fatalf("upload = %s\n%s", notes(cmd), iq.XML)
	}
	return cmd
}

// presenceFrom waits for a presence from j whose XML has all of want.
func presenceFrom(t *testing.T, c *testenv.Client, j string, want ...string) testenv.Stanza {
	t.Helper()
	st, err := c.Next(ctxT(t, 15*time.Second), func(s testenv.Stanza) bool {
		if s.Name != "presence" || s.Attr["from"] != j {
			return false
		}
		for _, w := range want {
			if !strings.Contains(norm(s.XML), w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("no presence from %s with %q: %v", j, want, err)
	}
	return st
}

// TestMutualPresenceOnline: when bob uploads alice's number while alice is
// online, and she has his, his number shows "on XMPP" in her roster at
// once, not at her next login; when he drops it, "SMS" again.
func TestMutualPresenceOnline(t *testing.T) {
	s := startStackWith(t, sqliteDSN(t), testenv.ProsodyOptions{Privilege: true}, smsc.Config{})
	bind(t, s, "bob", bobNumber)
	comp := s.prosody.Component
	a, b := s.login(t, "alice"), s.login(t, "bob")
	waitComponent(t, s, a)
	bobJID := s.numberJID(bobNumber)
	for _, step := range []struct {
		c            *testenv.Client
		book, status string
	}{
		{a, "Bob, " + bobNumber, "SMS"}, {b, "Alice, " + alice, "on XMPP"}, {b, "Phone, " + phone, "SMS"},
	} {
		if n := notes(uploadBook(t, step.c, comp, step.book)); !strings.Contains(n, "1 contact:") {
			t.Fatalf("upload = %s", n)
		}
		presenceFrom(t, a, bobJID, "<status>"+step.status+"</status>")
	}
}

// TestAddressBookUnreachable: with the default limits (the default
// region's countries; premium-rate prefixes blocked), numbers SMS may not
// go to are reported unreachable with the reason, and shown unavailable
// with it, in the roster and to a subscription; a number SMS may go to
// is reached by SMS.
func TestAddressBookUnreachable(t *testing.T) {
	s := startStackWith(t, sqliteDSN(t), testenv.ProsodyOptions{Privilege: true}, smsc.Config{})
	bind(t, s, "bob", bobNumber) // with no number, no number JID is available to bob
	comp := s.prosody.Component
	a, b := s.login(t, "alice"), s.login(t, "bob")
	waitComponent(t, s, b)
	mum, premium, carol := s.numberJID("+442071234567"), s.numberJID("+19005551234"), s.numberJID("+12015550142")

	c, _ := adhocRun(t, b, comp, "address-book", "", "execute", nil)
	c, iq := adhocRun(t, b, comp, "address-book", c.SessionID, "complete", map[string]string{
		"contacts": "Mum, +44 20 7123 4567\nPremium, +19005551234\nCarol, +1 201 555 0142"})
	if !strings.Contains(notes(c), "3 contacts: 0 on XMPP, 1 by SMS, 2 not reachable") {
		t.Fatalf("report = %s", notes(c))
	}
	if c.Form == nil || len(c.Form.Items) != 3 {
		t.Fatalf("report table = %s", iq.XML)
	}
	for _, it := range c.Form.Items {
		var name, reach string
		for _, f := range it.Fields {
			switch f.Var {
			case "name":
				name = strings.Join(f.Values, "")
			case "reach":
				reach = strings.Join(f.Values, "")
			}
		}
		want := map[string]string{"Mum": "Not reachable: This gateway does not send SMS to +442071234567 (GB)",
			"Premium": "Not reachable: SMS to +1900… numbers are blocked", "Carol": "SMS"}[name]
		if want == "" || !strings.HasPrefix(reach, want) {
			t.Errorf("%s is reached by %q, want %q…", name, reach, want)
		}
	}
	presenceFrom(t, b, mum, `type="unavailable"`, "(GB)")
	presenceFrom(t, b, premium, `type="unavailable"`, "+1900…")
	p := presenceFrom(t, b, carol, "<status>SMS</status>")
	if p.Attr["type"] != "" {
		t.Errorf("carol's presence = %s", p.XML)
	}

	// alice, without the number in a book, subscribes: told the same.
	must(t, a.Send(ctxT(t, 10*time.Second), `<presence type='subscribe' to='`+premium+`'/>`))
	presenceFrom(t, a, premium, `type="unavailable"`, "+1900…")
}

// TestAddressBookURLAside: while one user's address book is being fetched
// from a server that does not answer, the gateway goes on serving everyone
// else; that user's second upload meanwhile is refused at once; the first
// is answered when the download ends.
func TestAddressBookURLAside(t *testing.T) {
	requested, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requested <- struct{}{}
		select {
		case <-release:
			fmt.Fprintln(w, "Alice, "+alice)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s := startStack(t, sqliteDSN(t), smsc.Config{}, "SWITCHBOARD_ADDRESSBOOK_FETCH_PRIVATE=true")
	bind(t, s, "bob", bobNumber)
	comp := s.prosody.Component
	a, b := s.login(t, "alice"), s.login(t, "bob")
	waitComponent(t, s, b)

	upload := func() string {
		c, _ := adhocRun(t, b, comp, "address-book", "", "execute", nil)
		return fmt.Sprintf(`<iq type='set' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='address-book' sessionid='%s'>`+
			`<x xmlns='jabber:x:data' type='submit'><field var='url'><value>%s/book.txt</value></field></x></command></iq>`, comp, c.SessionID, srv.URL)
	}
	first := upload()
	answered := make(chan testenv.Stanza, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		iq, err := b.IQ(ctx, first)
		if err != nil {
			iq = testenv.Stanza{XML: err.Error()}
		}
		answered <- iq
	}()
	select {
	case <-requested:
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway did not ask for the address book")
	}
	// The download hangs: alice is served all the same.
	if iq, err := a.IQ(ctxT(t, 5*time.Second), `<iq type='get' to='`+s.numberJID(phone)+`'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`); err != nil || iq.Attr["type"] != "result" {
		t.Fatalf("disco#info while a download hangs: %v, %v", iq.XML, err)
	}
	// bob's second upload is refused while the first waits.
	if iq, err := b.IQ(ctxT(t, 5*time.Second), upload()); err != nil || iq.Attr["type"] != "error" || !strings.Contains(iq.XML, "resource-constraint") ||
		!strings.Contains(iq.XML, "still being fetched") {
		t.Fatalf("second upload: %v, %v", iq.XML, err)
	}
	select {
	case iq := <-answered:
		t.Fatalf("answered before the download ended: %s", iq.XML)
	default:
	}
	release <- struct{}{}
	iq := <-answered
	if iq.Attr["type"] != "result" || !strings.Contains(iq.XML, "1 contact:") {
		t.Fatalf("first upload = %s", iq.XML)
	}
}

// TestPhoneBookSyncAndGateway: the Quicksy phone-book IQ, XEP-0100
// prompts, XEP-0144 items sent to the component, and the lookup limit.
func TestPhoneBookSyncAndGateway(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{}, "SWITCHBOARD_ADDRESSBOOK_DAILY_LOOKUPS=4")
	bind(t, s, "bob", bobNumber)
	comp := s.prosody.Component
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)

	q := fmt.Sprintf(`<iq type='get' to='%s'><phone-book xmlns='im.quicksy.synchronization:0'><entry number='%s'/><entry number='%s'/></phone-book></iq>`, comp, bobNumber, phone)
	iq, err := a.IQ(ctx, q)
	must(t, err)
	x := norm(iq.XML)
	if !strings.Contains(x, `number="`+bobNumber+`"`) || !strings.Contains(x, "<jid>"+s.numberJID(bobNumber)+"</jid>") || strings.Contains(x, phone) {
		t.Fatalf("sync = %s", iq.XML)
	}
	ver := x[strings.Index(x, `ver="`)+5:]
	ver = ver[:strings.Index(ver, `"`)]
	iq, err = a.IQ(ctx, strings.Replace(q, "<phone-book xmlns='im.quicksy.synchronization:0'>", "<phone-book xmlns='im.quicksy.synchronization:0' ver='"+ver+"'>", 1))
	must(t, err)
	if strings.Contains(iq.XML, "<entry") {
		t.Fatalf("unchanged sync listed entries: %s", iq.XML)
	}

	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='jabber:iq:gateway'><prompt>(201) 555-0177</prompt></query></iq>`, comp))
	must(t, err)
	if !strings.Contains(iq.XML, "<jid>"+s.numberJID("+12015550177")+"</jid>") {
		t.Fatalf("gateway = %s", iq.XML)
	}

	// XEP-0144 items from the client: added to the book; items that add no
	// phone number are named as left out.
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s'><x xmlns='http://jabber.org/protocol/rosterx'><item action='add' jid='%s' name='Dana'/><item action='add' jid='abc@%s'/></x></message>`,
		comp, s.numberJID("+12015550143"), comp)))
	r, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Attr["from"] == comp && strings.Contains(st.Body, "Added 1") })
	must(t, err)
	if !strings.Contains(r.Body, "Added 1 contact (") || !strings.Contains(r.Body, "1 other item was not a phone number to add") {
		t.Fatalf("rosterx notice does not name the item left out: %s", r.Body)
	}
	// Items none of which adds a phone number are refused, not answered
	// with an empty success: by IQ, and by message (a message error).
	bad := fmt.Sprintf(`<x xmlns='http://jabber.org/protocol/rosterx'><item action='add' jid='@@@'/><item action='delete' jid='%s'/><item action='add' jid='abc@%s'/></x>`,
		s.numberJID("+12015550143"), comp)
	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'>%s</iq>`, comp, bad))
	must(t, err)
	if iq.ErrorCondition() != "bad-request" || !strings.Contains(iq.XML, "nothing was imported") {
		t.Fatalf("rosterx IQ of no numbers = %s", iq.XML)
	}
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='rx-bad'>%s</message>`, comp, bad)))
	r, err = a.Next(ctx, func(st testenv.Stanza) bool { return st.Attr["id"] == "rx-bad" })
	must(t, err)
	if r.ErrorCondition() != "bad-request" || !strings.Contains(r.XML, "nothing was imported") {
		t.Fatalf("rosterx message of no numbers = %s", r.XML)
	}

	// Three numbers looked up so far; the limit is 4: two more are refused.
	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s'><phone-book xmlns='im.quicksy.synchronization:0'><entry number='+12015550144'/><entry number='+12015550145'/></phone-book></iq>`, comp))
	must(t, err)
	if iq.ErrorCondition() != "policy-violation" || !strings.Contains(iq.XML, "new numbers") {
		t.Fatalf("over the limit = %s", iq.XML)
	}
}

func escape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;")
	return r.Replace(s)
}

// writeConfig writes the stack's configuration as environment-free TOML
// for the numbers command.
func writeConfig(t *testing.T, s *stack) string {
	return writeFile(t, "sb.toml", fmt.Sprintf(`[xmpp]
component = %q
secret = %q
domains = [%q]
[smpp]
system_id = "switchboard"
[store]
dsn = %q
`, s.cfg.XMPP.Component, s.cfg.XMPP.Secret, s.prosody.Domain, s.cfg.Store.DSN))
}

// TestAddressBookURL: the upload command fetches a file from a URL, and by
// default refuses addresses on loopback and private networks.
func TestAddressBookURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/book.vcf":
			w.Header().Set("Content-Type", "text/vcard")
			fmt.Fprint(w, bobBook)
		case "/huge.vcf":
			w.Write(bytes.Repeat([]byte("x"), 6<<20))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for _, private := range []bool{false, true} {
		t.Run(fmt.Sprintf("fetch_private=%v", private), func(t *testing.T) {
			s := startStack(t, sqliteDSN(t), smsc.Config{},
				fmt.Sprintf("SWITCHBOARD_ADDRESSBOOK_FETCH_PRIVATE=%v", private))
			comp := s.prosody.Component
			b := s.login(t, "bob")
			waitComponent(t, s, b)
			upload := func(url string) adhoc.Command {
				c, _ := adhocRun(t, b, comp, "address-book", "", "execute", nil)
				c, _ = adhocRun(t, b, comp, "address-book", c.SessionID, "complete", map[string]string{"url": url})
				return c
			}
			c := upload(srv.URL + "/book.vcf")
			if !private {
				if !strings.Contains(notes(c), "could not be fetched: this gateway does not fetch from addresses on loopback, private") {
					t.Fatalf("loopback URL fetched: %s", notes(c))
				}
				return
			}
			if !strings.Contains(notes(c), "2 contacts") {
				t.Fatalf("fetched book = %s", notes(c))
			}
			if c := upload(srv.URL + "/huge.vcf"); !strings.Contains(notes(c), "larger than 5 MiB") {
				t.Fatalf("huge file = %s", notes(c))
			}
			if c := upload(srv.URL + "/missing.vcf"); !strings.Contains(notes(c), "404") {
				t.Fatalf("missing file = %s", notes(c))
			}
			if c := upload("ftp://example.com/x.vcf"); !strings.Contains(notes(c), "http or https") {
				t.Fatalf("ftp URL = %s", notes(c))
			}
		})
	}
}
