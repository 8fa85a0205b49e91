package component

import (
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
