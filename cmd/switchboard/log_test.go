package main

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/store"
)

// TestLogDurationsHaveUnits: zerolog's Dur writes a bare number of
// milliseconds ("retry_in":644.890135), which reads as seconds as easily;
// durations are logged with Stringer, as Go writes them and as the
// configuration takes them ("645ms", "72h0m0s").
func TestLogDurationsHaveUnits(t *testing.T) {
	dur := regexp.MustCompile(`\.Durs?\(`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", "demo", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			if dur.MatchString(sc.Text()) {
				t.Errorf("%s:%d: a duration logged with Dur (a number with no unit); use Stringer: %s", path, n, strings.TrimSpace(sc.Text()))
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runUnreachable runs serve on a SQLite file of its own, its XMPP server
// and SMSC unreachable, logging to logs; done has run's result after
// cancel (which the test's end also calls).
func runUnreachable(t *testing.T) (cfg *Config, logs *testenv.Logs, done <-chan error, cancel context.CancelFunc) {
	t.Helper()
	path := writeFile(t, "sb.toml", goodConfig+"\n[store]\ndsn = \""+sqliteDSN(t)+"\"\n")
	cfg, err := loadConfig(path, []string{"SWITCHBOARD_XMPP_SERVER=127.0.0.1:1", "SWITCHBOARD_SMPP_ADDR=127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	logs = testenv.NewLogs(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan error, 1)
	go func() { ch <- run(ctx, cfg, zerolog.New(logs)) }()
	return cfg, logs, ch, cancel
}

// TestStartingLine: the line serve logs at start names the XMPP domain
// xmpp_component, for component names the subsystem on every other line
// (xmpp, smpp, router, …).
func TestStartingLine(t *testing.T) {
	_, logs, done, cancel := runUnreachable(t)
	var starting map[string]any
	timeout := time.After(10 * time.Second)
	for starting == nil {
		select {
		case line := <-logs.Lines():
			if line["message"] == "starting" {
				starting = line
			}
		case err := <-done:
			t.Fatalf("run returned %v before logging that it started", err)
		case <-timeout:
			t.Fatal("no starting line")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if starting["xmpp_component"] != "sms.example.com" || starting["component"] != nil {
		t.Errorf("starting line %v: want xmpp_component sms.example.com and no component", starting)
	}
}

// TestSecondGatewayRefused: a second serve on the SQLite file of a running
// one stops at once, saying so, rather than serving beside it.
func TestSecondGatewayRefused(t *testing.T) {
	cfg, logs, done, cancel := runUnreachable(t)
	logs.Next("starting")
	ctx, stop := context.WithCancel(context.Background())
	defer stop() // should it run after all
	second := make(chan error, 1)
	go func() { second <- run(ctx, cfg, zerolog.Nop()) }()
	select {
	case err := <-second:
		if !errors.Is(err, store.ErrInUse) {
			t.Errorf("second serve: %v; want store.ErrInUse", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the second serve still runs")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
