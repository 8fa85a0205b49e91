package component

import (
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/store/storetest"
)

// TestGatewayPresenceKeepsRecord: a user's subscription request, probe and
// unsubscribe to the gateway's own address are answered as a contact
// answers them, and none of them touches the record of the user's
// presence, which the available and unavailable presence forwarded to that
// same address under the privilege still keeps.
func TestGatewayPresenceKeepsRecord(t *testing.T) {
	st := storetest.SQLite(t)
	h := start(t, newFakeServer(t), func(c *Config) { c.Presences = st })
	sc := h.srv.session()
	h.onConnect(t)
	advertise(sc, nsPriv2, "roster")
	alice := jid.MustParse("alice@example.com")
	available := func() bool {
		t.Helper()
		known, avail := h.comp.Available(alice)
		if !known {
			t.Fatal("presence not known under the presence privilege")
		}
		return avail
	}
	exchange := func(in string, want ...want) {
		t.Helper()
		sc.send(in)
		got := sc.ping()
		if len(got) != len(want) {
			t.Fatalf("%s: got %v, want %d stanzas", in, got, len(want))
		}
		for i := range want {
			want[i].match(t, got[i])
		}
	}

	exchange(`<presence from='alice@example.com/phone' to='sms.example.com'/>`)
	if !available() {
		t.Fatal("alice's forwarded presence not recorded")
	}
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='subscribe'/>`,
		presenceWant(testDomain, "alice@example.com", "subscribed", ""),
		presenceWant(testDomain, "alice@example.com", "", ""))
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='probe'/>`,
		presenceWant(testDomain, "alice@example.com", "", ""))
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='unsubscribe'/>`,
		presenceWant(testDomain, "alice@example.com", "unavailable", ""))
	exchange(`<presence from='alice@example.com' to='sms.example.com' type='unsubscribed'/>`)
	if !available() {
		t.Fatal("alice, online, recorded offline after presence to the gateway that was not hers")
	}
	exchange(`<presence from='alice@example.com/phone' to='sms.example.com' type='unavailable'/>`)
	if available() {
		t.Fatal("alice's forwarded unavailable presence not recorded")
	}
}
