package testenv_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProsodyClientsExchangeMessage(t *testing.T) {
	t.Parallel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{Users: map[string]string{"alice": "alice", "bob": "b0b pass"}})
	ctx := timeout(t)

	alice := testenv.Login(t, p.C2SAddr, jid.MustParse("alice@localhost"), "alice")
	bob := testenv.Login(t, p.C2SAddr, jid.MustParse("bob@localhost/phone"), "b0b pass")
	if got := bob.JID.String(); got != "bob@localhost/phone" {
		t.Errorf("bob bound %s, want bob@localhost/phone", got)
	}

	err := alice.Send(ctx, `<message to='bob@localhost/phone' id='m1' type='chat'><body>hi &amp; bye</body><request xmlns='urn:xmpp:receipts'/></message>`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := bob.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "message" && s.Attr["id"] == "m1" })
	if err != nil {
		t.Fatal(err)
	}
	if m.Body != "hi & bye" || m.Attr["from"] != alice.JID.String() || m.Attr["type"] != "chat" {
		t.Errorf("bob got %+v", m)
	}
	if !strings.Contains(m.XML, "<request xmlns='urn:xmpp:receipts'></request>") {
		t.Errorf("receipt request missing from %s", m.XML)
	}

	pong, err := alice.IQ(ctx, `<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if err != nil {
		t.Fatal(err)
	}
	if pong.Attr["type"] != "result" {
		t.Errorf("ping: %s", pong.XML)
	}
	miss, err := alice.IQ(ctx, `<iq type='get' to='localhost'><nope xmlns='urn:example:nope'/></iq>`)
	if err != nil {
		t.Fatal(err)
	}
	if c := miss.ErrorCondition(); c != "service-unavailable" && c != "feature-not-implemented" {
		t.Errorf("unknown IQ: condition %q in %s", c, miss.XML)
	}
}

func TestProsodyBadPassword(t *testing.T) {
	t.Parallel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{Users: map[string]string{"alice": "alice"}})
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { recover() }()
		testenv.Login(ft, p.C2SAddr, jid.MustParse("alice@localhost"), "wrong")
	}()
	if !ft.failed {
		t.Error("login with a wrong password succeeded")
	}
}

// fatalRecorder turns Fatal into a recorded failure and a panic, to test helpers that must fail.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.failed = true
	f.Logf("expected failure: "+format, args...)
	panic(f)
}

func TestProsodyComponent(t *testing.T) {
	t.Parallel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{Users: map[string]string{"alice": "alice"}})
	ctx := timeout(t)

	if _, _, err := handshake(p.ComponentAddr, p.Component, "not the secret"); err == nil {
		t.Error("handshake with a wrong secret succeeded")
	}
	conn, d, err := handshake(p.ComponentAddr, p.Component, p.Secret)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	alice := testenv.Login(t, p.C2SAddr, jid.MustParse("alice@localhost"), "alice")
	componentRoundTrip(t, ctx, alice, conn, d, "m1")
}

func TestProsodyPrivilege(t *testing.T) {
	t.Parallel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{Privilege: true, Domain: "example.test", Component: "sms.example.test"})
	conn, d, err := handshake(p.ComponentAddr, p.Component, p.Secret)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checkPrivilege(t, conn, d, "urn:xmpp:privilege:2")
}

func TestProsodyRestartAndAddUser(t *testing.T) {
	t.Parallel()
	p := testenv.StartProsody(t, testenv.ProsodyOptions{})
	p.AddUser(t, "carol", "carol")
	ctx := timeout(t)
	carol := testenv.Login(t, p.C2SAddr, jid.MustParse("carol@localhost"), "carol")

	begin := time.Now()
	p.Restart(t)
	t.Logf("restart took %v", time.Since(begin))
	if _, err := carol.Next(ctx, func(s testenv.Stanza) bool { return false }); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("after restart: %v, want session ended", err)
	}
	p.AddUser(t, "dave", "dave")
	testenv.Login(t, p.C2SAddr, jid.MustParse("carol@localhost"), "carol")
	testenv.Login(t, p.C2SAddr, jid.MustParse("dave@localhost"), "dave")
}

// handshake opens a XEP-0114 component stream and authenticates with sha1(streamid+secret).
// componentRoundTrip checks that a message alice sends to a phone number reaches the component
// on conn, and that the component's answer reaches alice.
func componentRoundTrip(t *testing.T, ctx context.Context, alice *testenv.Client, conn net.Conn, d *xml.Decoder, id string) {
	t.Helper()
	const number = "+12015550199@sms.localhost"
	if err := alice.Send(ctx, `<message to='`+number+`' id='`+id+`' type='chat'><body>hi</body></message>`); err != nil {
		t.Fatal(err)
	}
	var in struct {
		XMLName xml.Name
		From    string `xml:"from,attr"`
		Body    string `xml:"body"`
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := nextElement(d, &in); err != nil {
		t.Fatal(err)
	}
	if in.XMLName.Local != "message" || in.From != alice.JID.String() || in.Body != "hi" {
		t.Errorf("component got %+v", in)
	}

	fmt.Fprintf(conn, "<message from='%s' to='%s' id='r1' type='chat'><body>hello back</body></message>", number, alice.JID)
	back, err := alice.Next(ctx, func(s testenv.Stanza) bool { return s.Name == "message" && s.Attr["from"] == number })
	if err != nil {
		t.Fatal(err)
	}
	if back.Body != "hello back" {
		t.Errorf("alice got %s", back.XML)
	}
}

// checkPrivilege checks the XEP-0356 advertisement (namespace ns) the server sends the component
// on conn: from the virtual host example.test, roster "both", message "outgoing", presence "roster".
func checkPrivilege(t *testing.T, conn net.Conn, d *xml.Decoder, ns string) {
	t.Helper()
	var adv struct {
		From      string `xml:"from,attr"`
		Privilege struct {
			XMLName xml.Name
			Perms   []struct {
				Access string `xml:"access,attr"`
				Type   string `xml:"type,attr"`
			} `xml:"perm"`
		} `xml:"privilege"`
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := nextElement(d, &adv); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if adv.Privilege.XMLName.Space == ns {
		for _, p := range adv.Privilege.Perms {
			got[p.Access] = p.Type
		}
	}
	if adv.From != "example.test" || got["roster"] != "both" || got["message"] != "outgoing" || got["presence"] != "roster" {
		t.Errorf("privilege advertisement from %q: %v (namespace %q, want %q)", adv.From, got, adv.Privilege.XMLName.Space, ns)
	}
}

func handshake(addr, domain, secret string) (net.Conn, *xml.Decoder, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fail := func(err error) (net.Conn, *xml.Decoder, error) {
		conn.Close()
		return nil, nil, err
	}
	fmt.Fprintf(conn, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain)
	d := xml.NewDecoder(conn)
	var id string
	for id == "" {
		tok, err := d.Token()
		if err != nil {
			return fail(err)
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "stream" {
			for _, a := range s.Attr {
				if a.Name.Local == "id" {
					id = a.Value
				}
			}
			if id == "" {
				return fail(fmt.Errorf("stream header without id: %+v", s))
			}
		}
	}
	fmt.Fprintf(conn, "<handshake>%x</handshake>", sha1.Sum([]byte(id+secret)))
	for {
		tok, err := d.Token()
		if err != nil {
			return fail(err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			if s.Name.Local == "handshake" {
				d.Skip()
				conn.SetDeadline(time.Time{})
				return conn, d, nil
			}
			var raw struct {
				Inner string `xml:",innerxml"`
			}
			d.DecodeElement(&raw, &s)
			return fail(fmt.Errorf("handshake answered with <%s>%s", s.Name.Local, raw.Inner))
		}
	}
}

func nextElement(d *xml.Decoder, v any) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		if s, ok := tok.(xml.StartElement); ok {
			return d.DecodeElement(v, &s)
		}
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := timeout(t)
	var dbs [2]*sql.DB
	for i := range dbs {
		begin := time.Now()
		dsn := testenv.StartPostgres(t)
		t.Logf("StartPostgres %d took %v: %s", i, time.Since(begin), dsn)
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1: %d, %v", one, err)
		}
		dbs[i] = db
	}
	if _, err := dbs[0].ExecContext(ctx, "CREATE TABLE only_here (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := dbs[1].QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'").Scan(&n); err != nil || n != 0 {
		t.Errorf("databases are not separate: %d, %v", n, err)
	}
}

func TestRenderProsodyConfig(t *testing.T) {
	for _, priv := range []bool{false, true} {
		text, err := testenv.RenderProsodyConfig(testenv.ProsodyConfig{Dir: "/tmp/x \"y\"", Secret: "s3cret", Privilege: priv})
		if err != nil {
			t.Fatal(err)
		}
		cfg := string(text)
		for _, want := range []string{
			`data_path = "/tmp/x \"y\"/data"`,
			`c2s_ports = { 5222 }`,
			`component_ports = { 5347 }`,
			`modules_disabled = { "s2s" }`,
			`c2s_require_encryption = false`,
			`allow_unencrypted_plain_auth = true`,
			`authentication = "internal_hashed"`,
			`VirtualHost "localhost"`,
			`Component "sms.localhost"`,
			`component_secret = "s3cret"`,
		} {
			if !strings.Contains(cfg, want) {
				t.Errorf("privilege=%v: config lacks %s:\n%s", priv, want, cfg)
			}
		}
		if got := strings.Contains(cfg, `privileged_entities`); got != priv {
			t.Errorf("privilege=%v: privileged_entities present: %v", priv, got)
		}
	}
	if _, err := testenv.RenderProsodyConfig(testenv.ProsodyConfig{Dir: "relative", Secret: "s"}); err == nil {
		t.Error("relative Dir accepted")
	}
}

// TestProsodyConfigTLS: with TLS, the configuration loads mod_tls and
// requires encryption (and no longer allows PLAIN in the clear), and
// WriteProsodyConfig puts a certificate for the domain, with its key,
// where Prosody looks for it.
func TestProsodyConfigTLS(t *testing.T) {
	c := testenv.ProsodyConfig{Dir: t.TempDir(), Secret: "s", Domain: "bench.test", TLS: true}
	if err := testenv.WriteProsodyConfig(c); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(c.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(text)
	for _, want := range []string{`"tls";`, `c2s_require_encryption = true`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, `allow_unencrypted_plain_auth`) {
		t.Errorf("config still allows PLAIN in the clear:\n%s", cfg)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(c.CertDir(), "bench.test.crt"), filepath.Join(c.CertDir(), "bench.test.key"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("bench.test"); err != nil {
		t.Errorf("the certificate is not for the domain: %v", err)
	}
}
