package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
)

// TestSlixmppInterop: a client that is not ours (Debian's python3-slixmpp)
// sends a message to a number JID, gets the carrier's receipt as XEP-0184,
// and receives the phone's reply.
func TestSlixmppInterop(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import slixmpp").Run(); err != nil {
		if os.Getenv(testenv.RequireServersEnv) == "1" {
			t.Fatalf("python3-slixmpp is not installed: %v", err)
		}
		t.Skip("python3-slixmpp is not installed")
	}
	s := startStack(t, sqliteDSN(t), smsc.Config{})
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	a.Close()
	host, port, _ := net.SplitHostPort(s.prosody.C2SAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("..", "..", "testdata", "slixmpp", "send.py"),
		"alice@"+s.prosody.Domain+"/slix", "alice", host, port, s.numberJID(phone), "hello from slixmpp")
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if line == "RECEIPT slix-1" {
			// The carrier delivered it; now the phone answers.
			if err := s.smsc.SendMO(ctx, phone, alice, "hello back"); err != nil {
				t.Errorf("MO: %v", err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("slixmpp client: %v\nstdout: %v\nstderr: %s", err, lines, stderr.String())
	}
	want := []string{"SENT slix-1", "RECEIPT slix-1", "MESSAGE " + s.numberJID(phone) + " hello back"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("client saw %q, want %q", lines, want)
	}
	if m := s.smsc.Messages(); len(m) != 1 || m[0].Text != "hello from slixmpp" || m[0].Source != alice[1:] {
		t.Fatalf("SMSC got %+v", m)
	}
}
