package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	xmppcomponent "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
	"switchboard/store"
)

// checkSetup is what TestCheck writes into a configuration file.
type checkSetup struct {
	component, server, secret, domain string
	smsc, systemID, password          string
	dsn                               string
	extra                             string // more TOML: [[smsc]] tables
}

func (c checkSetup) toml() string {
	return fmt.Sprintf(`
[xmpp]
component = %q
server = %q
secret = %q
domains = [%q]
[smpp]
addr = %q
system_id = %q
password = %q
[store]
dsn = %q
%s`, c.component, c.server, c.secret, c.domain, c.smsc, c.systemID, c.password, c.dsn, c.extra)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runCommand runs the switchboard binary and returns its exit status and
// its stdout and stderr together.
func runCommand(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := command(t, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// TestCheck runs `switchboard check` against a real Prosody, the SMSC
// simulator and SQLite or PostgreSQL, and against setups that are wrong in
// one way each.
// TestCheckREADME: the README's example of check's output names the
// migration this release brings a database to.
func TestCheckREADME(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("ok    store      sqlite:switchboard.db (schema at migration %d)\n", store.Schema()); !strings.Contains(string(b), want) {
		t.Errorf("README.md lacks check's store line %q", want)
	}
}

func TestCheck(t *testing.T) {
	const (
		smppPassword  = "Pw4sim"
		wrongPassword = "Nope9x"
		wrongSecret   = "not-the-secret-7f3a"
		pgPassword    = "pgPw-93x"
	)
	p := testenv.StartProsody(t, testenv.ProsodyOptions{})
	sim := smsc.NewServer(smsc.Config{SystemID: "switchboard", Password: smppPassword,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	smscAddr, err := sim.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	closed := closedAddr(t)
	good := checkSetup{
		component: p.Component, server: p.ComponentAddr, secret: p.Secret, domain: p.Domain,
		smsc: smscAddr, systemID: "switchboard", password: smppPassword,
		dsn: sqliteDSN(t),
	}
	secrets := []string{p.Secret, smppPassword, wrongPassword, wrongSecret, pgPassword}

	for _, tc := range []struct {
		name string
		edit func(t *testing.T, c *checkSetup)
		code int
		want []string
	}{
		{"all ok on sqlite", nil, 0, []string{
			"ok    store      " + good.dsn + fmt.Sprintf(" (schema at migration %d)\n", store.Schema()),
			"ok    xmpp       " + p.Component + " at " + p.ComponentAddr + "\n",
			"ok    smpp       bound as switchboard at " + smscAddr + "\n",
		}},
		{"all ok on postgres", func(t *testing.T, c *checkSetup) { c.dsn = testenv.StartPostgres(t) }, 0, []string{
			"ok    store      postgres://postgres@127.0.0.1:",
			"ok    xmpp       ",
			"ok    smpp       ",
		}},
		{"wrong component secret", func(t *testing.T, c *checkSetup) { c.secret = wrongSecret }, 1, []string{
			"ok    store",
			"FAIL  xmpp       " + p.ComponentAddr + ": the XMPP server refused the component secret for " + p.Component + " (",
			"ok    smpp",
			"1 of 3 checks failed",
		}},
		{"unknown component", func(t *testing.T, c *checkSetup) { c.component = "sms.example.net" }, 1, []string{
			"FAIL  xmpp       " + p.ComponentAddr + `: the XMPP server has no component sms.example.net (add Component "sms.example.net"`,
		}},
		{"client port", func(t *testing.T, c *checkSetup) { c.server = p.C2SAddr }, 1, []string{
			"FAIL  xmpp       " + p.C2SAddr + ": the server answered host-unknown", "is this a client port rather than the component port?",
		}},
		{"wrong SMPP password", func(t *testing.T, c *checkSetup) { c.password = wrongPassword }, 1, []string{
			"ok    store",
			"ok    xmpp",
			"FAIL  smpp       " + smscAddr + `: the SMSC rejected the bind as "switchboard": ESME_RINVPASWD (check smpp.password)`,
		}},
		{"wrong system_id", func(t *testing.T, c *checkSetup) { c.systemID = "nobody" }, 1, []string{
			"FAIL  smpp       " + smscAddr + `: the SMSC rejected the bind as "nobody": ESME_RINVSYSID (check smpp.system_id)`,
		}},
		{"nothing reachable", func(t *testing.T, c *checkSetup) {
			c.server, c.smsc = closed, closed
			c.dsn = "postgres://switchboard:" + pgPassword + "@" + closed + "/switchboard?sslmode=disable"
		}, 1, []string{
			"FAIL  store      cannot connect to PostgreSQL at " + closed + ": connection refused (is PostgreSQL running there",
			"FAIL  xmpp       " + closed + ": connection refused (is the XMPP server running, and is its component port " + closed + "?)",
			"FAIL  smpp       " + closed + ": connection refused (is the SMSC reachable, and is smpp.addr right?)",
			"3 of 3 checks failed",
		}},
		// With the store down, it cannot say whether a gateway is
		// connected: the XMPP port is tried, the handshake not.
		{"store down, XMPP up", func(t *testing.T, c *checkSetup) {
			c.dsn = "postgres://switchboard:" + pgPassword + "@" + closed + "/switchboard?sslmode=disable"
		}, 1, []string{
			"FAIL  store      cannot connect to PostgreSQL at " + closed,
			"ok    xmpp       " + p.Component + " at " + p.ComponentAddr + ": port open, handshake not tried: the store could not say",
			"1 of 3 checks failed",
		}},
		{"component already connected", func(t *testing.T, c *checkSetup) {
			conn, err := net.Dial("tcp", p.ComponentAddr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			s, err := xmppcomponent.NewSession(ctxT(t, 10*time.Second), jid.MustParse(p.Component), []byte(p.Secret), conn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
		}, 0, []string{
			"ok    xmpp       " + p.Component + " at " + p.ComponentAddr + " (secret accepted; the component is already connected",
		}},
		// Every SMSC is bound once; a further one takes [smpp]'s
		// account unless it names its own.
		{"further SMSCs", func(t *testing.T, c *checkSetup) {
			c.extra = fmt.Sprintf("[[smsc]]\nname = \"b\"\naddr = %q\nprefixes = [\"+44\"]\n"+
				"[[smsc]]\nname = \"c\"\naddr = %q\npassword = %q\nprefixes = [\"+33\"]\n"+
				"[[smsc]]\nname = \"d\"\naddr = %q\nprefixes = [\"+49\"]\n", closed, smscAddr, wrongPassword, smscAddr)
		}, 1, []string{
			"ok    smpp       bound as switchboard at " + smscAddr + "\n",
			"FAIL  smpp b     " + closed + ": connection refused (is the SMSC reachable, and is smsc[1].addr right?)",
			"FAIL  smpp c     " + smscAddr + `: the SMSC rejected the bind as "switchboard": ESME_RINVPASWD (check smsc[2].password)`,
			"ok    smpp d     bound as switchboard at " + smscAddr + "\n",
			"2 of 6 checks failed",
		}},
		{"sqlite directory missing", func(t *testing.T, c *checkSetup) {
			c.dsn = "sqlite:" + filepath.Join(t.TempDir(), "gone", "sb.db")
		}, 1, []string{
			"FAIL  store      sqlite:", "/gone/sb.db: the directory ", "/gone does not exist",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			if tc.edit != nil {
				tc.edit(t, &c)
			}
			code, out := runCommand(t, "check", "-config", writeFile(t, "sb.toml", c.toml()))
			t.Logf("check output:\n%s", out)
			if code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("output shows the secret %q", s)
				}
			}
		})
	}
}

// TestCheckBadConfig: check refuses a bad configuration with status 2 and
// the same message as serve, before connecting anywhere.
func TestCheckBadConfig(t *testing.T) {
	bad := writeFile(t, "bad.toml", "[xmpp]\ncomponent = \"sms.example.com\"\n[smpp]\nwindow = 0\nenquire_link = \"soon\"\n")
	code, out := runCommand(t, "check", "-config", bad)
	if code != exitUsage || !strings.Contains(out, "xmpp.secret: required") || !strings.Contains(out, "smpp.enquire_link") {
		t.Errorf("check: exit %d, output %q; want exit %d naming xmpp.secret and smpp.enquire_link", code, out, exitUsage)
	}
	scode, sout := runCommand(t, "serve", "-config", bad)
	if scode != code || sout != out {
		t.Errorf("serve: exit %d, output %q; check: exit %d, output %q; want the same", scode, sout, code, out)
	}
	if code, out := runCommand(t, "check", "extra"); code != exitUsage || !strings.Contains(out, "no arguments") {
		t.Errorf("check extra: exit %d, output %q", code, out)
	}
}

// TestCheckBesideRunningGateway: while a gateway is connected, check does
// not open a second component connection (on ejabberd, its end would drop
// the running gateway's privileges) and says so; once the gateway has
// stopped, it tries the handshake again.
func TestCheckBesideRunningGateway(t *testing.T) {
	s := startStackEnv(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 30*time.Second)
	xmppCheck := func() checkResult {
		r := runChecks(ctx, s.cfg)
		if !r[0].ok {
			t.Fatalf("store check: %s", r[0])
		}
		return r[1]
	}
	var r checkResult
	waitUntil(t, 10*time.Second, "check to see the running gateway", func() bool {
		r = xmppCheck()
		return strings.Contains(r.detail, "not tried, switchboard ")
	})
	if !r.ok || !strings.Contains(r.detail, "is connected (seen ") {
		t.Errorf("beside a running gateway: %s", r)
	}
	s.stop()
	if r = xmppCheck(); !r.ok || strings.Contains(r.detail, "not tried") {
		t.Errorf("after the gateway stopped: %s; want the handshake tried", r)
	}
}

// TestCheckEjabberd: the XMPP check's verdicts against ejabberd, whose
// refusals differ from Prosody's.
func TestCheckEjabberd(t *testing.T) {
	e := testenv.StartEjabberd(t, testenv.EjabberdOptions{})
	good := checkSetup{component: e.Component, server: e.ComponentAddr, secret: e.Secret, domain: e.Domain,
		smsc: closedAddr(t), systemID: "switchboard", password: "pw", dsn: sqliteDSN(t)}
	for _, tc := range []struct {
		name string
		edit func(c *checkSetup)
		ok   bool
		want string
	}{
		{"ok", nil, true, e.Component + " at " + e.ComponentAddr},
		{"wrong secret", func(c *checkSetup) { c.secret = "not-the-secret" }, false,
			"refused the component secret for " + e.Component + " (xmpp.secret must equal the server's secret for it: Prosody's component_secret; ejabberd's password"},
		{"a domain the server serves", func(c *checkSetup) { c.component, c.domain = e.Domain, "elsewhere.example" }, false,
			"the XMPP server serves " + e.Domain + " itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			if tc.edit != nil {
				tc.edit(&c)
			}
			cfg, err := loadConfig(writeFile(t, "sb.toml", c.toml()), nil)
			must(t, err)
			r := runChecks(ctxT(t, 30*time.Second), cfg)[1]
			if r.ok != tc.ok || !strings.Contains(r.detail, tc.want) {
				t.Errorf("xmpp check: %s; want ok %v and %q", r, tc.ok, tc.want)
			}
		})
	}
}
