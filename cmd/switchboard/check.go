package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"
	"github.com/rs/zerolog"
	xmppcomponent "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"switchboard/component"
	"switchboard/smsgw/smpp"
	"switchboard/store"
)

// checkTimeout bounds each of check's connection attempts.
const checkTimeout = 10 * time.Second

// checkResult is one line of check's report.
type checkResult struct {
	name   string // store, xmpp, smpp, smpp NAME (an [[smsc]] table)
	ok     bool
	detail string // what was checked, or what is wrong; never a secret
}

func (r checkResult) String() string {
	status := "ok"
	if !r.ok {
		status = "FAIL"
	}
	return fmt.Sprintf("%-5s %-10s %s", status, r.name, r.detail)
}

// cmdCheck loads the configuration like serve, then opens the store, performs
// the XEP-0114 handshake and binds to the SMSC, once each, and reports one
// line per connection. A bad configuration is a configError (exit 2); a failed
// check is a plain error (exit 1).
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (TOML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"check takes no arguments besides -config"}
	}
	cfg, err := loadConfig(*path, os.Environ())
	if err != nil {
		return err
	}
	results := runChecks(ctx, cfg)
	failed := 0
	for _, r := range results {
		fmt.Fprintln(stdout, r)
		if !r.ok {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(results))
	}
	return nil
}

// runChecks runs the store check, then the XMPP and SMPP checks (one per
// SMSC) concurrently, and returns their results in that order.
func runChecks(ctx context.Context, cfg *Config) []checkResult {
	sctx, cancel := context.WithTimeout(ctx, checkTimeout)
	storeResult, running := checkStore(sctx, cfg)
	cancel()
	checks := []func(context.Context) checkResult{
		func(ctx context.Context) checkResult { return checkXMPP(ctx, cfg, storeResult.ok, running) },
		func(ctx context.Context) checkResult { return checkSMSC(ctx, cfg.SMPP, "smpp", "smpp") }}
	for i, c := range cfg.SMSCs {
		checks = append(checks, func(ctx context.Context) checkResult {
			return checkSMSC(ctx, c, "smpp "+c.Name, fmt.Sprintf("smsc[%d]", i+1))
		})
	}
	results := make([]checkResult, 1+len(checks))
	results[0] = storeResult
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			results[1+i] = check(cctx)
		})
	}
	wg.Wait()
	return results
}

// checkStore opens the store as serve would (creating and migrating it if
// needed) and pings it. It returns the instances it says are connected to
// the XMPP server.
func checkStore(ctx context.Context, cfg *Config) (checkResult, []store.Instance) {
	dsn := cfg.Store.DSN
	r := checkResult{name: "store", detail: describeDSN(dsn)}
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		if problem := sqliteWritable(strings.TrimPrefix(path, "//")); problem != "" {
			r.detail = problem
			return r, nil
		}
	}
	var running []store.Instance
	st, err := store.Open(ctx, dsn)
	if err == nil {
		err = st.Ping(ctx)
		if err == nil {
			running, err = st.ConnectedInstances(ctx, time.Now().Add(-3*heartbeatEvery))
		}
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		r.detail = storeProblem(dsn, err)
		return r, nil
	}
	r.ok = true
	r.detail += fmt.Sprintf(" (schema at migration %d)", store.Schema())
	return r, running
}

// describeDSN names the database without its password or parameters.
func describeDSN(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres (store.dsn is not a valid URL)"
	}
	d := url.URL{Scheme: u.Scheme, Host: pgAddr(u), Path: u.Path}
	if u.User != nil {
		d.User = url.User(u.User.Username())
	}
	return d.String()
}

// pgAddr is the host:port lib/pq connects to for u.
func pgAddr(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = u.Query().Get("host")
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = u.Query().Get("port")
	}
	if port == "" {
		port = "5432"
	}
	if strings.HasPrefix(host, "/") {
		return host // a Unix socket directory
	}
	return net.JoinHostPort(host, port)
}

// sqliteWritable reports why serve could not write the SQLite database at
// path (and its -wal and -shm files next to it), or "" if it can.
func sqliteWritable(path string) string {
	dir := filepath.Dir(path)
	where := dir
	if !filepath.IsAbs(dir) {
		if abs, err := filepath.Abs(dir); err == nil {
			where = abs
		}
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("sqlite:%s: the directory %s does not exist", path, where)
	case err != nil:
		return fmt.Sprintf("sqlite:%s: %v", path, err)
	case !fi.IsDir():
		return fmt.Sprintf("sqlite:%s: %s is not a directory", path, where)
	}
	f, err := os.CreateTemp(dir, ".switchboard-check-*")
	if err != nil {
		return fmt.Sprintf("sqlite:%s: cannot create files in %s (%v); the database, its -wal and -shm files live there",
			path, where, errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("sqlite:%s: cannot write the database file (%v)", path, errors.Unwrap(err))
	}
	return ""
}

// storeProblem says in plain words why store.Open failed.
func storeProblem(dsn string, err error) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return fmt.Sprintf("%s: %s", dsn, err)
	}
	u, perr := url.Parse(dsn)
	if perr != nil {
		return "store.dsn is not a valid URL"
	}
	addr := pgAddr(u)
	var pe *pq.Error
	switch {
	case errors.As(err, &pe):
		switch code := string(pe.Code); {
		case strings.HasPrefix(code, "28"):
			return fmt.Sprintf("PostgreSQL at %s refused the login: %s (check the user and password in store.dsn)", addr, pe.Message)
		case code == "3D000":
			return fmt.Sprintf("PostgreSQL at %s: %s (create it, or fix the database name in store.dsn)", addr, pe.Message)
		default:
			return fmt.Sprintf("PostgreSQL at %s: %s", addr, pe.Message)
		}
	case errors.Is(err, pq.ErrSSLNotSupported):
		return fmt.Sprintf("PostgreSQL at %s does not offer TLS, and lib/pq requires it by default (add sslmode=disable to store.dsn on a trusted network)", addr)
	case isNetError(err):
		return fmt.Sprintf("cannot connect to PostgreSQL at %s: %s (is PostgreSQL running there, and is store.dsn right?)", addr, netProblem(err))
	}
	return fmt.Sprintf("PostgreSQL at %s: %s", addr, err) // store.Open hides the password
}

// checkXMPP connects to the component port and performs the XEP-0114
// handshake, then closes the stream; but not while an instance is
// connected (running): ejabberd accepts a second connection for the
// component, and when it ends, drops the privileges (XEP-0356) of the
// first one too, so that the running gateway would see no presence.
func checkXMPP(ctx context.Context, cfg *Config, storeOK bool, running []store.Instance) checkResult {
	c := cfg.XMPP
	r := checkResult{name: "xmpp"}
	if len(running) > 0 {
		in := running[0]
		r.ok, r.detail = true, fmt.Sprintf("%s at %s: not tried, switchboard %s is connected (seen %s ago) and a second connection "+
			"would disturb it (on ejabberd its end drops the running one's privileges); stop it to check the handshake",
			c.Component, c.Server, in.Name, time.Since(in.Seen).Round(time.Second))
		if len(running) > 1 {
			r.detail += fmt.Sprintf(" (%d instances are connected)", len(running))
		}
		return r
	}
	fail := func(format string, args ...any) checkResult {
		r.detail = c.Server + ": " + fmt.Sprintf(format, args...)
		return r
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Server)
	if err != nil {
		return fail("%s (is the XMPP server running, and is its component port %s?)", netProblem(err), c.Server)
	}
	defer conn.Close()
	if !storeOK {
		// The store says which gateways are connected: without it, a
		// running one (the usual case while the store is down) would get
		// a second component connection beside it. The port answers; the
		// handshake waits.
		r.ok, r.detail = true, fmt.Sprintf("%s at %s: port open, handshake not tried: the store could not say whether a switchboard is connected, "+
			"and a second connection would disturb it (on ejabberd its end drops the running one's privileges); fix the store first",
			c.Component, c.Server)
		return r
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if c.TLS {
		host, _, _ := net.SplitHostPort(c.Server)
		tc := tls.Client(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("TLS handshake failed: %v (xmpp.tls is on: does this port speak direct TLS?)", err)
		}
		conn = tc
	}
	domain := jid.MustParse(c.Component)
	s, err := xmppcomponent.NewSession(ctx, domain, []byte(c.Secret), conn)
	if err == nil {
		_ = s.Close()
		r.ok, r.detail = true, fmt.Sprintf("%s at %s", c.Component, c.Server)
		return r
	}
	var se stream.Error
	if errors.As(err, &se) {
		text := ""
		for _, t := range se.Text {
			text = t.Value
		}
		switch se.Err {
		case "not-authorized":
			return fail("the XMPP server refused the component secret for %s (xmpp.secret must equal the server's secret for it: "+
				"Prosody's component_secret; ejabberd's password under hosts of its ejabberd_service listener, where an unknown "+
				"component name is refused the same way)", c.Component)
		case "conflict":
			if !strings.Contains(text, "local domain") {
				// Prosody checks the secret first, then refuses a second connection.
				r.ok, r.detail = true, fmt.Sprintf("%s at %s (secret accepted; the component is already connected, a running switchboard?)", c.Component, c.Server)
				return r
			}
		}
		if p := component.HandshakeProblem(err, c.Component); p != "" {
			return fail("%s", p)
		}
		if text != "" {
			text = fmt.Sprintf(" (%q)", text)
		}
		return fail("the XMPP server ended the handshake with %s%s", se.Err, text)
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return fail("the server closed the connection during the handshake (is this an XMPP component port%s?)", tlsHint(c.TLS))
	case isTimeout(err) || ctx.Err() != nil:
		return fail("no answer to the component handshake within %v (is this an XMPP component port%s?)", checkTimeout, tlsHint(c.TLS))
	}
	return fail("component handshake: %v", err)
}

func tlsHint(on bool) string {
	if on {
		return ", and does it speak direct TLS (xmpp.tls)?"
	}
	return ", or does it want TLS (xmpp.tls)"
}

// checkSMSC binds to one SMSC as transceiver with a smpp.Client, then
// unbinds. name labels the result; key ("smpp", "smsc[N]") names the
// configuration keys in hints.
func checkSMSC(ctx context.Context, c SMPPConfig, name, key string) checkResult {
	r := checkResult{name: name}
	fail := func(format string, args ...any) checkResult {
		r.detail = c.Addr + ": " + fmt.Sprintf(format, args...)
		return r
	}
	// A plain TCP connection first, so an unreachable SMSC gets a typed error.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fail("%s (is the SMSC reachable, and is %s.addr right?)", netProblem(err), key)
	}
	conn.Close()

	var tlsCfg *tls.Config
	if c.TLS {
		if tlsCfg, err = tlsConfig(c); err != nil {
			return fail("%v", err)
		}
	}
	// The client retries a failed bind and only logs why; the first logged
	// failure is the answer.
	failures := make(chan string, 1)
	client := smpp.NewClient(smpp.Config{
		Addr:         c.Addr,
		TLS:          tlsCfg,
		SystemID:     c.SystemID,
		Password:     c.Password,
		SystemType:   c.SystemType,
		BindTimeout:  checkTimeout,
		RespTimeout:  min(c.RespTimeout.D(), 5*time.Second),
		ReconnectMin: time.Hour,
		Logger:       zerolog.New(bindFailures(failures)).Level(zerolog.WarnLevel),
	})
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- client.Run(runCtx) }()
	bound := make(chan error, 1)
	go func() { bound <- client.WaitBound(ctx) }()

	gotBound, gotRun := false, false
	select {
	case err = <-bound:
		gotBound = true
		switch {
		case err == nil:
			r.ok, r.detail = true, fmt.Sprintf("bound as %s at %s", c.SystemID, c.Addr)
		case ctx.Err() != nil:
			r = fail("no answer to bind_transceiver within %v (is this an SMPP port%s?)", checkTimeout, smppTLSHint(c.TLS, key))
		default:
			r = fail("%v", err)
		}
	case msg := <-failures:
		r = fail("%s", bindProblem(msg, c, key))
	case err = <-ran:
		gotRun = true
		r = fail("%v", err)
	}
	stop() // Run unbinds if bound, and returns
	if !gotRun {
		<-ran
	}
	if !gotBound {
		<-bound // WaitBound returns once Run has
	}
	return r
}

func smppTLSHint(on bool, key string) string {
	if on {
		return ", and does it speak TLS (" + key + ".tls)?"
	}
	return ", or does it want TLS (" + key + ".tls)"
}

// bindFailures is a zerolog writer that passes on the error of the first
// warning or error the SMPP client logs.
type bindFailures chan<- string

func (ch bindFailures) Write(p []byte) (int, error) {
	var rec struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(p, &rec) == nil && rec.Error != "" {
		select {
		case ch <- rec.Error:
		default:
		}
	}
	return len(p), nil
}

var statusRE = regexp.MustCompile(`\(0x([0-9A-Fa-f]{8})\)`)

// bindProblem turns a bind failure logged by the SMPP client into plain words.
func bindProblem(msg string, c SMPPConfig, key string) string {
	if m := statusRE.FindStringSubmatch(msg); m != nil {
		code, _ := strconv.ParseUint(m[1], 16, 32)
		st := smpp.Status(code)
		hint := ""
		switch st {
		case smpp.StatusInvPaswd:
			hint = " (check " + key + ".password)"
		case smpp.StatusInvSysID:
			hint = " (check " + key + ".system_id)"
		case smpp.StatusInvSysTyp:
			hint = " (check " + key + ".system_type)"
		case smpp.StatusAlyBnd:
			hint = " (the SMSC allows no more binds for this account; is switchboard already running?)"
		case smpp.StatusBindFail:
			hint = fmt.Sprintf(" (check %[1]s.system_id, %[1]s.password and %[1]s.system_type, and whether the SMSC accepts binds from this address)", key)
		}
		return fmt.Sprintf("the SMSC rejected the bind as %q: %s%s", c.SystemID, st.String(), hint)
	}
	switch {
	case strings.Contains(msg, "EOF"), strings.Contains(msg, "connection reset"):
		return fmt.Sprintf("the SMSC closed the connection without answering bind_transceiver (is this an SMPP port%s?)", smppTLSHint(c.TLS, key))
	case strings.Contains(msg, "deadline exceeded"), strings.Contains(msg, "i/o timeout"):
		return fmt.Sprintf("no answer to bind_transceiver within %v (is this an SMPP port%s?)", checkTimeout, smppTLSHint(c.TLS, key))
	}
	return msg
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &de) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// netProblem names a connection failure in a few words.
func netProblem(err error) string {
	var de *net.DNSError
	switch {
	case errors.As(err, &de):
		return fmt.Sprintf("cannot resolve host %q", de.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case isTimeout(err):
		return fmt.Sprintf("no answer within %v", checkTimeout)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}
