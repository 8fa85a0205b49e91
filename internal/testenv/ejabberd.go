package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// EjabberdTemplate is the path of the ejabberd configuration template, relative to the module root.
const EjabberdTemplate = "testdata/ejabberd/ejabberd.yml.tmpl"

// EjabberdConfig is what the configuration template needs. Zero values mean the defaults.
type EjabberdConfig struct {
	Dir           string // absolute directory for configs, spool (Mnesia), logs and pid file; required
	Interface     string // address to listen on; default "127.0.0.1"
	C2SPort       int    // client port; default 5222
	ComponentPort int    // XEP-0114 component port; default 5347
	HTTPPort      int    // HTTP API port (account registration from loopback); default 5280
	DistPort      int    // Erlang distribution port (ERL_DIST_PORT; no epmd); default 5210
	Domain        string // the virtual host; default "localhost"
	Component     string // the component domain; default "sms.localhost"
	Secret        string // component password; required
	Privilege     bool   // load mod_privilege and grant Component roster "both", message "outgoing", presence "roster" (XEP-0356)
	LogLevel      string // ejabberd loglevel; default "info" (env SWITCHBOARD_EJABBERD_LOG overrides it in tests)
}

func (c EjabberdConfig) withDefaults() EjabberdConfig {
	if c.Interface == "" {
		c.Interface = "127.0.0.1"
	}
	if c.C2SPort == 0 {
		c.C2SPort = 5222
	}
	if c.ComponentPort == 0 {
		c.ComponentPort = 5347
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 5280
	}
	if c.DistPort == 0 {
		c.DistPort = 5210
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	if c.Component == "" {
		c.Component = "sms.localhost"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	return c
}

// ConfigFile is where WriteEjabberdConfig puts the rendered ejabberd.yml.
func (c EjabberdConfig) ConfigFile() string { return filepath.Join(c.Dir, "ejabberd.yml") }

// CtlConfigFile is the ejabberdctl configuration (a shell fragment) WriteEjabberdConfig writes.
// Pass it with --ctl-config: the Debian default (/etc/ejabberd/ejabberdctl.cfg, a link to
// /etc/default/ejabberd) sets EJABBERD_CONFIG_PATH and would override --config.
func (c EjabberdConfig) CtlConfigFile() string { return filepath.Join(c.Dir, "ejabberdctl.cfg") }

// SpoolDir holds the Mnesia database.
func (c EjabberdConfig) SpoolDir() string { return filepath.Join(c.Dir, "spool") }

// LogDir holds ejabberd.log, error.log and crash dumps.
func (c EjabberdConfig) LogDir() string { return filepath.Join(c.Dir, "logs") }

// LogFile is the file ejabberd logs to.
func (c EjabberdConfig) LogFile() string { return filepath.Join(c.LogDir(), "ejabberd.log") }

// PidFile is where ejabberd writes the pid of its Erlang VM.
func (c EjabberdConfig) PidFile() string { return filepath.Join(c.Dir, "ejabberd.pid") }

// erlWrapper is a script standing in for erl: it gives the Erlang VM a parent-death signal,
// so that it stops with the ejabberdctl shell that runs it (which does not exec it).
func (c EjabberdConfig) erlWrapper() string { return filepath.Join(c.Dir, "erl") }

// Node is the Erlang node name (-sname).
func (c EjabberdConfig) Node() string { return "switchboard@localhost" }

// RenderEjabberdConfig renders the template at EjabberdTemplate with c (defaults filled in).
func RenderEjabberdConfig(c EjabberdConfig) ([]byte, error) {
	c = c.withDefaults()
	if !filepath.IsAbs(c.Dir) {
		return nil, fmt.Errorf("testenv: ejabberd config: Dir %q is not absolute", c.Dir)
	}
	if c.Secret == "" {
		return nil, errors.New("testenv: ejabberd config: empty Secret")
	}
	path, err := moduleFile(EjabberdTemplate)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(filepath.Base(path)).Option("missingkey=error").
		Funcs(template.FuncMap{"yaml": yamlString}).ParseFiles(path)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return b.Bytes(), nil
}

// WriteEjabberdConfig renders c into c.ConfigFile(), writes c.CtlConfigFile() and creates the
// spool and log directories. Files are created as the calling user; hand c.Dir to the
// ejabberd user afterwards.
func WriteEjabberdConfig(c EjabberdConfig) error {
	c = c.withDefaults()
	text, err := RenderEjabberdConfig(c)
	if err != nil {
		return err
	}
	for _, d := range []string{c.SpoolDir(), c.LogDir()} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	if err := os.WriteFile(c.ConfigFile(), text, 0o640); err != nil {
		return err
	}
	// ERL_DIST_PORT makes ejabberdctl pass -erl_epmd_port and -start_epmd false: the node
	// listens on that port alone and no epmd is started.
	ctl := fmt.Sprintf("# Written by switchboard/internal/testenv.\n"+
		"EJABBERD_CONFIG_PATH=%s\nEJABBERD_PID_PATH=%s\nERL_DIST_PORT=%d\n"+
		"ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {127,0,0,1}\"\n",
		shellQuote(c.ConfigFile()), shellQuote(c.PidFile()), c.DistPort)
	if setpriv := findBinary("setpriv", "/usr/bin/setpriv"); setpriv != "" {
		wrapper := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig TERM /usr/bin/erl \"$@\"\n", shellQuote(setpriv))
		if err := os.WriteFile(c.erlWrapper(), []byte(wrapper), 0o750); err != nil {
			return err
		}
		ctl += "ERL=" + shellQuote(c.erlWrapper()) + "\n"
	}
	return os.WriteFile(c.CtlConfigFile(), []byte(ctl), 0o640)
}

// yamlString quotes s as a YAML double-quoted scalar (JSON strings are valid YAML).
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// EjabberdOptions configures StartEjabberd. Zero values mean the defaults.
type EjabberdOptions struct {
	Domain    string            // default "localhost"
	Component string            // default "sms.localhost"
	Secret    string            // component secret; default random
	Users     map[string]string // localpart → password, created once the server is up
	Privilege bool              // load mod_privilege and grant the component roster both, message outgoing, presence roster (XEP-0356)
}

// Ejabberd is a running throwaway ejabberd.
type Ejabberd struct {
	Domain, Component, Secret        string
	C2SAddr, ComponentAddr, HTTPAddr string // host:port on 127.0.0.1
	Dir                              string // configs, spool, logs (logs/ejabberd.log)

	cfg EjabberdConfig
	srv *xmppServer
}

// StartEjabberd starts an ejabberd 23.01 (Debian's ejabberdctl foreground) on free loopback
// ports with c2s (no TLS; SCRAM and PLAIN over plain TCP), one component and an HTTP API for
// accounts, and stops it on cleanup. It returns once every port accepts connections and the
// users exist. Without ejabberdctl the test is skipped, or fails when SWITCHBOARD_REQUIRE_SERVERS=1.
// ejabberdctl runs only as root (the server is then started as user ejabberd) or as ejabberd.
func StartEjabberd(t testing.TB, opts EjabberdOptions) *Ejabberd {
	t.Helper()
	bin := findBinary("ejabberdctl", "/usr/sbin/ejabberdctl", "/usr/local/sbin/ejabberdctl")
	if bin == "" {
		missingBinary(t, "ejabberd", "apt-get install ejabberd")
	}
	acct, err := ejabberdAccount()
	if err != nil {
		missingBinary(t, "a usable ejabberd ("+err.Error()+")", "run the tests as root or as user ejabberd")
	}
	dir, err := acct.tempDir("switchboard-ejabberd-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	e := &Ejabberd{Dir: dir, srv: &xmppServer{name: "ejabberd", bin: bin, acct: acct, dir: dir, timeout: 30 * time.Second,
		pidFile: EjabberdConfig{Dir: dir}.PidFile(), logFile: EjabberdConfig{Dir: dir}.LogFile()}}
	e.srv.cleanup(t, e.kill)

	if opts.Secret == "" {
		opts.Secret = randomHex(16)
	}
	// A server whose port was taken stops at once with eaddrinuse.
	err = onFreshPorts(t, "ejabberd", e.srv.logFile, "eaddrinuse", func() error {
		e.configure(t, opts, acct)
		return e.srv.launch(t, e.Domain, e.Component, []string{e.C2SAddr, e.ComponentAddr, e.HTTPAddr}, e.args()...)
	}, func() { e.halt(t, syscall.SIGKILL) })
	if err != nil {
		logTail(t, 40, e.srv.logFile, e.srv.outFile())
		t.Fatal(err)
	}
	// The first API call takes a few hundred milliseconds, later ones a few: register in parallel.
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		regErrs []error
	)
	for local, pass := range opts.Users {
		wg.Go(func() {
			if err := e.addUser(local, pass); err != nil {
				errMu.Lock()
				regErrs = append(regErrs, err)
				errMu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(regErrs...); err != nil {
		t.Fatal(err)
	}
	return e
}

// ejabberdAccount is the user ejabberd runs as: Debian's ejabberdctl accepts only root
// (and then switches to ejabberd with su) or ejabberd itself. Under root the test starts it
// as ejabberd directly, so that the server is a child of the test binary.
func ejabberdAccount() (account, error) {
	if os.Geteuid() == 0 {
		return serviceAccount("ejabberd")
	}
	if u, err := user.LookupId(strconv.Itoa(os.Geteuid())); err != nil || u.Username != "ejabberd" {
		return account{}, fmt.Errorf("ejabberdctl runs only as root or ejabberd, not as uid %d", os.Geteuid())
	}
	return account{uid: os.Geteuid(), gid: os.Getegid()}, nil
}

// AddUser creates or replaces the account local@Domain through the HTTP API; ejabberd must be running.
func (e *Ejabberd) AddUser(t testing.TB, local, password string) {
	t.Helper()
	if err := e.addUser(local, password); err != nil {
		t.Fatal(err)
	}
}

func (e *Ejabberd) addUser(local, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := map[string]string{"user": local, "host": e.Domain, "password": password}
	err := e.api(ctx, "register", args)
	if err != nil && strings.Contains(err.Error(), "already registered") {
		if err = e.api(ctx, "unregister", map[string]string{"user": local, "host": e.Domain}); err == nil {
			err = e.api(ctx, "register", args)
		}
	}
	if err != nil {
		return fmt.Errorf("testenv: ejabberd account %s@%s: %w", local, e.Domain, err)
	}
	return nil
}

// api calls an ejabberd command through mod_http_api.
func (e *Ejabberd) api(ctx context.Context, command string, args any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.HTTPAddr+"/api/"+command, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	var fail struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(text, &fail) == nil && fail.Status == "error" {
		return fmt.Errorf("%s: HTTP %d: %s", command, resp.StatusCode, bytes.TrimSpace(text))
	}
	return nil
}

// Restart stops ejabberd and starts it again on the same ports with the same data (Mnesia
// keeps the accounts and rosters), for reconnect tests. Every connection is dropped.
func (e *Ejabberd) Restart(t testing.TB) {
	t.Helper()
	e.stop(t)
	e.start(t)
}

// Stop shuts ejabberd down (SIGTERM to the Erlang VM, then wait). Cleanup does it too; Stop
// is for tests that need the server gone earlier.
func (e *Ejabberd) Stop(t testing.TB) {
	t.Helper()
	e.stop(t)
}

func (e *Ejabberd) start(t testing.TB) {
	t.Helper()
	e.srv.start(t, e.Domain, e.Component, []string{e.C2SAddr, e.ComponentAddr, e.HTTPAddr}, e.args()...)
}

// args is the ejabberdctl command line running the server in the foreground.
func (e *Ejabberd) args() []string {
	return []string{"--ctl-config", e.cfg.CtlConfigFile(), "--config", e.cfg.ConfigFile(),
		"--spool", e.cfg.SpoolDir(), "--logs", e.cfg.LogDir(), "--node", e.cfg.Node(), "foreground"}
}

// configure picks ports, writes the configuration and hands the directory to acct.
func (e *Ejabberd) configure(t testing.TB, opts EjabberdOptions, acct account) {
	t.Helper()
	ports, err := freePorts(4)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	e.cfg = EjabberdConfig{
		Dir:           e.Dir,
		C2SPort:       ports[0],
		ComponentPort: ports[1],
		HTTPPort:      ports[2],
		DistPort:      ports[3],
		Domain:        opts.Domain,
		Component:     opts.Component,
		Secret:        opts.Secret,
		Privilege:     opts.Privilege,
		LogLevel:      os.Getenv("SWITCHBOARD_EJABBERD_LOG"),
	}.withDefaults()
	e.Domain, e.Component, e.Secret = e.cfg.Domain, e.cfg.Component, e.cfg.Secret
	e.C2SAddr = net.JoinHostPort(e.cfg.Interface, strconv.Itoa(e.cfg.C2SPort))
	e.ComponentAddr = net.JoinHostPort(e.cfg.Interface, strconv.Itoa(e.cfg.ComponentPort))
	e.HTTPAddr = net.JoinHostPort(e.cfg.Interface, strconv.Itoa(e.cfg.HTTPPort))
	if err := WriteEjabberdConfig(e.cfg); err != nil {
		t.Fatal(err)
	}
	if err := acct.chown(e.Dir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// stop sends SIGTERM to the Erlang VM (its pid file names it) and waits for ejabberdctl,
// which waits for the VM, to exit. Signalling the shell instead would end it at once and
// leave the VM shutting down (and holding the ports) after stop returned.
func (e *Ejabberd) stop(t testing.TB) { e.halt(t, syscall.SIGTERM) }

// kill ends ejabberd at once (SIGKILL), for cleanup: its data is thrown away, and a graceful
// stop takes about a second.
func (e *Ejabberd) kill(t testing.TB) { e.halt(t, syscall.SIGKILL) }

func (e *Ejabberd) halt(t testing.TB, sig syscall.Signal) {
	t.Helper()
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	if e.srv.proc == nil {
		return
	}
	begin := time.Now()
	p := e.srv.proc
	e.srv.proc = nil
	pgid := p.cmd.Process.Pid
	if pid := readPid(e.cfg.PidFile()); pid > 0 && pgidOf(pid) == pgid {
		_ = syscall.Kill(pid, sig)
	} else {
		_ = syscall.Kill(-pgid, sig)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
		t.Errorf("testenv: ejabberd did not exit within 15s of %v; killed", sig)
	}
	t.Logf("testenv: ejabberd stopped (%v) in %v", sig, time.Since(begin).Round(time.Millisecond))
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// pgidOf returns the process group of pid, or -1.
func pgidOf(pid int) int {
	g, err := syscall.Getpgid(pid)
	if err != nil {
		return -1
	}
	return g
}
