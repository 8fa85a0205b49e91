package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// xmppServer is the server process behind Prosody and Ejabberd: bin run as acct in dir,
// started and stopped (Stop, Restart, cleanup) under mu.
type xmppServer struct {
	name    string // "prosody" or "ejabberd", for messages; its output goes to dir/<name>.out
	bin     string
	acct    account
	dir     string
	pidFile string        // removed before each start
	logFile string        // the server's own log, shown when start or the test fails
	timeout time.Duration // how long start waits for the ports

	mu   sync.Mutex
	proc *process
}

func (s *xmppServer) outFile() string { return filepath.Join(s.dir, s.name+".out") }

// cleanup registers the end of the test: halt the server, show its logs if t failed and
// remove its directory.
func (s *xmppServer) cleanup(t testing.TB, halt func(testing.TB)) {
	t.Cleanup(func() {
		halt(t)
		if t.Failed() {
			logTail(t, 40, s.logFile, s.outFile())
		}
		os.RemoveAll(s.dir)
	})
}

// start runs bin with args, waits until every one of addrs (the c2s and component addresses
// first) accepts connections and logs how long that took. It fails the test otherwise.
func (s *xmppServer) start(t testing.TB, domain, component string, addrs []string, args ...string) {
	t.Helper()
	if err := s.launch(t, domain, component, addrs, args...); err != nil {
		logTail(t, 40, s.logFile, s.outFile())
		t.Fatal(err)
	}
}

// launch is start returning the error instead, for a caller that tries again. A server that
// exited before it was ready is forgotten (s.proc is nil again); one that is still running
// is left for cleanup to halt.
func (s *xmppServer) launch(t testing.TB, domain, component string, addrs []string, args ...string) error {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("testenv: %s already running", s.name)
	}
	os.Remove(s.pidFile)
	begin := time.Now()
	cmd, err := s.acct.command(syscall.SIGTERM, s.dir, s.outFile(), s.bin, args...)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	proc, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("testenv: start %s: %w", s.name, err)
	}
	s.proc = proc
	err = proc.waitReady(s.timeout, func() error {
		for _, a := range addrs {
			if err := dialable(a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		select {
		case <-proc.exited:
			s.proc = nil
		default:
		}
		return err
	}
	t.Logf("testenv: %s %s (component %s) on c2s %s, component %s, ready in %v",
		s.name, domain, component, addrs[0], addrs[1], time.Since(begin).Round(time.Millisecond))
	return nil
}
