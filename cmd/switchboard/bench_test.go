package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchboard/internal/bench"
	"switchboard/internal/testenv"
)

// TestBenchSmoke runs `bench -mode component` end to end on each store
// with a few messages: every message must reach the SMSC sink and every
// receipt must come back to its sender. Speed is not checked here.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Switchboard as a child process")
	}
	// The child is this test binary, re-executed as switchboard (see config_test.go).
	t.Setenv("SB_TEST_MAIN", "1")
	stores(t, benchSmoke)
}

func benchSmoke(t *testing.T, dsn string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log strings.Builder
	res, err := bench.Run(ctx, bench.Options{
		Mode: bench.ModeComponent, N: 500, Users: 10, MO: 500, MORate: -1, MOParts: 2, Binary: os.Args[0], DSN: dsn,
		Timeout: 50 * time.Second, Log: &log,
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	if res.Submitted != 500 || res.Receipts != 500 || res.Errors != 0 || res.Stalled || res.SubmitSMs < 500 {
		t.Errorf("submitted %d, receipts %d, errors %d (last %q), stalled %v, submit_sm at the sink %d; want 500, 500, 0, 500",
			res.Submitted, res.Receipts, res.Errors, res.LastError, res.Stalled, res.SubmitSMs)
	}
	// Unpaced (-mo-rate -1), the phones' rate and CPU are measured too
	// (enough of them for the CPU to pass a clock tick); in two parts
	// each, every one reassembled whole (the recorder checks the length).
	if res.MOGot != 500 || res.MOPerSec <= 0 || res.MOCPUPer1k <= 0 {
		t.Errorf("%d of 500 messages from phones reached their users, at %.0f msg/s, %.3f CPU s per 1,000; want all, both above 0",
			res.MOGot, res.MOPerSec, res.MOCPUPer1k)
	}
	// Both sides of the machine are measured: the bench plays the XMPP
	// server and the SMSC, so it cannot have used no CPU at all.
	if res.CPUPer1k <= 0 || res.Others["bench"] <= 0 {
		t.Errorf("CPU per 1,000 messages: Switchboard %.3f s, bench %.3f s; want both above 0", res.CPUPer1k, res.Others["bench"])
	}
	// The store's group commits, from Switchboard's metrics: every
	// message's SMSC id and receipt is a write of its own (an accept may
	// carry several messages), so at least 1,000 writes went in them.
	if writes := res.CommitsPer1k * res.WritesPerCommit * float64(res.N) / 1000; res.CommitsPer1k <= 0 || writes < 999.5 {
		t.Errorf("%.1f group commits per 1,000 messages holding %.1f writes each (%.0f in all); want some, at least 1,000 writes",
			res.CommitsPer1k, res.WritesPerCommit, writes)
	}
	// And its heap: a message is parsed, stored, encoded as a PDU and
	// answered with a receipt, which cannot take fewer than a few dozen
	// allocations or under a kilobyte.
	if res.AllocsPerMsg < 20 || res.AllocBytesPerMsg < 1024 {
		t.Errorf("%.1f heap allocations (%.0f bytes) per message; want the metrics' counters read, at least 20 and 1 KiB", res.AllocsPerMsg, res.AllocBytesPerMsg)
	}
	// The PostgreSQL server on loopback is measured too; SQLite is in
	// Switchboard's process.
	pg, measured := res.Others["postgres"]
	if wantPG := res.Store == "postgres"; measured != wantPG || (wantPG && pg <= 0) {
		t.Errorf("PostgreSQL server CPU per 1,000 messages: %.3f s (measured %v); want it measured, above 0, only on PostgreSQL", pg, measured)
	}
	var out strings.Builder
	bench.Print(&out, []*bench.Result{res})
	if !strings.Contains(out.String(), "(unpaced) /") {
		t.Errorf("the report does not give the phones' rate as unpaced:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}

// TestBenchReceiptDelay runs the bench with the sink's receipts held back
// (-receipt-delay), as a carrier's come: every receipt must still come
// back to its sender, none before the delay, and the report must say so.
func TestBenchReceiptDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Switchboard as a child process")
	}
	const delay = 300 * time.Millisecond
	res := run200(t, bench.Options{ReceiptDelay: delay})
	// A lower bound: the receipts were held back, not sent at once.
	if res.ReceiptsEnd < delay {
		t.Errorf("the last receipt reached its sender %v after the first message was written; want at least the delay, %v", res.ReceiptsEnd, delay)
	}
	var out strings.Builder
	bench.Print(&out, []*bench.Result{res})
	if !strings.Contains(out.String(), "receipts after 300ms") {
		t.Errorf("the report does not give the receipt delay:\n%s", out.String())
	}
}

// TestBenchQuotas runs the bench with the SMS limits on (-quotas), as an
// operator would set them but too high to refuse: the configuration it
// gives Switchboard checks every SMS's country, and nothing is refused —
// the bench's numbers are in the countries allowed.
func TestBenchQuotas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Switchboard as a child process")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Keep leaves the run's configuration
	run200(t, bench.Options{Quotas: true, Keep: true})
	cfgs, _ := filepath.Glob(filepath.Join(tmp, "switchboard-bench-*", "switchboard.toml"))
	if len(cfgs) != 1 {
		t.Fatalf("configurations kept: %v, want one", cfgs)
	}
	b, err := os.ReadFile(cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"per_user_minute = 1000000000", `allowed_countries = ["US", "CA"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the configuration lacks %q:\n%s", want, b)
		}
	}
}

// run200 runs the bench in component mode, 200 messages from 10 users,
// with o's other settings, and requires each submitted and its receipt
// back to its sender.
func run200(t *testing.T, o bench.Options) *bench.Result {
	t.Helper()
	t.Setenv("SB_TEST_MAIN", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log strings.Builder
	o.Mode, o.N, o.Users, o.MO, o.Window = bench.ModeComponent, 200, 10, -1, 200
	o.Binary, o.Timeout, o.Log = os.Args[0], 50*time.Second, &log
	res, err := bench.Run(ctx, o)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	if res.Submitted != 200 || res.Receipts != 200 || res.Errors != 0 || res.Stalled {
		t.Errorf("submitted %d, receipts %d, errors %d (last %q), stalled %v; want 200, 200, 0",
			res.Submitted, res.Receipts, res.Errors, res.LastError, res.Stalled)
	}
	return res
}

// TestBenchOwnSMSC runs the bench against an SMSC that is not ours (the
// npm smpp package, testdata/smpp-node) through -smsc: every message must
// reach it and every one of its receipts come back to the sender.
func TestBenchOwnSMSC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Switchboard as a child process")
	}
	n := startNodeSMSC(t, "bench", "bench")
	t.Setenv("SB_TEST_MAIN", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log strings.Builder
	res, err := bench.Run(ctx, bench.Options{
		Mode: bench.ModeComponent, N: 300, Users: 10, Binary: os.Args[0],
		SMSC: fmt.Sprintf("127.0.0.1:%d", n.port), Timeout: 50 * time.Second, Log: &log,
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	if res.Submitted != 300 || res.Receipts != 300 || res.Errors != 0 || res.Stalled || res.MO != 0 {
		t.Errorf("submitted %d, receipts %d, errors %d (last %q), stalled %v, phones %d; want 300, 300, 0, no phones",
			res.Submitted, res.Receipts, res.Errors, res.LastError, res.Stalled, res.MO)
	}
}

// TestBenchRelay runs the bench with users writing to each other's
// numbers (-relay): every message must be relayed over XMPP, none sent as
// SMS, and every recipient's receipt must come back to its sender.
func TestBenchRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Switchboard as a child process")
	}
	t.Setenv("SB_TEST_MAIN", "1")
	stores(t, func(t *testing.T, dsn string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var log strings.Builder
		res, err := bench.Run(ctx, bench.Options{
			Mode: bench.ModeComponent, N: 300, Users: 10, MO: -1, Relay: true, Binary: os.Args[0], DSN: dsn,
			Timeout: 50 * time.Second, Log: &log,
		})
		if err != nil {
			t.Fatalf("bench: %v\n%s", err, log.String())
		}
		if res.Submitted != 300 || res.Receipts != 300 || res.Errors != 0 || res.Stalled || res.SubmitSMs != 0 || res.DupSubmits != 0 {
			t.Errorf("relayed %d, receipts %d, errors %d (last %q), stalled %v, as SMS %d, twice %d; want 300, 300, none",
				res.Submitted, res.Receipts, res.Errors, res.LastError, res.Stalled, res.SubmitSMs, res.DupSubmits)
		}
		var out strings.Builder
		bench.Print(&out, []*bench.Result{res})
		if !strings.Contains(out.String(), "relayed to users") {
			t.Errorf("the report does not say the messages were relayed:\n%s", out.String())
		}
	})
}

// TestBenchProsody runs the bench through a real Prosody, users logged in
// with SCRAM: to phones (SMS, receipts from the sink) and to each other
// (relayed, receipts from the recipients' clients), and to phones again
// with Prosody requiring STARTTLS (-c2s-tls). Every message must reach its
// end and every receipt come back, and Prosody's CPU be measured.
func TestBenchProsody(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody and Switchboard as child processes")
	}
	testenv.NeedProsody(t)
	t.Setenv("SB_TEST_MAIN", "1")
	for _, tc := range []struct {
		name       string
		relay, tls bool
	}{{"sms", false, false}, {"relay", true, false}, {"sms over c2s TLS", false, true}} {
		relay := tc.relay
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			var log strings.Builder
			res, err := bench.Run(ctx, bench.Options{
				Mode: bench.ModeProsody, N: 300, Users: 10, MO: 20, Relay: relay, C2STLS: tc.tls, Binary: os.Args[0],
				Timeout: 80 * time.Second, Log: &log,
			})
			if err != nil {
				t.Fatalf("bench: %v\n%s", err, log.String())
			}
			wantSMS := 300
			if relay {
				wantSMS = 0
			}
			if res.Submitted != 300 || res.Receipts != 300 || res.Errors != 0 || res.Stalled || res.SubmitSMs != wantSMS || res.MOGot != 20 {
				t.Errorf("reached %d, receipts %d, errors %d (last %q), stalled %v, as SMS %d, from phones %d; want 300, 300, none, %d SMS, 20",
					res.Submitted, res.Receipts, res.Errors, res.LastError, res.Stalled, res.SubmitSMs, res.MOGot, wantSMS)
			}
			if res.Others["prosody"] <= 0 {
				t.Errorf("Prosody's CPU not measured: %v", res.Others)
			}
		})
	}
}
