package main

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nyaruka/phonenumbers"
	"mellium.im/xmpp/jid"

	"switchboard/roster/number"
	"switchboard/smsgw/coding"
)

// Config is the whole configuration: a TOML file, then SWITCHBOARD_<SECTION>_<KEY>
// environment variables over it. Zero values mean the defaults documented on
// each field (and in the README).
type Config struct {
	XMPP XMPPConfig `toml:"xmpp"`
	SMPP SMPPConfig `toml:"smpp"`
	// SMSCs are further SMSCs ([[smsc]] tables, file only), each with its
	// own name, destination prefixes and TLS server name; other keys it
	// leaves out take [smpp]'s values.
	SMSCs        []SMPPConfig       `toml:"smsc"`
	Store        StoreConfig        `toml:"store"`
	Phone        PhoneConfig        `toml:"phone"`
	SMS          SMSConfig          `toml:"sms"`
	Registration RegistrationConfig `toml:"registration"`
	Routing      RoutingConfig      `toml:"routing"`
	AddressBook  AddressBookConfig  `toml:"addressbook"`
	Limits       LimitsConfig       `toml:"limits"`
	Archive      ArchiveConfig      `toml:"archive"`
	Log          LogConfig          `toml:"log"`
	HTTP         HTTPConfig         `toml:"http"`

	// instance names this process among the gateway's instances: serve
	// sets it, so that its own log lines carry it too; run makes one when
	// it is empty.
	instance string
}

// XMPPConfig is the component's connection to the XMPP server.
type XMPPConfig struct {
	Component  string   `toml:"component"`   // component domain, e.g. sms.example.com. Required.
	Server     string   `toml:"server"`      // host:port of the server's component port. Default 127.0.0.1:5347.
	Secret     string   `toml:"secret"`      // shared component secret. Required (or secret_file).
	SecretFile string   `toml:"secret_file"` // file holding the secret (trailing newline trimmed).
	Domains    []string `toml:"domains"`     // XMPP domains whose users may use the gateway. Required.
	TLS        bool     `toml:"tls"`         // connect with direct TLS. Default false.
	Admins     []string `toml:"admins"`      // bare JIDs that get the operators' ad-hoc commands. Default none.
}

// SMPPConfig is the bind to the carrier's SMSC.
type SMPPConfig struct {
	Addr         string   `toml:"addr"`            // host:port of the SMSC. Default 127.0.0.1:2775.
	SystemID     string   `toml:"system_id"`       // bind system_id. Required.
	Password     string   `toml:"password"`        // bind password.
	PasswordFile string   `toml:"password_file"`   // file holding the password.
	SystemType   string   `toml:"system_type"`     // bind system_type. Default empty.
	Window       int      `toml:"window"`          // outstanding requests per bind. Default 10.
	Throughput   float64  `toml:"throughput"`      // submit_sm per second per bind; 0 means no limit. Default 0.
	EnquireLink  Duration `toml:"enquire_link"`    // idle link check. Default 30s.
	RespTimeout  Duration `toml:"resp_timeout"`    // wait for a response before the outcome is unknown. Default 10s.
	TLS          bool     `toml:"tls"`             // SMPP over TLS. Default false.
	TLSCA        string   `toml:"tls_ca"`          // PEM file of CAs to trust for TLS; default the system pool.
	TLSServer    string   `toml:"tls_server_name"` // name to verify; default the host of addr.
	Binds        int      `toml:"binds"`           // binds (transceiver sessions) to this SMSC. Default 1.
	Name         string   `toml:"name"`            // names the SMSC; required for [[smsc]] entries. Default "" for [smpp].
	Prefixes     []string `toml:"prefixes"`        // E.164 destination prefixes it takes; empty: any. Longest match wins.
	ReceiptIDs   string   `toml:"receipt_ids"`     // how receipts write submit_sm_resp's ids: auto, same, hex, decimal. Default auto.
	// DefaultAlphabet is what data_coding 0 means on this SMSC: gsm (GSM
	// 03.38), latin1 (ISO-8859-1) or ascii (IA5). Default gsm.
	DefaultAlphabet string `toml:"default_alphabet"`
}

// StoreConfig is persistence.
type StoreConfig struct {
	DSN string `toml:"dsn"` // "sqlite:PATH" or "postgres://…". Default sqlite:switchboard.db.
}

// PhoneConfig is about numbers.
type PhoneConfig struct {
	DefaultRegion string `toml:"default_region"` // ISO 3166 region for numbers without a country code. Default none: numbers must be international.
}

// SMSConfig is about the SMS path.
type SMSConfig struct {
	MaxParts    int      `toml:"max_parts"`    // most SMS parts per message. Default 10.
	Validity    Duration `toml:"validity"`     // how long a message may wait for the SMSC. Default 48h.
	MaxAttempts int      `toml:"max_attempts"` // submissions before a message fails. Default 8.
	Reassembly  Duration `toml:"reassembly"`   // wait for the missing parts of a message from a phone. Default 2m.
	ReceiptWait Duration `toml:"receipt_wait"` // wait for the carrier's receipt; then the message ends unconfirmed (sent). Default 72h.
}

// RegistrationConfig is how users prove they own a number.
type RegistrationConfig struct {
	Verification string   `toml:"verification"`   // "sms" (users verify by code) or "none" (only operators assign numbers). Default sms.
	Sender       string   `toml:"sender"`         // SMS sender of codes: E.164 number or alphanumeric ID (≤ 11 chars). Default "Switchboard".
	Text         string   `toml:"text"`           // code SMS text; {code} is replaced. Default "Your Switchboard code is {code}. It expires in 10 minutes."
	CodeTTL      Duration `toml:"code_ttl"`       // how long a code is valid. Default 10m.
	MaxTries     int      `toml:"max_tries"`      // wrong codes that void a code. Default 5.
	ResendAfter  Duration `toml:"resend_after"`   // least time between two codes to one number. Default 2m.
	PerNumberDay int      `toml:"per_number_day"` // codes per number per 24 h. Default 5.
	PerJIDDay    int      `toml:"per_jid_day"`    // codes per JID per 24 h. Default 10.
	GlobalHour   int      `toml:"global_hour"`    // codes sent by everyone per hour. Default 500.
}

// AddressBookConfig is about uploaded address books and the rosters made from them.
type AddressBookConfig struct {
	Group        string `toml:"group"`         // roster group of number JIDs. Default "Phone contacts".
	MaxContacts  int    `toml:"max_contacts"`  // numbers per upload. Default 10000.
	DailyLookups int    `toml:"daily_lookups"` // numbers a user may look up for the first time per 24 h. Default 2048.
	FetchPrivate bool   `toml:"fetch_private"` // let address-book URLs point at loopback/private networks. Default false.
}

// LimitsConfig guards against SMS pumping and toll fraud. A negative
// count means no limit.
type LimitsConfig struct {
	// AllowedCountries lists the ISO 3166 regions SMS may go to. Default:
	// the regions sharing phone.default_region's country code (e.g. US, CA
	// and the rest of +1), or every region when no default region is set.
	AllowedCountries []string `toml:"allowed_countries"`
	// BlockedPrefixes lists E.164 prefixes SMS never go to. Default
	// ["+1900", "+1976", "+449"] (premium rate in North America and the UK).
	BlockedPrefixes []string `toml:"blocked_prefixes"`
	PerUserMinute   int      `toml:"per_user_minute"` // SMS per user per minute. Default 20.
	PerUserDay      int      `toml:"per_user_day"`    // SMS per user per 24 h. Default 200.
	GlobalMinute    int      `toml:"global_minute"`   // SMS by everyone per minute. Default 3000.
	// RelaysPerUserMinute caps each user's messages to registered numbers
	// (relayed over XMPP), per instance, with as many at once. Default 60.
	RelaysPerUserMinute int `toml:"relays_per_user_minute"`
	// ShortCodeReply is how long after a short code (3 to 6 digits: a
	// service's sender, which may be premium-rate) last wrote to a user,
	// at their number, the user may answer it by SMS; no other short code
	// is reached. 0: none can be answered. Default 168h (7 days).
	ShortCodeReply Duration `toml:"short_code_reply"`
}

// RoutingConfig is how messages choose between XMPP and SMS.
type RoutingConfig struct {
	// SMSFallbackAfter is how long a message relayed over XMPP to a
	// registered number waits for the recipient's receipt before it is
	// sent as SMS too. 0 disables the fallback. Default 30s.
	SMSFallbackAfter Duration `toml:"sms_fallback_after"`
}

// ArchiveConfig is the message archive users query (XEP-0313).
type ArchiveConfig struct {
	// Retention is how long finished messages are kept; older ones are
	// deleted hourly. Messages still on their way are kept. 0 keeps
	// everything forever. Default 0.
	Retention Duration `toml:"retention"`
}

// LogConfig is logging.
type LogConfig struct {
	Level  string `toml:"level"`  // trace, debug, info, warn, error. Default info.
	Format string `toml:"format"` // json or console. Default json.
}

// HTTPConfig is the operators' HTTP listener: Prometheus metrics and
// health checks.
type HTTPConfig struct {
	// Listen is the host:port serving /metrics, /healthz and /readyz, e.g.
	// "127.0.0.1:9090". Default "": no listener.
	Listen string `toml:"listen"`
}

// Duration is a time.Duration written as "30s", "10m". A value that does not
// parse is kept and reported by validation with the other problems.
type Duration struct {
	d   time.Duration
	bad string
	set bool
}

// Dur makes a Duration.
func Dur(d time.Duration) Duration { return Duration{d: d, set: true} }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		*d = Duration{bad: string(b), set: true}
		return nil
	}
	*d = Duration{d: v, set: true}
	return nil
}

// D returns the duration.
func (d Duration) D() time.Duration { return d.d }

func (d Duration) unset() bool { return !d.set }

// loadConfig reads path (may be empty: defaults and environment only), applies
// the environment and defaults, and validates. All problems are reported at once.
func loadConfig(path string, environ []string) (*Config, error) {
	var (
		cfg   Config
		errs  []error
		given = make(map[string]bool) // keys set by the file or the environment: "sms.max_parts", "smsc[2].tls"
	)
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		if err != nil {
			// A configuration error too (exit status 2: restarting will
			// not mend it), alone, for the rest cannot be read past it.
			var perr toml.ParseError
			if errors.As(err, &perr) {
				return nil, configError{fmt.Errorf("%s: %s", path, perr.ErrorWithPosition())}
			}
			return nil, configError{fmt.Errorf("%s: %w", path, err)}
		}
		// The keys of each [[smsc]] table: the metadata does not tell the
		// tables apart.
		var raw struct {
			SMSC []map[string]any `toml:"smsc"`
		}
		if _, err := toml.DecodeFile(path, &raw); err != nil {
			raw.SMSC = nil
		}
		reported := make(map[string]bool) // the metadata lists a key once per table
		for _, k := range md.Undecoded() {
			var in []string // the [[smsc]] tables that hold it
			if len(k) == 2 && k[0] == "smsc" {
				for i, t := range raw.SMSC {
					if _, ok := t[k[1]]; ok {
						in = append(in, fmt.Sprintf("smsc[%d].%s", i+1, k[1]))
					}
				}
			}
			if len(in) == 0 {
				in = []string{k.String()}
			}
			for _, name := range in {
				if !reported[name] {
					reported[name] = true
					errs = append(errs, fmt.Errorf("%s: unknown key", name))
				}
			}
		}
		for _, k := range md.Keys() {
			given[k.String()] = true
		}
		for i, t := range raw.SMSC {
			for k := range t {
				given[fmt.Sprintf("smsc[%d].%s", i+1, k)] = true
			}
		}
	}
	errs = append(errs, applyEnv(&cfg, environ, given)...)
	zeros := wholeZeros(&cfg, given)
	cfg.defaults(given)
	for _, z := range zeros {
		// A 0 the defaults replaced: the operator meant something else
		// (no limit, none at all) than the default they would get.
		if n := z.v.Int(); n != 0 {
			hint := ""
			if strings.HasPrefix(z.key, "limits.") {
				hint = "; a negative number means no limit"
			}
			errs = append(errs, fmt.Errorf("%s: 0 is not allowed: leave the key out for the default (%d)%s", z.key, n, hint))
		}
	}
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		if path == "" {
			// Likely the cause: say it first.
			errs = append([]error{errors.New("no -config file given: the configuration comes from SWITCHBOARD_* variables alone")}, errs...)
		}
		return nil, configError(errs)
	}
	return &cfg, nil
}

// configError lists every problem, one per line.
type configError []error

func (e configError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, err := range e {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// wholeZero is a whole-number key given as 0.
type wholeZero struct {
	key string
	v   reflect.Value
}

// wholeZeros lists the whole-number keys given (in the file or the
// environment) as 0, before the defaults are applied.
func wholeZeros(cfg *Config, given map[string]bool) []wholeZero {
	var out []wholeZero
	scan := func(prefix string, sv reflect.Value) {
		for j := range sv.NumField() {
			f := sv.Field(j)
			key := prefix + "." + sv.Type().Field(j).Tag.Get("toml")
			if f.Kind() == reflect.Int && f.Int() == 0 && given[key] {
				out = append(out, wholeZero{key, f})
			}
		}
	}
	root := reflect.ValueOf(cfg).Elem()
	for i := range root.NumField() {
		if sv := root.Field(i); sv.Kind() == reflect.Struct {
			scan(root.Type().Field(i).Tag.Get("toml"), sv)
		}
	}
	for i := range cfg.SMSCs {
		scan(fmt.Sprintf("smsc[%d]", i+1), reflect.ValueOf(&cfg.SMSCs[i]).Elem())
	}
	return out
}

// defaults fills the keys not given with their defaults.
func (c *Config) defaults(given map[string]bool) {
	if c.XMPP.Server == "" {
		c.XMPP.Server = "127.0.0.1:5347"
	}
	c.SMPP.defaults(SMPPConfig{}, func(string) bool { return true })
	for i := range c.SMSCs {
		prefix := fmt.Sprintf("smsc[%d].", i+1)
		c.SMSCs[i].defaults(c.SMPP, func(key string) bool { return given[prefix+key] })
	}
	if c.Store.DSN == "" {
		c.Store.DSN = "sqlite:switchboard.db"
	}
	if c.SMS.MaxParts == 0 {
		c.SMS.MaxParts = 10
	}
	if c.SMS.Validity.unset() {
		c.SMS.Validity = Dur(48 * time.Hour)
	}
	if c.SMS.MaxAttempts == 0 {
		c.SMS.MaxAttempts = 8
	}
	if c.SMS.Reassembly.unset() {
		c.SMS.Reassembly = Dur(2 * time.Minute)
	}
	if c.SMS.ReceiptWait.unset() {
		c.SMS.ReceiptWait = Dur(72 * time.Hour)
	}
	r := &c.Registration
	if r.Verification == "" {
		r.Verification = "sms"
	}
	if r.Sender == "" {
		r.Sender = "Switchboard"
	}
	if r.Text == "" {
		r.Text = "Your Switchboard code is {code}. It expires in 10 minutes."
	}
	if r.CodeTTL.unset() {
		r.CodeTTL = Dur(10 * time.Minute)
	}
	if r.MaxTries == 0 {
		r.MaxTries = 5
	}
	if r.ResendAfter.unset() {
		r.ResendAfter = Dur(2 * time.Minute)
	}
	if r.PerNumberDay == 0 {
		r.PerNumberDay = 5
	}
	if r.PerJIDDay == 0 {
		r.PerJIDDay = 10
	}
	if r.GlobalHour == 0 {
		r.GlobalHour = 500
	}
	l := &c.Limits
	c.Phone.DefaultRegion = strings.ToUpper(c.Phone.DefaultRegion)
	if l.AllowedCountries == nil && c.Phone.DefaultRegion != "" {
		if cc := phonenumbers.GetCountryCodeForRegion(c.Phone.DefaultRegion); cc != 0 {
			// A copy: the library hands out its own table, and
			// validate writes the upper-cased codes back.
			l.AllowedCountries = slices.Clone(phonenumbers.GetRegionCodesForCountryCode(cc))
		}
	}
	if l.BlockedPrefixes == nil {
		l.BlockedPrefixes = []string{"+1900", "+1976", "+449"}
	}
	if l.PerUserMinute == 0 {
		l.PerUserMinute = 20
	}
	if l.PerUserDay == 0 {
		l.PerUserDay = 200
	}
	if l.GlobalMinute == 0 {
		l.GlobalMinute = 3000
	}
	if l.RelaysPerUserMinute == 0 {
		l.RelaysPerUserMinute = 60
	}
	if l.ShortCodeReply.unset() {
		// A week: a confirmation or a 2FA dialogue takes minutes, but a
		// STOP often answers last week's newsletter. A longer or shorter
		// window changes little against fraud: a premium service that a
		// fraudster makes text the victim ("reply YES") is answered in
		// minutes; what bounds that is that the code must have written to
		// this user's number, and the SMS quotas.
		l.ShortCodeReply = Dur(7 * 24 * time.Hour)
	}
	if c.AddressBook.Group == "" {
		c.AddressBook.Group = "Phone contacts"
	}
	if c.AddressBook.MaxContacts == 0 {
		c.AddressBook.MaxContacts = 10000
	}
	if c.AddressBook.DailyLookups == 0 {
		c.AddressBook.DailyLookups = 2048
	}
	if c.Routing.SMSFallbackAfter.unset() {
		c.Routing.SMSFallbackAfter = Dur(30 * time.Second)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
}

// defaults fills the keys not given (own reports whether a key was) from
// base, [smpp] for an [[smsc]] table, then from the documented defaults.
// An SMSC's name, prefixes and TLS server name are its own.
func (c *SMPPConfig) defaults(base SMPPConfig, own func(key string) bool) {
	if !own("addr") {
		c.Addr = cmp.Or(c.Addr, base.Addr)
	}
	c.Addr = cmp.Or(c.Addr, "127.0.0.1:2775")
	if !own("system_id") {
		c.SystemID = base.SystemID
	}
	if !own("password") && !own("password_file") {
		c.Password, c.PasswordFile = base.Password, base.PasswordFile
		if c.Password != "" && c.PasswordFile != "" {
			// [smpp] gives both, an error it reports once: not again
			// for every table that takes them from it.
			c.Password = ""
		}
	}
	if !own("system_type") {
		c.SystemType = base.SystemType
	}
	if !own("window") {
		c.Window = base.Window
	}
	if c.Window == 0 {
		c.Window = 10
	}
	if !own("throughput") {
		c.Throughput = base.Throughput
	}
	if !own("binds") {
		c.Binds = base.Binds
	}
	if c.Binds == 0 {
		c.Binds = 1
	}
	if !own("tls") {
		c.TLS = base.TLS
	}
	if !own("tls_ca") {
		c.TLSCA = base.TLSCA
	}
	if !own("receipt_ids") {
		c.ReceiptIDs = base.ReceiptIDs
	}
	c.ReceiptIDs = cmp.Or(c.ReceiptIDs, "auto")
	if !own("default_alphabet") {
		c.DefaultAlphabet = base.DefaultAlphabet
	}
	c.DefaultAlphabet = cmp.Or(c.DefaultAlphabet, "gsm")
	if c.EnquireLink.unset() {
		c.EnquireLink = base.EnquireLink
		if c.EnquireLink.unset() {
			c.EnquireLink = Dur(30 * time.Second)
		}
	}
	if c.RespTimeout.unset() {
		c.RespTimeout = base.RespTimeout
		if c.RespTimeout.unset() {
			c.RespTimeout = Dur(10 * time.Second)
		}
	}
}

// validate checks one SMSC's settings; key is "smpp" or "smsc[N]".
func (c *SMPPConfig) validate(key string, bad func(key, format string, args ...any)) {
	if c.EnquireLink.bad != "" {
		bad(key+".enquire_link", "%q is not a duration such as 30s or 10m", c.EnquireLink.bad)
	}
	if c.RespTimeout.bad != "" {
		bad(key+".resp_timeout", "%q is not a duration such as 30s or 10m", c.RespTimeout.bad)
	}
	if !hostPort(c.Addr) {
		bad(key+".addr", "%q is not host:port", c.Addr)
	}
	if c.SystemID == "" {
		bad(key+".system_id", "required")
	} else if len(c.SystemID) > 15 {
		bad(key+".system_id", "at most 15 characters")
	}
	if c.Password != "" && c.PasswordFile != "" {
		bad(key+".password_file", "set %s.password or %s.password_file, not both", key, key)
	} else if err := readSecret(&c.Password, c.PasswordFile); err != nil {
		bad(key+".password_file", "%v", err)
	}
	if len(c.Password) > 8 {
		bad(key+".password", "at most 8 characters in SMPP 3.4")
	}
	if len(c.SystemType) > 12 {
		bad(key+".system_type", "at most 12 characters")
	}
	if c.Window < 1 || c.Window > 10000 {
		bad(key+".window", "%d is not between 1 and 10000", c.Window)
	}
	if c.Binds < 1 || c.Binds > 64 {
		bad(key+".binds", "%d is not between 1 and 64", c.Binds)
	}
	if c.Throughput < 0 {
		bad(key+".throughput", "must not be negative")
	}
	if c.EnquireLink.bad == "" && c.EnquireLink.D() < time.Second {
		bad(key+".enquire_link", "at least 1s")
	}
	if c.RespTimeout.bad == "" && c.RespTimeout.D() < 100*time.Millisecond {
		bad(key+".resp_timeout", "at least 100ms")
	}
	if c.TLSCA != "" {
		if b, err := os.ReadFile(c.TLSCA); err != nil {
			bad(key+".tls_ca", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			bad(key+".tls_ca", "%s holds no PEM certificate", c.TLSCA)
		}
	}
	for _, p := range c.Prefixes {
		if len(p) < 2 || p[0] != '+' || strings.Trim(p[1:], "0123456789") != "" {
			bad(key+".prefixes", "%q is not an E.164 prefix such as +1 or +4477", p)
		}
	}
	switch c.ReceiptIDs {
	case "auto", "same", "hex", "decimal":
	default:
		bad(key+".receipt_ids", "%q is not auto, same, hex or decimal", c.ReceiptIDs)
	}
	if _, ok := coding.ParseAlphabet(c.DefaultAlphabet); !ok {
		bad(key+".default_alphabet", "%q is not gsm, latin1 or ascii", c.DefaultAlphabet)
	}
}

func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	for _, d := range []struct {
		key string
		d   Duration
	}{
		{"sms.validity", c.SMS.Validity}, {"sms.reassembly", c.SMS.Reassembly}, {"sms.receipt_wait", c.SMS.ReceiptWait},
		{"registration.code_ttl", c.Registration.CodeTTL}, {"registration.resend_after", c.Registration.ResendAfter},
		{"routing.sms_fallback_after", c.Routing.SMSFallbackAfter}, {"archive.retention", c.Archive.Retention},
		{"limits.short_code_reply", c.Limits.ShortCodeReply},
	} {
		if d.d.bad != "" {
			bad(d.key, "%q is not a duration such as 30s or 10m", d.d.bad)
		}
	}
	if c.XMPP.Component == "" {
		bad("xmpp.component", "required (the component domain, e.g. sms.example.com)")
	} else if j, err := jid.Parse(c.XMPP.Component); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		bad("xmpp.component", "%q is not a domain", c.XMPP.Component)
	}
	if c.XMPP.Secret != "" && c.XMPP.SecretFile != "" {
		// Neither may silently win: one may come from the environment.
		bad("xmpp.secret_file", "set xmpp.secret or xmpp.secret_file, not both")
	} else if err := readSecret(&c.XMPP.Secret, c.XMPP.SecretFile); err != nil {
		bad("xmpp.secret_file", "%v", err)
	}
	if c.XMPP.Secret == "" {
		bad("xmpp.secret", "required (the component secret from the XMPP server's configuration)")
	}
	if len(c.XMPP.Domains) == 0 {
		bad("xmpp.domains", "required (the XMPP domains whose users may use the gateway)")
	}
	for _, d := range c.XMPP.Domains {
		if j, err := jid.Parse(d); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
			bad("xmpp.domains", "%q is not a domain", d)
		} else if strings.EqualFold(d, c.XMPP.Component) {
			// The server would refuse the component (a host of its own),
			// and serve would retry for ever.
			bad("xmpp.component", "%q is also in xmpp.domains: the component needs a domain of its own, such as sms.%s", d, d)
		}
	}
	for _, a := range c.XMPP.Admins {
		if j, err := jid.Parse(a); err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			bad("xmpp.admins", "%q is not a bare user JID", a)
		}
	}
	if !hostPort(c.XMPP.Server) {
		bad("xmpp.server", "%q is not host:port", c.XMPP.Server)
	}
	c.SMPP.validate("smpp", bad)
	names := map[string]bool{c.SMPP.Name: true}
	for i := range c.SMSCs {
		key := fmt.Sprintf("smsc[%d]", i+1)
		c.SMSCs[i].validate(key, bad)
		switch n := c.SMSCs[i].Name; {
		case n == "":
			bad(key+".name", "required, to tell this SMSC's message ids from the others'")
		case names[n] || strings.Contains(n, "/"):
			bad(key+".name", "%q is used twice or contains /", n)
		}
		names[c.SMSCs[i].Name] = true
	}
	if !strings.HasPrefix(c.Store.DSN, "sqlite:") && !strings.HasPrefix(c.Store.DSN, "postgres://") && !strings.HasPrefix(c.Store.DSN, "postgresql://") {
		bad("store.dsn", "must start with sqlite:, postgres:// or postgresql://")
	}
	if r := c.Phone.DefaultRegion; r != "" && phonenumbers.GetCountryCodeForRegion(r) == 0 {
		bad("phone.default_region", "%q is not an ISO 3166 region code such as US or GB", r)
	}
	if c.SMS.MaxParts < 1 || c.SMS.MaxParts > 255 {
		bad("sms.max_parts", "%d is not between 1 and 255", c.SMS.MaxParts)
	}
	if c.SMS.Validity.bad == "" && c.SMS.Validity.D() < time.Minute {
		bad("sms.validity", "at least 1m")
	}
	if c.SMS.MaxAttempts < 1 {
		bad("sms.max_attempts", "at least 1")
	}
	if c.SMS.Reassembly.bad == "" && c.SMS.Reassembly.D() < time.Second {
		bad("sms.reassembly", "at least 1s")
	}
	if c.SMS.ReceiptWait.bad == "" && c.SMS.ReceiptWait.D() < time.Second {
		bad("sms.receipt_wait", "at least 1s")
	}
	r := c.Registration
	switch r.Verification {
	case "sms", "none":
	default:
		bad("registration.verification", "%q is not sms or none", r.Verification)
	}
	if strings.HasPrefix(r.Sender, "+") {
		if _, err := number.Parse(r.Sender, ""); err != nil {
			bad("registration.sender", "%q is not a valid E.164 number", r.Sender)
		}
	} else if _, ok := coding.EncodeGSM(r.Sender); !ok || len(r.Sender) > 11 {
		bad("registration.sender", "%q is neither an E.164 number nor an alphanumeric sender ID of at most 11 characters", r.Sender)
	}
	if !strings.Contains(r.Text, "{code}") {
		bad("registration.text", "must contain {code}")
	}
	if r.CodeTTL.bad == "" && r.CodeTTL.D() < time.Minute {
		bad("registration.code_ttl", "at least 1m")
	}
	if r.ResendAfter.bad == "" && r.ResendAfter.D() < 0 {
		bad("registration.resend_after", "must not be negative")
	}
	for _, v := range []struct {
		key string
		n   int
	}{
		{"registration.max_tries", r.MaxTries}, {"registration.per_number_day", r.PerNumberDay},
		{"registration.per_jid_day", r.PerJIDDay}, {"registration.global_hour", r.GlobalHour},
	} {
		if v.n < 1 {
			bad(v.key, "at least 1")
		}
	}
	for i, r := range c.Limits.AllowedCountries {
		c.Limits.AllowedCountries[i] = strings.ToUpper(r)
		if phonenumbers.GetCountryCodeForRegion(c.Limits.AllowedCountries[i]) == 0 {
			bad("limits.allowed_countries", "%q is not an ISO 3166 region code", r)
		}
	}
	for _, p := range c.Limits.BlockedPrefixes {
		if len(p) < 2 || p[0] != '+' || strings.Trim(p[1:], "0123456789") != "" {
			bad("limits.blocked_prefixes", "%q is not an E.164 prefix such as +1900", p)
		}
	}
	if c.Limits.ShortCodeReply.D() < 0 {
		bad("limits.short_code_reply", "must not be negative (0: short codes cannot be answered)")
	}
	if c.AddressBook.MaxContacts < 1 {
		bad("addressbook.max_contacts", "at least 1")
	}
	if c.AddressBook.DailyLookups < 1 {
		bad("addressbook.daily_lookups", "at least 1")
	}
	if c.Routing.SMSFallbackAfter.D() < 0 {
		bad("routing.sms_fallback_after", "must not be negative (0 disables the fallback)")
	}
	if c.Archive.Retention.D() < 0 {
		bad("archive.retention", "must not be negative (0 keeps messages forever)")
	}
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of trace, debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		bad("log.format", "%q is not json or console", c.Log.Format)
	}
	if c.HTTP.Listen != "" && !hostPort(c.HTTP.Listen) {
		bad("http.listen", "%q is not host:port, e.g. 127.0.0.1:9090", c.HTTP.Listen)
	}
	return errs
}

// hostPort reports whether s is host:port; the host may be left out
// (":9090": every address to listen on, the local host to dial).
func hostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return false
	}
	p, err := strconv.Atoi(s[i+1:])
	return err == nil && p > 0 && p < 65536
}

func readSecret(dst *string, file string) error {
	if file == "" {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	*dst = strings.TrimRight(string(b), "\r\n")
	return nil
}

// applyEnv sets fields from SWITCHBOARD_<SECTION>_<KEY> variables, and
// marks their keys given.
func applyEnv(cfg *Config, environ []string, given map[string]bool) []error {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "SWITCHBOARD_") {
			env[k] = v
		}
	}
	var errs []error
	known := make(map[string]bool)
	root := reflect.ValueOf(cfg).Elem()
	for i := range root.NumField() {
		section := root.Type().Field(i).Tag.Get("toml")
		sv := root.Field(i)
		if sv.Kind() != reflect.Struct {
			continue // [[smsc]] tables come from the file only
		}
		for j := range sv.NumField() {
			key := sv.Type().Field(j).Tag.Get("toml")
			name := "SWITCHBOARD_" + strings.ToUpper(section) + "_" + strings.ToUpper(key)
			known[name] = true
			v, ok := env[name]
			if !ok {
				continue
			}
			if err := setField(sv.Field(j), v); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s (from %s): %v", section, key, name, err))
				continue
			}
			given[section+"."+key] = true
		}
	}
	// A variable naming a known section but no key in it is a typo; other
	// SWITCHBOARD_ variables (the test suite's, for one) are not config.
	for k := range env {
		if known[k] {
			continue
		}
		for i := range root.NumField() {
			if strings.HasPrefix(k, "SWITCHBOARD_"+strings.ToUpper(root.Type().Field(i).Tag.Get("toml"))+"_") {
				errs = append(errs, fmt.Errorf("%s: unknown environment variable", k))
			}
		}
	}
	return errs
}

func setField(f reflect.Value, v string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = v
	case *[]string:
		*p = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, s)
			}
		}
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*p = n
	case *float64:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p = b
	case *Duration:
		return p.UnmarshalText([]byte(v))
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}
