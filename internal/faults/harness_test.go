//go:build faults

package faults

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smpp"
	"switchboard/smsgw/smsc"
	"switchboard/store"
)

// bin is the switchboard binary, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "switchboard")
	code := 1
	if err := build(bin); err != nil {
		fmt.Fprintln(os.Stderr, "faults: building switchboard:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(out string) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/switchboard")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// Load parameters, from the environment.
var (
	rate    = envFloat("FAULTS_RATE", 40)
	seconds = envFloat("FAULTS_SECONDS", 12)
	moRate  = envFloat("FAULTS_MO_RATE", rate/4)
)

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// loadTime is how long the load runs.
func loadTime() time.Duration { return time.Duration(seconds * float64(time.Second)) }

const (
	nUsers      = 4
	nPhones     = 8
	window      = 10 // smpp.window of every instance
	respTimeout = 2 * time.Second
	enquireLink = 2 * time.Second
	systemID    = "switchboard"
	failEvery   = 10 // every tenth user message gets an UNDELIV receipt
	// noticeBatch is router.noticeBatch: the most notices one Sync confirms.
	noticeBatch = 256
	// claimed is smsgw's default Concurrency: the most messages one
	// instance holds between claim and recorded SMSC id.
	claimed = 64
)

func userNumber(i int) string  { return fmt.Sprintf("+120155501%02d", i) }
func phoneNumber(j int) string { return fmt.Sprintf("+120155501%02d", 50+j) }

// xmppServer is what a scenario needs of Prosody or ejabberd.
type xmppServer struct {
	Domain, Component, Secret string
	C2SAddr, ComponentAddr    string
	Restart                   func(testing.TB)
}

// env is one scenario's world.
type env struct {
	t    *testing.T
	name string
	dir  string
	xmpp xmppServer
	dsn  string
	log  zerolog.Logger

	smscAddr string // fixed: the simulator comes back on the same address
	simCfg   smsc.Config

	mu     sync.Mutex
	sim    *smsc.Server
	sims   []*smsc.Server // every simulator of the scenario, the current one last
	issued int            // message ids the simulators handed out so far

	instances []*instance
	users     []*user
	tally     *tally
	carrier   *carrier
	faults    []time.Time // when each fault was injected
}

// fault records that a fault is being injected now.
func (e *env) fault() { e.faults = append(e.faults, time.Now()) }

type options struct {
	ejabberd bool   // ejabberd instead of Prosody
	dsn      string // store; default a SQLite file
}

func newEnv(t *testing.T, name string, o options) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "switchboard-faults-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs and configuration kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	e := &env{t: t, name: name, dir: dir, log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	users := map[string]string{}
	for i := range nUsers {
		users[fmt.Sprintf("u%d", i)] = fmt.Sprintf("pass%d", i)
	}
	if o.ejabberd {
		x := testenv.StartEjabberd(t, testenv.EjabberdOptions{Users: users})
		e.xmpp = xmppServer{x.Domain, x.Component, x.Secret, x.C2SAddr, x.ComponentAddr, x.Restart}
	} else {
		x := testenv.StartProsody(t, testenv.ProsodyOptions{Users: users})
		e.xmpp = xmppServer{x.Domain, x.Component, x.Secret, x.C2SAddr, x.ComponentAddr, x.Restart}
	}
	e.dsn = o.dsn
	if e.dsn == "" {
		e.dsn = "sqlite:" + filepath.Join(e.dir, "switchboard.db")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nUsers {
		if _, err := st.Bind(ctx, userNumber(i), fmt.Sprintf("u%d@%s", i, e.xmpp.Domain), "operator"); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	// The simulator accepts any credentials, so that the id burner (see
	// restartSMSC) can bind beside the gateway. Receipts are the carrier's job.
	e.simCfg = smsc.Config{Outcome: smsc.OutcomeNone, Logger: e.log}
	e.sim = smsc.NewServer(e.simCfg)
	e.smscAddr, err = e.sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.sims = []*smsc.Server{e.sim}
	t.Cleanup(func() { e.currentSim().Close() })
	e.tally = newTally()
	e.carrier = newCarrier(e)
	return e
}

func (e *env) currentSim() *smsc.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sim
}

// configFile writes the configuration of instance n.
func (e *env) configFile(n int) string {
	x := e.xmpp
	text := fmt.Sprintf(`[xmpp]
component = %q
server = %q
secret = %q
domains = [%q]

[smpp]
addr = %q
system_id = %q
password = "secret"
window = %d
enquire_link = %q
resp_timeout = %q

[store]
dsn = %q

[phone]
default_region = "US"

[sms]
max_attempts = 1000
validity = "1h"

[registration]
verification = "none"

[routing]
sms_fallback_after = "0"

[limits]
per_user_minute = -1
per_user_day = -1
global_minute = -1
relays_per_user_minute = -1

[log]
level = "info"
`, x.Component, x.ComponentAddr, x.Secret, x.Domain, e.smscAddr, systemID, window, enquireLink, respTimeout, e.dsn)
	path := filepath.Join(e.dir, fmt.Sprintf("switchboard-%d.toml", n))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// instance is a running switchboard serve.
type instance struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // valid once exited is closed
}

// start runs switchboard serve with configuration n and waits until it is
// connected to the XMPP server and bound to the SMSC.
func (e *env) start(n int) *instance {
	e.t.Helper()
	cfg := e.configFile(n)
	gen := len(e.instances)
	inst := &instance{
		name:    fmt.Sprintf("sb%d.%d", n, gen),
		logPath: filepath.Join(e.dir, fmt.Sprintf("switchboard-%d.%d.log", n, gen)),
		exited:  make(chan struct{}),
	}
	out, err := os.Create(inst.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	inst.cmd = exec.Command(bin, "serve", "-config", cfg)
	inst.cmd.Dir = e.dir
	inst.cmd.Stdout, inst.cmd.Stderr = out, out
	inst.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := inst.cmd.Start(); err != nil {
		out.Close()
		e.t.Fatal(err)
	}
	go func() {
		inst.err = inst.cmd.Wait()
		out.Close()
		close(inst.exited)
	}()
	e.instances = append(e.instances, inst)
	e.t.Cleanup(func() { inst.signal(syscall.SIGKILL, 10*time.Second) })
	deadline := time.Now().Add(30 * time.Second)
	for !inst.logHas("connected to XMPP server") || !inst.logHas("smpp bound") {
		select {
		case <-inst.exited:
			e.t.Fatalf("%s exited before it was ready: %v\n%s", inst.name, inst.err, inst.tail(30))
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s not ready after 30s:\n%s", inst.name, inst.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Logf("%s (pid %d) ready", inst.name, inst.cmd.Process.Pid)
	return inst
}

// signal sends sig and waits up to grace for the exit; it reports whether
// the process exited in time (it is killed otherwise).
func (i *instance) signal(sig syscall.Signal, grace time.Duration) bool {
	select {
	case <-i.exited:
		return true
	default:
	}
	_ = i.cmd.Process.Signal(sig)
	select {
	case <-i.exited:
		return true
	case <-time.After(grace):
		_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
		<-i.exited
		return false
	}
}

func (i *instance) logHas(s string) bool {
	b, _ := os.ReadFile(i.logPath)
	return strings.Contains(string(b), s)
}

func (i *instance) tail(n int) string {
	f, err := os.Open(i.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// countLog counts log lines of every instance that contain s.
func (e *env) countLog(s string) int {
	n := 0
	for _, i := range e.instances {
		b, _ := os.ReadFile(i.logPath)
		n += strings.Count(string(b), s)
	}
	return n
}

// restartSMSC closes the simulator (every connection drops, the port
// refuses connections), waits down, and starts a new one on the same
// address. A real carrier does not reuse message ids after a restart and
// keeps its undelivered receipts: the carrier goroutine keeps them, and the
// new simulator first hands out as many ids as the old ones did, to a
// burner ESME on a private port, so that its ids are new.
func (e *env) restartSMSC(down time.Duration) {
	e.t.Helper()
	old := e.currentSim()
	old.Close()
	e.carrier.drainSim(old)
	e.mu.Lock()
	e.issued += len(old.Messages())
	burn := e.issued
	e.mu.Unlock()
	time.Sleep(down)

	sim := smsc.NewServer(e.simCfg)
	private, err := sim.Start("127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := burnIDs(private, burn); err != nil {
		e.t.Fatalf("burning %d ids: %v", burn, err)
	}
	for try := 0; ; try++ {
		if _, err = sim.Start(e.smscAddr); err == nil {
			break
		}
		if try == 100 {
			e.t.Fatalf("restarting the SMSC on %s: %v", e.smscAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.mu.Lock()
	e.sim = sim
	e.sims = append(e.sims, sim)
	e.mu.Unlock()
	e.t.Logf("SMSC back on %s after %v (%d ids burnt)", e.smscAddr, down, burn)
}

// burnIDs submits n throw-away messages to addr as system_id "burner".
func burnIDs(addr string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := smpp.NewClient(smpp.Config{Addr: addr, SystemID: "burner", Window: 64, Logger: zerolog.Nop()})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() { stop(); <-done }()
	if err := c.WaitBound(ctx); err != nil {
		return err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, 64)
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := c.Submit(ctx, &smpp.Submit{
				Source:       smpp.Address{TON: 1, NPI: 1, Addr: "12015550198"},
				Dest:         smpp.Address{TON: 1, NPI: 1, Addr: "12015550197"},
				ShortMessage: []byte("burn"),
			})
			if err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// storedOut returns the stanza ids of the outbound messages in the store,
// with their states.
func (e *env) storedOut(ctx context.Context) (map[string]string, error) {
	var (
		db  *sql.DB
		err error
	)
	if path, ok := strings.CutPrefix(e.dsn, "sqlite:"); ok {
		db, err = store.OpenSQLite(path)
	} else {
		db, err = sql.Open("postgres", e.dsn)
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT stanza_id, state, attempts, (SELECT count(*) FROM notices WHERE message_id = messages.id), error FROM messages WHERE direction = 'out'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var (
			id, state, errText string
			attempts, notify   int
		)
		if err := rows.Scan(&id, &state, &attempts, &notify, &errText); err != nil {
			return nil, err
		}
		out[id] = fmt.Sprintf("%s attempts=%d notify=%d error=%q", state, attempts, notify, errText)
	}
	return out, rows.Err()
}
