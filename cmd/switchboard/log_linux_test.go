package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConsoleColour: log.format = "console" colours its output on a
// terminal only; in a file or a pipe (journald, docker logs, a redirect)
// the escape codes would be noise.
func TestConsoleColour(t *testing.T) {
	t.Setenv("NO_COLOR", "") // zerolog colours nothing while it is set
	console := LogConfig{Level: "info", Format: "console"}

	file, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, out := range []*os.File{file, w} {
		log := newLogger(console, out)
		log.Warn().Str("server", "127.0.0.1:5347").Msg("connecting to the XMPP server failed")
	}
	w.Close()
	var piped bytes.Buffer
	if _, err := piped.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(file.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"file": string(written), "pipe": piped.String()} {
		if !strings.Contains(got, "connecting to the XMPP server failed") || strings.Contains(got, "\x1b[") {
			t.Errorf("%s: %q, want the line without colour codes", name, got)
		}
	}

	// A terminal: the other end of a pseudo-terminal reads what is written.
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	log := newLogger(console, tty)
	log.Warn().Msg("on a terminal")
	_ = master.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4096)
	k, err := master.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(got[:k]); !strings.Contains(s, "on a terminal") || !strings.Contains(s, "\x1b[") {
		t.Errorf("terminal: %q, want colour codes", s)
	}
}
