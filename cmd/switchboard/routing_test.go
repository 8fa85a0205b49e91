package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/store"
	"switchboard/xep/adhoc"
)

const bobNumber = "+12015550101"

func bind(t *testing.T, s *stack, user, num string) {
	t.Helper()
	st, err := store.Open(context.Background(), s.cfg.Store.DSN)
	must(t, err)
	defer st.Close()
	_, err = st.Bind(context.Background(), num, user+"@"+s.prosody.Domain, "operator")
	must(t, err)
}

// relayState returns the stored state of the message relayed from sender's
// number to peer's with stanza id, once it is want, or fails the test.
func relayState(t *testing.T, s *stack, sender, peer, id, want string) store.Relay {
	t.Helper()
	st, err := store.Open(context.Background(), s.cfg.Store.DSN)
	must(t, err)
	defer st.Close()
	var rel store.Relay
	for range 100 {
		if rel, err = st.FindRelay(context.Background(), sender, peer, id); err == nil && rel.State == want {
			return rel
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("relay %s: %+v, %v; want state %s", id, rel, err, want)
	return rel
}

func from(j string) func(testenv.Stanza) bool {
	return func(s testenv.Stanza) bool { return s.Name == "message" && s.Attr["from"] == j }
}

// smsCount counts SMS at the simulator whose text contains sub.
func smsCount(s *stack, sub string) int {
	n := 0
	for _, m := range s.smsc.Messages() {
		if strings.Contains(m.FullText, sub) || strings.Contains(m.Text, sub) {
			n++
		}
	}
	return n
}

func waitSMS(t *testing.T, s *stack, sub string) *smsc.Message {
	t.Helper()
	var found *smsc.Message
	waitUntil(t, 20*time.Second, fmt.Sprintf("no SMS containing %q", sub), func() bool {
		for _, m := range s.smsc.Messages() {
			if strings.Contains(m.FullText, sub) || strings.Contains(m.Text, sub) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// TestRoutingOverXMPP: a message to a registered number travels over XMPP,
// number to number; receipts, markers and replies come back the same way;
// no SMS is sent.
func TestRoutingOverXMPP(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStack(t, dsn, smsc.Config{}, "SWITCHBOARD_ROUTING_SMS_FALLBACK_AFTER=2s")
		bind(t, s, "bob", bobNumber)
		a, b := s.login(t, "alice"), s.login(t, "bob")
		waitComponent(t, s, a)
		ctx := ctxT(t, 60*time.Second)
		aliceJID, bobJID := s.numberJID(alice), s.numberJID(bobNumber)

		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='r1' type='chat'><body>hi bob</body><request xmlns='urn:xmpp:receipts'/></message>`, bobJID)))
		m, err := b.Next(ctx, from(aliceJID))
		must(t, err)
		if m.Body != "hi bob" || m.Attr["id"] != "r1" || !strings.Contains(m.XML, "urn:xmpp:receipts") {
			t.Fatalf("bob got %s", m.XML)
		}
		must(t, b.Send(ctx, fmt.Sprintf(`<message to='%s' id='ack1'><received xmlns='urn:xmpp:receipts' id='r1'/></message>`, aliceJID)))
		r, err := a.Next(ctx, from(bobJID))
		must(t, err)
		if !strings.Contains(norm(r.XML), `<received xmlns="urn:xmpp:receipts" id="r1"`) {
			t.Fatalf("alice got %s", r.XML)
		}

		// Bob replies and marks the message displayed; both reach alice.
		must(t, b.Send(ctx, fmt.Sprintf(`<message to='%s' id='r2' type='chat'><body>hi alice</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, aliceJID)))
		r, err = a.Next(ctx, from(bobJID))
		must(t, err)
		if r.Body != "hi alice" || !strings.Contains(r.XML, "chatstates") {
			t.Fatalf("reply = %s", r.XML)
		}
		must(t, b.Send(ctx, fmt.Sprintf(`<message to='%s' id='mk1' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='r1'/></message>`, aliceJID)))
		r, err = a.Next(ctx, from(bobJID))
		must(t, err)
		if !strings.Contains(norm(r.XML), `<displayed xmlns="urn:xmpp:chat-markers:0" id="r1"`) {
			t.Fatalf("marker = %s", r.XML)
		}
		// Alice acknowledges bob's reply so it does not fall back either.
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='ack2'><received xmlns='urn:xmpp:receipts' id='r2'/></message>`, bobJID)))
		time.Sleep(3500 * time.Millisecond) // past the 2s fallback, plus the 1s poll
		if n := len(s.smsc.Messages()); n != 0 {
			t.Fatalf("%d SMS sent for messages confirmed over XMPP", n)
		}
	})
}

// TestFallback: no receipt in time sends the message as SMS once, with a
// notice and the carrier's receipt; a late XMPP receipt is passed on but no
// second SMS goes; a user can turn the fallback off; a bounce falls back at
// once.
func TestFallback(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{}, "SWITCHBOARD_ROUTING_SMS_FALLBACK_AFTER=2s")
	bind(t, s, "bob", bobNumber)
	a, b := s.login(t, "alice"), s.login(t, "bob")
	waitComponent(t, s, a)
	ctx := ctxT(t, 90*time.Second)
	aliceJID, bobJID := s.numberJID(alice), s.numberJID(bobNumber)

	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='f1' type='chat'><body>are you there</body><request xmlns='urn:xmpp:receipts'/></message>`, bobJID)))
	if _, err := b.Next(ctx, from(aliceJID)); err != nil {
		t.Fatal(err)
	}
	sms := waitSMS(t, s, "are you there")
	if sms.Source != alice[1:] || sms.Dest != bobNumber[1:] {
		t.Fatalf("fallback SMS = %+v", sms)
	}
	notice, err := a.Next(ctx, func(st testenv.Stanza) bool {
		return st.Attr["from"] == bobJID && strings.Contains(st.Body, "sent as SMS")
	})
	must(t, err)
	t.Logf("notice: %s", notice.Body)
	r, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Attr["from"] == bobJID && strings.Contains(st.XML, "received") })
	must(t, err)
	if !strings.Contains(norm(r.XML), `id="f1"`) {
		t.Fatalf("carrier receipt = %s", r.XML)
	}
	// Bob's client acknowledges late: reported, not re-sent.
	must(t, b.Send(ctx, fmt.Sprintf(`<message to='%s' id='ack'><received xmlns='urn:xmpp:receipts' id='f1'/></message>`, aliceJID)))
	r, err = a.Next(ctx, func(st testenv.Stanza) bool { return st.Attr["from"] == bobJID && strings.Contains(st.XML, "received") })
	must(t, err)
	time.Sleep(2 * time.Second)
	if n := smsCount(s, "are you there"); n != 1 {
		t.Fatalf("%d SMS for one message", n)
	}

	// settings runs alice's settings command with fields.
	settings := func(fields map[string]string) adhoc.Command {
		t.Helper()
		c, _ := adhocRun(t, a, s.prosody.Component, "settings", "", "execute", nil)
		if c.Form == nil {
			t.Fatalf("settings form = %+v", c)
		}
		c, _ = adhocRun(t, a, s.prosody.Component, "settings", c.SessionID, "complete", fields)
		return c
	}

	// Alice turns the fallback off.
	c := settings(map[string]string{"fallback": "0"})
	if !strings.Contains(notes(c), "never go as SMS") {
		t.Fatalf("settings = %s", notes(c))
	}
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='f2' type='chat'><body>no fallback please</body></message>`, bobJID)))
	if _, err := b.Next(ctx, func(st testenv.Stanza) bool { return st.Body == "no fallback please" }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond)
	if n := smsCount(s, "no fallback please"); n != 0 {
		t.Fatalf("SMS sent with the fallback off")
	}
	// With no fallback to wait for, the relay's life is over once handed
	// on (not left on its way for ever, unpruned).
	relayState(t, s, alice, bobNumber, "f2", store.StateSent)
	// The timer is set to a day, so only the bounce can make an SMS below.
	settings(map[string]string{"fallback": "1", "fallback_after": "86400"})

	// A number bound to an account that does not exist: Prosody bounces
	// the relay, and the message goes as SMS at once.
	bind(t, s, "carol", "+12015550102")
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='f3' type='chat'><body>to carol</body></message>`, s.numberJID("+12015550102"))))
	waitSMS(t, s, "to carol")
	notice, err = a.Next(ctx, func(st testenv.Stanza) bool { return strings.Contains(st.Body, "could not deliver") })
	must(t, err)

	// With the fallback off, the bounce comes back to alice as the error
	// it is, from carol's number, and nothing goes as SMS.
	if c := settings(map[string]string{"fallback": "0"}); !strings.Contains(notes(c), "never go as SMS") {
		t.Fatalf("settings = %s", notes(c))
	}
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='f4' type='chat'><body>to carol again</body></message>`, s.numberJID("+12015550102"))))
	e, err := a.Next(ctx, func(st testenv.Stanza) bool {
		return st.Attr["type"] == "error" && st.Attr["id"] == "f4"
	})
	must(t, err)
	if e.Attr["from"] != s.numberJID("+12015550102") || !strings.Contains(e.XML, "urn:ietf:params:xml:ns:xmpp-stanzas") {
		t.Fatalf("relayed bounce = %s", e.XML)
	}
	t.Logf("relayed bounce: %s", e.XML)
	relayState(t, s, alice, "+12015550102", "f4", store.StateFailed)
	// An SMS sent after it has passed the SMSC: had the bounce made one,
	// it would have been queued before.
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><body>after carol</body></message>`, s.numberJID(phone))))
	waitSMS(t, s, "after carol")
	if n := smsCount(s, "to carol again"); n != 0 {
		t.Fatalf("%d SMS with the fallback off", n)
	}
}

// TestRichContentAsSMS: links, locations, contacts and corrections become
// text; chat states and markers never make an SMS.
func TestRichContentAsSMS(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	to := s.numberJID(phone)
	for _, tc := range []struct{ stanza, want string }{
		{`<body>see this</body><x xmlns='jabber:x:oob'><url>https://up.example.com/cat.jpg</url></x>`, "see this\nhttps://up.example.com/cat.jpg"},
		{`<body>https://up.example.com/dog.jpg</body><x xmlns='jabber:x:oob'><url>https://up.example.com/dog.jpg</url></x>`, "https://up.example.com/dog.jpg"},
		{`<geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>40.7128</lat><lon>-74.006</lon></geoloc>`, "geo:40.7128,-74.006 https://www.openstreetmap.org/?mlat=40.7128&mlon=-74.006"},
		{`<x xmlns='http://jabber.org/protocol/rosterx'><item action='add' jid='+12015550177@` + s.prosody.Component + `' name='Dana'/></x>`, "Contact Dana: +12015550177"},
		{`<body>fixed text</body><replace xmlns='urn:xmpp:message-correct:0' id='x1'/>`, "Correction: fixed text"},
		{`<reply xmlns='urn:xmpp:reply:0' id='sms-1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='14'/></fallback>` +
			"<body>&gt; hello there\nsure</body>", `Reply to "hello there": sure`},
	} {
		n := len(s.smsc.Messages())
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'>%s</message>`, to, tc.stanza)))
		msgs, err := s.smsc.WaitMessages(ctx, n+1)
		must(t, err)
		if got := msgs[n].FullText; got != tc.want {
			t.Errorf("SMS = %q, want %q", got, tc.want)
		}
	}
	n := len(s.smsc.Messages())
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, to)))
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>`, to)))
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><body>last</body></message>`, to)))
	msgs, err := s.smsc.WaitMessages(ctx, n+1)
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	if got := len(s.smsc.Messages()); got != n+1 || msgs[n].Text != "last" {
		t.Fatalf("body-less stanzas made SMS: %d new, first %q", got-n, msgs[n].Text)
	}
}

// TestReactionsAsSMS: reactions (XEP-0444) to a phone's message reach the
// phone as phones write them, quoting the message reacted to, whatever
// fallback body the client adds; the quote only of a message the user
// received in that conversation. A reaction taken back makes no SMS.
func TestReactionsAsSMS(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	received := func(peer, body string) string {
		t.Helper()
		must(t, s.smsc.SendMO(ctx, peer, alice, body))
		r, err := a.Next(ctx, message(s.numberJID(peer)))
		must(t, err)
		if r.Body != body || r.Attr["id"] == "" {
			t.Fatalf("alice got %q (id %q), want %q", r.Body, r.Attr["id"], body)
		}
		return r.Attr["id"]
	}
	const other = "+12015550177"
	id := received(phone, "Running late, see you at the station in twenty minutes or so")
	otherID := received(other, "a message in another conversation")
	react := func(to, id, emojis string) {
		t.Helper()
		var rs string
		for _, e := range strings.Fields(emojis) {
			rs += "<reaction>" + e + "</reaction>"
		}
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><reactions xmlns='urn:xmpp:reactions:0' id='%s'>%s</reactions>`+
			`<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reactions:0'/><body>%s</body></message>`, s.numberJID(to), id, rs, emojis)))
	}
	for _, tc := range []struct{ id, emojis, want string }{
		{id, "👍", `Reacted 👍 to "Running late, see you at the station in..."`},
		{strings.TrimPrefix(id, "sms-"), "👍 ❤️", `Reacted 👍 ❤️ to "Running late, see you at the station in..."`}, // its id in the archive
		{otherID, "😂", "Reacted 😂"},     // not of this conversation: no quote
		{"x-unknown", "😮", "Reacted 😮"}, // not a message from a phone
	} {
		n := len(s.smsc.Messages())
		react(phone, tc.id, tc.emojis)
		msgs, err := s.smsc.WaitMessages(ctx, n+1)
		must(t, err)
		if got := msgs[n].FullText; got != tc.want || "+"+msgs[n].Dest != phone {
			t.Errorf("reaction to %s: SMS to %s %q, want %q", tc.id, msgs[n].Dest, got, tc.want)
		}
	}
	// Taken back (no reaction left): nothing; the next message is the
	// next SMS.
	n := len(s.smsc.Messages())
	react(phone, id, "")
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><body>after</body></message>`, s.numberJID(phone))))
	msgs, err := s.smsc.WaitMessages(ctx, n+1)
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	if got := len(s.smsc.Messages()); got != n+1 || msgs[n].Text != "after" {
		t.Fatalf("a reaction taken back made an SMS: %d new, first %q", got-n, msgs[n].Text)
	}
}

// TestAnswersFromFormWrittenTo: a message written to the national form of
// a number (the default region is US) gets its receipt and its error from
// that JID, not from the international one, and so does the phone's reply
// after it, until the user writes to the international form again. Over
// real servers: the notices are the ones handed on at once.
func TestAnswersFromFormWrittenTo(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStack(t, dsn, smsc.Config{})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 60*time.Second)
		national := s.numberJID(strings.TrimPrefix(phone, "+1"))
		// outcome sends id to to and checks its receipt or error comes from to.
		outcome := func(to, id string, wantErr bool) {
			t.Helper()
			must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>hi %s</body><request xmlns='urn:xmpp:receipts'/></message>`, to, id, id)))
			r, isErr := waitOutcome(t, ctx, a, id)
			if isErr != wantErr || r.Attr["from"] != to {
				t.Fatalf("%s: %s; want an error %v from %s", id, r.XML, wantErr, to)
			}
		}
		// reply has the phone write body and checks it comes from want.
		reply := func(body, want string) {
			t.Helper()
			must(t, s.smsc.SendMO(ctx, phone, alice, body))
			r, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Name == "message" && st.Body == body })
			must(t, err)
			if r.Attr["from"] != want {
				t.Fatalf("the phone's %q came from %s, want %s", body, r.Attr["from"], want)
			}
		}
		outcome(national, "n1", false)
		s.smsc.SetConfig(func(c *smsc.Config) { c.Outcome = smsc.OutcomeFailed })
		outcome(national, "n2", true)
		s.smsc.SetConfig(func(c *smsc.Config) { c.Outcome = smsc.OutcomeDelivered })
		reply("from the phone", national)
		outcome(s.numberJID(phone), "n3", false)
		reply("from the phone again", s.numberJID(phone))
		if got := len(s.smsc.Messages()); got != 3 {
			t.Fatalf("%d SMS, want 3", got)
		}
		// The archive serves them between the JIDs they went between live.
		results, _, _ := mamPage(t, s, a, "forms", "", "")
		var got []string
		for _, r := range results {
			m := r.Result.Forwarded.Message
			got = append(got, m.From+" > "+m.To+": "+m.Body)
		}
		user := "alice@" + s.prosody.Domain
		want := []string{
			user + " > " + national + ": hi n1",
			user + " > " + national + ": hi n2",
			national + " > " + user + ": from the phone",
			user + " > " + s.numberJID(phone) + ": hi n3",
			s.numberJID(phone) + " > " + user + ": from the phone again",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("archive:\n got %q\nwant %q", got, want)
		}
	})
}

// TestBlankMessages: a message with no text to send gets an error when
// its sender waits for a receipt, and never becomes an SMS; a group chat
// message to a number is refused.
func TestBlankMessages(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	to := s.numberJID(phone)
	for _, tc := range []struct{ id, stanza, cond string }{
		{"ws", `<message to='%s' id='ws' type='chat'><body> 	 </body><request xmlns='urn:xmpp:receipts'/></message>`, "not-acceptable"},
		{"empty", `<message to='%s' id='empty' type='chat'><body></body><request xmlns='urn:xmpp:receipts'/></message>`, "not-acceptable"},
		{"gc", `<message to='%s' id='gc' type='groupchat'><body>hello room</body></message>`, "service-unavailable"},
	} {
		must(t, a.Send(ctx, fmt.Sprintf(tc.stanza, to)))
		e, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Attr["id"] == tc.id })
		must(t, err)
		if e.Attr["type"] != "error" || !strings.Contains(e.XML, "<"+tc.cond) || !strings.Contains(e.XML, "<text") {
			t.Errorf("%s: answer %s, want a %s error with text", tc.id, e.XML, tc.cond)
		}
	}
	// A blank body with no receipt asked is ignored; the next message is
	// the first SMS.
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><body>  </body></message>`, to)))
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><body>after the blanks</body></message>`, to)))
	msgs, err := s.smsc.WaitMessages(ctx, 1)
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	if got := s.smsc.Messages(); len(got) != 1 || msgs[0].Text != "after the blanks" {
		t.Fatalf("SMS sent: %d, first %q", len(got), msgs[0].Text)
	}
}

// TestOwnNumber: a message to one's own number goes to one's phone as
// SMS, not back to oneself over XMPP.
func TestOwnNumber(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='self' type='chat'><body>note to my phone</body></message>`, s.numberJID(alice))))
	sms := waitSMS(t, s, "note to my phone")
	if sms.Dest != alice[1:] {
		t.Fatalf("SMS to %s, want %s", sms.Dest, alice[1:])
	}
	if st, err := a.Next(ctxT(t, time.Second), func(st testenv.Stanza) bool { return st.Body == "note to my phone" }); err == nil {
		t.Fatalf("relayed back to the sender: %s", st.XML)
	}
}

// TestReceiptNeverComes: an SMS whose carrier never sends a receipt ends
// as sent (unconfirmed) after sms.receipt_wait, off the queue; its sender
// gets neither a receipt nor an error.
func TestReceiptNeverComes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	s := startStack(t, sqliteDSN(t), smsc.Config{Outcome: smsc.OutcomeNone},
		"SWITCHBOARD_SMS_RECEIPT_WAIT=1s", "SWITCHBOARD_SMS_REASSEMBLY=4s", // sweeps every second
		"SWITCHBOARD_HTTP_LISTEN="+addr)
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='nr' type='chat'><body>into the void</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(phone))))
	waitSMS(t, s, "into the void")
	st, err := store.Open(ctx, s.cfg.Store.DSN)
	must(t, err)
	defer st.Close()
	var counts map[string]int
	for range 100 {
		if counts, err = st.Counts(ctx); err == nil && counts["out/"+store.StateSent] == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if counts["out/"+store.StateSent] != 1 || counts["out/"+store.StateSubmitted] != 0 {
		t.Fatalf("counts = %v, %v; want the message sent", counts, err)
	}
	if got, err := a.Next(ctxT(t, time.Second), func(st testenv.Stanza) bool {
		return st.Attr["id"] == "nr" || strings.Contains(norm(st.XML), `id="nr"`)
	}); err == nil {
		t.Fatalf("the sender was told: %s", got.XML)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	must(t, err)
	if want := `switchboard_messages_total{direction="out",outcome="unconfirmed",route="sms"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestFallbackByPresence: where the server grants presence privilege, a
// message to a registered user with no available resource goes as SMS at
// once; once they are online it goes over XMPP.
func TestFallbackByPresence(t *testing.T) {
	s := startStackWith(t, sqliteDSN(t), testenv.ProsodyOptions{Privilege: true}, smsc.Config{},
		"SWITCHBOARD_ROUTING_SMS_FALLBACK_AFTER=1h") // only presence, not the timer, can make the SMS
	bind(t, s, "bob", bobNumber)
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	waitGranted(t, 1, s)
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='p1' type='chat'><body>bob is offline</body></message>`, s.numberJID(bobNumber))))
	waitSMS(t, s, "bob is offline")
	b := s.login(t, "bob")
	deadline := time.Now().Add(10 * time.Second)
	for {
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><body>bob is online</body></message>`, s.numberJID(bobNumber))))
		_, err := b.Next(ctxT(t, time.Second), func(st testenv.Stanza) bool { return st.Body == "bob is online" })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message never relayed to bob once online")
		}
	}
}
