package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// Fields of /proc/PID/stat as procStat returns them (field 3, state, at
// 0): the parent's pid, then utime, stime, cutime and cstime.
const (
	statPPid   = 1
	statUTime  = 11
	statCSTime = 14
)

// procStat returns the fields of /proc/pid/stat after the command name
// (which is in parentheses and may contain spaces), at least up to cstime.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("bench: /proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) <= statCSTime {
		return nil, fmt.Errorf("bench: /proc/%d/stat: too few fields", pid)
	}
	return f, nil
}

// ticks sums fields of clock ticks as a duration.
func ticks(fields []string) (time.Duration, error) {
	var sum int64
	for _, s := range fields {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc stat: bad time %q", s)
		}
		sum += t
	}
	return time.Duration(sum) * time.Second / clockTicks, nil
}

// cpuTime returns the user+system CPU time pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(f[statUTime : statUTime+2])
}

// postgresCPU returns the CPU time used so far by the PostgreSQL server
// whose postmaster is pid: the postmaster and its children (backends, WAL
// writer, checkpointer, autovacuum), with the time of the children that
// ended counted in the postmaster's (it reaps them). Other servers on the
// machine are left out: a test's, started or stopped meanwhile, would
// move a machine-wide sum either way. ok is false when /proc does not show
// the postmaster.
func postgresCPU(pid int) (d time.Duration, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		self, _ := strconv.Atoi(filepath.Base(dir))
		f, err := procStat(self)
		if err != nil {
			continue // gone
		}
		if parent, _ := strconv.Atoi(f[statPPid]); self != pid && parent != pid {
			continue
		}
		if t, err := ticks(f[statUTime : statCSTime+1]); err == nil {
			d += t
		}
		ok = ok || self == pid
	}
	return d, ok
}

// postmaster returns the pid of the postmaster of the PostgreSQL server
// dsn names, when it runs on this machine: the parent of the backend
// that answers. 0 when it cannot tell.
func postmaster(ctx context.Context, dsn string) int {
	if !localPostgres(dsn) {
		return 0
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return 0
	}
	defer db.Close()
	var backend int
	if err := db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0
	}
	m, err := procKeys(fmt.Sprintf("/proc/%d/status", backend))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(m["PPid"])
	return pid
}

// localPostgres reports whether dsn names a PostgreSQL server on this
// machine (a loopback address or a Unix socket), whose CPU postgresCPU
// then measures.
func localPostgres(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return false
	}
	switch h := u.Hostname(); {
	case h == "" || h == "localhost" || strings.HasPrefix(h, "/"):
		return true
	default:
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
}

// cpuTotal sums cpuTime over pids, skipping ones that are gone.
func cpuTotal(pids ...int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		if d, err := cpuTime(p); err == nil {
			sum += d
		}
	}
	return sum
}

// procKeys reads a /proc file of "key: value" lines (status, io).
func procKeys(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, nil
}

// peakRSS returns VmHWM (peak resident set size) of pid in bytes.
func peakRSS(pid int) (int64, error) {
	m, err := procKeys(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(m["VmHWM"]) // "1234 kB"
	if len(f) == 0 {
		return 0, fmt.Errorf("bench: no VmHWM for pid %d", pid)
	}
	kb, err := strconv.ParseInt(f[0], 10, 64)
	return kb << 10, err
}

// ioCounts is what /proc/PID/io says a process wrote: bytes that reached
// the storage layer (the page cache counts) and write system calls of any
// kind (sockets too).
type ioCounts struct {
	DiskBytes  int64
	WriteCalls int64
}

func ioCounters(pid int) (ioCounts, error) {
	m, err := procKeys(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ioCounts{}, err
	}
	disk, err1 := strconv.ParseInt(m["write_bytes"], 10, 64)
	calls, err2 := strconv.ParseInt(m["syscw"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ioCounts{}, fmt.Errorf("bench: /proc/%d/io: %w", pid, err)
	}
	return ioCounts{DiskBytes: disk, WriteCalls: calls}, nil
}

// loadAvg returns the 1-minute load average, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// child is a server process the bench started. done is closed once it
// exited and its output file is closed; err is then what Wait returned.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startChild starts cmd, whose output goes to out; out is closed once cmd
// exited (or at once, if it does not start).
func startChild(cmd *exec.Cmd, out io.Closer) (*child, error) {
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		out.Close()
		close(c.done)
	}()
	return c, nil
}

// stop asks the process to end (SIGTERM), kills it after grace, and waits
// until it exited. It may be called again, and after the process exited.
func (c *child) stop(grace time.Duration) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.done
	}
}
