package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/store/storetest"
)

// TestAnswersHandedOn: with several instances on one component, the
// server's answer to one instance's request may come to another. An answer
// no request here waits for is handed on (HandOn); one handed on by another
// instance (Answer) ends the request waiting for it — from the request's
// addressee only.
func TestAnswersHandedOn(t *testing.T) {
	handed := make(chan []byte, 4)
	h := start(t, newFakeServer(t), func(c *Config) {
		c.HandOn = func(_ context.Context, b []byte) error { handed <- b; return nil }
		c.HandOnMax = 1000
		c.PingTimeout = 5 * time.Second
	})
	sc := h.srv.session()
	h.onConnect(t)

	// Another instance's answer reaches this one: handed on whole.
	sc.send(`<iq type='result' id='theirs' from='alice@example.com' to='` + testDomain + `'><query xmlns='jabber:iq:roster'><item jid='+12015550101@` + testDomain + `' name='Bob &amp; co'/></query></iq>`)
	select {
	case b := <-handed:
		var v struct {
			ID    string `xml:"id,attr"`
			Type  string `xml:"type,attr"`
			Items []struct {
				Name string `xml:"name,attr"`
			} `xml:"jabber:iq:roster query>item"`
		}
		if err := xml.Unmarshal(b, &v); err != nil || v.ID != "theirs" || v.Type != "result" || len(v.Items) != 1 || v.Items[0].Name != "Bob & co" {
			t.Errorf("handed on %s (%v): %+v", b, err, v)
		}
	case <-time.After(waitFor):
		t.Fatal("the answer was not handed on")
	}
	// Too large to hand on: dropped, the session stays.
	sc.send(`<iq type='result' id='big' from='example.com' to='` + testDomain + `'><query xmlns='urn:x'>` + strings.Repeat("x", 2000) + `</query></iq>`)
	sc.ping()
	if len(handed) != 0 {
		t.Errorf("an answer over HandOnMax was handed on: %s", <-handed)
	}

	// This instance's ping, answered through another instance.
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- h.comp.Sync(ctx) }()
	ping := sc.next()
	id := ping.attr("id")
	if ping.XMLName.Local != "iq" || id == "" {
		t.Fatalf("sync sent %s", ping)
	}
	// From another address than the ping's: not its answer.
	h.comp.Answer([]byte(`<iq type='result' id='` + id + `' from='mallory@example.com' to='` + testDomain + `'/>`))
	select {
	case err := <-done:
		t.Fatalf("Sync ended on an answer from another address: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	h.comp.Answer([]byte(`<iq xmlns='jabber:component:accept' type='result' id='` + id + `' from='` + testDomain + `' to='` + testDomain + `'/>`))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Sync answered through another instance: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Sync did not take the answer handed on")
	}
	if !h.comp.Connected() {
		t.Error("the session ended")
	}
	// Unreadable or foreign input to Answer is ignored.
	for _, in := range []string{"", "<iq", "<message type='result' id='x'/>", `<iq type='get' id='x'/>`} {
		h.comp.Answer([]byte(in))
	}
}

// TestInstancesOnEjabberd: two instances connected as one component to
// ejabberd, which gives each stanza to the component to either connection
// (domain_balancing random): every ping of each is answered, those the
// server gave the other instance handed on through PostgreSQL. Without
// that, about half of them would go unanswered.
func TestInstancesOnEjabberd(t *testing.T) {
	t.Parallel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{})
	st := storetest.Postgres(t)
	var comps []*Component
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // before the wait
	for i := range 2 {
		c := New(Config{
			JID: jid.MustParse(e.Component), Server: e.ComponentAddr, Secret: e.Secret, SyncTo: jid.MustParse(e.Domain),
			HandOn: st.HandOnAnswer, HandOnMax: 7900, PingTimeout: 3 * time.Second, KeepAlive: time.Hour,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).With().Int("instance", i).Logger(),
		}, &fakeRouter{})
		ready := make(chan struct{})
		var once sync.Once
		wg.Go(func() {
			if err := st.ListenAnswers(ctx, c.Answer, func() { once.Do(func() { close(ready) }) }); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() { _ = c.Run(ctx) })
		waitUntil(t, "the component to connect", c.Connected)
		select {
		case <-ready:
		case <-time.After(waitFor):
			t.Fatal("the listener did not connect")
		}
		comps = append(comps, c)
	}
	var failed []string
	for round := range 10 {
		for i, c := range comps {
			if err := c.Sync(ctx); err != nil {
				failed = append(failed, fmt.Sprintf("round %d instance %d: %v", round, i, err))
				if errors.Is(err, context.DeadlineExceeded) {
					waitUntil(t, "the component to reconnect", c.Connected)
				}
			}
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of 20 pings unanswered:\n%s", len(failed), strings.Join(failed, "\n"))
	}
}
