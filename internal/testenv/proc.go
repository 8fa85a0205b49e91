package testenv

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireServersEnv names the environment variable that turns a missing server binary
// from a skipped test into a failed one.
const RequireServersEnv = "SWITCHBOARD_REQUIRE_SERVERS"

// missingBinary skips or fails t for a server that is not installed.
func missingBinary(t testing.TB, what, hint string) {
	t.Helper()
	if os.Getenv(RequireServersEnv) == "1" {
		t.Fatalf("testenv: %s is not installed and %s=1 (%s)", what, RequireServersEnv, hint)
	}
	t.Skipf("testenv: %s is not installed (%s); set %s=1 to fail instead of skipping", what, hint, RequireServersEnv)
}

// findBinary returns the first of candidates that exists: a bare name is looked up in PATH,
// a pattern with a '*' is globbed (the last match in lexical order wins, i.e. the newest version).
func findBinary(candidates ...string) string {
	for _, c := range candidates {
		switch {
		case strings.Contains(c, "*"):
			m, _ := filepath.Glob(c)
			for i := len(m) - 1; i >= 0; i-- {
				if isExecutable(m[i]) {
					return m[i]
				}
			}
		case strings.Contains(c, "/"):
			if isExecutable(c) {
				return c
			}
		default:
			if p, err := exec.LookPath(c); err == nil {
				return p
			}
		}
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// account is the identity a server process runs as. Zero value: the current user.
type account struct {
	name     string
	uid, gid int
}

func (a account) switches() bool { return a.name != "" }

// serviceAccount returns the system user a server must run as: name when the test runs as root
// (Prosody and PostgreSQL refuse root), else the current user.
func serviceAccount(name string) (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, fmt.Errorf("testenv: running as root needs the system user %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, fmt.Errorf("testenv: user %q: bad uid %q", name, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return account{}, fmt.Errorf("testenv: user %q: bad gid %q", name, u.Gid)
	}
	return account{name: name, uid: uid, gid: gid}, nil
}

// tempDir makes a fresh directory under os.TempDir owned by a. Unlike t.TempDir its parents
// are traversable by other users.
func (a account) tempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		return "", err
	}
	return dir, a.chown(dir)
}

// chown hands dir and everything below it to a.
func (a account) chown(dir string) error {
	if !a.switches() {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, a.uid, a.gid)
	})
}

// command prepares name to run as a in its own process group, killed with deathSig when
// the test binary dies. Output goes to logPath.
func (a account) command(deathSig syscall.Signal, dir, logPath, name string, args ...string) (*exec.Cmd, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	if a.switches() {
		if err := out.Chown(a.uid, a.gid); err != nil {
			out.Close()
			return nil, err
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"TZ=UTC",
	}
	if a.switches() {
		cmd.Env = append(cmd.Env, "USER="+a.name, "LOGNAME="+a.name)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if a.switches() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
	}
	return cmd, nil
}

// ServerCommand prepares name the way StartProsody and friends run a server, for callers
// without a testing.TB (internal/bench): as the system user when the caller is root (dir and
// everything below it are handed to that user first; see serviceAccount), else as the caller;
// in its own process group; killed with deathSig when the caller dies; output appended to
// logPath (closing it after Wait is the caller's job).
func ServerCommand(user string, deathSig syscall.Signal, dir, logPath, name string, args ...string) (*exec.Cmd, error) {
	a, err := serviceAccount(user)
	if err != nil {
		return nil, err
	}
	if err := a.chown(dir); err != nil {
		return nil, err
	}
	return a.command(deathSig, dir, logPath, name, args...)
}

// process is a started server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid once exited is closed
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		closeOutput(cmd)
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		closeOutput(cmd)
		close(p.exited)
	}()
	return p, nil
}

func closeOutput(cmd *exec.Cmd) {
	if f, ok := cmd.Stdout.(*os.File); ok {
		f.Close()
	}
}

// stop sends sig and waits up to grace for the process to exit, then kills its process group.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	return fmt.Errorf("testenv: %s did not exit within %v of %v; killed", filepath.Base(p.cmd.Path), grace, sig)
}

// waitReady polls ready until it succeeds, the process exits or timeout passes.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("testenv: %s exited before it was ready: %v", filepath.Base(p.cmd.Path), p.err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not ready after %v: %w", filepath.Base(p.cmd.Path), timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment
// ago. The listeners stay open until all n are chosen: closed one by one,
// the system may hand out the same port twice (a Prosody with c2s and
// component on one port, whose component never connected, was seen in CI).
//
// The ports come from below the system's ephemeral range: a port the
// system hands out for ":0" is one any outgoing connection (of this or of
// another test binary running in parallel) may take as its source port
// between the pick and the server's bind (an ejabberd stopping with
// eaddrinuse was seen in CI).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	given.Lock()
	defer given.Unlock()
	lo, hi := quietPorts()
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 1000 {
			addr = "127.0.0.1:" + strconv.Itoa(lo+mrand.IntN(hi-lo))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr != "127.0.0.1:0" {
				continue // taken
			}
			return nil, err
		}
		defer l.Close()
		p := l.Addr().(*net.TCPAddr).Port
		if given.m[p] {
			continue // free again, but handed to another server of this test binary
		}
		given.m[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// quietPorts is the range [lo, hi) freePorts picks from: the half below
// the ephemeral range (net.ipv4.ip_local_port_range), at least 1024. An
// empty range (unknown, or an ephemeral range starting too low) means ":0".
func quietPorts() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	hi, err = strconv.Atoi(f[0])
	if err != nil || hi < 4096 {
		return 0, 0
	}
	return max(hi/2, 1024), hi
}

// onFreshPorts runs start, which picks free ports and starts a server on
// them, up to three times: a port free when picked may be taken before the
// server binds it (by another test binary's server). A try failed that way
// when start says so (errPortTaken) or the server's log holds taken, even
// if start returned nil (Prosody runs on without the port); undo then stops
// what it left running and the log is removed for the next try. Any other
// failure, or the third, is returned (after undo).
func onFreshPorts(t testing.TB, name, logFile, taken string, start func() error, undo func()) error {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := start()
		log, _ := os.ReadFile(logFile)
		portTaken := errors.Is(err, errPortTaken) || bytes.Contains(log, []byte(taken))
		if err == nil {
			if !portTaken {
				return nil
			}
			err = fmt.Errorf("testenv: %s could not open its ports: %w", name, errPortTaken)
		}
		undo()
		if attempt == 3 || !portTaken {
			return err
		}
		t.Logf("testenv: %s could not open its ports (attempt %d); again on others", name, attempt)
		_ = os.Remove(logFile)
	}
}

// errPortTaken is a server's port taken by another.
var errPortTaken = errors.New("port taken")

// given holds the ports freePorts handed out in this process: a port is
// free from its close until the server binds it, and tests in parallel
// got the same one (two Prosody servers, one failing to open its
// component port while its component reached the other's).
var given = struct {
	sync.Mutex
	m map[int]bool
}{m: make(map[int]bool)}

func dialable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	return c.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// logTail logs the last lines of each file, for a failed test.
func logTail(t testing.TB, lines int, paths ...string) {
	t.Helper()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Logf("testenv: %v", err)
			}
			continue
		}
		var tail []string
		s := bufio.NewScanner(f)
		s.Buffer(make([]byte, 64*1024), 1024*1024)
		for s.Scan() {
			tail = append(tail, s.Text())
			if len(tail) > lines {
				tail = tail[1:]
			}
		}
		f.Close()
		if len(tail) > 0 {
			t.Logf("testenv: last lines of %s:\n%s", p, strings.Join(tail, "\n"))
		}
	}
}
