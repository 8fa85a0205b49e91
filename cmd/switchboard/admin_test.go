package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/xep/adhoc"
)

// TestAdminCommands: only [xmpp] admins see and run the operators'
// commands: stats, assign, look up, release, recent failures.
func TestAdminCommands(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{Outcome: smsc.OutcomeFailed},
		"SWITCHBOARD_XMPP_ADMINS=alice@localhost")
	comp := s.prosody.Component
	a, b := s.login(t, "alice"), s.login(t, "bob")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	items := func(who string) string {
		cl := a
		if who == "bob" {
			cl = b
		}
		iq, err := cl.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`, comp))
		must(t, err)
		return iq.XML
	}
	if !strings.Contains(items("alice"), "admin-stats") {
		t.Fatal("admin does not see admin commands")
	}
	if strings.Contains(items("bob"), "admin-") {
		t.Fatal("a user sees admin commands")
	}
	if _, iq := adhocRun(t, b, comp, "admin-stats", "", "execute", nil); iq.ErrorCondition() != "item-not-found" {
		t.Fatalf("bob ran admin-stats: %s", iq.XML)
	}

	c, _ := adhocRun(t, a, comp, "admin-assign", "", "execute", nil)
	c, _ = adhocRun(t, a, comp, "admin-assign", c.SessionID, "complete", map[string]string{"jid": "bob@localhost", "number": "+1 201 555 0142"})
	if c.Status != adhoc.Completed || !strings.Contains(notes(c), "+12015550142 is now bound to bob@localhost") {
		t.Fatalf("assign = %s", notes(c))
	}
	c, _ = adhocRun(t, a, comp, "admin-assign", "", "execute", nil)
	c, _ = adhocRun(t, a, comp, "admin-assign", c.SessionID, "complete", map[string]string{"jid": "carol@elsewhere.example", "number": "+1 201 555 0143"})
	if !strings.Contains(notes(c), "carol@elsewhere.example is not a user of a domain this gateway serves") {
		t.Fatalf("assign to an unserved domain = %s", notes(c))
	}
	if c, _ := adhocRun(t, b, comp, "status", "", "execute", nil); !strings.Contains(notes(c), "+12015550142") || !strings.Contains(notes(c), "operator") {
		t.Fatalf("bob's status = %s", notes(c))
	}
	c, _ = adhocRun(t, a, comp, "admin-lookup", "", "execute", nil)
	c, _ = adhocRun(t, a, comp, "admin-lookup", c.SessionID, "complete", map[string]string{"number": "+12015550142"})
	if !strings.Contains(notes(c), "bound to bob@localhost (operator") {
		t.Fatalf("lookup = %s", notes(c))
	}

	// A message that fails shows in the failures and the stats.
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='f1' type='chat'><body>doomed</body></message>`, s.numberJID(phone))))
	if _, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Attr["id"] == "f1" && st.Attr["type"] == "error" }); err != nil {
		t.Fatal(err)
	}
	c, _ = adhocRun(t, a, comp, "admin-failures", "", "execute", nil)
	if !strings.Contains(notes(c), "UNDELIV") || !strings.Contains(notes(c), "alice@localhost") {
		t.Fatalf("failures = %s", notes(c))
	}
	c, _ = adhocRun(t, a, comp, "admin-stats", "", "execute", nil)
	if !strings.Contains(notes(c), "out/failed: 1") || !strings.Contains(notes(c), "XMPP connected: true") {
		t.Fatalf("stats = %s", notes(c))
	}

	c, _ = adhocRun(t, a, comp, "admin-release", "", "execute", nil)
	c, _ = adhocRun(t, a, comp, "admin-release", c.SessionID, "complete", map[string]string{"number": "+12015550142"})
	if !strings.Contains(notes(c), "released (it was bound to bob@localhost)") {
		t.Fatalf("release = %s", notes(c))
	}
}
