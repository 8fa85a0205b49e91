package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	alice = "+12015550100"
	phone = "+12015550199"
)

// stack is a running gateway between a real Prosody and the SMSC simulator.
type stack struct {
	prosody *testenv.Prosody
	smsc    *smsc.Server
	cfg     *Config
	stop    func()
	// logs, when set, gets the gateway's log, for a test to wait for
	// something it cannot observe from outside, such as a privilege grant.
	logs *testenv.Logs
}

func startStack(t *testing.T, dsn string, simCfg smsc.Config, extraEnv ...string) *stack {
	t.Helper()
	return startStackWith(t, dsn, testenv.ProsodyOptions{}, simCfg, extraEnv...)
}

// startStackWith is startStack with Prosody options (users alice and bob
// are always there).
func startStackWith(t *testing.T, dsn string, popts testenv.ProsodyOptions, simCfg smsc.Config, extraEnv ...string) *stack {
	t.Helper()
	if popts.Users == nil {
		popts.Users = map[string]string{}
	}
	popts.Users["alice"], popts.Users["bob"] = "alice", "bob"
	p := testenv.StartProsody(t, popts)
	simCfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	sim := smsc.NewServer(simCfg)
	smscAddr, err := sim.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	env := gatewayEnv(p.Component, p.ComponentAddr, p.Secret, p.Domain, smscAddr, dsn)
	// An extra "CONFIG_FILE=path" names a TOML file under the environment
	// (for what only a file can say, such as [[smsc]] tables).
	file := ""
	for _, e := range extraEnv {
		if f, ok := strings.CutPrefix(e, "CONFIG_FILE="); ok {
			file = f
			continue
		}
		env = append(env, e)
	}
	cfg, err := loadConfig(file, env)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Bind(context.Background(), alice, "alice@"+p.Domain, "operator"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	s := &stack{prosody: p, smsc: sim, cfg: cfg, logs: testenv.NewLogs(t)}
	s.start(t)
	return s
}

// waitGranted waits until the server has granted the gateways of stacks
// privileges (XEP-0356) n times in all since they started: once per
// connection.
func waitGranted(t *testing.T, n int, stacks ...*stack) {
	t.Helper()
	waitUntil(t, 20*time.Second, "the gateway was not granted its privileges", func() bool {
		sum := 0
		for _, s := range stacks {
			sum += s.logs.Count("server granted privileges")
		}
		return sum >= n
	})
}

// gatewayEnv is the configuration, as environment, of a gateway attached
// to an XMPP server's component listener, an SMSC simulator and a store.
func gatewayEnv(component, componentAddr, secret, domain, smscAddr, dsn string) []string {
	return []string{
		"SWITCHBOARD_XMPP_COMPONENT=" + component,
		"SWITCHBOARD_XMPP_SERVER=" + componentAddr,
		"SWITCHBOARD_XMPP_SECRET=" + secret,
		"SWITCHBOARD_XMPP_DOMAINS=" + domain,
		"SWITCHBOARD_SMPP_ADDR=" + smscAddr,
		"SWITCHBOARD_SMPP_SYSTEM_ID=switchboard",
		"SWITCHBOARD_SMPP_PASSWORD=secret",
		"SWITCHBOARD_SMPP_RESP_TIMEOUT=2s",
		"SWITCHBOARD_STORE_DSN=" + dsn,
		"SWITCHBOARD_PHONE_DEFAULT_REGION=US",
		"SWITCHBOARD_SMS_REASSEMBLY=2s",
		// Load tests send more than a person would.
		"SWITCHBOARD_LIMITS_PER_USER_MINUTE=-1",
		"SWITCHBOARD_LIMITS_PER_USER_DAY=-1",
		"SWITCHBOARD_LIMITS_GLOBAL_MINUTE=-1",
		"SWITCHBOARD_LIMITS_RELAYS_PER_USER_MINUTE=-1",
	}
}

// start runs the gateway in the background until stop (or the test's end).
func (s *stack) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var w io.Writer = zerolog.NewTestWriter(t)
	if s.logs != nil {
		w = s.logs // to the test's log too
	}
	log := zerolog.New(w).Level(zerolog.DebugLevel)
	go func() { done <- run(ctx, s.cfg, log) }()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	}
	t.Cleanup(s.stop)
}

func (s *stack) login(t *testing.T, user string) *testenv.Client {
	t.Helper()
	return testenv.Login(t, s.prosody.C2SAddr, jid.MustParse(user+"@"+s.prosody.Domain), user)
}

func (s *stack) numberJID(n string) string { return n + "@" + s.prosody.Component }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitComponent waits until the component is connected (disco answers).
func waitComponent(t *testing.T, s *stack, c *testenv.Client) {
	t.Helper()
	waitUntil(t, 20*time.Second, "component never answered a ping", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		iq, err := c.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s' id='ping%d'><ping xmlns='urn:xmpp:ping'/></iq>`, s.prosody.Component, time.Now().UnixNano()))
		return err == nil && iq.Attr["type"] == "result"
	})
}

// waitUntil polls cond until it holds, failing the test with msg if it
// does not within timeout.
func waitUntil(t *testing.T, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
	}
}

func norm(x string) string { return strings.ReplaceAll(x, "'", "\"") }

func message(from string) func(testenv.Stanza) bool {
	return func(s testenv.Stanza) bool { return s.Name == "message" && strings.HasPrefix(s.Attr["from"], from) }
}

// sqliteDSN is a fresh SQLite file in the test's temporary directory.
func sqliteDSN(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "sb.db") }

func stores(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, testenv.StartPostgres(t)) })
}

// TestRoundTrip is the walking skeleton through real servers: a user's
// message leaves as SMS, the carrier's receipt comes back as an XEP-0184
// receipt, failures as errors, and a phone's reply reaches the user.
func TestRoundTrip(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s := startStack(t, dsn, smsc.Config{SystemID: "switchboard", Password: "secret", ReceiptMode: smsc.ReceiptText})
		a := s.login(t, "alice")
		waitComponent(t, s, a)
		ctx := ctxT(t, 60*time.Second)

		// Plain GSM text.
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='m1' type='chat'><body>Hello phone</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(phone))))
		msgs, err := s.smsc.WaitMessages(ctx, 1)
		must(t, err)
		m := msgs[0]
		if m.Source != alice[1:] || m.SourceTON != 1 || m.SourceNPI != 1 || m.Dest != phone[1:] || m.Text != "Hello phone" || m.DataCoding != 0 || m.RegisteredDelivery&1 == 0 {
			t.Fatalf("submit_sm = %+v", m)
		}
		r, err := a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if !strings.Contains(norm(r.XML), `<received xmlns="urn:xmpp:receipts" id="m1"`) {
			t.Fatalf("want receipt for m1, got %s", r.XML)
		}

		// Long Unicode text: three UCS-2 parts, one receipt when all are delivered.
		long := strings.Repeat("Привет мир ", 15) // 165 UTF-16 units
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='m2' type='chat'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(phone), long)))
		msgs, err = s.smsc.WaitMessages(ctx, 4)
		must(t, err)
		parts := msgs[1:]
		for _, p := range parts {
			if p.DataCoding != 8 || p.Concat == nil || p.Concat.Total != 3 {
				t.Fatalf("part = %+v", p)
			}
		}
		if parts[2].FullText != long {
			t.Fatalf("reassembled %q", parts[2].FullText)
		}
		r, err = a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if !strings.Contains(norm(r.XML), `id="m2"`) || !strings.Contains(norm(r.XML), "received") {
			t.Fatalf("want receipt for m2, got %s", r.XML)
		}

		// A failed delivery comes back as an error saying what happened in
		// plain words, and naming the carrier status.
		s.smsc.SetConfig(func(c *smsc.Config) { c.Outcome = smsc.OutcomeFailed })
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='m3' type='chat'><body>will fail</body></message>`, s.numberJID(phone))))
		r, err = a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if r.Attr["type"] != "error" || r.Attr["id"] != "m3" || !strings.Contains(norm(r.XML), "the phone could not be reached (carrier status UNDELIV") {
			t.Fatalf("want error for m3, got %s", r.XML)
		}
		s.smsc.SetConfig(func(c *smsc.Config) { c.Outcome = smsc.OutcomeDelivered })

		// A phone replies, short and long.
		must(t, s.smsc.SendMO(ctx, phone, alice, "Hi Alice"))
		r, err = a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if r.Body != "Hi Alice" || r.Attr["type"] != "chat" {
			t.Fatalf("MO = %s", r.XML)
		}
		longMO := strings.Repeat("0123456789 ", 30) + "€ end"
		must(t, s.smsc.SendMO(ctx, phone, alice, longMO))
		r, err = a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if r.Body != longMO {
			t.Fatalf("long MO = %q", r.Body)
		}

		// A number nobody has is refused permanently.
		if err := s.smsc.SendMO(ctx, phone, "+12015550142", "anyone?"); err == nil || !strings.Contains(err.Error(), "0x0000000B") {
			t.Fatalf("MO to unbound number: %v", err)
		}
	})
}

// TestRefusals checks the stanza errors: no number, foreign JID forms,
// invalid numbers, too long, and that nothing reaches the SMSC.
func TestRefusals(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	b := s.login(t, "bob")
	waitComponent(t, s, b)
	ctx := ctxT(t, 30*time.Second)
	cases := []struct {
		id, to, body, cond string
	}{
		{"r1", s.numberJID(phone), "hi", "registration-required"},
		{"r2", "+15555550123@" + s.prosody.Component, "hi", "jid-malformed"},
		{"r3", "hello@" + s.prosody.Component, "hi", "jid-malformed"},
	}
	for _, c := range cases {
		must(t, b.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>%s</body></message>`, c.to, c.id, c.body)))
		r, err := b.Next(ctx, func(st testenv.Stanza) bool { return st.Name == "message" && st.Attr["id"] == c.id })
		must(t, err)
		if r.Attr["type"] != "error" || r.ErrorCondition() != c.cond || !strings.Contains(norm(r.XML), "<text") {
			t.Errorf("%s: want %s with text, got %s", c.id, c.cond, r.XML)
		}
	}
	a := s.login(t, "alice")
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='r4' type='chat'><body>%s</body></message>`, s.numberJID(phone), strings.Repeat("x", 160*11))))
	r, err := a.Next(ctx, func(st testenv.Stanza) bool { return st.Name == "message" && st.Attr["id"] == "r4" })
	must(t, err)
	if r.ErrorCondition() != "policy-violation" {
		t.Errorf("too long: %s", r.XML)
	}
	// Chat states alone never make an SMS.
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='r5' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`, s.numberJID(phone))))

	// Service discovery and version.
	iq, err := a.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, s.prosody.Component))
	must(t, err)
	if !strings.Contains(norm(iq.XML), `category="gateway"`) || !strings.Contains(norm(iq.XML), `type="sms"`) || !strings.Contains(norm(iq.XML), "urn:xmpp:receipts") {
		t.Errorf("disco#info = %s", iq.XML)
	}
	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s' id='v1'><query xmlns='jabber:iq:version'/></iq>`, s.prosody.Component))
	must(t, err)
	if !strings.Contains(norm(iq.XML), "Switchboard") {
		t.Errorf("version = %s", iq.XML)
	}
	iq, err = a.IQ(ctx, fmt.Sprintf(`<iq type='get' to='%s' id='u1'><query xmlns='urn:example:unknown'/></iq>`, s.prosody.Component))
	must(t, err)
	if iq.Attr["type"] != "error" || iq.ErrorCondition() != "service-unavailable" {
		t.Errorf("unknown IQ = %s", iq.XML)
	}
	// The session survived all of it, and nothing was submitted.
	waitComponent(t, s, a)
	if n := len(s.smsc.Messages()); n != 0 {
		t.Errorf("%d messages reached the SMSC", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestShutdownStoreHung: a message read from a user while the store does
// not answer (PostgreSQL with the messages table locked) is answered with
// an error at shutdown, before the stream closes; the store answering late
// withdraws it, so it is not sent at the next start either.
func TestShutdownStoreHung(t *testing.T) {
	dsn := testenv.StartPostgres(t)
	s := startStack(t, dsn, smsc.Config{SystemID: "switchboard", Password: "secret"})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 60*time.Second)

	db, err := sql.Open("postgres", dsn)
	must(t, err)
	defer db.Close()
	lock, err := db.BeginTx(ctx, nil)
	must(t, err)
	defer lock.Rollback()
	_, err = lock.ExecContext(ctx, `LOCK TABLE messages IN ACCESS EXCLUSIVE MODE`)
	must(t, err)

	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='h1' type='chat'><body>in the hang</body></message>`, s.numberJID(phone))))
	// The message is with the router once its insert waits for the lock.
	waitUntil(t, 20*time.Second, "the message's insert never waited for the lock", func() bool {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO messages%'`).Scan(&n)
		return err == nil && n > 0
	})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.stop()
	}()
	r, err := a.Next(ctx, message(s.numberJID(phone)))
	must(t, err)
	if r.Attr["type"] != "error" || r.Attr["id"] != "h1" || !strings.Contains(r.XML, "could not store the message in time") {
		t.Fatalf("want an error for h1, got %s", r.XML)
	}
	must(t, lock.Rollback())
	select {
	case <-stopped:
	case <-time.After(40 * time.Second):
		t.Fatal("run did not return once the store answered")
	}
	var state, why string
	must(t, db.QueryRowContext(ctx, `SELECT state, error FROM messages WHERE stanza_id = 'h1'`).Scan(&state, &why))
	if state != "failed" || !strings.Contains(why, "refused at shutdown") {
		t.Errorf("h1 stored as %s %q, want failed: refused at shutdown", state, why)
	}
	if n := len(s.smsc.Messages()); n != 0 {
		t.Errorf("%d submit_sm, want none", n)
	}
}

// TestFailureAfterClientLeftUnseen is TestFailureAfterClientLeft without
// the presence privilege: an SMS that
// fails after the client that sent it has gone still reaches its user, as
// a chat message (from offline storage here): the server drops an error to
// a gone client, so the gateway asks the client first (real Prosody).
func TestFailureAfterClientLeftUnseen(t *testing.T) {
	s := startStack(t, sqliteDSN(t), smsc.Config{SystemID: "switchboard", Password: "secret", Outcome: smsc.OutcomeFailed, ReceiptDelay: 2 * time.Second})
	ctx := ctxT(t, 60*time.Second)
	a := testenv.Login(t, s.prosody.C2SAddr, jid.MustParse("alice@"+s.prosody.Domain+"/phone"), "alice")
	waitComponent(t, s, a)
	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='gone1' type='chat'><body>sent, then the phone left</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(phone))))
	_, err := s.smsc.WaitMessages(ctx, 1)
	must(t, err)
	must(t, a.Close())
	waitUntil(t, 30*time.Second, "no failure notice handed to the XMPP server", func() bool {
		return s.logs.Count("notice handed to the XMPP server") > 0
	})
	back := testenv.Login(t, s.prosody.C2SAddr, jid.MustParse("alice@"+s.prosody.Domain+"/laptop"), "alice")
	r, err := back.Next(ctx, message(s.prosody.Component))
	must(t, err)
	if r.Attr["type"] != "chat" || !strings.Contains(r.Body, "was not delivered") || !strings.Contains(r.Body, "sent, then the phone left") {
		t.Fatalf("want a chat message saying the SMS failed, got %s", r.XML)
	}
}
