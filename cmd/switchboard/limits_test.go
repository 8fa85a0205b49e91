package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
)

// TestSMSLimits: destinations outside the allowed countries and premium
// prefixes are refused, and per-user quotas hold; XMPP relays are free.
func TestSMSLimits(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{},
		"SWITCHBOARD_LIMITS_PER_USER_MINUTE=3", "SWITCHBOARD_ROUTING_SMS_FALLBACK_AFTER=0s")
	bind(t, s, "bob", bobNumber)
	a, b := s.login(t, "alice"), s.login(t, "bob")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	send := func(id, to, body string) testenv.Stanza {
		t.Helper()
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(to), id, body)))
		r, err := a.Next(ctx, func(st testenv.Stanza) bool {
			return st.Attr["id"] == id || strings.Contains(norm(st.XML), `id="`+id+`"`)
		})
		must(t, err)
		return r
	}
	for _, tc := range []struct{ id, to, want string }{
		{"l1", "+442079460000", "does not send SMS to +442079460000 (GB)"},
		{"l2", "+19005550123", "+1900"},
	} {
		r := send(tc.id, tc.to, "hello")
		if r.ErrorCondition() != "policy-violation" || !strings.Contains(r.XML, tc.want) {
			t.Errorf("%s: %s", tc.id, r.XML)
		}
	}
	for i := range 3 {
		r := send(fmt.Sprintf("q%d", i), phone, fmt.Sprintf("quota %d", i))
		if r.Attr["type"] == "error" {
			t.Fatalf("message %d refused: %s", i, r.XML)
		}
	}
	r := send("q3", phone, "quota 3")
	if r.ErrorCondition() != "policy-violation" || !strings.Contains(r.XML, "last minute") {
		t.Fatalf("fourth SMS in a minute: %s", r.XML)
	}
	// Over XMPP nothing is counted.
	for i := range 5 {
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='x%d' type='chat'><body>free %d</body></message>`, s.numberJID(bobNumber), i, i)))
	}
	for i := range 5 {
		if _, err := b.Next(ctx, func(st testenv.Stanza) bool { return st.Body == fmt.Sprintf("free %d", i) }); err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
	}
	if n := smsCount(s, "quota"); n != 3 {
		t.Fatalf("%d quota SMS reached the SMSC, want 3", n)
	}
}
