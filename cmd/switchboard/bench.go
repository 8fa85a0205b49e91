package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"switchboard/internal/bench"
)

// cmdBench measures Switchboard: see package internal/bench and BENCHMARKS.md.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.StringVar(&o.Mode, "mode", bench.ModeComponent, "component (the bench is the XMPP server) or prosody (users through a real Prosody)")
	fs.IntVar(&o.N, "n", 20000, "messages users send to phones")
	fs.IntVar(&o.Users, "users", 100, "sending users, each with a bound number (at most 999)")
	fs.Float64Var(&o.Rate, "rate", 0, "messages per second; 0: as fast as -window allows")
	fs.IntVar(&o.Window, "window", 100, "messages sent whose receipt (with -no-receipts: submit_sm) has not come back yet")
	fs.IntVar(&o.MO, "mo", 0, "messages from phones after the run; default n/10 (at most 2000); negative: none")
	fs.Float64Var(&o.MORate, "mo-rate", 500, "messages from phones per second; negative: as fast as the sink's 64 in flight allow")
	fs.BoolVar(&o.C2STLS, "c2s-tls", false, "with -mode prosody: Prosody requires STARTTLS of its clients, as deployments do, and the users encrypt their streams")
	fs.BoolVar(&o.Relay, "relay", false, "users write to other users' numbers: relayed over XMPP and acknowledged by the recipient, no SMS")
	fs.IntVar(&o.MOParts, "mo-parts", 1, "SMS parts in each message from a phone (concatenated)")
	fs.StringVar(&o.DSN, "dsn", "", "store: a postgres:// URL; default a fresh SQLite file in a temporary directory")
	fs.IntVar(&o.SMPPWindow, "smpp-window", 10, "Switchboard's smpp.window")
	fs.BoolVar(&o.NoReceipts, "no-receipts", false, "the sink sends no receipts: messages stay waiting for them (for the RSS target)")
	fs.DurationVar(&o.ReceiptDelay, "receipt-delay", 0, "the sink sends each receipt this long after its submit_sm_resp, as a carrier would (default at once); -window must cover the messages waiting")
	fs.BoolVar(&o.Quotas, "quotas", false, "keep the SMS limits on (set too high to refuse) and allowed_countries US and CA, so every batch counts what users sent and every SMS has its country checked")
	fs.StringVar(&o.SMSC, "smsc", "", "host:port of your own SMSC to use instead of the built-in sink (system_id and password \"bench\"; no messages from phones)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (config, Switchboard's log, SQLite file)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "bound on the whole run; default 2m + 5ms per message + twice -receipt-delay")
	serveArgs := fs.String("serve-args", "", "extra `args` for switchboard serve, space-separated")
	kannel := fs.Bool("kannel", false, "also run Kannel (bearerbox + smsbox) against the same sink, at max-pending-submits 10 and 1000")
	kannelOnly := fs.Bool("kannel-only", false, "run only Kannel")
	quiet := fs.Bool("q", false, "no progress lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"bench takes no arguments besides flags"}
	}
	if *serveArgs != "" {
		o.ServeArgs = strings.Fields(*serveArgs)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Binary = exe
	if !*quiet {
		o.Log = stderr
	}
	var results []*bench.Result
	if !*kannelOnly {
		r, err := bench.Run(ctx, o)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	var kr []*bench.KannelResult
	if *kannel || *kannelOnly {
		for _, pending := range []int{10, 1000} {
			r, err := bench.RunKannel(ctx, bench.KannelOptions{N: o.N, MaxPending: pending, Log: o.Log, Timeout: o.Timeout})
			if err != nil {
				fmt.Fprintf(stderr, "bench: kannel (max-pending-submits %d): %v\n", pending, err)
				continue
			}
			kr = append(kr, r)
		}
	}
	fmt.Fprintf(stdout, "switchboard bench, %s, %d CPUs, %s\n", time.Now().Format(time.RFC3339), runtime.NumCPU(), strings.Join(args, " "))
	if len(results) > 0 {
		bench.Print(stdout, results)
	}
	if len(kr) > 0 {
		bench.PrintKannel(stdout, kr, results)
	}
	return nil
}

// startCPUProfile profiles the process into path until the returned stop
// is called (serve -cpuprofile, used by bench -serve-args).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeAllocProfile writes the allocations made since the start (serve
// -memprofile, used by bench -serve-args).
func writeAllocProfile(path string, stderr io.Writer) {
	runtime.GC() // the profile is as of the last collection
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchboard: memprofile: %v\n", err)
	}
}
