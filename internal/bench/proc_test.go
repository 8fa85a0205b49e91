package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestIOCounters: writes of the process's own show in its count of write
// calls. (Its disk bytes depend on the file system: tmpfs counts none.)
func TestIOCounters(t *testing.T) {
	before, err := ioCounters(os.Getpid())
	if err != nil {
		t.Skipf("no /proc/PID/io here: %v", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 3 {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	after, err := ioCounters(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.WriteCalls < before.WriteCalls+3 {
		t.Errorf("write calls %d → %d; want at least 3 more", before.WriteCalls, after.WriteCalls)
	}
}

// TestPeakRSS: the process's own peak RSS is read, and is not nothing.
func TestPeakRSS(t *testing.T) {
	rss, err := peakRSS(os.Getpid())
	if err != nil {
		t.Skipf("no /proc/PID/status here: %v", err)
	}
	if rss < 1<<20 {
		t.Errorf("peak RSS %d bytes; a Go test binary uses megabytes", rss)
	}
}

// TestLocalPostgres: the server's CPU is measured only where it runs on
// this machine.
func TestLocalPostgres(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://postgres@127.0.0.1:55432/db?sslmode=disable": true,
		"postgres://u:p@localhost/db":                            true,
		"postgresql://u@[::1]:5432/db":                           true,
		"postgres:///db?host=/var/run/postgresql":                true,
		"postgres://u@db.example.com/db":                         false,
		"postgres://u@10.0.0.5:5432/db":                          false,
		"sqlite:/tmp/x.db":                                       false,
	} {
		if got := localPostgres(dsn); got != want {
			t.Errorf("localPostgres(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// TestProcessTreeCPU: postgresCPU counts the process it is given (here
// this test, standing in for a postmaster) with its children, so at least
// that process's own CPU; a pid with no process is not measured.
func TestProcessTreeCPU(t *testing.T) {
	for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
	} // some CPU to see
	own, err := cpuTime(os.Getpid())
	if err != nil || own <= 0 {
		t.Fatalf("cpuTime = %v, %v; want some CPU", own, err)
	}
	tree, ok := postgresCPU(os.Getpid())
	if !ok || tree < own {
		t.Errorf("postgresCPU = %v, %v; want at least the process's own %v", tree, ok, own)
	}
	if _, ok := postgresCPU(1 << 30); ok {
		t.Error("postgresCPU measured a pid with no process")
	}
}
