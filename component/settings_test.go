package component

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/roster/verify"
	"switchboard/store/storetest"
)

// TestSettingsEveryBadField: a submission with two bad fields is answered
// with a note for each, the form again, and nothing saved; a good one is
// saved.
func TestSettingsEveryBadField(t *testing.T) {
	st := storetest.SQLite(t)
	reg := verify.New(verify.Config{Logger: zerolog.New(zerolog.NewTestWriter(t))}, st)
	h := start(t, newFakeServer(t), func(c *Config) { c.Registrar, c.Sessions, c.Preferences = reg, st, st })
	sc := h.srv.session()
	h.onConnect(t)

	run := func(id, inner string) node {
		t.Helper()
		sc.send(`<iq type='set' id='` + id + `' from='alice@example.com/r' to='sms.example.com'>` + inner + `</iq>`)
		n := sc.next()
		if n.attr("type") != "result" {
			t.Fatalf("%s: %s", id, n)
		}
		return n.children("http://jabber.org/protocol/commands", "command")[0]
	}
	submit := func(id, sid, fallback, after string) node {
		t.Helper()
		return run(id, `<command xmlns='http://jabber.org/protocol/commands' node='settings' sessionid='`+sid+`' action='complete'>`+
			`<x xmlns='jabber:x:data' type='submit'><field var='fallback'><value>`+fallback+`</value></field>`+
			`<field var='fallback_after'><value>`+after+`</value></field></x></command>`)
	}
	errorNotes := func(c node) []string {
		var out []string
		for _, n := range c.children("http://jabber.org/protocol/commands", "note") {
			if n.attr("type") == "error" {
				out = append(out, n.Text)
			}
		}
		return out
	}

	c := run("s1", `<command xmlns='http://jabber.org/protocol/commands' node='settings' action='execute'/>`)
	sid := c.attr("sessionid")
	c = submit("s2", sid, "maybe", "-5s")
	notes := errorNotes(c)
	if c.attr("status") != "executing" || len(notes) != 2 ||
		!strings.Contains(notes[0], `"maybe"`) || !strings.Contains(notes[1], `"-5s"`) ||
		len(c.children("jabber:x:data", "x")) != 1 {
		t.Fatalf("two bad fields: %s", c)
	}
	if m, err := st.SettingsOf(context.Background(), []string{"alice@example.com"}); err != nil || len(m) != 0 {
		t.Fatalf("saved after bad fields: %v %v", m, err)
	}
	// The form comes back with what was written, to correct, not undone.
	if got := c.String(); !strings.Contains(got, ">-5s</value>") {
		t.Errorf("form sent back without the values written: %s", got)
	}
	// Each alone is named too; the session goes on after a refusal.
	for i, tc := range [][2]string{{"maybe", "60"}, {"1", "-5s"}} {
		c = submit("s3"+string(rune('a'+i)), sid, tc[0], tc[1])
		if notes := errorNotes(c); c.attr("status") != "executing" || len(notes) != 1 {
			t.Fatalf("fallback=%s fallback_after=%s: %s", tc[0], tc[1], c)
		}
	}
	c = submit("s4", sid, "true", "60s")
	if c.attr("status") != "completed" || len(errorNotes(c)) != 0 {
		t.Fatalf("good fields: %s", c)
	}
	m, err := st.SettingsOf(context.Background(), []string{"alice@example.com"})
	if s := m["alice@example.com"]; err != nil || !s.Fallback || s.FallbackAfter != time.Minute {
		t.Fatalf("saved = %+v, %v", s, err)
	}
}
