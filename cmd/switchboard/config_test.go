package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"

	"switchboard/store"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConfig = `
[xmpp]
component = "sms.example.com"
secret = "s3cret"
domains = ["example.com"]
[smpp]
system_id = "switchboard"
password = "pw"
enquire_link = "45s"
[phone]
default_region = "gb"
`

func TestConfigDefaultsAndEnv(t *testing.T) {
	path := writeFile(t, "sb.toml", goodConfig)
	cfg, err := loadConfig(path, []string{
		"SWITCHBOARD_SMPP_WINDOW=50",
		"SWITCHBOARD_XMPP_DOMAINS=example.com, example.org",
		"SWITCHBOARD_SMPP_THROUGHPUT=120.5",
		"SWITCHBOARD_LOG_FORMAT=console",
		"HOME=/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"xmpp.server", cfg.XMPP.Server, "127.0.0.1:5347"},
		{"smpp.addr", cfg.SMPP.Addr, "127.0.0.1:2775"},
		{"smpp.window (env)", cfg.SMPP.Window, 50},
		{"smpp.throughput (env)", cfg.SMPP.Throughput, 120.5},
		{"smpp.enquire_link (file)", cfg.SMPP.EnquireLink.D(), 45 * time.Second},
		{"smpp.resp_timeout", cfg.SMPP.RespTimeout.D(), 10 * time.Second},
		{"store.dsn", cfg.Store.DSN, "sqlite:switchboard.db"},
		{"phone.default_region", cfg.Phone.DefaultRegion, "GB"},
		{"limits.allowed_countries (from the lower-case default region)", strings.Join(cfg.Limits.AllowedCountries, "|"), "GB|GG|IM|JE"},
		{"sms.max_parts", cfg.SMS.MaxParts, 10},
		{"sms.validity", cfg.SMS.Validity.D(), 48 * time.Hour},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format (env)", cfg.Log.Format, "console"},
		{"xmpp.domains (env)", strings.Join(cfg.XMPP.Domains, "|"), "example.com|example.org"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The configuration owns its list: validate writes into it, and
	// instances load theirs at once in one process (tests do).
	cfg.Limits.AllowedCountries[0] = "XX"
	if got := phonenumbers.GetRegionCodesForCountryCode(44)[0]; got != "GB" {
		t.Errorf("phonenumbers' region table changed through the configuration: %s", got)
	}
}

func TestConfigSecretFile(t *testing.T) {
	secret := writeFile(t, "secret", "from-file\n")
	path := writeFile(t, "sb.toml", strings.Replace(goodConfig, `secret = "s3cret"`, `secret_file = "`+secret+`"`, 1))
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XMPP.Secret != "from-file" {
		t.Fatalf("secret = %q", cfg.XMPP.Secret)
	}
}

// TestConfigSecretTwice checks that a secret given both inline and as a
// file, one of them perhaps from the environment, is an error naming the
// keys rather than one silently winning.
func TestConfigSecretTwice(t *testing.T) {
	secret := writeFile(t, "secret", "from-file\n")
	for _, tc := range []struct {
		name, config string
		env          []string
		want         string
	}{
		{"xmpp, both in the file", strings.Replace(goodConfig, `secret = "s3cret"`, `secret = "s3cret"`+"\n"+`secret_file = "`+secret+`"`, 1), nil,
			"xmpp.secret_file: set xmpp.secret or xmpp.secret_file, not both"},
		{"xmpp, the secret from the environment", strings.Replace(goodConfig, `secret = "s3cret"`, `secret_file = "`+secret+`"`, 1),
			[]string{"SWITCHBOARD_XMPP_SECRET=from-env"}, "xmpp.secret_file: set xmpp.secret or xmpp.secret_file, not both"},
		{"smpp, the password from the environment", strings.Replace(goodConfig, `password = "pw"`, `password_file = "`+secret+`"`, 1),
			[]string{"SWITCHBOARD_SMPP_PASSWORD=pw"}, "smpp.password_file: set smpp.password or smpp.password_file, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, "sb.toml", tc.config), tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// An [[smsc]] table that takes both from [smpp] does not repeat
	// [smpp]'s error, naming keys the operator never set.
	config := strings.Replace(goodConfig, `password = "pw"`, `password_file = "`+secret+`"`, 1) + `
[[smsc]]
name = "b"
addr = "smsc-b.example.net:2775"
prefixes = ["+44"]
`
	_, err := loadConfig(writeFile(t, "sb.toml", config), []string{"SWITCHBOARD_SMPP_PASSWORD=pw"})
	if err == nil || strings.Count(err.Error(), "not both") != 1 {
		t.Fatalf("err = %v; want [smpp]'s error once", err)
	}
}

// TestConfigErrors checks that every bad key is named, all at once.
func TestConfigErrors(t *testing.T) {
	path := writeFile(t, "bad.toml", `
[xmpp]
component = "not a domain@x/y"
domains = []
colour = "blue"
[smpp]
addr = "nohostport"
window = 0
password = "far-too-long"
enquire_link = "soon"
[store]
dsn = "mysql://x"
[phone]
default_region = "XX"
[log]
level = "loud"
`)
	_, err := loadConfig(path, []string{"SWITCHBOARD_SMPP_WINDOW=lots", "SWITCHBOARD_SMPP_NOPE=1", "SWITCHBOARD_UNRELATED=1"})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	msg := err.Error()
	if strings.Contains(msg, "SWITCHBOARD_UNRELATED") {
		t.Errorf("a variable outside the config sections was reported:\n%s", msg)
	}
	for _, key := range []string{"xmpp.component", "xmpp.secret", "xmpp.domains", "xmpp.colour", "smpp.addr",
		"smpp.window", "smpp.password", "smpp.system_id", "smpp.enquire_link", "store.dsn", "phone.default_region",
		"log.level", "SWITCHBOARD_SMPP_NOPE"} {
		if !strings.Contains(msg, key) {
			t.Errorf("error does not name %s:\n%s", key, msg)
		}
	}
	// The component cannot be one of the users' domains.
	_, err = loadConfig(writeFile(t, "same.toml", `
[xmpp]
component = "Example.com"
domains = ["example.com"]
secret = "s"
`), nil)
	if err == nil || !strings.Contains(err.Error(), `xmpp.component: "example.com" is also in xmpp.domains`) {
		t.Errorf("component equal to a served domain: %v", err)
	}
	// A key unknown in some [[smsc]] tables is named by the tables.
	_, err = loadConfig(writeFile(t, "smsc.toml", `
[xmpp]
component = "sms.example.com"
domains = ["example.com"]
secret = "s"
[smpp]
system_id = "sb"
password = "pw"
[[smsc]]
name = "a"
addr = "127.0.0.1:2775"
prefixes = ["+1"]
[[smsc]]
name = "b"
addr = "127.0.0.1:2776"
prefixs = ["+44"]
[[smsc]]
name = "c"
addr = "127.0.0.1:2777"
prefixs = ["+33"]
`), nil)
	if err == nil || strings.Count(err.Error(), "unknown key") != 2 || !strings.Contains(err.Error(), "smsc[2].prefixs: unknown key") ||
		!strings.Contains(err.Error(), "smsc[3].prefixs: unknown key") {
		t.Errorf("a key unknown in the second and third [[smsc]] tables: %v", err)
	}
	// A TOML syntax error names the line.
	_, err = loadConfig(writeFile(t, "syntax.toml", "[xmpp\ncomponent = 1\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("syntax error = %v", err)
	}
}

// TestConfigSMSCInherits: a [[smsc]] table takes every key it leaves out
// from [smpp], TLS included, except the name, the prefixes and the TLS
// server name; a key it gives, even as false or 0, is its own.
func TestConfigSMSCInherits(t *testing.T) {
	_, ca := selfSigned(t, "smsc-a.example.net")
	path := writeFile(t, "sb.toml", strings.Replace(goodConfig, "[phone]", `tls = true
tls_ca = "`+ca+`"
tls_server_name = "smsc-a.example.net"
binds = 4
throughput = 5
window = 50
prefixes = ["+1"]
[phone]`, 1)+`
[[smsc]]
name = "b"
addr = "smsc-b.example.net:2776"
prefixes = ["+44"]
[[smsc]]
name = "c"
addr = "smsc-c.example.net:2775"
tls = false
throughput = 0
binds = 2
receipt_ids = "decimal"
password_file = "`+writeFile(t, "pw", "filepw\n")+`"
`)
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, c := cfg.SMSCs[0], cfg.SMSCs[1]
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"b.tls", b.TLS, true},
		{"b.tls_ca", b.TLSCA, ca},
		{"b.tls_server_name (own: default the host of addr)", b.TLSServer, ""},
		{"b.binds", b.Binds, 4},
		{"b.throughput", b.Throughput, 5.0},
		{"b.window", b.Window, 50},
		{"b.system_id", b.SystemID, "switchboard"},
		{"b.password", b.Password, "pw"},
		{"b.enquire_link", b.EnquireLink.D(), 45 * time.Second},
		{"b.prefixes", strings.Join(b.Prefixes, ","), "+44"},
		{"c.tls (given false)", c.TLS, false},
		{"c.throughput (given 0: no limit)", c.Throughput, 0.0},
		{"c.binds", c.Binds, 2},
		{"c.password (its own file, not [smpp]'s password)", c.Password, "filepw"},
		{"b.receipt_ids (default)", b.ReceiptIDs, "auto"},
		{"c.receipt_ids (its own)", c.ReceiptIDs, "decimal"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestConfigDefaultAlphabet: what data_coding 0 means is gsm unless
// given; an [[smsc]] table takes [smpp]'s unless it gives its own; a value
// that is no alphabet is an error naming its key.
func TestConfigDefaultAlphabet(t *testing.T) {
	cfg, err := loadConfig(writeFile(t, "ok.toml", goodConfig+`[[smsc]]
name = "b"
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMPP.DefaultAlphabet != "gsm" || cfg.SMSCs[0].DefaultAlphabet != "gsm" {
		t.Errorf("default_alphabet = %q, smsc[1] %q; want gsm", cfg.SMPP.DefaultAlphabet, cfg.SMSCs[0].DefaultAlphabet)
	}
	path := writeFile(t, "sb.toml", strings.Replace(goodConfig, "[phone]", "default_alphabet = \"latin1\"\n[phone]", 1)+`
[[smsc]]
name = "b"
[[smsc]]
name = "c"
default_alphabet = "ascii"
[[smsc]]
name = "d"
default_alphabet = "gsm"
`)
	cfg, err = loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"latin1", "latin1", "ascii", "gsm"} {
		if got := append([]SMPPConfig{cfg.SMPP}, cfg.SMSCs...)[i].DefaultAlphabet; got != want {
			t.Errorf("SMSC %d: default_alphabet = %q, want %q", i, got, want)
		}
	}
	cfg, err = loadConfig(writeFile(t, "env.toml", goodConfig), []string{"SWITCHBOARD_SMPP_DEFAULT_ALPHABET=ascii"})
	if err != nil || cfg.SMPP.DefaultAlphabet != "ascii" {
		t.Errorf("from the environment: %v", err)
	}
	_, err = loadConfig(writeFile(t, "bad.toml", goodConfig+`[[smsc]]
name = "b"
default_alphabet = "iso-8859-1"
`), []string{"SWITCHBOARD_SMPP_DEFAULT_ALPHABET=GSM"})
	if err == nil {
		t.Fatal("bad alphabets accepted")
	}
	for _, want := range []string{
		`smpp.default_alphabet: "GSM" is not gsm, latin1 or ascii`,
		`smsc[1].default_alphabet: "iso-8859-1" is not gsm, latin1 or ascii`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

// TestConfigExplicitZero: a whole-number key given as 0, where 0 is not a
// value it takes, is an error naming it (in the file, an [[smsc]] table or
// the environment), not silently the default.
func TestConfigExplicitZero(t *testing.T) {
	path := writeFile(t, "sb.toml", strings.Replace(goodConfig, "[phone]", "window = 0\n[phone]", 1)+`
[limits]
per_user_minute = 0
per_user_day = -1
[sms]
max_attempts = 0
[[smsc]]
name = "b"
binds = 0
receipt_ids = "octal"
`)
	_, err := loadConfig(path, []string{"SWITCHBOARD_ADDRESSBOOK_DAILY_LOOKUPS=0"})
	if err == nil {
		t.Fatal("zeros accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"smpp.window: 0 is not allowed: leave the key out for the default (10)",
		"limits.per_user_minute: 0 is not allowed: leave the key out for the default (20); a negative number means no limit",
		"sms.max_attempts: 0 is not allowed: leave the key out for the default (8)\n",
		"smsc[1].binds: 0 is not allowed",
		"addressbook.daily_lookups: 0 is not allowed",
		`smsc[1].receipt_ids: "octal" is not auto, same, hex or decimal`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "per_user_day") {
		t.Errorf("a negative limit was refused:\n%s", msg)
	}
	// A value that is no number is reported as such, not as a 0.
	_, err = loadConfig(writeFile(t, "ok.toml", goodConfig), []string{"SWITCHBOARD_SMS_MAX_PARTS=abc"})
	if err == nil || !strings.Contains(err.Error(), `"abc" is not a whole number`) || strings.Contains(err.Error(), "0 is not allowed") {
		t.Errorf("max_parts=abc: %v", err)
	}
	// Left out, the same keys take their defaults.
	cfg, err := loadConfig(writeFile(t, "ok.toml", goodConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMPP.Window != 10 || cfg.Limits.PerUserMinute != 20 || cfg.SMS.MaxAttempts != 8 {
		t.Errorf("defaults: window %d, per_user_minute %d, max_attempts %d", cfg.SMPP.Window, cfg.Limits.PerUserMinute, cfg.SMS.MaxAttempts)
	}
}

// TestConfigTLSCA: a CA file with no certificate is a configuration error
// naming the key of the SMSC it belongs to; an address without a host is
// host:port.
func TestConfigTLSCA(t *testing.T) {
	junk := writeFile(t, "junk.pem", "not a certificate\n")
	path := writeFile(t, "sb.toml", goodConfig+`[http]
listen = ":9090"
[[smsc]]
name = "b"
tls = true
tls_ca = "`+junk+`"
`)
	_, err := loadConfig(path, nil)
	if err == nil {
		t.Fatal("a CA file without a certificate accepted")
	}
	msg := err.Error()
	if want := "smsc[1].tls_ca: " + junk + " holds no PEM certificate"; !strings.Contains(msg, want) {
		t.Errorf("error lacks %q:\n%s", want, msg)
	}
	if strings.Contains(msg, "smpp.tls_ca") || strings.Contains(msg, "http.listen") || strings.Contains(msg, "receipt_ids") {
		t.Errorf("error names a key that is fine:\n%s", msg)
	}
}

// The tests below run the real binary: this test binary re-executes itself
// as switchboard when SB_TEST_MAIN is set.
func init() {
	if os.Getenv("SB_TEST_MAIN") == "1" {
		os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
	}
}

func command(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SB_TEST_MAIN=1")
	return cmd
}

func TestExitStatus(t *testing.T) {
	bad := writeFile(t, "bad.toml", "[xmpp]\ncomponent = \"sms.example.com\"\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "-config", bad}, 2, "xmpp.secret"},
		// A file that cannot be read as TOML, or at all, is a
		// configuration error too: a service manager must not restart.
		{[]string{"serve", "-config", writeFile(t, "syntax.toml", "[xmpp]\ncomponent = sms.example.com\n")}, 2, "line 2"},
		{[]string{"check", "-config", writeFile(t, "type.toml", "[smpp]\nwindow = \"ten\"\n")}, 2, "window"},
		{[]string{"serve", "-config", filepath.Join(t.TempDir(), "missing.toml")}, 2, "missing.toml"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"serve", "-nope"}, 2, "flag provided but not defined"},
		{[]string{"numbers", "-config", writeFile(t, "ok.toml", goodConfig+"\n[store]\ndsn = \"sqlite:"+filepath.Join(t.TempDir(), "sb.db")+"\"\n"),
			"assign", "alice@example.com", "12"}, 2, "not a valid phone number"},
		{[]string{"version"}, 0, "(SQLite: " + store.SQLiteLibrary + ")"},
		// -h prints the command's flags and is no error.
		{[]string{"serve", "-h"}, 0, "-config"},
		{[]string{"check", "-h"}, 0, "-config"},
		{[]string{"numbers", "-h"}, 0, "release NUMBER"},
		// Without -config the likely cause is named first.
		{[]string{"check"}, 2, "invalid configuration:\n  no -config file given"},
	} {
		var out bytes.Buffer
		cmd := command(t, tc.args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d containing %q", tc.args, code, out.String(), tc.code, tc.want)
		}
	}
}

func TestNumbersCommand(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, "sb.toml", goodConfig+"\n[store]\ndsn = \"sqlite:"+filepath.Join(dir, "sb.db")+"\"\n")
	// A misspelt subcommand is a usage error, and creates no store file.
	out, err := command(t, "numbers", "-config", path, "asign", "alice@example.com", "+12015550100").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `unknown subcommand "asign"`) {
		t.Fatalf("misspelt subcommand: %v, %s; want exit 2 naming it", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "sb.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("store file after a misspelt subcommand: %v", err)
	}
	// Nor do arguments that cannot be right.
	for _, args := range [][]string{
		{"assign", "alice@example.com", "12"},
		{"assign", "alice@elsewhere.example", "+12015550100"},
		{"release", "not a number"},
		{"list", "extra"},
	} {
		out, err := command(t, append([]string{"numbers", "-config", path}, args...)...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Fatalf("%v: %v, %s; want exit 2", args, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "sb.db")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("store file after %v: %v", args, err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := command(t, append([]string{"numbers", "-config", path}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("assign", "alice@example.com/phone", "+1 (201) 555-0100"); !strings.Contains(out, "+12015550100 is now bound to alice@example.com") {
		t.Fatalf("assign: %s", out)
	}
	if out := run("assign", "bob@example.com", "+12015550100"); !strings.Contains(out, "it was bound to alice@example.com") {
		t.Fatalf("reassign: %s", out)
	}
	if out := run("list"); !strings.Contains(out, "+12015550100") || !strings.Contains(out, "bob@example.com") || strings.Contains(out, "alice") {
		t.Fatalf("list: %s", out)
	}
	if out := run("release", "+12015550100"); !strings.Contains(out, "released") {
		t.Fatalf("release: %s", out)
	}
	if out := run("list"); strings.Contains(out, "+12015550100") {
		t.Fatalf("list after release: %s", out)
	}
	// A user of a domain the gateway does not serve could never use the number, and
	// the phone's messages to it would leave for that domain's server: refused.
	out, err = command(t, "numbers", "-config", path, "assign", "carol@Elsewhere.org", "+12015550177").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "xmpp.domains") {
		t.Fatalf("assign to an unserved domain: %v, %s; want exit 2 naming xmpp.domains", err, out)
	}
	if out := run("assign", "dave@EXAMPLE.com", "+12015550178"); !strings.Contains(out, "is now bound to dave@") {
		t.Fatalf("assign to a served domain in capitals: %s", out)
	}
	// A second number for a user releases the first, and says so.
	if out := run("assign", "dave@example.com", "+12015550179"); !strings.Contains(out, "previous number +12015550178 is released") {
		t.Fatalf("assign a second number: %s", out)
	}
	if out := run("assign", "dave@example.com", "+12015550179"); strings.Contains(out, "previous number") {
		t.Fatalf("assign the same number again: %s", out)
	}
	if out := run("list"); strings.Contains(out, "carol") {
		t.Fatalf("list after a refused assign: %s", out)
	}
}

// TestSIGTERM starts serve against servers that are not there and checks a
// SIGTERM still ends it cleanly, with status 0.
func TestSIGTERM(t *testing.T) {
	path := writeFile(t, "sb.toml", goodConfig+"\n[store]\ndsn = \""+sqliteDSN(t)+"\"\n")
	cmd, out := startServe(t, path, "SWITCHBOARD_LOG_LEVEL=debug")
	waitLog(t, out, `"starting"`)
	terminate(t, cmd, out)
	if !strings.Contains(out.String(), `"stopped"`) || strings.Contains(out.String(), "s3cret") || strings.Contains(out.String(), `"pw"`) {
		t.Fatalf("log:\n%s", out.String())
	}
}

// TestSIGHUP: SIGHUP re-reads the file: log.level takes effect, other
// changed keys are named as waiting for a restart, a file that no longer
// loads leaves the running configuration; serve goes on until SIGTERM.
func TestSIGHUP(t *testing.T) {
	base := goodConfig + "\n[store]\ndsn = \"" + sqliteDSN(t) + "\"\n"
	path := writeFile(t, "sb.toml", base+"[log]\nlevel = \"warn\"\n")
	cmd, out := startServe(t, path)
	hangup := func(config string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLog(t, out, "connecting to the XMPP server failed") // a warning
	if strings.Contains(out.String(), `"starting"`) {
		t.Fatalf("info logged at level warn:\n%s", out.String())
	}

	// Down to info. A default written out (sms.max_parts) is no change.
	hangup(strings.Replace(base, "s3cret", "n3w", 1) + "[sms]\nmax_parts = 10\n[log]\nlevel = \"info\"\n")
	waitLog(t, out, `"log_level":"info","time"`)
	waitLog(t, out, `"message":"SIGHUP: changed keys take effect only at the next start"`)
	if !strings.Contains(out.String(), `"keys":["xmpp.secret"]`) {
		t.Fatalf("changed keys not named as [xmpp.secret]:\n%s", out.String())
	}

	hangup(base + "[log]\nlevel = \"loud\"\n")
	waitLog(t, out, "configuration not reloaded; the running one stays")
	if !strings.Contains(out.String(), "log.level") {
		t.Fatalf("the bad key is not named:\n%s", out.String())
	}

	terminate(t, cmd, out) // at info: the shutdown's lines show
	if !strings.Contains(out.String(), `"stopped"`) || strings.Contains(out.String(), "s3cret") || strings.Contains(out.String(), "n3w") {
		t.Fatalf("log:\n%s", out.String())
	}
}

// TestSIGHUPQuiet: a reload to a level above info still says it was done,
// and the info lines after it do not show.
func TestSIGHUPQuiet(t *testing.T) {
	base := goodConfig + "\n[store]\ndsn = \"" + sqliteDSN(t) + "\"\n"
	path := writeFile(t, "sb.toml", base)
	cmd, out := startServe(t, path)
	waitLog(t, out, `"starting"`)
	must(t, os.WriteFile(path, []byte(base+"[log]\nlevel = \"error\"\n"), 0o600))
	must(t, cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, out, `"log_level":"error"`)
	for line := range strings.Lines(out.String()) {
		if strings.Contains(line, "SIGHUP: configuration reloaded") && !strings.Contains(line, `"instance":"`) {
			t.Errorf("the reload's line lacks the instance: %s", line)
		}
	}
	terminate(t, cmd, out)
	if strings.Contains(out.String(), `"stopped"`) {
		t.Fatalf("an info line at level error:\n%s", out.String())
	}
}

// startServe runs serve with the configuration at path against servers
// that are not there (XMPP and SMPP on port 1), env added; out gets what
// it writes. The test's end kills it if it still runs.
func startServe(t *testing.T, path string, env ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := command(t, "serve", "-config", path)
	cmd.Env = append(cmd.Env, append([]string{"SWITCHBOARD_XMPP_SERVER=127.0.0.1:1", "SWITCHBOARD_SMPP_ADDR=127.0.0.1:1"}, env...)...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

// waitLog waits up to 10 s for what to show in out.
func waitLog(t *testing.T, out *syncBuffer, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", what, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// terminate sends cmd SIGTERM and fails t unless it exits with status 0
// within 20 s; out is its output, for the failure.
func terminate(t *testing.T, cmd *exec.Cmd, out *syncBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no exit after SIGTERM\n%s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSubmitSlots(t *testing.T) {
	for _, tc := range []struct {
		name  string
		smscs []SMPPConfig
		want  int
	}{
		{"default window", []SMPPConfig{{Window: 10, Binds: 1}}, 160},
		{"at least 64", []SMPPConfig{{Window: 2, Binds: 1}}, 64},
		{"sixteen windows", []SMPPConfig{{Window: 100, Binds: 2}}, 3200},
		{"throughput bounds the wait", []SMPPConfig{{Window: 100, Binds: 1, Throughput: 2}}, 160},
		{"summed over SMSCs", []SMPPConfig{{Window: 50, Binds: 1}, {Window: 20, Binds: 3}}, 1760},
	} {
		if got := submitSlots(tc.smscs); got != tc.want {
			t.Errorf("%s: submitSlots = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestConfigShortCodeReply: limits.short_code_reply is a duration, a week
// when left out; 0 turns answers to short codes off; a negative one or
// one that does not parse is an error naming the key.
func TestConfigShortCodeReply(t *testing.T) {
	path := writeFile(t, "sb.toml", goodConfig)
	for _, tc := range []struct {
		env  []string
		want time.Duration
	}{
		{nil, 7 * 24 * time.Hour},
		{[]string{"SWITCHBOARD_LIMITS_SHORT_CODE_REPLY=24h"}, 24 * time.Hour},
		{[]string{"SWITCHBOARD_LIMITS_SHORT_CODE_REPLY=0"}, 0},
	} {
		cfg, err := loadConfig(path, tc.env)
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if got := cfg.Limits.ShortCodeReply.D(); got != tc.want {
			t.Errorf("%v: limits.short_code_reply = %v, want %v", tc.env, got, tc.want)
		}
	}
	for v, want := range map[string]string{
		"-1h":  "limits.short_code_reply: must not be negative",
		"soon": `limits.short_code_reply: "soon" is not a duration`,
	} {
		_, err := loadConfig(path, []string{"SWITCHBOARD_LIMITS_SHORT_CODE_REPLY=" + v})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("short_code_reply = %q: %v; want %q", v, err, want)
		}
	}
}

// TestConfigRelaysPerUserMinute: 60 when left out, from the file or the
// environment otherwise, negative for none.
func TestConfigRelaysPerUserMinute(t *testing.T) {
	for _, tc := range []struct {
		file string
		env  []string
		want int
	}{
		{goodConfig, nil, 60},
		{goodConfig + "[limits]\nrelays_per_user_minute = 5\n", nil, 5},
		{goodConfig, []string{"SWITCHBOARD_LIMITS_RELAYS_PER_USER_MINUTE=-1"}, -1},
	} {
		cfg, err := loadConfig(writeFile(t, "sb.toml", tc.file), tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Limits.RelaysPerUserMinute; got != tc.want {
			t.Errorf("%v: limits.relays_per_user_minute = %d, want %d", tc.env, got, tc.want)
		}
	}
}
