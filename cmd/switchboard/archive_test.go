package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/store"
)

// mamResult is a forwarded archive result as a client reads it.
type mamResult struct {
	Result struct {
		QueryID   string `xml:"queryid,attr"`
		ID        string `xml:"id,attr"`
		Forwarded struct {
			Delay struct {
				Stamp string `xml:"stamp,attr"`
			} `xml:"urn:xmpp:delay delay"`
			Message struct {
				From string `xml:"from,attr"`
				To   string `xml:"to,attr"`
				Type string `xml:"type,attr"`
				ID   string `xml:"id,attr"`
				Body string `xml:"body"`
				// What a message written with more than its text carried.
				Replace *struct {
					ID string `xml:"id,attr"`
				} `xml:"urn:xmpp:message-correct:0 replace"`
				OOB *struct {
					URL string `xml:"url"`
				} `xml:"jabber:x:oob x"`
				ChatState *struct{} `xml:"http://jabber.org/protocol/chatstates active"`
			} `xml:"jabber:client message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:mam:2 result"`
}

// mamFin is the IQ result that ends a query.
type mamFin struct {
	Fin struct {
		Complete string `xml:"complete,attr"`
		Set      struct {
			First struct {
				Index string `xml:"index,attr"`
				ID    string `xml:",chardata"`
			} `xml:"first"`
			Last  string `xml:"last"`
			Count int    `xml:"count"`
		} `xml:"http://jabber.org/protocol/rsm set"`
	} `xml:"urn:xmpp:mam:2 fin"`
}

// mamPage runs one archive query and returns its results and its end.
// rsm is the inside of <set/>; with may be empty.
func mamPage(t *testing.T, s *stack, c *testenv.Client, queryID, with, rsm string) ([]mamResult, mamFin, testenv.Stanza) {
	t.Helper()
	form := `<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>`
	if with != "" {
		form += fmt.Sprintf(`<field var='with'><value>%s</value></field>`, with)
	}
	iq, err := c.IQ(ctxT(t, 10*time.Second), fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='urn:xmpp:mam:2' queryid='%s'>`+
		`<x xmlns='jabber:x:data' type='submit'>%s</x><set xmlns='http://jabber.org/protocol/rsm'>%s</set></query></iq>`,
		s.prosody.Component, queryID, form, rsm))
	must(t, err)
	var fin mamFin
	if iq.Attr["type"] == "result" {
		must(t, iq.Decode(&fin))
	}
	// The results came before the IQ result, on the same stream.
	var out []mamResult
	for _, st := range c.Pending() {
		if st.Name != "message" || st.Attr["from"] != s.prosody.Component || !strings.Contains(st.XML, "urn:xmpp:mam:2") {
			continue
		}
		var r mamResult
		must(t, st.Decode(&r))
		if r.Result.QueryID == queryID {
			out = append(out, r)
		}
	}
	return out, fin, iq
}

// TestArchive: a conversation between alice and a phone is served back to
// alice from the gateway's archive, in order, page by page; nobody else sees it.
func TestArchive(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	comp := s.prosody.Component
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 60*time.Second)
	aliceBare := "alice@" + s.prosody.Domain
	phoneJID := s.numberJID(phone)

	// 7 messages from alice, 5 from the phone, interleaved; each is stored
	// before the next one is sent, so the archive order is this order.
	type line struct{ from, to, body, id string }
	var want []line
	sent := 0
	fromAlice := func(n int) {
		for range n {
			sent++
			id, body := fmt.Sprintf("arc%d", sent), fmt.Sprintf("alice says %d", sent)
			must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>%s</body></message>`, phoneJID, id, body)))
			_, err := s.smsc.WaitMessages(ctx, sent)
			must(t, err)
			want = append(want, line{aliceBare, phoneJID, body, id})
		}
	}
	got := 0
	fromPhone := func(n int) {
		for range n {
			got++
			body := fmt.Sprintf("phone says %d", got)
			must(t, s.smsc.SendMO(ctx, phone, alice, body))
			r, err := a.Next(ctx, message(phoneJID))
			must(t, err)
			if r.Body != body || r.Attr["id"] == "" {
				t.Fatalf("alice got %q (id %q), want %q", r.Body, r.Attr["id"], body)
			}
			// The archive gives it the id it came with, so a client
			// that has it knows it again.
			want = append(want, line{phoneJID, aliceBare, body, r.Attr["id"]})
		}
	}
	fromAlice(3)
	fromPhone(2)
	fromAlice(2)
	fromPhone(3)
	fromAlice(2)

	// Forward, five at a time.
	var all []mamResult
	after := ""
	for page := 1; ; page++ {
		rsm := "<max>5</max>"
		if after != "" {
			rsm += "<after>" + after + "</after>"
		}
		res, fin, iq := mamPage(t, s, a, fmt.Sprintf("fwd%d", page), phoneJID, rsm)
		if iq.Attr["type"] != "result" {
			t.Fatalf("page %d: %s", page, iq.XML)
		}
		last := page == 3
		if len(res) != min(5, 12-len(all)) || fin.Fin.Set.Count != 12 || (fin.Fin.Complete == "true") != last ||
			fin.Fin.Set.First.Index != fmt.Sprint(len(all)) || fin.Fin.Set.First.ID != res[0].Result.ID || fin.Fin.Set.Last != res[len(res)-1].Result.ID {
			t.Fatalf("page %d: %d results, fin %+v", page, len(res), fin)
		}
		all = append(all, res...)
		after = fin.Fin.Set.Last
		if last {
			break
		}
	}
	for i, r := range all {
		m, w := r.Result.Forwarded.Message, want[i]
		if m.From != w.from || m.To != w.to || m.Body != w.body || m.Type != "chat" || (w.id != "" && m.ID != w.id) {
			t.Errorf("result %d = %+v, want %+v", i, m, w)
		}
		if _, err := time.Parse(time.RFC3339, r.Result.Forwarded.Delay.Stamp); err != nil {
			t.Errorf("result %d: stamp %q: %v", i, r.Result.Forwarded.Delay.Stamp, err)
		}
		if id, prev := archiveNum(r.Result.ID), archiveNum(all[max(i-1, 0)].Result.ID); id == 0 || (i > 0 && id <= prev) {
			t.Errorf("result %d: id %s after %s", i, r.Result.ID, all[i-1].Result.ID)
		}
	}

	// The last page, backwards.
	res, fin, _ := mamPage(t, s, a, "back", phoneJID, "<max>5</max><before/>")
	if len(res) != 5 || res[0].Result.ID != all[7].Result.ID || res[4].Result.ID != all[11].Result.ID ||
		fin.Fin.Complete != "false" || fin.Fin.Set.First.Index != "7" {
		t.Errorf("last page: %d results, fin %+v", len(res), fin)
	}

	// Another number, another user: nothing.
	res, fin, _ = mamPage(t, s, a, "other", s.numberJID("+12015550198"), "<max>5</max>")
	if len(res) != 0 || fin.Fin.Set.Count != 0 || fin.Fin.Complete != "true" {
		t.Errorf("other number: %d results, fin %+v", len(res), fin)
	}
	b := s.login(t, "bob")
	for _, with := range []string{phoneJID, ""} {
		res, fin, iq := mamPage(t, s, b, "bob", with, "<max>50</max>")
		if iq.Attr["type"] != "result" || len(res) != 0 || fin.Fin.Set.Count != 0 {
			t.Errorf("bob's query with %q: %d results, %s", with, len(res), iq.XML)
		}
	}

	// Form, metadata, discovery, errors.
	iq, err := a.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s'><query xmlns='urn:xmpp:mam:2'/></iq>`, comp))
	must(t, err)
	for _, v := range []string{"FORM_TYPE", "with", "start", "end", "after-id", "before-id"} {
		if !strings.Contains(norm(iq.XML), `var="`+v+`"`) {
			t.Errorf("form lacks %s: %s", v, iq.XML)
		}
	}
	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s'><metadata xmlns='urn:xmpp:mam:2'/></iq>`, comp))
	must(t, err)
	var md struct {
		Start struct {
			ID    string `xml:"id,attr"`
			Stamp string `xml:"timestamp,attr"`
		} `xml:"urn:xmpp:mam:2 metadata>start"`
		End struct {
			ID    string `xml:"id,attr"`
			Stamp string `xml:"timestamp,attr"`
		} `xml:"urn:xmpp:mam:2 metadata>end"`
	}
	must(t, iq.Decode(&md))
	if md.Start.ID != all[0].Result.ID || md.End.ID != all[11].Result.ID ||
		md.Start.Stamp != all[0].Result.Forwarded.Delay.Stamp || md.End.Stamp != all[11].Result.Forwarded.Delay.Stamp {
		t.Errorf("metadata = %s", iq.XML)
	}
	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, comp))
	must(t, err)
	if !strings.Contains(iq.XML, "urn:xmpp:mam:2") {
		t.Errorf("disco#info lacks urn:xmpp:mam:2: %s", iq.XML)
	}
	for _, c := range []struct{ with, rsm, cond string }{
		{"+1@@" + comp, "", "bad-request"},
		{phoneJID, "<after>999999</after>", "item-not-found"},
		{phoneJID, "<max>many</max>", "bad-request"},
	} {
		_, _, iq := mamPage(t, s, a, "err", c.with, c.rsm)
		if iq.ErrorCondition() != c.cond || !strings.Contains(iq.XML, "<text") {
			t.Errorf("with %q, set %q: want %s with a text, got %s", c.with, c.rsm, c.cond, iq.XML)
		}
	}
	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='set' to='%s'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>`+
		`<field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='start'><value>yesterday</value></field></x></query></iq>`, comp))
	must(t, err)
	if iq.ErrorCondition() != "bad-request" || !strings.Contains(iq.XML, "yesterday") {
		t.Errorf("bad start = %s", iq.XML)
	}

	// A sender's name a JID cannot hold: archived as it came, from the
	// gateway itself, the name before the text.
	must(t, s.smsc.SendMO(ctx, "My Bank", alice, "Your code is 1234"))
	live, err := a.Next(ctx, func(st testenv.Stanza) bool {
		return st.Name == "message" && st.Attr["from"] == comp && strings.Contains(st.Body, "1234")
	})
	must(t, err)
	res, _, iq = mamPage(t, s, a, "all", "", "<max>50</max>")
	if iq.Attr["type"] != "result" || len(res) != 13 {
		t.Fatalf("everything: %d results, %s", len(res), iq.XML)
	}
	if m := res[12].Result.Forwarded.Message; m.From != comp || m.To != aliceBare || m.Body != "My Bank: Your code is 1234" ||
		m.Body != live.Body || m.ID != live.Attr["id"] {
		t.Errorf("from a named sender: archived %+v, came %s", m, live.XML)
	}
	// The session survived all of it.
	waitComponent(t, s, a)
}

func archiveNum(id string) int {
	n, _ := strconv.Atoi(id)
	return n
}

// TestArchiveRetention: the key defaults to keeping everything, refuses
// negative and malformed values, and the loop prunes finished messages.
func TestArchiveRetention(t *testing.T) {
	path := writeFile(t, "sb.toml", goodConfig)
	cfg, err := loadConfig(path, nil)
	must(t, err)
	if cfg.Archive.Retention.D() != 0 {
		t.Errorf("default retention = %v", cfg.Archive.Retention.D())
	}
	cfg, err = loadConfig(path, []string{"SWITCHBOARD_ARCHIVE_RETENTION=720h"})
	if err != nil || cfg.Archive.Retention.D() != 720*time.Hour {
		t.Errorf("retention from the environment = %v, %v", cfg, err)
	}
	for _, v := range []string{"-1h", "a year"} {
		if _, err := loadConfig(path, []string{"SWITCHBOARD_ARCHIVE_RETENTION=" + v}); err == nil || !strings.Contains(err.Error(), "archive.retention") {
			t.Errorf("retention %q: %v", v, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, sqliteDSN(t))
	must(t, err)
	defer st.Close()
	done := &store.Inbound{Source: phone, Dest: alice, RecipientJID: "alice@example.com", Body: "old"}
	must(t, st.AcceptInbound(ctx, done))
	ns, err := st.ClaimNotices(ctx, "test", 10, time.Minute)
	must(t, err)
	must(t, st.NoticesDone(ctx, []int64{ns[0].ID}))
	waiting := &store.Inbound{Source: phone, Dest: alice, RecipientJID: "alice@example.com", Body: "waiting"}
	must(t, st.AcceptInbound(ctx, waiting))
	time.Sleep(5 * time.Millisecond) // both are older than the retention below

	exited := make(chan error, 1)
	go func() {
		exited <- prune(ctx, st, time.Millisecond, 10*time.Millisecond, zerolog.New(zerolog.NewTestWriter(t)))
	}()
	waitUntil(t, 10*time.Second, "the delivered message was never pruned", func() bool {
		_, _, err := st.MessageState(ctx, done.ID)
		return errors.Is(err, store.ErrNotFound)
	})
	if state, _, err := st.MessageState(ctx, waiting.ID); err != nil || state != store.StateReceived {
		t.Errorf("waiting message = %q, %v", state, err)
	}
	cancel()
	if err := <-exited; err != nil {
		t.Errorf("prune returned %v", err)
	}
}

// TestArchiveAsWritten: a message that carried more than its text (a
// correction, a reaction, a reply, a link) comes back from the archive as
// it was written, its elements and all, not as the text its SMS had; a
// plain one as its body.
func TestArchiveAsWritten(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{SystemID: "switchboard", Password: "secret"})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 60*time.Second)
	to := s.numberJID(phone)
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='w1' type='chat'><body>See you at 8</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, to)))
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='w2' type='chat'><body>See you at 9</body><replace id='w1' xmlns='urn:xmpp:message-correct:0'/></message>`, to)))
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='w3' type='chat'><body>https://up.example/cat.jpg</body><x xmlns='jabber:x:oob'><url>https://up.example/cat.jpg</url></x></message>`, to)))
	msgs, err := s.smsc.WaitMessages(ctx, 3)
	must(t, err)
	if msgs[1].Text != "Correction: See you at 9" {
		t.Fatalf("the correction's SMS: %q", msgs[1].Text)
	}
	results, _, _ := mamPage(t, s, a, "w", "", "")
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		m := r.Result.Forwarded.Message
		switch m.ID {
		case "w1":
			if m.Body != "See you at 8" || m.ChatState != nil {
				t.Errorf("the plain message: %+v", m)
			}
		case "w2":
			if m.Body != "See you at 9" || m.Replace == nil || m.Replace.ID != "w1" {
				t.Errorf("the correction: %+v; want its body and <replace id='w1'/>, not \"Correction: …\"", m)
			}
		case "w3":
			if m.Body != "https://up.example/cat.jpg" || m.OOB == nil || m.OOB.URL != "https://up.example/cat.jpg" {
				t.Errorf("the link: %+v; want its OOB element", m)
			}
		default:
			t.Errorf("result %+v", m)
		}
	}
}

// TestArchiveLeavesRefused: a phone's message that the user's server
// bounced (the user blocked the number) is dropped from the archive; the
// others stay.
func TestArchiveLeavesRefused(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{SystemID: "switchboard", Password: "secret"})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 60*time.Second)
	var unwanted string // its id as the gateway sent it
	for _, text := range []string{"wanted", "unwanted"} {
		must(t, s.smsc.SendMO(ctx, phone, alice, text))
		st, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Body == text })
		if err != nil {
			t.Fatal(err)
		}
		unwanted = st.Attr["id"]
	}
	if results, _, _ := mamPage(t, s, a, "before", "", ""); len(results) != 2 || !strings.HasPrefix(unwanted, "sms-") {
		t.Fatalf("%d results before the bounce, the unwanted one's id %q", len(results), unwanted)
	}
	// As Prosody bounces a message from a blocked contact.
	must(t, a.Send(ctx, fmt.Sprintf(`<message type='error' to='%s' id='%s'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		s.numberJID(phone), unwanted)))
	waitUntil(t, 10*time.Second, "the refused message is still in the archive", func() bool {
		results, _, _ := mamPage(t, s, a, fmt.Sprint("after", time.Now().UnixNano()), "", "")
		return len(results) == 1 && results[0].Result.Forwarded.Message.Body == "wanted"
	})
}
