package component

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/roster/verify"
	"switchboard/store"
)

// TestCommandAcrossInstances: two instances share one store; the stages of
// a registration reach them in turn (as ejabberd spreads stanzas over a
// component's connections) and the command still completes.
func TestCommandAcrossInstances(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
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
