package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"switchboard/smsgw/smsc"
)

// TestMetricsAndReady runs the gateway with [http] listen set: /metrics
// counts a message that went out as SMS and got its receipt, and /readyz
// follows the connections.
func TestMetricsAndReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	// The receipt waits a little, so it comes after the submit_sm_resp is
	// recorded: a receipt that comes first has no latency to measure.
	s := startStack(t, sqliteDSN(t),
		smsc.Config{SystemID: "switchboard", Password: "secret", ReceiptMode: smsc.ReceiptText, ReceiptDelay: 300 * time.Millisecond},
		"SWITCHBOARD_HTTP_LISTEN="+addr)
	a := s.login(t, "alice")
	waitComponent(t, s, a)
	ctx := ctxT(t, 60*time.Second)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		must(t, err)
		return resp.StatusCode, string(b)
	}
	// waitFor polls path until ok accepts the answer.
	waitFor := func(path string, ok func(code int, body string) bool) (int, string) {
		t.Helper()
		var (
			code int
			body string
		)
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if code, body = get(path); ok(code, body) {
				return code, body
			}
		}
		t.Fatalf("GET %s: still %d %q", path, code, body)
		return 0, ""
	}

	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	waitFor("/readyz", func(code int, body string) bool { return code == 200 && body == "ok\n" })

	must(t, a.Send(ctx, fmt.Sprintf(`<message to='%s' id='m1' type='chat'><body>Hello phone</body><request xmlns='urn:xmpp:receipts'/></message>`, s.numberJID(phone))))
	r, err := a.Next(ctx, message(s.numberJID(phone)))
	must(t, err)
	if !strings.Contains(norm(r.XML), `<received xmlns="urn:xmpp:receipts" id="m1"`) {
		t.Fatalf("want receipt for m1, got %s", r.XML)
	}

	lines := []string{
		`switchboard_messages_total{direction="out",outcome="accepted",route="sms"} 1`,
		`switchboard_messages_total{direction="out",outcome="delivered",route="sms"} 1`,
		`switchboard_sms_parts_submitted_total{status="ok"} 1`,
		`switchboard_receipt_latency_seconds_count 1`,
		`switchboard_smpp_response_seconds_count{smsc="default"} 1`,
		`switchboard_smpp_binds_up{smsc="default"} 1`,
		`switchboard_smpp_window_in_use{smsc="default"} 0`,
		`switchboard_xmpp_connected 1`,
		`switchboard_queue_depth{state="queued"} 0`,
		`switchboard_queue_depth{state="submitted"} 0`,
		"go_goroutines ",
		"process_open_fds ",
	}
	// The receipt reaches the user from the store's commit (the notice is
	// handed over then); the gateway counts the delivery when the same
	// commit returns to it, which may be a moment later.
	all := func(code int, body string) bool {
		for _, line := range lines {
			if !strings.Contains(body, "\n"+line) {
				return false
			}
		}
		return code == 200
	}
	code, body := get("/metrics")
	for deadline := time.Now().Add(10 * time.Second); !all(code, body) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		code, body = get("/metrics")
	}
	if code != 200 {
		t.Fatalf("/metrics = %d %q", code, body)
	}
	for _, line := range lines {
		if !strings.Contains(body, "\n"+line) {
			t.Errorf("/metrics has no line %q", line)
		}
	}
	// The message's accept, SMSC id and receipt each waited on a commit.
	for _, name := range []string{"switchboard_store_commit_seconds_count", "switchboard_store_commit_writes_count"} {
		if m := regexp.MustCompile(`\n` + name + ` ([0-9]+)\n`).FindStringSubmatch(body); m == nil || m[1] == "0" {
			t.Errorf("/metrics: %s = %v, want commits counted", name, m)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	// The SMSC goes away: not ready, naming SMPP and nothing else.
	must(t, s.smsc.Close())
	_, body = waitFor("/readyz", func(code int, body string) bool { return code == 503 })
	if body != "smpp: not bound to the SMSC\n" {
		t.Errorf("/readyz without the SMSC = %q", body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "\n"+`switchboard_smpp_binds_up{smsc="default"} 0`) {
		t.Errorf("/metrics without the SMSC:\n%s", body)
	}
}
