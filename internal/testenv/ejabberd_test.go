package testenv_test

import (
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
)

func TestEjabberdClientsAndComponent(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{Users: map[string]string{"alice": "alice", "bob": "b0b pass"}})
	t.Logf("StartEjabberd with two users took %v", time.Since(begin))
	ctx := timeout(t)

	alice := testenv.Login(t, e.C2SAddr, jid.MustParse("alice@localhost"), "alice")
	bob := testenv.Login(t, e.C2SAddr, jid.MustParse("bob@localhost/phone"), "b0b pass")
	if got := bob.JID.String(); got != "bob@localhost/phone" {
		t.Errorf("bob bound %s, want bob@localhost/phone", got)
	}
	if err := alice.Send(ctx, `<message to='bob@localhost/phone' id='m1' type='chat'><body>hi &amp; bye</body></message>`); err != nil {
		t.Fatal(err)
	}
	m, err := bob.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "message" && s.Attr["id"] == "m1" })
	if err != nil {
		t.Fatal(err)
	}
	if m.Body != "hi & bye" || m.Attr["from"] != alice.JID.String() {
		t.Errorf("bob got %s", m.XML)
	}

	if _, _, err := handshake(e.ComponentAddr, e.Component, "not the secret"); err == nil {
		t.Error("handshake with a wrong secret succeeded")
	}
	conn, d, err := handshake(e.ComponentAddr, e.Component, e.Secret)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	componentRoundTrip(t, ctx, alice, conn, d, "m2")
}

func TestEjabberdPrivilege(t *testing.T) {
	t.Parallel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{Privilege: true, Domain: "example.test", Component: "sms.example.test"})
	conn, d, err := handshake(e.ComponentAddr, e.Component, e.Secret)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// ejabberd 23.01 implements XEP-0356 0.2: namespace urn:xmpp:privilege:1.
	checkPrivilege(t, conn, d, "urn:xmpp:privilege:1")
}

func TestEjabberdRestartAndAddUser(t *testing.T) {
	t.Parallel()
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{Users: map[string]string{"carol": "carol"}})
	ctx := timeout(t)
	carol := testenv.Login(t, e.C2SAddr, jid.MustParse("carol@localhost"), "carol")

	begin := time.Now()
	e.Restart(t)
	t.Logf("restart took %v", time.Since(begin))
	if _, err := carol.Next(ctx, func(s testenv.Stanza) bool { return false }); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("after restart: %v, want session ended", err)
	}
	e.AddUser(t, "carol", "new pass") // replaces the account kept in the spool
	e.AddUser(t, "dave", "dave")
	testenv.Login(t, e.C2SAddr, jid.MustParse("carol@localhost"), "new pass")
	testenv.Login(t, e.C2SAddr, jid.MustParse("dave@localhost"), "dave")
}

func TestRenderEjabberdConfig(t *testing.T) {
	for _, priv := range []bool{false, true} {
		text, err := testenv.RenderEjabberdConfig(testenv.EjabberdConfig{Dir: "/tmp/x", Secret: `s3"cret`, Privilege: priv})
		if err != nil {
			t.Fatal(err)
		}
		cfg := string(text)
		for _, want := range []string{
			`- "localhost"`,
			`s2s_access: none`,
			`port: 5222`,
			`port: 5347`,
			`starttls_required: false`,
			`"sms.localhost":`,
			`password: "s3\"cret"`,
		} {
			if !strings.Contains(cfg, want) {
				t.Errorf("privilege=%v: config lacks %s:\n%s", priv, want, cfg)
			}
		}
		if got := strings.Contains(cfg, `mod_privilege:`); got != priv {
			t.Errorf("privilege=%v: mod_privilege present: %v", priv, got)
		}
	}
	if _, err := testenv.RenderEjabberdConfig(testenv.EjabberdConfig{Dir: "relative", Secret: "s"}); err == nil {
		t.Error("relative Dir accepted")
	}
}
