package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
)

// TestSeveralSMSCs: destinations go to the SMSC with the longest matching
// prefix, over several binds; message ids that two SMSCs both use are told
// apart; when an SMSC is down, the next matching one takes over.
func TestSeveralSMSCs(t *testing.T) {
	uk := smsc.NewServer(smsc.Config{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	ukAddr, err := uk.Start("")
	must(t, err)
	t.Cleanup(func() { uk.Close() })
	file := writeFile(t, "smsc.toml", fmt.Sprintf(`
[smpp]
prefixes = ["+1201"]
binds = 2

[[smsc]]
name = "uk"
addr = %q
prefixes = ["+44", "+1"]
binds = 1 # its own, not [smpp]'s 2
`, ukAddr))
	s := startStack(t, sqliteDSN(t), smsc.Config{},
		"CONFIG_FILE="+file, "SWITCHBOARD_LIMITS_ALLOWED_COUNTRIES=US,GB")
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 60*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for (s.smsc.Bound() < 2 || uk.Bound() < 1) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if s.smsc.Bound() != 2 || uk.Bound() != 1 {
		t.Fatalf("binds: default %d, uk %d", s.smsc.Bound(), uk.Bound())
	}
	send := func(id, to, body string) {
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(to), id, body)))
	}
	receipt := func(id string) {
		t.Helper()
		r, err := a.Next(ctx, func(st testenv.Stanza) bool {
			return strings.Contains(norm(st.XML), `<received xmlns="urn:xmpp:receipts" id="`+id+`"`)
		})
		if err != nil {
			t.Fatalf("no receipt for %s: %v", id, err)
		}
		_ = r
	}
	// Both simulators number their messages from the same start: the ids
	// collide, and each receipt must still find its own message.
	send("us1", phone, "to the US")
	send("uk1", "+442079460000", "to the UK")
	receipt("us1")
	receipt("uk1")
	if m := s.smsc.Messages(); len(m) != 1 || m[0].Text != "to the US" {
		t.Fatalf("default SMSC got %v", m)
	}
	if m := uk.Messages(); len(m) != 1 || m[0].Text != "to the UK" || m[0].ID != s.smsc.Messages()[0].ID {
		t.Fatalf("uk SMSC got %v (ids should collide)", m)
	}
	// The default SMSC goes down: +1201 falls over to the uk SMSC (+1).
	s.smsc.Close()
	time.Sleep(300 * time.Millisecond)
	send("us2", phone, "failover")
	receipt("us2")
	if m := uk.Messages(); len(m) != 2 || m[1].Text != "failover" {
		t.Fatalf("failover: uk SMSC got %d messages", len(m))
	}
}
