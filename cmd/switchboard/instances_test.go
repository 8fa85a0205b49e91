package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/store"
)

// TestPresenceAcrossInstancesEjabberd: two gateways on one PostgreSQL
// behind ejabberd, which spreads the component's stanzas over both
// connections, with the presence privilege and the SMS fallback timer
// out of reach. bob's coming online reaches one instance; alice's messages
// to his number reach either. Every one must go to bob over XMPP: an
// instance that had not seen his presence used to take him for offline and
// send an SMS at once.
func TestPresenceAcrossInstancesEjabberd(t *testing.T) {
	t.Parallel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{
		Users: map[string]string{"alice": "alice", "bob": "bob"}, Privilege: true,
	})
	dsn := testenv.StartPostgres(t)
	sim := smsc.NewServer(smsc.Config{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	smscAddr, err := sim.Start("")
	must(t, err)
	t.Cleanup(func() { sim.Close() })
	cfg, err := loadConfig("", append(gatewayEnv(e.Component, e.ComponentAddr, e.Secret, e.Domain, smscAddr, dsn),
		"SWITCHBOARD_ROUTING_SMS_FALLBACK_AFTER=1h")) // only presence, not the timer, can make an SMS
	must(t, err)
	st, err := store.Open(context.Background(), dsn)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	for user, num := range map[string]string{"alice": alice, "bob": bobNumber} {
		_, err := st.Bind(context.Background(), num, user+"@"+e.Domain, "operator")
		must(t, err)
	}
	one, two := &stack{smsc: sim, cfg: cfg, logs: testenv.NewLogs(t)}, &stack{smsc: sim, cfg: cfg, logs: testenv.NewLogs(t)}
	// granted waits for n advertisements read by the two instances, and
	// for the store to hold one recorded since, which an instance that got
	// none of its own reads.
	granted := func(n int, since time.Time) {
		t.Helper()
		waitGranted(t, n, one, two)
		waitUntil(t, 20*time.Second, "no advertisement recorded for the instances", func() bool {
			g, ok, err := st.GrantOf(context.Background(), e.Domain)
			return err == nil && ok && !g.At.Before(since)
		})
	}
	started := time.Now()
	one.start(t)
	two.start(t)
	// Two advertisements read, which follow the handshakes. ejabberd may
	// hand both to one instance; the other then takes the one recorded in
	// the store. (A message routed before would not fail the test: with
	// presence unknown it goes over XMPP, but the check would be weaker.)
	granted(2, started)

	a := testenv.Login(t, e.C2SAddr, jid.MustParse("alice@"+e.Domain), "alice")
	b := testenv.Login(t, e.C2SAddr, jid.MustParse("bob@"+e.Domain), "bob")
	waitAvailable(t, st, "bob@"+e.Domain, "", true)
	ctx := ctxT(t, 60*time.Second)
	const n = 20
	to := bobNumber + "@" + e.Component
	for i := range n {
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='m%d' type='chat'><body>over xmpp %d</body></message>`, to, i, i)))
	}
	got := map[string]bool{}
	for len(got) < n {
		s, err := b.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "message" && s.Body != "" })
		if err != nil {
			t.Fatalf("bob got %d of %d messages over XMPP: %v; SMS sent: %d", len(got), n, err, len(sim.Messages()))
		}
		got[s.Body] = true
	}
	if sms := sim.Messages(); len(sms) != 0 {
		t.Fatalf("%d messages to online bob went as SMS, first %q", len(sms), sms[0].Text)
	}
	// ejabberd picks one of the component's connections at random for
	// each stanza (domain_balancing: random): both instances relayed, so
	// the one that was not told of bob's presence read it from the store.
	// (All twenty to one instance: one run in half a million.)
	r1, r2 := one.logs.Count("relayed over XMPP"), two.logs.Count("relayed over XMPP")
	if r1 == 0 || r2 == 0 {
		t.Fatalf("relayed over XMPP: %d by one instance, %d by the other; want some from both", r1, r2)
	}

	// Both instances restart. ejabberd does not send users' presence again
	// to a component that connects: bob, online throughout, is still
	// known online from the record, and a message to him goes over XMPP.
	one.stop()
	two.stop()
	started = time.Now()
	one.start(t)
	two.start(t)
	granted(4, started)
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' type='chat'><body>after the restart</body></message>`, to)))
	if _, err := b.Next(ctx, func(s testenv.Stanza) bool { return s.Body == "after the restart" }); err != nil {
		t.Fatalf("message to online bob not relayed after the restarts: %v (SMS sent: %d)", err, len(sim.Messages()))
	}

	// bob removes a number from his roster, while online: ejabberd sends
	// the number unsubscribe and unsubscribed, then unavailable from each
	// of his resources. That is the end of a subscription, not bob going
	// offline: he stays recorded online.
	other := "+12015550178@" + e.Component
	subscribeBoth(ctx, t, b, other)
	// ejabberd sends the number bob's unavailable on removal only once
	// the number has his presence: wait for his roster to say so.
	waitUntil(t, 20*time.Second, "bob's roster never showed the number with his presence", func() bool {
		r, err := b.IQ(ctx, `<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`)
		// His roster holds this number alone.
		return err == nil && strings.Contains(r.XML, `jid='`+other+`'`) &&
			(strings.Contains(r.XML, `subscription='both'`) || strings.Contains(r.XML, `subscription='from'`))
	})
	if _, err := b.IQ(ctx, `<iq type='set'><query xmlns='jabber:iq:roster'><item jid='`+other+`' subscription='remove'/></query></iq>`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Next(ctx, func(s testenv.Stanza) bool {
		return s.Name == "presence" && s.Attr["type"] == "unavailable" && s.Attr["from"] == other
	}); err != nil {
		t.Fatalf("the gateway did not answer the removal's unsubscribe: %v", err)
	}
	time.Sleep(2 * time.Second) // the unavailable that follows, read and recorded if taken for bob's
	// ejabberd does not send that unavailable every time (in 1 to 2 runs of
	// 3 here no instance saw one), and then the check below proves
	// nothing; TestPresenceAcrossInstances (component) checks the reading
	// itself every time. Say which it was.
	const ended = "unavailable for a subscription the user ended, not the user going offline"
	t.Logf("the removal's unavailable read as the end of a subscription: %v", one.logs.Count(ended)+two.logs.Count(ended) > 0)
	if up, err := st.UserAvailable(context.Background(), "bob@"+e.Domain, ""); err != nil || !up {
		t.Fatalf("bob recorded offline after removing a number from his roster (%v, %v)", up, err)
	}

	// bob's client leaves without its unavailable presence (it just ends
	// the stream, as a client that lost its network is ended). ejabberd
	// forwards nothing under the privilege then, but broadcasts the
	// unavailable to the contacts that have bob's presence: with a number
	// in his roster, the gateway learns that he has gone.
	num := "+12015550177@" + e.Component
	subscribeBoth(ctx, t, b, num)
	must(t, b.Close())
	waitAvailable(t, st, "bob@"+e.Domain, "", false) // from the broadcast to the number
}

// subscribeBoth subscribes c's user to number JID num, and, when the
// gateway asks for the user's presence back, grants it.
func subscribeBoth(ctx context.Context, t *testing.T, c *testenv.Client, num string) {
	t.Helper()
	must(t, c.Send(ctx, `<presence type='subscribe' to='`+num+`'/>`))
	if _, err := c.Next(ctx, func(s testenv.Stanza) bool {
		return s.Name == "presence" && s.Attr["type"] == "subscribe" && s.Attr["from"] == num
	}); err != nil {
		t.Fatalf("the gateway did not ask for the user's presence back: %v", err)
	}
	must(t, c.Send(ctx, `<presence type='subscribed' to='`+num+`'/>`))
}

// waitAvailable waits until the store records the user (a resource, or ""
// for any) as available or not.
func waitAvailable(t *testing.T, st *store.Store, bare, resource string, want bool) {
	t.Helper()
	waitUntil(t, 20*time.Second, fmt.Sprintf("%s/%s never recorded available=%v", bare, resource, want), func() bool {
		got, err := st.UserAvailable(context.Background(), bare, resource)
		return err == nil && got == want
	})
}

// TestEjabberdRestartEndsPresence: ejabberd restarting ends bob's session
// without a word to the component; connecting again, the gateway reads the
// server's uptime (XEP-0012) and ends what it recorded before the server
// started, so bob, not back, no longer counts as online (messages to him
// would go into offline storage and, after the fallback wait, as SMS too).
func TestEjabberdRestartEndsPresence(t *testing.T) {
	t.Parallel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{Users: map[string]string{"bob": "bob"}, Privilege: true})
	sim := smsc.NewServer(smsc.Config{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	smscAddr, err := sim.Start("")
	must(t, err)
	t.Cleanup(func() { sim.Close() })
	dsn := sqliteDSN(t)
	cfg, err := loadConfig("", gatewayEnv(e.Component, e.ComponentAddr, e.Secret, e.Domain, smscAddr, dsn))
	must(t, err)
	st, err := store.Open(context.Background(), dsn)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	gw := &stack{smsc: sim, cfg: cfg, logs: testenv.NewLogs(t)}
	gw.start(t)
	waitGranted(t, 1, gw)
	testenv.Login(t, e.C2SAddr, jid.MustParse("bob@"+e.Domain), "bob")
	waitAvailable(t, st, "bob@"+e.Domain, "", true)

	e.Restart(t)
	gw.logs.Next("the XMPP server started since the users' presence was recorded: those resources are taken offline")
	waitAvailable(t, st, "bob@"+e.Domain, "", false)
}
