package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
)

// TestAnswerShortCode: a short code that wrote to alice (through the SMSC,
// as TON 3 / NPI 0) can be answered within limits.short_code_reply: the
// answer's submit_sm goes to the short code with the TON and NPI it came
// with, and the carrier's receipt comes back to alice from the short
// code's JID. A short code that never wrote to her, or wrote before the
// window, is refused with service-unavailable saying why, and nothing
// reaches the SMSC.
func TestAnswerShortCode(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStack(t, dsn, smsc.Config{})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 60*time.Second)
		const code = "72345"
		codeJID := s.numberJID(code)

		st, err := s.smsc.SendDeliver(ctx, smsc.DeliverOpts{Source: code, SourceTON: 3, SourceNPI: 0,
			Dest: alice[1:], DestTON: 1, DestNPI: 1, ShortMessage: []byte("Reply YES to confirm your order")})
		if err != nil || st != 0 {
			t.Fatalf("deliver_sm from the short code: status %#x, %v", st, err)
		}
		m, err := a.Next(ctx, from(codeJID))
		must(t, err)
		if m.Body != "Reply YES to confirm your order" {
			t.Fatalf("alice got %s", m.XML)
		}

		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='y1' type='chat'><body>YES</body><request xmlns='urn:xmpp:receipts'/></message>`, codeJID)))
		sms := waitSMS(t, s, "YES")
		if sms.Dest != code || sms.DestTON != 3 || sms.DestNPI != 0 || sms.Source != alice[1:] || sms.SourceTON != 1 {
			t.Fatalf("submit_sm = %+v; want to %s as TON 3 / NPI 0, from alice's number", sms, code)
		}
		r, err := a.Next(ctx, from(codeJID))
		must(t, err)
		if !strings.Contains(norm(r.XML), `<received xmlns="urn:xmpp:receipts" id="y1"`) {
			t.Fatalf("want the carrier's receipt for y1, got %s", r.XML)
		}

		refused := func(to, id, text string) {
			t.Helper()
			must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>STOP</body></message>`, s.numberJID(to), id)))
			r, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Attr["id"] == id })
			must(t, err)
			if r.Attr["type"] != "error" || !strings.Contains(r.XML, "service-unavailable") || !strings.Contains(r.XML, text) {
				t.Fatalf("answer %s to %s: %s; want service-unavailable saying %q", id, to, r.XML, text)
			}
		}
		refused("99999", "n1", "99999 is a short code: it can only be answered within 7 days after it wrote to you, and it has not written to your number "+alice)

		// The operator shortens the window to a millisecond: the short
		// code wrote before it.
		s.stop()
		s.cfg.Limits.ShortCodeReply = Dur(time.Millisecond)
		s.start(t)
		waitComponent(t, s, a)
		refused(code, "late", code+" is a short code: it can only be answered within 1ms after it wrote to you")
		if n := smsCount(s, "STOP"); n != 0 {
			t.Fatalf("%d SMS sent for refused answers", n)
		}
	})
}
