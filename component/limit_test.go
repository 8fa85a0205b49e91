package component

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestOversizedStanza: a stanza over MaxStanza ends the session instead of
// being buffered; stanzas under it, one after another, are fine; the
// component reconnects.
func TestOversizedStanza(t *testing.T) {
	srv := newFakeServer(t)
	h := start(t, srv, func(c *Config) { c.MaxStanza = 64 << 10 })
	sc := srv.session()
	h.onConnect(t)
	// Many stanzas adding up to more than the bound are fine.
	body := strings.Repeat("x", 40<<10)
	for i := range 4 {
		sc.send(`<message from='alice@example.com/r' to='+12015550123@sms.example.com' type='chat' id='ok` + string(rune('0'+i)) + `'><body>` + body + `</body></message>`)
	}
	sc.ping()
	if n := len(h.router.taken()); n != 4 {
		t.Fatalf("router got %d messages, want 4", n)
	}
	// One larger than the bound ends the session.
	sc.send(`<message from='alice@example.com/r' to='+12015550123@sms.example.com' type='chat' id='big'><body>` + strings.Repeat("y", 200<<10) + `</body></message>`)
	select {
	case <-sc.closed:
	case <-time.After(waitFor):
		t.Fatal("the session survived an oversized stanza")
	}
	if n := len(h.router.taken()); n != 4 {
		t.Fatalf("the oversized message reached the router")
	}
	sc2 := srv.session()
	h.onConnect(t)
	sc2.ping()
}

// TestOversizedRequest: an IQ request whose child holds more than
// maxElementTokens tokens (but fits in MaxStanza) is answered with
// policy-violation, as every get and set must be answered (RFC 6120
// §8.2.3); the rest of it is skipped and the session goes on.
func TestOversizedRequest(t *testing.T) {
	h, sc := connected(t)
	big := strings.Repeat("<a/>", maxElementTokens/2+1) // two tokens each
	sc.send(`<iq type='get' id='big1' from='alice@example.com/r' to='sms.example.com'><query xmlns='http://jabber.org/protocol/disco#info'>` + big + `</query></iq>`)
	sc.send(`<iq type='set' id='big2' from='alice@example.com/r' to='+12015550123@sms.example.com'><command xmlns='http://jabber.org/protocol/commands' node='status'>` + big + `</command></iq>`)
	sc.send(`<message from='alice@example.com/r' to='+12015550123@sms.example.com' type='chat' id='big3'><body>hi</body><x xmlns='urn:example:x'>` + big + `</x></message>`)
	got := sc.ping()
	want := []want{
		iqError(testDomain, testAlice, "big1", "modify", "policy-violation", "too large"),
		iqError("+12015550123@sms.example.com", testAlice, "big2", "modify", "policy-violation", "too large"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %d answers", got, len(want))
	}
	for i := range want {
		want[i].match(t, got[i])
	}
	if n := len(h.router.taken()); n != 0 {
		t.Errorf("the oversized message reached the router")
	}
	sc.send(`<iq type='get' id='v1' from='alice@example.com/r' to='sms.example.com'><query xmlns='jabber:iq:version'/></iq>`)
	if n := sc.next(); n.attr("id") != "v1" || n.attr("type") != "result" {
		t.Fatalf("after the oversized requests: %s", n)
	}
}

// TestAnswersCountedApart: answers to the component's own requests (Sync's
// pings here), which mellium hands to the request, not to the handler,
// each start the stanza bound afresh as every other stanza does: many of
// them together, more than the bound, do not end the session.
func TestAnswersCountedApart(t *testing.T) {
	srv := newFakeServer(t)
	h := start(t, srv, func(c *Config) { c.MaxStanza = 4 << 10 })
	sc := srv.session()
	h.onConnect(t)
	// Well over 4 KiB of answers, each about a hundred bytes.
	const syncs = 200
	go func() {
		for range syncs {
			n, ok := <-sc.stanzas
			if !ok {
				return
			}
			if n.XMLName.Local == "iq" && n.attr("type") == "get" {
				// Not sc.send: it may not fail the test from this goroutine.
				_, _ = io.WriteString(sc.conn, `<iq type='result' id='`+n.attr("id")+`' from='`+n.attr("to")+`' to='`+n.attr("from")+`'/>`)
			}
		}
	}()
	for i := range syncs {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		err := h.comp.Sync(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Sync %d of %d: %v", i+1, syncs, err)
		}
	}
}
