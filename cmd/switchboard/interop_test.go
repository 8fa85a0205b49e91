package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// nodeSMSC is testdata/smpp-node/smsc.js running: an SMSC written on the
// npm smpp package, accepting systemID and password.
type nodeSMSC struct {
	t      *testing.T
	ctx    context.Context
	port   int
	stdin  io.Writer
	events chan map[string]any
	stderr *strings.Builder
}

func startNodeSMSC(t *testing.T, systemID, password string) *nodeSMSC {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "smpp-node")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "smpp", "package.json"))
	}
	if err != nil {
		if os.Getenv(testenv.RequireServersEnv) == "1" {
			t.Fatalf("node or the npm smpp package is missing (scripts/test-deps.sh installs them): %v", err)
		}
		t.Skip("node or the npm smpp package is missing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, node, "smsc.js", systemID, password)
	cmd.Dir = dir
	n := &nodeSMSC{t: t, ctx: ctx, events: make(chan map[string]any, 64), stderr: &strings.Builder{}}
	n.stdin, err = cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = n.stderr
	must(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node SMSC stderr: %s", n.stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err == nil {
				select {
				case n.events <- ev:
				default: // nobody is reading events (the bench): drop them
				}
			}
		}
		close(n.events)
	}()
	n.port = int(n.next("listening")["port"].(float64))
	return n
}

// next returns the next event of kind, skipping others.
func (n *nodeSMSC) next(kind string) map[string]any {
	n.t.Helper()
	for {
		select {
		case ev, ok := <-n.events:
			if !ok {
				n.t.Fatalf("node SMSC ended waiting for %q: %s", kind, n.stderr.String())
			}
			if ev["event"] == kind {
				return ev
			}
		case <-n.ctx.Done():
			n.t.Fatalf("no %q from the node SMSC", kind)
		}
	}
}

// TestNodeSMSCInterop: an SMSC that is not ours (the npm smpp package,
// testdata/smpp-node) takes Switchboard's bind, its submit_sm in GSM and
// UCS-2, sends its own text receipts, which reach the user as XEP-0184,
// and a phone's message, which reaches the user.
func TestNodeSMSCInterop(t *testing.T) {
	n := startNodeSMSC(t, "switchboard", "secret")
	ctx, next, stdin, port := n.ctx, n.next, n.stdin, n.port

	s := startStack(t, sqliteDSN(t), smsc.Config{}, fmt.Sprintf("SWITCHBOARD_SMPP_ADDR=127.0.0.1:%d", port))
	next("bound")
	a := s.login(t, "alice")
	waitComponent(t, s, a)

	for i, text := range []string{"Hello node", "Привет, node"} {
		id := fmt.Sprintf("n%d", i+1)
		must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(phone), id, text)))
		sub := next("submit")
		wantDC := 0.0
		if i == 1 {
			wantDC = 8
		}
		if sub["source"] != alice[1:] || sub["dest"] != phone[1:] || sub["text"] != text || sub["data_coding"] != wantDC || sub["registered_delivery"] != 1.0 {
			t.Fatalf("submit_sm as the node SMSC decoded it: %v", sub)
		}
		if rr := next("receipt_resp"); rr["status"] != 0.0 {
			t.Fatalf("receipt answered %v", rr)
		}
		r, err := a.Next(ctx, message(s.numberJID(phone)))
		must(t, err)
		if !strings.Contains(norm(r.XML), `<received xmlns="urn:xmpp:receipts" id="`+id+`"`) {
			t.Fatalf("want receipt for %s, got %s", id, r.XML)
		}
	}

	_, err := fmt.Fprintf(stdin, `{"from": %q, "to": %q, "text": "hi from node"}`+"\n", phone, alice)
	must(t, err)
	if mo := next("mo_resp"); mo["status"] != 0.0 {
		t.Fatalf("deliver_sm answered %v", mo)
	}
	r, err := a.Next(ctx, message(s.numberJID(phone)))
	must(t, err)
	if r.Body != "hi from node" || r.Attr["type"] != "chat" {
		t.Fatalf("MO = %s", r.XML)
	}
}

// TestLoadgenCrossCheck runs testdata/loadgen/run.sh, the cross-check of the
// component-only figure that shares nothing with internal/bench: a Python
// load generator playing the XMPP server and the npm SMSC, around this
// binary as switchboard. Every message must get its receipt and none an
// error; speed is not checked here.
func TestLoadgenCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Switchboard, node and python3 as child processes")
	}
	var missing []string
	for _, prog := range []string{"bash", "python3", "node"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "..", "testdata", "smpp-node", "node_modules", "smpp", "package.json")); err != nil {
		missing = append(missing, "the npm smpp package")
	}
	if len(missing) > 0 {
		if os.Getenv(testenv.RequireServersEnv) == "1" {
			t.Fatalf("missing for the load generator cross-check (scripts/test-deps.sh installs node and smpp): %s", strings.Join(missing, ", "))
		}
		t.Skipf("missing: %s", strings.Join(missing, ", "))
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "testdata", "loadgen", "run.sh"))
	// On timeout run.sh gets SIGTERM, so that its trap stops the SMSC,
	// the generator and Switchboard; SIGKILL would orphan them.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	cmd.Env = append(os.Environ(),
		"SB_TEST_MAIN=1", "SWITCHBOARD="+os.Args[0], // this test binary is switchboard (see config_test.go)
		"N=300", "USERS=10", "WINDOW=100", "SMPP_WINDOW=10", "DSN=", "KEEP=0",
		// A run that cannot finish fails in seconds, well within ctx.
		"TMPDIR="+dir, "LOADGEN_ARGS=-q --warmup-timeout 20 --stall 10 --json "+report)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("run.sh:\n%s", out.String())
	if err != nil {
		// The report, if any, says more than the exit status.
		t.Errorf("run.sh: %v", err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("loadgen.py wrote no report: %v", err)
	}
	var r struct {
		Sent, Receipts, Errors int
		Complete               bool
		Failure                *string
		Answered               map[string]int
		Other                  map[string]int `json:"other_stanzas"`
		SMSCCPU                *float64       `json:"smsc_cpu_s_per_1k"`
		CoresBusy              *float64       `json:"cores_busy"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v", err)
	}
	// run.sh hands loadgen.py the SMSC's pid: its CPU, and the cores the
	// three kept busy, say whether a figure is Switchboard's or the machine's.
	if r.SMSCCPU == nil || *r.SMSCCPU < 0 || r.CoresBusy == nil || *r.CoresBusy <= 0 {
		t.Errorf("SMSC CPU %v, cores busy %v: want both measured", r.SMSCCPU, r.CoresBusy)
	}
	if r.Sent != 300 || r.Receipts != 300 || r.Errors != 0 || !r.Complete || r.Failure != nil {
		t.Errorf("sent %d, receipts %d, errors %d, complete %v, failure %v; want 300, 300, 0, true, none",
			r.Sent, r.Receipts, r.Errors, r.Complete, r.Failure)
	}
	// Switchboard asks the server nothing but pings (Sync, after each
	// batch of receipts, and while idle) and, once a connection, its uptime
	// (XEP-0012, which loadgen does not answer: that changes nothing);
	// anything else it starts asking should be seen.
	for k, n := range r.Answered {
		if !strings.Contains(k, "urn:xmpp:ping") && (!strings.Contains(k, "jabber:iq:last") || n != 1) {
			t.Errorf("Switchboard asked the server %q ×%d", k, n)
		}
	}
	if len(r.Other) > 0 {
		t.Errorf("stanzas besides receipts and pings: %v", r.Other)
	}
}
